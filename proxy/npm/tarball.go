package npm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm/packument"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// Observation fields of an npm version. Each is recorded the first time
// it is seen and never overwritten: the facts later anomaly checks read,
// and a changed integrity is itself evidence (npm forbids republishing).
const (
	fieldTarball      = "tarball_sha256"
	fieldIntegrity    = "integrity"
	fieldShasum       = "shasum"
	fieldPublished    = "publish_time"
	fieldPublisher    = "publisher"
	fieldTrusted      = "trusted_publisher"
	fieldMaintainers  = "maintainers"
	fieldScripts      = "install_scripts"
	fieldDeps         = "dependencies"
	fieldSigKeys      = "signature_keyids"
	fieldProvenance   = "provenance"
	fieldRepo         = "provenance_repository"
	fieldWorkflow     = "provenance_workflow"
	fieldRef          = "provenance_ref"
	fieldCommit       = "provenance_commit"
	fieldBuilder      = "provenance_builder"
	fieldIssuer       = "provenance_issuer"
	fieldAttestations = "attestations_sha256"
)

// Checks, as findings name them.
const (
	checkIntegrity   = "npm-integrity"
	checkPublishTime = "npm-publish-time"
	checkProvenance  = "npm-provenance"
	checkSource      = "npm-source-repository"
	checkChanged     = "content-changed"
)

func (h *Handler) status(ctx context.Context, a verify.Artifact) (cache.Status, error) {
	st, err := h.o.Meta.Status(ctx, a)
	if errors.Is(err, cache.ErrNotFound) {
		return cache.Status{}, nil
	}
	return st, err
}

func (h *Handler) serveTarball(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	a := artifact(req.name, req.version)
	st, err := h.status(ctx, a)
	if err != nil {
		return err
	}
	if st.Hidden() && !(st.Quarantine != nil && h.comeOfAge(ctx, *st.Quarantine)) {
		return refusal(a.String(), st)
	}
	// A feed that names the version stops even a cached copy (unless an
	// admin released it over the finding).
	if fs := h.o.Malicious(a); len(fs) > 0 {
		if err := h.hold(ctx, a, verify.Deny, fs, false); err != nil {
			return err
		}
	}
	if f, d, ok := h.cachedBlob(ctx, a.Key(), fieldTarball); ok {
		h.o.Metrics.CacheHits.WithLabelValues("npm", "tarball").Inc()
		h.revalidateLater(ctx, a.Name)
		serveBlob(w, r, f, d, "application/octet-stream")
		return nil
	}
	h.o.Metrics.CacheMisses.WithLabelValues("npm", "tarball").Inc()
	v, err, _ := h.flight.Do("tarball\x00"+a.Key(), func() (any, error) {
		return h.fetchTarball(context.WithoutCancel(ctx), a)
	})
	if err != nil {
		return err
	}
	d := v.(string)
	f, _, err := h.o.Blobs.Open(ctx, d)
	if err != nil {
		return fmt.Errorf("opening cached tarball: %w", err)
	}
	serveBlob(w, r, f, d, "application/octet-stream")
	return nil
}

// cachedBlob opens the blob an observation field points at; ok is false on
// any miss, including a blob that failed its integrity check on open.
func (h *Handler) cachedBlob(ctx context.Context, key, field string) (io.ReadSeekCloser, string, bool) {
	f, d, err := cache.OpenObserved(ctx, h.o.Meta, h.o.Blobs, key, field)
	if err != nil {
		if !errors.Is(err, cache.ErrNotFound) {
			h.o.Log.Warn("cached blob unusable; fetching again", "key", key, "digest", d, "err", err)
		}
		return nil, "", false
	}
	return f, d, true
}

