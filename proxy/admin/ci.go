package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// CIRecords stores what the organisation's CI built.
type CIRecords interface {
	// Put stores a record and reports whether it is new (see
	// cirecord.Records.Put).
	Put(ctx context.Context, r cirecord.Record) (cirecord.Record, bool, error)
	Get(ctx context.Context, a verify.Artifact) (cirecord.Record, error)
	// Lift re-evaluates the holds of a's package now that its record is
	// stored, returning the quarantine ids it released.
	Lift(ctx context.Context, a verify.Artifact) ([]string, error)
}

// WithCIRecords answers /ci/records.
func WithCIRecords(c CIRecords) Option {
	return func(a *api) { a.ci = c }
}

// Audit actions of the CI records API.
const (
	ActionCIRecord         = "ci-record"
	ActionCIRecordConflict = "ci-record-conflict"
)

type (
	// CIRecordRequest is the body of POST /admin/api/v1/ci/records: the
	// artifact CI built and the digest it produced, in the form its
	// upstream serves it (npm "sha512-<base64>", go "h1:<base64>", oci
	// "sha256:<hex>" of the manifest or index a tag resolves to).
	CIRecordRequest struct {
		Ecosystem verify.Ecosystem `json:"ecosystem"`
		Name      string           `json:"name"`
		Version   string           `json:"version"`
		Digest    string           `json:"digest"`
		Builder   string           `json:"builder,omitempty"`
		Commit    string           `json:"commit,omitempty"`
		// Source is how CI produced the record: "api" (the default),
		// "goreleaser" or "in-toto" (airlock ci import).
		Source string `json:"source,omitempty"`
	}
	// CIRecordResult answers it: the stored record, whether this request
	// created it (false: the same digest was recorded before), and the
	// quarantine records it released.
	CIRecordResult struct {
		Record   cirecord.Record `json:"record"`
		Created  bool            `json:"created"`
		Released []string        `json:"released,omitempty"`
	}
)

func (a *api) putCIRecord(w http.ResponseWriter, r *http.Request, tok Token) {
	if a.ci == nil {
		writeError(w, http.StatusNotImplemented, "this server keeps no CI records")
		return
	}
	var req CIRecordRequest
	if !decodeBody(w, r, &req) {
		return
	}
	switch req.Source {
	case "":
		req.Source = cirecord.SourceAPI
	case cirecord.SourceAPI, cirecord.SourceGoreleaser, cirecord.SourceInToto:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("source %q: want %s, %s or %s", req.Source, cirecord.SourceAPI, cirecord.SourceGoreleaser, cirecord.SourceInToto))
		return
	}
	rec := cirecord.Record{
		Artifact: verify.Artifact{Ecosystem: req.Ecosystem, Name: req.Name, Version: req.Version},
		Digest:   strings.TrimSpace(req.Digest), Builder: req.Builder, Commit: req.Commit, Source: req.Source,
	}
	if len(tok.Namespaces) > 0 && !slices.ContainsFunc(tok.Namespaces, func(ns string) bool { return policy.Match(ns, rec.Artifact) }) {
		a.log.Warn("CI record outside the token's namespaces refused", "actor", tok.actor(), "artifact", rec.Artifact.String())
		writeError(w, http.StatusForbidden, fmt.Sprintf("token %s may record CI builds of %s only, not %s", tok.Name, strings.Join(tok.Namespaces, ", "), rec.Artifact))
		return
	}
	// Once stored, the record's audit event and the holds it lifts must
	// not depend on the client waiting for them.
	ctx := context.WithoutCancel(r.Context())
	stored, created, err := a.ci.Put(ctx, rec)
	var conflict *cirecord.ConflictError
	switch {
	case errors.Is(err, cirecord.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.As(err, &conflict):
		// Either CI rebuilt a released version or someone tries to
		// replace what CI built: an alert for a human either way.
		a.log.Error("conflicting CI record refused", "actor", tok.actor(), "artifact", rec.Artifact.String(),
			"recorded", conflict.Existing.Digest, "proposed", rec.Digest)
		a.appendAudit(ctx, cache.AuditEvent{Actor: tok.actor(), Action: ActionCIRecordConflict, Artifact: rec.Artifact.String(),
			Reason: "a different digest for an artifact CI recorded", Detail: fmt.Sprintf("recorded %s, proposed %s", conflict.Existing.Digest, rec.Digest)})
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		a.internal(w, r, err)
		return
	}
	res := CIRecordResult{Record: stored, Created: created}
	if created {
		// Audited before the holds it lifts, so the log reads in order:
		// who recorded what, then what that released.
		a.log.Info("CI record stored", "actor", tok.actor(), "artifact", stored.Artifact.String(), "digest", stored.Digest, "source", stored.Source)
		a.appendAudit(ctx, cache.AuditEvent{Actor: tok.actor(), Action: ActionCIRecord, Artifact: stored.Artifact.String(),
			Detail: fmt.Sprintf("digest %s, source %s, builder %s, commit %s", stored.Digest, stored.Source, orNone(stored.Builder), orNone(stored.Commit))})
	}
	if res.Released, err = a.ci.Lift(ctx, stored.Artifact); err != nil {
		// Stored, but its holds were not all re-evaluated: a retry does it.
		a.internal(w, r, fmt.Errorf("re-evaluating holds after a CI record: %w", err))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, res)
}

func (a *api) getCIRecord(w http.ResponseWriter, r *http.Request, _ Token) {
	if a.ci == nil {
		writeError(w, http.StatusNotImplemented, "this server keeps no CI records")
		return
	}
	art, err := verify.ParseArtifact(mux.Vars(r)["artifact"])
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rec, err := a.ci.Get(r.Context(), art)
	switch {
	case errors.Is(err, cirecord.ErrNotFound):
		writeError(w, http.StatusNotFound, "no CI record of "+art.String())
	case err != nil:
		a.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}

// appendAudit records an event; the request is answered either way, as
// the event's facts are in the server log too.
func (a *api) appendAudit(ctx context.Context, e cache.AuditEvent) {
	if _, err := a.meta.AppendAudit(ctx, e); err != nil {
		a.log.Error("admin API: audit append failed", "action", e.Action, "artifact", e.Artifact, "err", err)
	}
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
