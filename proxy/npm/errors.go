package npm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// apiError is an answer other than the content: a status and a message
// sent as npm's error document, {"error": "…"}, which the npm client
// appends to its "403 Forbidden - GET <url>" line.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// refusal is the 403 for a held, blocked or denied version. It names the
// quarantine id and how to release it, on one line: npm prints the error
// inline.
func refusal(artifact string, st cache.Status) error {
	var b strings.Builder
	if q := st.Quarantine; q != nil {
		state := "quarantined"
		if q.State == cache.Blocked {
			state = "blocked by an admin"
		}
		fmt.Fprintf(&b, "airlock: %s is %s (%s): ", artifact, state, q.ID)
		for i, f := range q.Findings {
			if i == 2 {
				fmt.Fprintf(&b, "and %d more finding(s); ", len(q.Findings)-2)
				break
			}
			fmt.Fprintf(&b, "%s: %s; ", f.Check, oneLine(f.Message))
		}
		if q.State == cache.Blocked && q.Reason != "" {
			fmt.Fprintf(&b, "reason: %s; ", oneLine(q.Reason))
		}
		fmt.Fprintf(&b, "review with `airlock quarantine show %s`, release with `airlock quarantine release %s --reason ...`", q.ID, q.ID)
	} else {
		fmt.Fprintf(&b, "airlock: %s is denied by policy: %s", artifact, oneLine(st.Decision.Summary()))
	}
	return &apiError{status: http.StatusForbidden, msg: b.String()}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, HEAD")
	}
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(append(body, '\n'))
}

// writeError maps an error from the serving path to the protocol.
func (h *Handler) writeError(w http.ResponseWriter, req request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusBadGateway, "airlock: " + oneLine(err.Error())}
	}
	if ae.status >= 500 {
		h.o.Log.Warn("npm request failed", "package", req.name, "version", req.version, "kind", req.kind, "status", ae.status, "err", err)
	}
	writeJSONError(w, ae.status, ae.msg)
}

// withheldError is the 403 for a version the view withholds.
func withheldError(a verify.Artifact, w withheld) error {
	if w.id != "" {
		return errorf(http.StatusForbidden, "airlock: %s is withheld (%s): %s; review with `airlock quarantine show %s`", a, w.id, w.reason, w.id)
	}
	return errorf(http.StatusForbidden, "airlock: %s is withheld: %s; see `airlock explain %s`", a, w.reason, a)
}

// StatusCode is the HTTP status the error stands for, for callers outside
// the front (the admin API's explain).
func (e *apiError) StatusCode() int { return e.status }
