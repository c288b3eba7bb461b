package npm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// errUnavailable marks upstream failures that say nothing about the
// package (unreachable, 5xx, 429, cut short): a cached copy may stand in.
var errUnavailable = errors.New("upstream unavailable")

// escapeName spells a package name as npm puts it in a URL: the scope's
// slash escaped.
func escapeName(name string) string {
	return strings.Replace(url.PathEscape(name), "%2F", "%2f", 1)
}

// tarballName is the tarball's file name, <bare>-<version>.tgz.
func tarballName(name, version string) string {
	_, bare := splitScope(name)
	return bare + "-" + version + ".tgz"
}

func splitScope(name string) (scope, bare string) {
	if strings.HasPrefix(name, "@") {
		if s, b, ok := strings.Cut(name, "/"); ok {
			return s, b
		}
	}
	return "", name
}

// upstreamURL resolves a URL named by upstream content (dist.tarball,
// dist.attestations.url): it is followed only when it points at the
// upstream itself; anything else is replaced by the path the registry API
// defines. A packument must not be able to send Airlock to other hosts.
func (h *Handler) upstreamURL(named, canonical string) string {
	base, err := url.Parse(h.o.Upstream)
	if err == nil && named != "" {
		if u, err := url.Parse(named); err == nil && u.Scheme == base.Scheme && u.Host == base.Host && u.User == nil && !strings.Contains(u.Path, "/../") {
			return u.String()
		}
	}
	return h.o.Upstream + canonical
}

// do sends an upstream request and returns a response of status 200 (or
// 304 when ok304). Not found (404, 410) becomes a 404 for the client;
// everything else is errUnavailable with the reason.
func (h *Handler) do(req *http.Request, ok304 bool) (*http.Response, error) {
	resp, err := h.o.Client.Do(req)
	if err != nil {
		h.o.Metrics.UpstreamFetch.WithLabelValues("npm", "error").Inc()
		return nil, fmt.Errorf("%w: %s", errUnavailable, oneLine(err.Error()))
	}
	switch {
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusNotModified && ok304:
		h.o.Metrics.UpstreamFetch.WithLabelValues("npm", "ok").Inc()
		return resp, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		h.o.Metrics.UpstreamFetch.WithLabelValues("npm", "not_found").Inc()
		resp.Body.Close()
		return nil, errorf(http.StatusNotFound, "airlock: %s not found upstream", req.URL.Path)
	default:
		h.o.Metrics.UpstreamFetch.WithLabelValues("npm", "error").Inc()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s answered %s %s", errUnavailable, req.URL.Path, resp.Status, oneLine(strings.TrimSpace(string(msg))))
	}
}

// get fetches a small upstream document whole, at most limit bytes.
func (h *Handler) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.do(req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return h.readBody(resp, limit)
}

// readBody reads a response body of at most limit bytes, checking it
// against the declared length.
func (h *Handler) readBody(resp *http.Response, limit int64) ([]byte, error) {
	p := resp.Request.URL.Path
	if resp.ContentLength > limit {
		return nil, errorf(http.StatusBadGateway, "airlock: upstream %s is %d bytes, over the limit of %d", p, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %s", errUnavailable, p, oneLine(err.Error()))
	}
	if int64(len(data)) > limit {
		return nil, errorf(http.StatusBadGateway, "airlock: upstream %s is over the limit of %d bytes", p, limit)
	}
	if resp.ContentLength >= 0 && !resp.Uncompressed && int64(len(data)) != resp.ContentLength {
		return nil, fmt.Errorf("%w: %s truncated: %d of %d bytes", errUnavailable, p, len(data), resp.ContentLength)
	}
	h.o.Metrics.UpstreamBytes.WithLabelValues("npm").Add(float64(len(data)))
	return data, nil
}

// copyBody streams an upstream body into w, at most limit bytes. framed
// reports whether upstream declared the length, so a short body is known
// to be cut short rather than complete.
func (h *Handler) copyBody(ctx context.Context, u string, limit int64, w io.Writer) (n int64, framed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := h.do(req, false)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	p := req.URL.Path
	framed = resp.ContentLength >= 0 && !resp.Uncompressed
	if resp.ContentLength > limit {
		return 0, framed, errorf(http.StatusBadGateway, "airlock: upstream %s is %d bytes, over the limit of %d", p, resp.ContentLength, limit)
	}
	n, err = io.Copy(w, io.LimitReader(resp.Body, limit+1))
	h.o.Metrics.UpstreamBytes.WithLabelValues("npm").Add(float64(n))
	if err != nil {
		return n, framed, fmt.Errorf("%w: reading %s: %s", errUnavailable, p, oneLine(err.Error()))
	}
	if n > limit {
		return n, framed, errorf(http.StatusBadGateway, "airlock: upstream %s is over the limit of %d bytes", p, limit)
	}
	if framed && n != resp.ContentLength {
		return n, framed, fmt.Errorf("%w: %s truncated: %d of %d bytes", errUnavailable, p, n, resp.ContentLength)
	}
	return n, framed, nil
}

// unavailable turns an upstream failure into the client's 502.
func unavailable(err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return err
	}
	return errorf(http.StatusBadGateway, "airlock: %s", oneLine(err.Error()))
}