func serveBlob(w http.ResponseWriter, r *http.Request, f io.ReadSeekCloser, digest, ctype string) {
	defer f.Close()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("ETag", strconv.Quote(digest))
	// A published version's tarball never changes.
	w.Header().Set("Cache-Control", "public, max-age=604800, immutable")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// version finds a version in the packument, asking upstream again when
// the cached copy does not have it yet.
func (h *Handler) version(ctx context.Context, a verify.Artifact) (*doc, *packument.Version, error) {
	d, err := h.load(ctx, a.Name)
	if err != nil {
		return nil, nil, err
	}
	if v := d.pk.Versions[a.Version]; v != nil {
		return d, v, nil
	}
	if d, err = h.reload(ctx, d); err != nil {
		return nil, nil, err
	}
	if v := d.pk.Versions[a.Version]; v != nil {
		return d, v, nil
	}
	if _, ok := d.pk.Time[a.Version]; ok {
		return nil, nil, errorf(http.StatusNotFound, "airlock: %s was removed upstream (unpublished or taken down)", a)
	}
	return nil, nil, errorf(http.StatusNotFound, "airlock: version not found: %s", a)
}

// fetchTarball downloads, verifies and caches a version's tarball, and
// returns its digest. Nothing is committed unless its bytes match
// dist.integrity, and nothing is served while a finding holds it.
func (h *Handler) fetchTarball(ctx context.Context, a verify.Artifact) (string, error) {
	d, v, err := h.version(ctx, a)
	if err != nil {
		return "", err
	}
	var findings []verify.Finding
	published, hasTime := d.pk.PublishTime(a.Version)
	if !hasTime {
		// The time is what signatures' key expiry and cooldown are
		// judged by; a version without one cannot be placed.
		findings = append(findings, verify.Finding{Check: checkPublishTime, Message: "the upstream packument has no publish time for this version"})
	}
	sig, sigFindings, err := h.checkSignatures(ctx, a, v, published)
	if err != nil {
		return "", err
	}
	findings = append(findings, sigFindings...)

	s, err := h.o.Blobs.Stage(ctx)
	if err != nil {
		return "", err
	}
	defer s.Discard()
	in, _ := npmsig.ParseIntegrity(v.Dist.Integrity)
	hasher := npmsig.NewHasherFor(in)
	src := h.upstreamURL(v.Dist.Tarball, "/"+escapeName(a.Name)+"/-/"+tarballName(a.Name, a.Version))
	_, framed, err := h.copyBody(ctx, src, h.o.MaxTarball, io.MultiWriter(s, hasher))
	if err != nil {
		return "", unavailable(err)
	}
	ev, err := hasher.Check(v.Dist.Integrity, v.Dist.Shasum)
	if err != nil {
		if errors.Is(err, npmsig.ErrIntegrityMismatch) && !framed {
			// Possibly a connection cut short: no evidence against the
			// version.
			return "", errorf(http.StatusBadGateway, "airlock: upstream tarball of %s does not match its integrity and had no declared length (truncated?)", a)
		}
		h.o.Metrics.Verifications.WithLabelValues("npm", checkIntegrity, "fail").Inc()
		f := verify.Finding{Check: checkIntegrity, Message: integrityMessage(err), Evidence: ev.Map()}
		// Bytes that are not what the registry published are never
		// served, not even after an admin's release.
		return "", h.hold(ctx, a, verify.Quarantine, append([]verify.Finding{f}, findings...), true)
	}
	h.o.Metrics.Verifications.WithLabelValues("npm", checkIntegrity, "pass").Inc()

	fields := facts(d.pk, v, published, hasTime)
	fields[fieldSigKeys] = sig
	provFindings, provFields, err := h.checkProvenance(ctx, a, v, hasher.Sum(npmsig.SHA512), published)
	if err != nil {
		return "", err
	}
	findings = append(findings, provFindings...)
	for k, val := range provFields {
		fields[k] = val
	}
	fields[fieldIntegrity] = v.Dist.Integrity
	if v.Dist.Shasum != "" {
		fields[fieldShasum] = v.Dist.Shasum
	}
	if _, changes, err := h.o.Meta.Observe(ctx, a.Key(), fields); err != nil {
		return "", err
	} else {
		for _, c := range changes {
			if c.Field == fieldIntegrity || c.Field == fieldShasum {
				findings = append(findings, verify.Finding{
					Check:    checkChanged,
					Message:  fmt.Sprintf("%s differs from what Airlock first saw (npm never allows a version to be republished)", c.Field),
					Evidence: map[string]string{"field": c.Field, "first": c.First, "now": c.Now},
				})
			}
		}
	}
	verdict := verify.Quarantine
	var warnings []verify.Finding
	if h.checksOn() {
		o := h.checkPublish(ctx, d, a, provFields)
		findings = append(findings, o.Holding...)
		warnings = o.Warnings
		if o.Verdict == verify.Deny {
			verdict = verify.Deny
		}
		for _, w := range warnings {
			h.o.Log.Warn("finding", "artifact", a.String(), "check", w.Check, "finding", w.Message, "dry_run", o.DryRun)
		}
	}
	if len(findings) > 0 {
		if err := h.hold(ctx, a, verdict, findings, false); err != nil {
			return "", err
		}
	}
	if err := s.Commit(ctx, s.Digest()); err != nil {
		return "", fmt.Errorf("storing tarball of %s: %w", a, err)
	}
	if _, _, err := h.o.Meta.Observe(ctx, a.Key(), map[string]string{fieldTarball: s.Digest()}); err != nil {
		return "", err
	}
	st, err := h.status(ctx, a)
	if err != nil {
		return "", err
	}
	if st.Decided.IsZero() && st.Quarantine == nil {
		// Warnings annotate the decision: served, and on record.
		if _, err := h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: verify.Allow, Findings: warnings}, actor); err != nil {
			return "", err
		}
	}
	if st.Hidden() { // held or blocked while it downloaded
		return "", refusal(a.String(), st)
	}
	return s.Digest(), nil
}

