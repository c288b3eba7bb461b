package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// upstream is one configured registry and the state of talking to it:
// authenticated transports per repository and a rate-limit hold.
type upstream struct {
	Upstream
	h      *Handler
	scheme string
	host   string
	reg    name.Registry
	auth   authn.Authenticator
	base   http.RoundTripper // Options.Transport behind the rate-limit hold

	mu         sync.Mutex
	transports map[string]cachedTransport
	until      time.Time // no requests before this (upstream said 429)
}

type cachedTransport struct {
	rt   http.RoundTripper
	made time.Time
}

// Transports are per repository (a bearer token is scoped to one). They
// refresh their own tokens; they are rebuilt now and then anyway so that
// a registry that changes its auth scheme is followed, and their number is
// bounded.
const (
	transportTTL  = time.Hour
	maxTransports = 1024
)

// Retry-After bounds: an upstream that sends 429 without one is left alone
// for defaultBackoff; one that asks for more than maxBackoff gets that.
const (
	defaultBackoff = 10 * time.Second
	maxBackoff     = time.Hour
)

// manifestAccept is every manifest type Airlock serves, asked of
// upstream in one Accept header so that it never converts or picks a
// platform for us.
var manifestAccept = strings.Join(manifestTypes, ", ")

func newUpstream(u Upstream, h *Handler) (*upstream, error) {
	scheme, host, err := hostOf(u.URL)
	if err != nil {
		return nil, fmt.Errorf("oci: upstream %s: url %w", u.Name, err)
	}
	var opts []name.Option
	if scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("oci: upstream %s: %w", u.Name, err)
	}
	up := &upstream{Upstream: u, h: h, scheme: scheme, host: host, reg: reg, auth: u.Auth, transports: map[string]cachedTransport{}}
	if up.auth == nil {
		up.auth = authn.Anonymous
	}
	up.base = &holdTransport{u: up, next: h.o.Transport}
	return up, nil
}

// hasHost reports whether containerd's ns=host names this upstream.
func (u *upstream) hasHost(host string) bool {
	if strings.EqualFold(host, u.host) {
		return true
	}
	for _, x := range u.Hosts {
		if strings.EqualFold(host, x) {
			return true
		}
	}
	return false
}

// upstreamError is a non-200 answer from upstream.
type upstreamError struct {
	status     int
	retryAfter time.Duration
	msg        string
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("upstream answered %d: %s", e.status, e.msg)
}

// notFound is an answer after which the last known digest must not be
// served: the upstream says the thing is gone or not ours to see.
func (e *upstreamError) notFound() bool {
	switch e.status {
	case http.StatusNotFound, http.StatusGone, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// throttled is how long the upstream asked to be left alone.
func (u *upstream) throttled() time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.until.Sub(u.h.now())
}

func (u *upstream) hold(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if t := u.h.now().Add(d); t.After(u.until) {
		u.until = t
	}
}

// holdTransport keeps requests from an upstream that answered 429 until
// its Retry-After has passed: asking again sooner only extends the ban
// (Docker Hub counts refused pulls too).
type holdTransport struct {
	u    *upstream
	next http.RoundTripper
}

func (t *holdTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if wait := t.u.throttled(); wait > 0 {
		return nil, &upstreamError{status: http.StatusTooManyRequests, retryAfter: wait, msg: "rate limited; not asking again yet"}
	}
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		d := retryAfter(resp.Header.Get("Retry-After"), t.u.h.now())
		t.u.hold(d)
		t.u.h.o.Log.Warn("upstream rate limit", "upstream", t.u.Name, "retry_after", d.String(), "url", r.URL.Redacted())
	}
	return resp, err
}

// maxMetaTimeout bounds the small requests (token, manifest, tag, list):
// a hanging upstream must turn into stale-if-error quickly, not after a
// timeout sized for a large blob.
const maxMetaTimeout = 30 * time.Second

func (h *Handler) metaTimeout() time.Duration { return min(h.o.Timeout, maxMetaTimeout) }

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	d := defaultBackoff
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, time.Second), maxBackoff)
}

// transport returns an authenticated transport for pulls of repo,
// running the registry's token flow once per repository.
func (u *upstream) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	now := u.h.now()
	u.mu.Lock()
	c, ok := u.transports[repo]
	u.mu.Unlock()
	if ok && now.Sub(c.made) < transportTTL {
		return c.rt, nil
	}
	v, err, _ := u.h.flight.Do("transport\x00"+u.Name+"\x00"+repo, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.h.metaTimeout())
		defer cancel()
		scope := u.reg.Repo(repo).Scope(transport.PullScope)
		rt, err := transport.NewWithContext(ctx, u.reg, u.auth, u.base, []string{scope})
		if err != nil {
			return nil, classify(err)
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if len(u.transports) >= maxTransports {
			for k := range u.transports {
				delete(u.transports, k)
				break
			}
		}
		u.transports[repo] = cachedTransport{rt: rt, made: now}
		return rt, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(http.RoundTripper), nil
}

