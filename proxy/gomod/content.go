package gomod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/zip"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/gosum"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// Observation fields of a Go version. Each is recorded the first time it
// is seen and never overwritten, so a later difference is evidence.
const (
	fieldModSHA   = "mod_sha256"
	fieldModH1    = "mod_h1"
	fieldZipSHA   = "zip_sha256"
	fieldZipH1    = "zip_h1"
	fieldInfoSHA  = "info_sha256"
	fieldInfoTime = "info_time"
	fieldRecord   = "sumdb_record"
	fieldTree     = "sumdb_tree_size"
)

// checkMod names the finding of a go.mod that fails the checksum database.
const checkMod = "sumdb-go.mod"

// status returns the stored decision, or a zero Status when none. A
// version a known-malicious feed names is denied here, on its first
// request, unless an admin released it over the finding.
func (h *Handler) status(ctx context.Context, a verify.Artifact) (cache.Status, error) {
	st, err := h.o.Meta.Status(ctx, a)
	if errors.Is(err, cache.ErrNotFound) {
		st, err = cache.Status{}, nil
	}
	if err != nil || st.Hidden() || st.Quarantine != nil {
		return st, err
	}
	if fs := h.o.Malicious(a); len(fs) > 0 {
		st, err = h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: verify.Deny, Findings: fs}, actor)
		if err == nil {
			h.o.Metrics.Quarantines.WithLabelValues("go").Inc()
			h.o.Log.Warn("known malicious: denied", "artifact", a.String(), "record", fs[0].Evidence["id"])
		}
	}
	return st, err
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
	// Versions are immutable; a go command or CDN may keep them.
	w.Header().Set("Cache-Control", "public, max-age=604800, immutable")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// flight runs fn once for concurrent callers with the same key, detached
// from any one caller's cancellation: a client that goes away must not
// fail the download for the others waiting on it.
func (h *Handler) once(ctx context.Context, key string, fn func(context.Context) (string, error)) (string, error) {
	v, err, _ := h.flight.Do(key, func() (any, error) {
		return fn(context.WithoutCancel(ctx))
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (h *Handler) serveMod(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	a := req.artifact(req.version)
	st, err := h.status(ctx, a)
	if err != nil {
		return err
	}
	if st.Hidden() && st.Quarantine != nil && slices.ContainsFunc(st.Quarantine.Findings, func(f verify.Finding) bool { return f.Check == checkMod }) {
		return refusal(a.String(), st) // its go.mod itself failed: nothing to fetch again
	}
	// A held version's checksum-verified go.mod is still served: minimal
	// version selection reads go.mod files of versions it never builds,
	// and a go.mod runs no code.
	return h.serveContent(ctx, w, r, a, "mod", fieldModSHA, "text/plain; charset=utf-8",
		func(ctx context.Context) (string, error) { return h.fetchMod(ctx, req, a, true) })
}

// serveContent serves the blob an observation field names, or on a miss
// fetches and verifies it once for all concurrent callers, then serves it.
func (h *Handler) serveContent(ctx context.Context, w http.ResponseWriter, r *http.Request, a verify.Artifact,
	kind, field, ctype string, fetch func(context.Context) (string, error)) error {
	if f, d, ok := h.cachedBlob(ctx, a.Key(), field); ok {
		h.o.Metrics.CacheHits.WithLabelValues("go", kind).Inc()
		serveBlob(w, r, f, d, ctype)
		return nil
	}
	h.o.Metrics.CacheMisses.WithLabelValues("go", kind).Inc()
	d, err := h.once(ctx, kind+"\x00"+a.Key(), fetch)
	if err != nil {
		return err
	}
	f, _, err := h.o.Blobs.Open(ctx, d)
	if err != nil {
		return fmt.Errorf("opening cached %s: %w", kind, err)
	}
	serveBlob(w, r, f, d, ctype)
	return nil
}

// fetchMod fetches, verifies and caches a go.mod; with readAhead, the
// go.mod files it requires are then fetched in the background.
func (h *Handler) fetchMod(ctx context.Context, req request, a verify.Artifact, readAhead bool) (string, error) {
	_, private := h.private(req.path)
	if !private {
		h.o.Verifier.Prefetch(req.path, req.version)
	}
	data, err := h.get(ctx, req.epath+"/@v/"+req.ever+".mod", h.o.MaxMod)
	if err != nil {
		return "", err
	}
	fields := map[string]string{}
	if rule, ok := h.private(req.path); ok {
		sum, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return "", err
		}
		fields[fieldModH1] = sum
		if err := h.admitPrivate(ctx, a, rule, "go.mod"); err != nil {
			return "", err
		}
	} else {
		ev, err := h.o.Verifier.CheckMod(ctx, req.path, req.version, data)
		if err := h.verdict(ctx, a, checkMod, ev, err); err != nil {
			return "", err
		}
		fields[fieldModH1], fields[fieldRecord], fields[fieldTree] = ev.Got, strconv.FormatInt(ev.RecordID, 10), strconv.FormatInt(ev.TreeSize, 10)
	}
	d, err := h.commit(ctx, func(w io.Writer) error { _, err := w.Write(data); return err }, nil)
	if err != nil {
		return "", err
	}
	fields[fieldModSHA] = d
	if err := h.observe(ctx, a, fields); err != nil {
		return "", err
	}
	if readAhead && !private {
		h.ahead.add(ctx, requiresOf(data))
	}
	return d, nil
}

func (h *Handler) serveZip(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	a := req.artifact(req.version)
	st, err := h.status(ctx, a)
	if err != nil {
		return err
	}
	if st.Hidden() {
		return refusal(a.String(), st)
	}
	if st.Quarantine == nil { // an admin's release stands
		if err := h.youngRefusal(a, h.cooldown(ctx, req, req.version, true)); err != nil {
			return err
		}
		// A cached zip of a CI namespace is checked again: records come
		// and go with releases.
		if obs, err := h.o.Meta.Observation(ctx, a.Key()); err == nil && obs.Fields[fieldZipH1] != "" {
			if err := h.ciCheck(ctx, a, obs.Fields[fieldZipH1]); err != nil {
				return err
			}
		}
	}
	return h.serveContent(ctx, w, r, a, "zip", fieldZipSHA, "application/zip",
		func(ctx context.Context) (string, error) { return h.fetchZip(ctx, req, a) })
}

func (h *Handler) fetchZip(ctx context.Context, req request, a verify.Artifact) (string, error) {
	if _, private := h.private(req.path); !private {
		h.o.Verifier.Prefetch(req.path, req.version)
	}
	var fields map[string]string
	framed := false
	d, err := h.commit(ctx, func(w io.Writer) error {
		var err error
		_, framed, err = h.copyTo(ctx, req.epath+"/@v/"+req.ever+".zip", h.o.MaxZip, w)
		return err
	}, func(file string) error {
		var err error
		fields, err = h.checkZip(ctx, req, a, file, framed)
		return err
	})
	if err != nil {
		return "", err
	}
	if err := h.ciCheck(ctx, a, fields[fieldZipH1]); err != nil {
		return "", err
	}
	fields[fieldZipSHA] = d
	if err := h.observe(ctx, a, fields); err != nil {
		return "", err
	}
	// The first verified download is the decision to allow; later ones
	// change nothing and so write no audit event.
	st, err := h.status(ctx, a)
	if err != nil {
		return "", err
	}
	if st.Decided.IsZero() && st.Quarantine == nil {
		if _, err := h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: verify.Allow}, actor); err != nil {
			return "", err
		}
	}
	// The version may have been held while its zip was downloading (its
	// go.mod failed, say): the zip is cached, but not served.
	if st.Hidden() {
		return "", refusal(a.String(), st)
	}
	return d, nil
}

