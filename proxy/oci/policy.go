package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// Finding checks recorded by the front.
const (
	checkSignature = "signature"
	checkTagMoved  = "tag-moved"
	checkMismatch  = "digest-mismatch"
)

// admission is the record of a manifest's first admission to a
// repository, written after its references were recorded.
type admission struct {
	MediaType string    `json:"media_type"`
	Via       string    `json:"via"`
	Time      time.Time `json:"time"`
}

// verdict is a cached signature verification of one digest under one
// policy (positive or negative), so a digest is verified once.
type verdict struct {
	Verified bool             `json:"verified"`
	Findings []verify.Finding `json:"findings,omitempty"`
	Signers  []string         `json:"signers,omitempty"`
	Time     time.Time        `json:"time"`
	SignedAt time.Time        `json:"signed_at,omitzero"`
}

// admit returns manifest d of t's repository when policy lets it through,
// and otherwise the refusal (403 DENIED naming the quarantine record).
// The decision is made again on every request from what is stored (a
// release, a block or a new policy takes effect at once); only the
// cryptography is cached.
func (h *Handler) admit(ctx context.Context, t target, d string) (*manifest, error) {
	art := t.digestArtifact(d)
	st, err := h.status(ctx, art)
	if err != nil {
		return nil, err
	}
	if st.Hidden() {
		if !h.comeOfAge(ctx, st.Quarantine) {
			return nil, refusal(art, st)
		}
		if st, err = h.status(ctx, art); err != nil {
			return nil, err
		}
	}
	m, err := h.manifest(ctx, t, d)
	if err != nil {
		return nil, err
	}
	ok, via, findings, err := h.allowed(ctx, t, m, st)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, h.hold(ctx, art, findings)
	}
	if err := h.recordAdmission(ctx, t, m, via, st); err != nil {
		return nil, err
	}
	return m, nil
}

// allowed decides a manifest that is neither held nor blocked.
func (h *Handler) allowed(ctx context.Context, t target, m *manifest, st cache.Status) (bool, string, []verify.Finding, error) {
	if released(st) {
		return true, "released by " + st.Quarantine.UpdatedBy + " (" + st.Quarantine.ID + ")", nil, nil
	}
	if subj, ok, err := h.materialOf(ctx, t, m); err != nil || ok {
		return ok, "verification material for " + subj, nil, err
	}
	if !t.pol.Require {
		return true, "no signature required by policy", nil, nil
	}
	if p, ok, err := h.allowedParent(ctx, t, m.digest, 0); err != nil || ok {
		return ok, "listed by allowed index " + p, nil, err
	}
	v, err := h.verify(ctx, t, m.digest)
	if err != nil {
		return false, "", nil, err
	}
	if v.Verified {
		a := t.digestArtifact(m.digest)
		var holding []verify.Finding
		if f := h.signedYoung(a, v.SignedAt); f != nil {
			holding = append(holding, *f)
		}
		// Signers are judged once, when the image is first admitted.
		admitted := !st.Decided.IsZero() && st.Decision.Verdict == verify.Allow
		var f *verify.Finding
		if !admitted {
			if f, err = h.newSigner(ctx, t, v.Signers); err != nil {
				return false, "", nil, err
			}
		}
		if f != nil {
			if o := h.o.Checks.For(a).Decide([]verify.Finding{*f}); o.Verdict != verify.Allow {
				holding = append(holding, *f)
			} else {
				h.o.Log.Warn("finding", "artifact", a.String(), "check", f.Check, "finding", f.Message, "dry_run", o.DryRun)
			}
		}
		if len(holding) > 0 {
			return false, "", holding, nil
		}
		return true, "signature verified (" + strings.Join(v.Signers, ", ") + ")", nil, nil
	}
	return false, "", v.Findings, nil
}

