package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// Audit page sizes.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

func (a *api) listQuarantine(w http.ResponseWriter, r *http.Request, _ Token) {
	q := r.URL.Query()
	var f cache.QuarantineFilter
	switch s := cache.State(q.Get("state")); s {
	case "", cache.Held, cache.Blocked, cache.Released:
		f.State = s
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown state %q (want held, blocked or released)", s))
		return
	}
	switch e := verify.Ecosystem(q.Get("ecosystem")); e {
	case "", verify.Go, verify.NPM, verify.OCI:
		f.Ecosystem = e
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown ecosystem %q (want go, npm or oci)", e))
		return
	}
	list, err := a.meta.Quarantines(r.Context(), f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if list == nil {
		list = []cache.Quarantine{} // "[]", not null, for clients that iterate
	}
	writeJSON(w, http.StatusOK, QuarantineList{Quarantines: list})
}

func (a *api) showQuarantine(w http.ResponseWriter, r *http.Request, _ Token) {
	id := mux.Vars(r)["id"]
	q, err := a.meta.Quarantine(r.Context(), id)
	if err != nil {
		a.storeError(w, r, err, "no quarantine record "+id)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

// checkKnownMalicious is the check whose findings need an override to
// release (verify/osv.Check).
const checkKnownMalicious = "known-malicious"

func (a *api) release(w http.ResponseWriter, r *http.Request, tok Token) {
	id := mux.Vars(r)["id"]
	var req ReleaseRequest
	if !decodeBody(w, r, &req) {
		return
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		writeError(w, http.StatusBadRequest, "a reason is required to release "+id)
		return
	}
	if !req.Override {
		cur, err := a.meta.Quarantine(r.Context(), id)
		if err != nil {
			a.storeError(w, r, err, "no quarantine record "+id)
			return
		}
		for _, f := range cur.Findings {
			if f.Check == checkKnownMalicious {
				writeError(w, http.StatusConflict, fmt.Sprintf("%s is known malicious (%s): releasing it needs an explicit override (airlock quarantine release %s --override --reason ...)", cur.Artifact, f.Message, id))
				return
			}
		}
	}
	q, err := a.meta.Release(r.Context(), id, tok.actor(), reason)
	if errors.Is(err, cache.ErrConflict) {
		msg := id + " is already released"
		if q.UpdatedBy != "" {
			msg += fmt.Sprintf(" (by %s at %s)", q.UpdatedBy, q.Updated.UTC().Format(time.RFC3339))
		}
		writeError(w, http.StatusConflict, msg)
		return
	}
	if err != nil {
		a.storeError(w, r, err, "no quarantine record "+id)
		return
	}
	a.log.Info("quarantine released", "actor", tok.actor(), "id", q.ID, "artifact", q.Artifact.String(), "reason", reason, "override", req.Override)
	writeJSON(w, http.StatusOK, q)
}

func (a *api) block(w http.ResponseWriter, r *http.Request, tok Token) {
	var req BlockRequest
	if !decodeBody(w, r, &req) {
		return
	}
	art, err := verify.ParseArtifact(strings.TrimSpace(req.Artifact))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		writeError(w, http.StatusBadRequest, "a reason is required to block "+art.String())
		return
	}
	q, err := a.meta.Block(r.Context(), art, tok.actor(), reason)
	if errors.Is(err, cache.ErrConflict) {
		msg := art.String() + " is already held or blocked"
		if q.ID != "" {
			msg = fmt.Sprintf("%s is already %s as %s", art, q.State, q.ID)
		}
		writeError(w, http.StatusConflict, msg)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.log.Info("artifact blocked", "actor", tok.actor(), "id", q.ID, "artifact", art.String(), "reason", reason)
	writeJSON(w, http.StatusCreated, q)
}

// artifactStatus explains what Airlock decided about one artifact and why.
func (a *api) artifactStatus(w http.ResponseWriter, r *http.Request, _ Token) {
	art, err := verify.ParseArtifact(mux.Vars(r)["artifact"])
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := a.meta.Status(r.Context(), art)
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		a.storeError(w, r, err, "")
		return
	}
	decided := err == nil
	// The facts recorded with their first-seen times: what the checks
	// compared (publisher, provenance, digests…).
	obs, err := a.meta.Observation(r.Context(), art.Key())
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		a.storeError(w, r, err, "")
		return
	}
	observed := err == nil
	if !decided && !observed {
		a.storeError(w, r, cache.ErrNotFound, "nothing is known about "+art.String())
		return
	}
	out := struct {
		cache.Status
		Observation *cache.Observation `json:"observation,omitempty"`
	}{Status: st}
	if observed {
		out.Observation = &obs
	}
	writeJSON(w, http.StatusOK, out)
}

// explain runs the checks on one artifact, as the front would before
// serving it, and says what each found.
func (a *api) explain(w http.ResponseWriter, r *http.Request, _ Token) {
	art, err := verify.ParseArtifact(mux.Vars(r)["artifact"])
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ex, ok := a.explains[art.Ecosystem]
	if !ok {
		writeError(w, http.StatusNotImplemented, "explain is not available for "+string(art.Ecosystem)+" artifacts yet")
		return
	}
	x, err := ex(r.Context(), art)
	if err != nil {
		var se interface{ StatusCode() int }
		status := http.StatusBadGateway
		if errors.As(err, &se) {
			status = se.StatusCode()
		}
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, x)
}

func (a *api) audit(w http.ResponseWriter, r *http.Request, _ Token) {
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after=%q: want a sequence number", s))
			return
		}
		after = n
	}
	limit := defaultAuditLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: want 1 to %d", s, maxAuditLimit))
			return
		}
		limit = n
	}
	events, err := a.meta.Audit(r.Context(), after, limit)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if events == nil {
		events = []cache.AuditEvent{}
	}
	writeJSON(w, http.StatusOK, AuditLog{Events: events})
}

// storeError answers a failed lookup: 404 with notFound for ErrNotFound,
// 500 otherwise.
func (a *api) storeError(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	if errors.Is(err, cache.ErrNotFound) {
		writeError(w, http.StatusNotFound, notFound)
		return
	}
	a.internal(w, r, err)
}

// internal logs a storage failure and answers 500 without its details,
// which may name files or database internals.
func (a *api) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("admin API: storage error", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error (see the server log)")
}
