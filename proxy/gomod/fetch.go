package gomod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// errTooLarge marks upstream content over its limit.
var errTooLarge = errors.New("larger than the limit")

// open starts an upstream GET of the protocol path p and returns the body
// of a 200. Upstream "not found" answers become 404 for the client: 404
// and 410 as the protocol has them, and 403, which some mirrors send for
// anything they lack. Everything else is a 502 with the reason.
func (h *Handler) open(ctx context.Context, p string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.o.Upstream+"/"+p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.o.Client.Do(req)
	if err != nil {
		h.o.Metrics.UpstreamFetch.WithLabelValues("go", "error").Inc()
		return nil, errorf(http.StatusBadGateway, "airlock: upstream unreachable: %s", oneLine(err.Error()))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		h.o.Metrics.UpstreamFetch.WithLabelValues("go", "ok").Inc()
		return resp, nil
	case http.StatusNotFound, http.StatusGone, http.StatusForbidden:
		h.o.Metrics.UpstreamFetch.WithLabelValues("go", "not_found").Inc()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		status := http.StatusNotFound
		if resp.StatusCode == http.StatusGone {
			status = http.StatusGone
		}
		return nil, errorf(status, "airlock: not found upstream: %s", firstLine(string(msg), resp.Status))
	default:
		h.o.Metrics.UpstreamFetch.WithLabelValues("go", "error").Inc()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return nil, errorf(http.StatusBadGateway, "airlock: upstream answered %s: %s", resp.Status, firstLine(string(msg), ""))
	}
}

// get reads a small upstream file whole, at most limit bytes.
func (h *Handler) get(ctx context.Context, p string, limit int64) ([]byte, error) {
	resp, err := h.open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, errorf(http.StatusBadGateway, "airlock: upstream %s is %d bytes, %v (%d)", p, resp.ContentLength, errTooLarge, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, errorf(http.StatusBadGateway, "airlock: reading upstream %s: %s", p, oneLine(err.Error()))
	}
	if int64(len(data)) > limit {
		return nil, errorf(http.StatusBadGateway, "airlock: upstream %s is %v (%d bytes)", p, errTooLarge, limit)
	}
	if resp.ContentLength >= 0 && int64(len(data)) != resp.ContentLength {
		return nil, errorf(http.StatusBadGateway, "airlock: upstream %s truncated: %d of %d bytes", p, len(data), resp.ContentLength)
	}
	h.o.Metrics.UpstreamBytes.WithLabelValues("go").Add(float64(len(data)))
	return data, nil
}

// copyTo streams an upstream file into w, at most limit bytes. framed
// reports whether upstream declared the length, so that a complete body is
// known to be what upstream meant to send: without it, a connection cut
// short looks like a normal end.
func (h *Handler) copyTo(ctx context.Context, p string, limit int64, w io.Writer) (n int64, framed bool, err error) {
	n, err = h.copyBody(ctx, p, limit, w, &framed)
	return n, framed, err
}

func (h *Handler) copyBody(ctx context.Context, p string, limit int64, w io.Writer, framed *bool) (int64, error) {
	resp, err := h.open(ctx, p)
	if err != nil {
		return 0, err
	}
	*framed = resp.ContentLength >= 0
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return 0, errorf(http.StatusBadGateway, "airlock: upstream %s is %d bytes, %v (%d)", p, resp.ContentLength, errTooLarge, limit)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, limit+1))
	h.o.Metrics.UpstreamBytes.WithLabelValues("go").Add(float64(n))
	if err != nil {
		return n, errorf(http.StatusBadGateway, "airlock: reading upstream %s: %s", p, oneLine(err.Error()))
	}
	if n > limit {
		return n, errorf(http.StatusBadGateway, "airlock: upstream %s is %v (%d bytes)", p, errTooLarge, limit)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, errorf(http.StatusBadGateway, "airlock: upstream %s truncated: %d of %d bytes", p, n, resp.ContentLength)
	}
	return n, nil
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
	return fmt.Sprint(s)
}