// checkZip verifies a downloaded zip before it may be committed.
func (h *Handler) checkZip(ctx context.Context, req request, a verify.Artifact, file string, framed bool) (map[string]string, error) {
	badZip := func(err error) error {
		if !framed {
			// Possibly a connection cut short; not evidence against
			// the version.
			return errorf(http.StatusBadGateway, "airlock: upstream zip of %s is malformed and had no declared length (truncated?): %s", a, oneLine(err.Error()))
		}
		return h.hold(ctx, a, verify.Finding{Check: "invalid-zip", Message: "module zip is malformed: " + err.Error()})
	}
	if rule, ok := h.private(req.path); ok {
		if _, err := zip.CheckZip(module.Version{Path: req.path, Version: req.version}, file); err != nil {
			return nil, badZip(err)
		}
		sum, err := dirhash.HashZip(file, dirhash.Hash1)
		if err != nil {
			return nil, err
		}
		if err := h.admitPrivate(ctx, a, rule, "zip"); err != nil {
			return nil, err
		}
		return map[string]string{fieldZipH1: sum}, nil
	}
	ev, err := h.o.Verifier.CheckZip(ctx, req.path, req.version, file)
	if errors.Is(err, gosum.ErrBadZip) {
		return nil, badZip(err)
	}
	if err := h.verdict(ctx, a, "sumdb-zip", ev, err); err != nil {
		return nil, err
	}
	return map[string]string{fieldZipH1: ev.Got, fieldRecord: strconv.FormatInt(ev.RecordID, 10), fieldTree: strconv.FormatInt(ev.TreeSize, 10)}, nil
}

// verdict turns a checksum check into nil (pass), a quarantine (mismatch)
// or an error that refuses without holding (database unreachable).
func (h *Handler) verdict(ctx context.Context, a verify.Artifact, check string, ev gosum.Evidence, err error) error {
	switch {
	case err == nil:
		h.o.Metrics.Verifications.WithLabelValues("go", check, "pass").Inc()
		h.sampleTree(ctx, ev.TreeSize)
		return nil
	case errors.Is(err, gosum.ErrMismatch):
		h.o.Metrics.Verifications.WithLabelValues("go", check, "fail").Inc()
		return h.hold(ctx, a, verify.Finding{Check: check, Message: err.Error(), Evidence: ev.Map()})
	default:
		h.o.Metrics.Verifications.WithLabelValues("go", check, "error").Inc()
		return err
	}
}

