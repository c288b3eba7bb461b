package gomod

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify/gosum"
)

// protoError is an answer other than the content: a status and a plain
// text message, which the go command prints (up to 8 lines).
type protoError struct {
	status int
	msg    string
}

func (e *protoError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &protoError{status: status, msg: fmt.Sprintf(format, args...)}
}

// refusal is the 403 for a held, blocked or denied version. 403 and not
// 404/410: after a "," in GOPROXY the go command falls through to the next
// proxy (or direct) only on 404/410, which would walk around the hold.
func refusal(artifact string, st cache.Status) error {
	var b strings.Builder
	if q := st.Quarantine; q != nil {
		state := "quarantined"
		if q.State == cache.Blocked {
			state = "blocked by an admin"
		}
		fmt.Fprintf(&b, "airlock: %s is %s (%s)\n", artifact, state, q.ID)
		for i, f := range q.Findings {
			if i == 2 {
				fmt.Fprintf(&b, "and %d more finding(s)\n", len(q.Findings)-2)
				break
			}
			fmt.Fprintf(&b, "%s: %s\n", f.Check, oneLine(f.Message))
		}
		fmt.Fprintf(&b, "ask an admin to review it: airlock quarantine show %s\n", q.ID)
		fmt.Fprintf(&b, "to release: airlock quarantine release %s --reason \"...\"", q.ID)
	} else {
		fmt.Fprintf(&b, "airlock: %s is denied by policy\n%s", artifact, oneLine(st.Decision.Summary()))
	}
	return &protoError{status: http.StatusForbidden, msg: b.String()}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func textError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// writeError maps an error from the serving path to the protocol.
func (h *Handler) writeError(w http.ResponseWriter, req request, err error) {
	var pe *protoError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, gosum.ErrInconsistent):
		pe = &protoError{http.StatusServiceUnavailable, "airlock: the checksum database log is inconsistent (forked or rolled back); no new module versions are admitted until an operator investigates"}
	case errors.Is(err, gosum.ErrNotInDB):
		pe = &protoError{http.StatusForbidden, fmt.Sprintf("airlock: %s@%s is not in the checksum database %s, so it cannot be verified\nif it is a private module, list it under go.private in Airlock's configuration", req.path, req.version, h.o.Verifier.Name())}
	case errors.Is(err, gosum.ErrUnavailable):
		pe = &protoError{http.StatusBadGateway, "airlock: checksum database unavailable: " + oneLine(err.Error())}
	default:
		pe = &protoError{http.StatusBadGateway, "airlock: " + oneLine(err.Error())}
	}
	if pe.status >= 500 {
		h.o.Log.Warn("go request failed", "module", req.path, "version", req.version, "kind", req.kind, "status", pe.status, "err", err)
	}
	textError(w, pe.status, pe.msg)
}