func integrityMessage(err error) string {
	switch {
	case errors.Is(err, npmsig.ErrNoIntegrity):
		return "the version has neither dist.integrity nor dist.shasum, so its tarball cannot be checked"
	case errors.Is(err, npmsig.ErrBadIntegrity):
		return "dist.integrity does not parse: " + err.Error()
	}
	return "the tarball's digest differs from dist.integrity: the bytes are not what was published"
}

// hold quarantines a with its findings and returns the refusal to send,
// or nil when an admin has released the version before and the bytes may
// still be served (never when fatal: they failed integrity).
func (h *Handler) hold(ctx context.Context, a verify.Artifact, verdict verify.Verdict, fs []verify.Finding, fatal bool) error {
	if st, err := h.status(ctx, a); err == nil && st.Hidden() && st.Quarantine != nil && coversAll(st.Quarantine.Findings, fs) {
		return refusal(a.String(), st) // asked again: no new audit event
	}
	st, err := h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: verdict, Findings: fs}, actor)
	if err != nil {
		return fmt.Errorf("recording quarantine of %s: %w", a, err)
	}
	id := ""
	if st.Quarantine != nil {
		id = st.Quarantine.ID
	}
	h.o.Metrics.Quarantines.WithLabelValues("npm").Inc()
	h.o.Log.Warn("quarantined", "artifact", a.String(), "check", fs[0].Check, "quarantine_id", id, "finding", fs[0].Message, "findings", len(fs))
	if st.Hidden() {
		return refusal(a.String(), st)
	}
	if fatal {
		return errorf(http.StatusForbidden, "airlock: %s failed verification again after its release (%s): %s", a, id, oneLine(fs[0].Message))
	}
	return nil
}

func coversAll(have, want []verify.Finding) bool {
	for _, f := range want {
		found := false
		for _, g := range have {
			if g.Check == f.Check && g.Message == f.Message {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