// hold quarantines a and returns the refusal to send. A version already
// held for this very finding is refused as it stands: clients asking again
// must not grow the audit log.
func (h *Handler) hold(ctx context.Context, a verify.Artifact, f verify.Finding) error {
	if st, err := h.status(ctx, a); err == nil && st.Hidden() && st.Quarantine != nil && hasFinding(st.Quarantine.Findings, f) {
		return refusal(a.String(), st)
	}
	st, err := h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: verify.Quarantine, Findings: []verify.Finding{f}}, actor)
	if err != nil {
		return fmt.Errorf("recording quarantine of %s: %w", a, err)
	}
	h.o.Metrics.Quarantines.WithLabelValues("go").Inc()
	id := ""
	if st.Quarantine != nil {
		id = st.Quarantine.ID
	}
	h.o.Log.Warn("quarantined", "artifact", a.String(), "check", f.Check, "quarantine_id", id, "finding", f.Message)
	if !st.Hidden() {
		// Released by an admin before: the hold is recorded as evidence,
		// but the admin's release stands. The bytes are still refused
		// here, since they failed verification and may not be cached.
		return errorf(http.StatusForbidden, "airlock: %s failed verification again after its release (%s): %s", a, id, oneLine(f.Message))
	}
	return refusal(a.String(), st)
}

// admitPrivate applies the configured policy to a module outside the
// checksum database.
func (h *Handler) admitPrivate(ctx context.Context, a verify.Artifact, rule Private, what string) error {
	f := verify.Finding{Check: "private-module", Message: fmt.Sprintf("outside the checksum database by configuration (go.private %q)", rule.Pattern)}
	switch rule.Verdict {
	case verify.Allow:
		h.o.Log.Info("serving private module without checksum database", "artifact", a.String(), "file", what, "pattern", rule.Pattern)
		return nil
	default:
		st, err := h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: rule.Verdict, Findings: []verify.Finding{f}}, actor)
		if err != nil {
			return err
		}
		if !st.Hidden() {
			return nil // released by an admin
		}
		return refusal(a.String(), st)
	}
}

// observe records what was seen; for content that is not vouched for by
// the checksum database a changed hash is an attack signal and holds it.
func (h *Handler) observe(ctx context.Context, a verify.Artifact, fields map[string]string) error {
	_, changes, err := h.o.Meta.Observe(ctx, a.Key(), fields)
	if err != nil {
		return err
	}
	for _, c := range changes {
		if c.Field != fieldModH1 && c.Field != fieldZipH1 {
			continue
		}
		return h.hold(ctx, a, verify.Finding{
			Check:    "content-changed",
			Message:  fmt.Sprintf("%s differs from what Airlock first saw", c.Field),
			Evidence: map[string]string{"field": c.Field, "first": c.First, "now": c.Now},
		})
	}
	return nil
}

// commit stages content written by fill, runs check on the staged file,
// and commits it under its own digest only when both succeed.
func (h *Handler) commit(ctx context.Context, fill func(io.Writer) error, check func(file string) error) (string, error) {
	s, err := h.o.Blobs.Stage(ctx)
	if err != nil {
		return "", err
	}
	defer s.Discard()
	if err := fill(s); err != nil {
		return "", err
	}
	if check != nil {
		if err := check(s.Name()); err != nil {
			return "", err
		}
	}
	d := s.Digest()
	if err := s.Commit(ctx, d); err != nil {
		return "", err
	}
	return d, nil
}

func hasFinding(fs []verify.Finding, f verify.Finding) bool {
	for _, g := range fs {
		if g.Check == f.Check && g.Message == f.Message {
			return true
		}
	}
	return false
}

// ciCheck holds a version of a namespace the policy declares built by the
// organisation's CI unless its zip hash is the one CI recorded. It returns
// the refusal, or nil (not a CI namespace, a match, or an admin's release).
func (h *Handler) ciCheck(ctx context.Context, a verify.Artifact, h1 string) error {
	e := h.o.Checks.For(a)
	if h.o.Checks.Mode == "" || !e.CI {
		return nil
	}
	if st, err := h.status(ctx, a); err != nil || (st.Quarantine != nil && st.Quarantine.State == cache.Released) {
		return err // an admin's release stands
	}
	f, err := h.o.CI(ctx, a, h1)
	if err != nil {
		f = &verify.Finding{Check: policy.CheckCIDigest, Message: "the CI records could not be read: " + oneLine(err.Error())}
	}
	if f == nil {
		return nil
	}
	if o := e.Decide([]verify.Finding{*f}); o.Verdict == verify.Allow {
		h.o.Log.Warn("finding", "artifact", a.String(), "check", f.Check, "finding", f.Message, "dry_run", o.DryRun)
		return nil
	}
	return h.hold(ctx, a, *f)
}