// allowedCached is allowed for a manifest admitted before, from stored
// facts only: no fetch, no cryptography. It decides whether an index lets
// its children through.
func (h *Handler) allowedCached(ctx context.Context, t target, d string, depth int) (bool, error) {
	st, err := h.status(ctx, t.digestArtifact(d))
	if err != nil || st.Hidden() {
		return false, err
	}
	if released(st) || !t.pol.Require {
		return true, nil
	}
	var v verdict
	if ok, err := h.getJSON(ctx, bucketVerdict, verdictKey(d, t.pol), &v); err != nil || (ok && v.Verified) {
		return ok && v.Verified, err
	}
	// Verification material is not counted: an index admitted as material
	// must not let a child through as anything but material itself
	// (which materialOf checks, refusing container filesystems).
	_, ok, err := h.allowedParent(ctx, t, d, depth+1)
	return ok, err
}

// allowedParent finds an allowed index that lists d. Depth bounds nested
// indexes (and any cycle a hostile upstream builds).
func (h *Handler) allowedParent(ctx context.Context, t target, d string, depth int) (string, bool, error) {
	if depth > 2 {
		return "", false, nil
	}
	parents, err := h.links(ctx, bucketParent, t.key+"@"+d)
	if err != nil {
		return "", false, err
	}
	for _, p := range parents {
		ok, err := h.allowedCached(ctx, t, p, depth)
		if err != nil || ok {
			return p, ok, err
		}
	}
	return "", false, nil
}

// materialOf reports whether m is verification material (a signature,
// attestation or SBOM) for an admitted subject: reached through a
// sha256-<hex>.sig/.att/.sbom tag or listed by the referrers of that
// subject. Such a manifest needs no signature itself, but it must not
// carry a container filesystem, and a subject it names must be that one.
func (h *Handler) materialOf(ctx context.Context, t target, m *manifest) (string, bool, error) {
	var subj string
	if ok, err := h.getJSON(ctx, bucketMaterial, t.key+"@"+m.digest, &subj); err != nil || !ok {
		return "", false, err
	}
	if m.info.runnable || (m.info.subject != "" && m.info.subject != subj) {
		return "", false, nil
	}
	st, err := h.status(ctx, t.digestArtifact(subj))
	if err != nil || st.Hidden() {
		return "", false, err
	}
	return subj, true, nil
}

func (h *Handler) markMaterial(ctx context.Context, t target, d, subject string) error {
	return h.update(ctx, bucketMaterial, t.key+"@"+d, func(old []byte) ([]byte, bool, error) {
		if old != nil {
			return nil, false, nil // the first subject stays
		}
		b, err := json.Marshal(subject)
		return b, true, err
	})
}

func verdictKey(d string, p Policy) string {
	id := ""
	if p.Signature != nil {
		id = p.Signature.ID()
	}
	return d + " " + id
}

// verify returns the signature verdict on d under t's policy, from the
// cache or from the verifier. A verifier error is not a verdict: it is
// 503, and nothing is cached or quarantined.
func (h *Handler) verify(ctx context.Context, t target, d string) (verdict, error) {
	if t.pol.Signature == nil || h.o.Verifier == nil {
		return verdict{}, errorf(http.StatusServiceUnavailable, codeUnavailable, "airlock: %s requires a signature but no verifier or trust policy is configured for it", t.key)
	}
	key := verdictKey(d, t.pol)
	var v verdict
	if ok, err := h.getJSON(ctx, bucketVerdict, key, &v); err != nil || ok {
		return v, err
	}
	r, err, _ := h.flight.Do("verify\x00"+t.key+"\x00"+key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.o.Timeout)
		defer cancel()
		ref := t.up.reg.Repo(t.repo).Digest(d)
		res, err := h.o.Verifier.Verify(ctx, ref, t.pol.Signature, t.up.remoteOptions(ctx)...)
		if err != nil {
			h.o.Metrics.Verifications.WithLabelValues("oci", checkSignature, "error").Inc()
			h.o.Log.Warn("signature verification unavailable", "repo", t.key, "digest", d, "err", err)
			return nil, errorf(http.StatusServiceUnavailable, codeUnavailable, "airlock: could not verify the signatures of %s@%s: %s", t.key, d, oneLine(err.Error()))
		}
		v := verdict{Verified: res.Verified, Findings: res.Findings, Signers: res.Signers, Time: h.now().UTC(), SignedAt: res.SignedAt}
		if !v.Verified && len(v.Findings) == 0 {
			v.Findings = []verify.Finding{{Check: checkSignature, Message: "no valid signature under policy " + t.pol.Signature.ID(),
				Evidence: map[string]string{"policy": t.pol.Signature.ID()}}}
		}
		result := "fail"
		if v.Verified {
			result = "pass"
		}
		h.o.Metrics.Verifications.WithLabelValues("oci", checkSignature, result).Inc()
		h.o.Log.Info("signature verification", "repo", t.key, "digest", d, "verified", v.Verified, "signers", v.Signers, "policy", t.pol.Signature.ID())
		return v, h.putJSON(ctx, bucketVerdict, key, v)
	})
	if err != nil {
		return verdict{}, err
	}
	return r.(verdict), nil
}

