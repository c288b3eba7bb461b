package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/airlock-proxy/airlock/cache"
)

// The request and response bodies, shared with the CLI client.
type (
	// QuarantineList answers GET /admin/api/v1/quarantine.
	QuarantineList struct {
		Quarantines []cache.Quarantine `json:"quarantines"`
	}
	// AuditLog answers GET /admin/api/v1/audit.
	AuditLog struct {
		Events []cache.AuditEvent `json:"events"`
	}
	// ReleaseRequest is the body of POST …/quarantine/{id}/release.
	ReleaseRequest struct {
		Reason string `json:"reason"`
		// Override must be set to release a version a known-malicious
		// feed names: that is never a routine release.
		Override bool `json:"override,omitempty"`
	}
	// BlockRequest is the body of POST /admin/api/v1/quarantine.
	BlockRequest struct {
		Artifact string `json:"artifact"`
		Reason   string `json:"reason"`
	}
	// Error is the body of every error response.
	Error struct {
		Error string `json:"error"`
	}
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Quarantine state changes; a cached answer would mislead.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The status is sent; an encoding error can only be a closed connection.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}

// decodeBody reads one JSON object into v, bounded in size, refusing
// unknown fields (a misspelt "reason" must not pass as an empty one) and
// trailing data. On failure it has written the error response.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		var extra json.RawMessage
		switch err = dec.Decode(&extra); {
		case errors.Is(err, io.EOF):
			return true
		case err == nil:
			err = errors.New("unexpected data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "request body is empty: want a JSON object")
	default:
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
	}
	return false
}
