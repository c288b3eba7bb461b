package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
)

// CIRecords stores what the organisation's CI built.
type CIRecords interface {
	// Put stores a record (see cirecord.Records.Put) and re-evaluates
	// the holds it may lift.
	Put(ctx context.Context, r cirecord.Record) (CIRecordResult, error)
	Get(ctx context.Context, a verify.Artifact) (cirecord.Record, error)
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
	res, err := a.ci.Put(r.Context(), rec)
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
		a.appendAudit(r, cache.AuditEvent{Actor: tok.actor(), Action: ActionCIRecordConflict, Artifact: rec.Artifact.String(),
			Reason: "a different digest for an artifact CI recorded", Detail: fmt.Sprintf("recorded %s, proposed %s", conflict.Existing.Digest, rec.Digest)})
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil && res.Record.Digest == "":
		a.internal(w, r, err)
		return
	}
	if res.Created {
		a.log.Info("CI record stored", "actor", tok.actor(), "artifact", res.Record.Artifact.String(), "digest", res.Record.Digest, "source", res.Record.Source)
		a.appendAudit(r, cache.AuditEvent{Actor: tok.actor(), Action: ActionCIRecord, Artifact: res.Record.Artifact.String(),
			Detail: fmt.Sprintf("digest %s, source %s, builder %s, commit %s", res.Record.Digest, res.Record.Source, orNone(res.Record.Builder), orNone(res.Record.Commit))})
	}
	if err != nil {
		// Stored, but its holds were not all re-evaluated: a retry does it.
		a.internal(w, r, fmt.Errorf("re-evaluating holds after a CI record: %w", err))
		return
	}
	status := http.StatusOK
	if res.Created {
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
func (a *api) appendAudit(r *http.Request, e cache.AuditEvent) {
	if _, err := a.meta.AppendAudit(r.Context(), e); err != nil {
		a.log.Error("admin API: audit append failed", "action", e.Action, "artifact", e.Artifact, "err", err)
	}
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