// hold quarantines a and returns the refusal to send.
func (h *Handler) hold(ctx context.Context, a verify.Artifact, findings []verify.Finding) error {
	st, err := h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: verify.Quarantine, Findings: findings}, actor)
	if err != nil {
		return fmt.Errorf("recording quarantine of %s: %w", a, err)
	}
	h.o.Metrics.Quarantines.WithLabelValues("oci").Inc()
	id := ""
	if st.Quarantine != nil {
		id = st.Quarantine.ID
	}
	summary := ""
	if len(findings) > 0 {
		summary = findings[0].Check + ": " + findings[0].Message
	}
	h.o.Log.Warn("quarantined", "artifact", a.String(), "quarantine_id", id, "finding", summary)
	if !st.Hidden() {
		// Released by an admin in the meantime: the release stands, but
		// this request was decided before it.
		return errorf(http.StatusForbidden, codeDenied, "airlock: %s failed verification (%s); it was released meanwhile, retry", a, id)
	}
	return refusal(a, st)
}

// addFinding adds evidence to a held record, once.
func (h *Handler) addFinding(ctx context.Context, a verify.Artifact, f verify.Finding) error {
	st, err := h.status(ctx, a)
	if err != nil || st.Quarantine == nil || st.Quarantine.State != cache.Held {
		return err
	}
	if slices.ContainsFunc(st.Quarantine.Findings, func(g verify.Finding) bool { return g.Check == f.Check && g.Message == f.Message }) {
		return nil
	}
	_, err = h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: verify.Quarantine, Findings: []verify.Finding{f}}, actor)
	return err
}

