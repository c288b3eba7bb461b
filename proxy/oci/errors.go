package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// Error codes of the distribution spec, plus UNAVAILABLE and UNKNOWN,
// which distribution's own registry sends and clients know.
const (
	codeBlobUnknown     = "BLOB_UNKNOWN"
	codeDigestInvalid   = "DIGEST_INVALID"
	codeManifestInvalid = "MANIFEST_INVALID"
	codeManifestUnknown = "MANIFEST_UNKNOWN"
	codeNameInvalid     = "NAME_INVALID"
	codeNameUnknown     = "NAME_UNKNOWN"
	codeUnsupported     = "UNSUPPORTED"
	codeDenied          = "DENIED"
	codeTooManyRequests = "TOOMANYREQUESTS"
	codeUnavailable     = "UNAVAILABLE"
	codeUnknown         = "UNKNOWN"
	codePagination      = "PAGINATION_NUMBER_INVALID"
)

// regError is every answer other than content: one type, so that each
// failure maps to exactly one status and spec code.
type regError struct {
	status     int
	code       string
	msg        string
	detail     any
	retryAfter time.Duration // TOOMANYREQUESTS
}

func (e *regError) Error() string { return e.code + ": " + e.msg }

func errorf(status int, code, format string, args ...any) *regError {
	return &regError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

var (
	errNotEndpoint = errorf(http.StatusNotFound, codeUnsupported, "not an endpoint of the registry API (Airlock serves pulls: /v2/<upstream>/<repository>/manifests|blobs|tags/list|referrers)")
	errReadOnly    = errorf(http.StatusMethodNotAllowed, codeUnsupported, "Airlock is a read-only pull-through registry: push and delete are not supported")
)

// isCode reports whether err is a regError with code.
func isCode(err error, code string) bool {
	var re *regError
	return errors.As(err, &re) && re.code == code
}

// refusal is the 403 for a held, blocked or denied artifact. Its message
// is one line (docker prints "denied: <message>") naming the reason and
// the quarantine id; the detail carries the same for programs.
func refusal(a verify.Artifact, st cache.Status) *regError {
	e := &regError{status: http.StatusForbidden, code: codeDenied}
	detail := map[string]any{"artifact": a.String()}
	if q := st.Quarantine; q != nil {
		state := "quarantined"
		if q.State == cache.Blocked {
			state = "blocked by an admin"
		}
		var why []string
		for _, f := range q.Findings {
			why = append(why, f.Check+": "+oneLine(f.Message))
			if len(why) == 2 {
				break
			}
		}
		if len(why) == 0 {
			why = append(why, oneLine(st.Decision.Summary()))
		}
		e.msg = fmt.Sprintf("airlock: %s is %s (%s): %s; ask an admin to review it (airlock quarantine show %s)",
			a, state, q.ID, strings.Join(why, "; "), q.ID)
		detail["quarantine_id"], detail["state"] = q.ID, string(q.State)
		detail["findings"] = q.Findings
	} else {
		e.msg = fmt.Sprintf("airlock: %s is denied by policy: %s", a, oneLine(st.Decision.Summary()))
		detail["findings"] = st.Decision.Findings
	}
	e.detail = detail
	return e
}

// upstreamFailure maps an error talking to an upstream. unknown is the
// code for "upstream does not have it" (MANIFEST_UNKNOWN, BLOB_UNKNOWN).
func (h *Handler) upstreamFailure(u *upstream, err error, what, unknown string) *regError {
	var re *regError
	if errors.As(err, &re) {
		return re
	}
	if wait := u.throttled(); wait > 0 {
		return &regError{status: http.StatusTooManyRequests, code: codeTooManyRequests, retryAfter: wait,
			msg: fmt.Sprintf("upstream %s is rate limiting Airlock; retry after %s", u.Name, wait.Round(time.Second))}
	}
	var ue *upstreamError
	if errors.As(err, &ue) {
		switch {
		case ue.status == http.StatusTooManyRequests:
			return &regError{status: http.StatusTooManyRequests, code: codeTooManyRequests, retryAfter: ue.retryAfter,
				msg: fmt.Sprintf("upstream %s is rate limiting Airlock: %s", u.Name, ue.msg)}
		case ue.notFound() && u.auth != authn.Anonymous && (ue.status == http.StatusUnauthorized || ue.status == http.StatusForbidden):
			// Registries answer 401 for what does not exist too, so this
			// stays a 404, but a wrong password must be recognisable.
			return errorf(http.StatusNotFound, unknown, "%s: not found upstream, or the credentials configured for %s do not give access (%s answered %d: %s)", what, u.Name, u.Name, ue.status, ue.msg)
		case ue.notFound():
			return errorf(http.StatusNotFound, unknown, "%s: not found upstream (%s answered %d: %s)", what, u.Name, ue.status, ue.msg)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errorf(http.StatusGatewayTimeout, codeUnavailable, "%s: upstream %s timed out", what, u.Name)
	}
	return errorf(http.StatusBadGateway, codeUnknown, "%s: upstream %s failed: %s", what, u.Name, oneLine(err.Error()))
}

// writeError sends err as the spec's JSON error document.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *regError
	if !errors.As(err, &re) {
		switch {
		case errors.Is(err, context.Canceled):
			re = errorf(499, codeUnknown, "request canceled")
		default:
			re = errorf(http.StatusInternalServerError, codeUnknown, "airlock: %s", oneLine(err.Error()))
		}
	}
	if re.status >= 500 {
		h.o.Log.Warn("oci request failed", "method", r.Method, "path", r.URL.Path, "status", re.status, "code", re.code, "err", err)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Del("Content-Length")
	hd.Del("Docker-Content-Digest")
	hd.Del("ETag")
	if re.code == codeDenied {
		// A HEAD answer has no body: the reason also goes in a warning
		// header (distribution spec "Warnings"), which some clients show.
		hd.Set("Warning", `299 - "`+warningText(re.msg)+`"`)
	}
	if re.retryAfter > 0 {
		hd.Set("Retry-After", strconv.Itoa(int((re.retryAfter+time.Second-1)/time.Second)))
	}
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	body, _ := json.Marshal(struct {
		Errors []item `json:"errors"`
	}{[]item{{re.code, re.msg, re.detail}}})
	w.WriteHeader(re.status)
	w.Write(append(body, '\n'))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// warningText makes a message safe inside a quoted header value: no
// quotes, backslashes or control characters, nothing past ASCII.
func warningText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return '\''
		case r < 0x20 || r >= 0x7f:
			return '?'
		}
		return r
	}, s)
}