// classify keeps the status of a registry error from the token flow, so
// that a 401 or 404 there is not mistaken for an outage (and served
// stale).
func classify(err error) error {
	if terr, ok := err.(*transport.Error); ok {
		return &upstreamError{status: terr.StatusCode, msg: oneLine(terr.Error())}
	}
	return err
}

// do sends one request for /v2/<repo>/<path> and returns a 200 response;
// anything else is an *upstreamError. The body must be closed; closing it
// ends the request's timeout.
func (u *upstream) do(ctx context.Context, method, repo, path, accept string) (*http.Response, error) {
	rt, err := u.transport(ctx, repo)
	if err != nil {
		u.count(err)
		return nil, err
	}
	timeout := u.h.metaTimeout()
	if strings.HasPrefix(path, "blobs/") {
		timeout = u.h.o.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(ctx, method, u.scheme+"://"+u.host+"/v2/"+repo+"/"+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		cancel()
		u.count(err)
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		cancel()
		ue := &upstreamError{status: resp.StatusCode, msg: firstLine(string(msg), resp.Status)}
		if resp.StatusCode == http.StatusTooManyRequests {
			ue.retryAfter = retryAfter(resp.Header.Get("Retry-After"), u.h.now())
		}
		u.count(ue)
		return nil, ue
	}
	u.count(nil)
	resp.Body = &upstreamBody{ReadCloser: resp.Body, cancel: cancel, u: u}
	return resp, nil
}

func (u *upstream) count(err error) {
	result := "ok"
	var ue *upstreamError
	switch {
	case err == nil:
	case errors.As(err, &ue) && ue.notFound():
		result = "not_found"
	case errors.As(err, &ue) && ue.status == http.StatusTooManyRequests:
		result = "throttled"
	default:
		result = "error"
	}
	u.h.o.Metrics.UpstreamFetch.WithLabelValues("oci", result).Inc()
}

// upstreamBody counts the bytes read from upstream and ends the request's
// timeout when closed.
type upstreamBody struct {
	io.ReadCloser
	cancel context.CancelFunc
	u      *upstream
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.u.h.o.Metrics.UpstreamBytes.WithLabelValues("oci").Add(float64(n))
	return n, err
}

func (b *upstreamBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// readAll reads a small body whole, at most limit bytes.
func readAll(resp *http.Response, limit int64, what string) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, errorf(http.StatusBadGateway, codeManifestInvalid, "%s: upstream sent %d bytes, more than the limit of %d", what, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading upstream body: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, errorf(http.StatusBadGateway, codeManifestInvalid, "%s: upstream sent more than the limit of %d bytes", what, limit)
	}
	if resp.ContentLength >= 0 && int64(len(data)) != resp.ContentLength {
		return nil, fmt.Errorf("%s: upstream body truncated: %d of %d bytes", what, len(data), resp.ContentLength)
	}
	return data, nil
}

// headManifest resolves a reference to a digest without a manifest GET
// (Docker Hub counts GETs against the pull quota, not HEADs). A registry
// that sends no usable digest gets a GET: then the bytes come back too.
func (u *upstream) headManifest(ctx context.Context, repo, ref string) (string, *fetched, error) {
	resp, err := u.do(ctx, http.MethodHead, repo, "manifests/"+ref, manifestAccept)
	if err != nil {
		return "", nil, err
	}
	resp.Body.Close()
	if d := resp.Header.Get("Docker-Content-Digest"); validDigest(d) {
		return d, nil, nil
	}
	f, err := u.getManifest(ctx, repo, ref)
	if err != nil {
		return "", nil, err
	}
	return f.digest, f, nil
}

// fetched is a manifest as upstream sent it.
type fetched struct {
	digest string // sha256 of body
	body   []byte
	ctype  string
}

func (u *upstream) getManifest(ctx context.Context, repo, ref string) (*fetched, error) {
	resp, err := u.do(ctx, http.MethodGet, repo, "manifests/"+ref, manifestAccept)
	if err != nil {
		return nil, err
	}
	body, err := readAll(resp, u.h.o.MaxManifest, "manifest "+ref)
	if err != nil {
		return nil, err
	}
	return &fetched{digest: sha256Of(body), body: body, ctype: resp.Header.Get("Content-Type")}, nil
}

// blob opens a blob's body; size is -1 when upstream did not say.
func (u *upstream) blob(ctx context.Context, repo, digest string) (io.ReadCloser, int64, error) {
	resp, err := u.do(ctx, http.MethodGet, repo, "blobs/"+digest, "")
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// remoteOptions let the verifier reach this upstream the way Airlock
// does: same base transport (and rate-limit hold), same credentials.
func (u *upstream) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(u.base), remote.WithAuth(u.auth)}
}

func firstLine(s, def string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return def
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// sha256Of names bytes the way the blob store does.
func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