// recordAdmission records, on a manifest's first admission to a
// repository, what it references (so its blobs and children become
// servable), the allow decision and the observation.
func (h *Handler) recordAdmission(ctx context.Context, t target, m *manifest, via string, st cache.Status) error {
	akey := t.key + "@" + m.digest
	var rec admission
	if ok, err := h.getJSON(ctx, bucketAdmitted, akey, &rec); err != nil || ok {
		return err
	}
	_, err, _ := h.flight.Do("admit\x00"+akey, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		subj, material, err := h.materialOf(ctx, t, m)
		if err != nil {
			return nil, err
		}
		if err := h.linkBlobs(ctx, t.key, m.info.blobs, m.digest); err != nil {
			return nil, err
		}
		parents := make([]string, len(m.info.children))
		for i, c := range m.info.children {
			parents[i] = t.key + "@" + c.Digest
		}
		if err := h.linkAll(ctx, bucketParent, parents, m.digest); err != nil {
			return nil, err
		}
		for _, c := range m.info.children {
			if material {
				if err := h.markMaterial(ctx, t, c.Digest, subj); err != nil {
					return nil, err
				}
			}
		}
		a := t.digestArtifact(m.digest)
		// Signatures and attestations are not artifacts people deploy;
		// deciding each would only fill the audit log.
		if !material && st.Decided.IsZero() && st.Quarantine == nil {
			d := verify.Decision{Verdict: verify.Allow, Findings: []verify.Finding{{Check: "admission", Message: via}}}
			if _, err := h.o.Meta.Decide(ctx, a, d, actor); err != nil {
				return nil, err
			}
		}
		// The signers of an admitted image (verified, or released by an
		// admin over a new-publisher finding) are the repository's usual
		// ones from now on.
		if !material && t.pol.Signature != nil {
			var v verdict
			if ok, err := h.getJSON(ctx, bucketVerdict, verdictKey(m.digest, t.pol), &v); err != nil {
				return nil, err
			} else if ok && v.Verified {
				if err := h.rememberSigners(ctx, t, v.Signers); err != nil {
					return nil, err
				}
			}
		}
		fields := map[string]string{"media_type": m.info.mediaType, "size": fmt.Sprint(len(m.body)), "admitted": via}
		if _, _, err := h.o.Meta.Observe(ctx, a.Key(), fields); err != nil {
			return nil, err
		}
		h.o.Log.Info("admitted", "artifact", a.String(), "media_type", m.info.mediaType, "via", via,
			"blobs", len(m.info.blobs), "children", len(m.info.children))
		return nil, h.putJSON(ctx, bucketAdmitted, akey, admission{MediaType: m.info.mediaType, Via: via, Time: h.now().UTC()})
	})
	return err
}

// manifest returns manifest d from the store or, on a miss, from t's
// upstream, checked against d and stored, once for concurrent callers.
func (h *Handler) manifest(ctx context.Context, t target, d string) (*manifest, error) {
	if m, ok, err := h.loadManifest(ctx, d); err != nil || ok {
		if ok {
			h.o.Metrics.CacheHits.WithLabelValues("oci", "manifest").Inc()
		}
		return m, err
	}
	h.o.Metrics.CacheMisses.WithLabelValues("oci", "manifest").Inc()
	r, err, _ := h.flight.Do("manifest\x00"+t.key+"@"+d, func() (any, error) {
		ctx := context.WithoutCancel(ctx)
		f, err := t.up.getManifest(ctx, t.repo, d)
		if err != nil {
			return nil, h.upstreamFailure(t.up, err, "manifest "+t.key+"@"+d, codeManifestUnknown)
		}
		return h.keep(ctx, t, d, f)
	})
	if err != nil {
		return nil, err
	}
	return r.(*manifest), nil
}

// keep checks fetched bytes against the digest they were asked for and
// stores them. A mismatch is recorded as an observation and nothing is
// stored.
func (h *Handler) keep(ctx context.Context, t target, d string, f *fetched) (*manifest, error) {
	if f.digest != d {
		a := t.digestArtifact(d)
		h.o.Log.Warn("upstream manifest does not match its digest", "artifact", a.String(), "got", f.digest)
		h.o.Meta.Observe(ctx, a.Key(), map[string]string{checkMismatch + " " + f.digest: "upstream sent these bytes for " + d})
		return nil, errorf(http.StatusBadGateway, codeDigestInvalid, "airlock: upstream %s sent a manifest hashing to %s for %s; nothing was stored", t.up.Name, f.digest, d)
	}
	info, err := parseManifest(f.body, f.ctype)
	if err != nil {
		return nil, errorf(http.StatusBadGateway, codeManifestInvalid, "airlock: upstream manifest %s@%s: %s", t.key, d, err)
	}
	m := &manifest{digest: d, body: f.body, info: info}
	if err := h.storeManifest(ctx, m); err != nil {
		return nil, err
	}
	h.o.Log.Info("fetched manifest", "repo", t.key, "digest", d, "media_type", info.mediaType, "size", len(f.body))
	return m, nil
}
