package gomod

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/airlock-proxy/airlock/verify"
)

// info is the .info and @latest document.
type info struct {
	Version string
	Time    time.Time `json:",omitzero"`
}

func parseInfo(data []byte) (info, error) {
	var i info
	if err := json.Unmarshal(data, &i); err != nil {
		return i, fmt.Errorf("upstream sent a malformed info document: %w", err)
	}
	if i.Version == "" || module.CanonicalVersion(i.Version) != i.Version {
		return i, fmt.Errorf("upstream sent a non-canonical version %q", i.Version)
	}
	return i, nil
}

// upstreamList returns upstream's version list, reusing one fetched within
// ListTTL.
func (h *Handler) upstreamList(ctx context.Context, req request) ([]string, error) {
	h.listsMu.Lock()
	c, ok := h.lists[req.path]
	h.listsMu.Unlock()
	if ok && time.Since(c.fetched) < h.o.ListTTL {
		return c.versions, nil
	}
	v, err, _ := h.flight.Do("list\x00"+req.path, func() (any, error) {
		data, err := h.get(context.WithoutCancel(ctx), req.epath+"/@v/list", h.o.MaxInfo)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, line := range strings.Split(string(data), "\n") {
			// A list line is a version, optionally followed by fields
			// the go command ignores; keep only valid versions.
			f := strings.Fields(line)
			if len(f) == 0 || verify.CheckGoModule(req.path, f[0]) != nil {
				continue
			}
			out = append(out, f[0])
		}
		h.listsMu.Lock()
		if len(h.lists) > 10000 { // bound memory: drop all, refill on demand
			clear(h.lists)
		}
		h.lists[req.path] = cachedList{versions: out, fetched: time.Now()}
		h.listsMu.Unlock()
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// allowed filters out versions that are held, blocked or denied.
func (h *Handler) allowed(ctx context.Context, req request, versions []string) ([]string, error) {
	var out []string
	for _, v := range versions {
		st, err := h.status(ctx, req.artifact(v))
		if err != nil {
			return nil, err
		}
		if !st.Hidden() {
			out = append(out, v)
		}
	}
	return out, nil
}

// allowedList is upstream's version list less the hidden versions.
func (h *Handler) allowedList(ctx context.Context, req request) ([]string, error) {
	versions, err := h.upstreamList(ctx, req)
	if err != nil {
		return nil, err
	}
	versions, err = h.allowed(ctx, req, versions)
	if err != nil {
		return nil, err
	}
	return h.withoutYoung(ctx, req, versions), nil
}

func (h *Handler) serveList(ctx context.Context, w http.ResponseWriter, req request) error {
	versions, err := h.allowedList(ctx, req)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	for _, v := range versions {
		io.WriteString(w, v+"\n")
	}
	return nil
}

// serveLatest answers @latest with upstream's answer unless that version is
// held; then with the newest allowed version, by the go command's own rule
// (highest release, else highest pre-release).
func (h *Handler) serveLatest(ctx context.Context, w http.ResponseWriter, req request) error {
	data, err := h.get(ctx, req.epath+"/@latest", h.o.MaxInfo)
	if err != nil {
		return err
	}
	latest, err := parseInfo(data)
	if err != nil {
		return errorf(http.StatusBadGateway, "airlock: %s", err)
	}
	st, err := h.status(ctx, req.artifact(latest.Version))
	if err != nil {
		return err
	}
	young := !st.Hidden() && st.Quarantine == nil && h.youngRefusal(req.artifact(latest.Version), h.cooldown(ctx, req, latest.Version, true)) != nil
	if !st.Hidden() && !young {
		writeJSON(w, data)
		return nil
	}
	versions, err := h.allowedList(ctx, req)
	if err != nil {
		return err
	}
	best := newest(versions)
	if best == "" {
		if young {
			return h.youngRefusal(req.artifact(latest.Version), h.cooldown(ctx, req, latest.Version, false))
		}
		return refusal(req.artifact(latest.Version).String(), st)
	}
	ev, _ := module.EscapeVersion(best) // a listed version escapes
	data, err = h.get(ctx, req.epath+"/@v/"+ev+".info", h.o.MaxInfo)
	if err != nil {
		return err
	}
	if _, err := parseInfo(data); err != nil {
		return errorf(http.StatusBadGateway, "airlock: %s", err)
	}
	h.o.Log.Info("@latest moved off a held version", "module", req.path, "held", latest.Version, "served", best)
	writeJSON(w, data)
	return nil
}

func newest(versions []string) string {
	var rel, pre string
	for _, v := range versions {
		if semver.Prerelease(v) == "" {
			if rel == "" || semver.Compare(v, rel) > 0 {
				rel = v
			}
		} else if pre == "" || semver.Compare(v, pre) > 0 {
			pre = v
		}
	}
	if rel != "" {
		return rel
	}
	return pre
}

func (h *Handler) serveInfo(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	canonical := module.CanonicalVersion(req.version) == req.version
	if canonical {
		a := req.artifact(req.version)
		st, err := h.status(ctx, a)
		if err != nil {
			return err
		}
		if st.Hidden() {
			return refusal(a.String(), st)
		}
		if st.Quarantine == nil {
			if err := h.youngRefusal(a, h.cooldown(ctx, req, req.version, false)); err != nil {
				return err
			}
		}
		if f, d, ok := h.cachedBlob(ctx, a.Key(), fieldInfoSHA); ok {
			h.o.Metrics.CacheHits.WithLabelValues("go", "info").Inc()
			serveBlob(w, r, f, d, "application/json")
			return nil
		}
	}
	h.o.Metrics.CacheMisses.WithLabelValues("go", "info").Inc()
	data, err := h.get(ctx, req.epath+"/@v/"+req.ever+".info", h.o.MaxInfo)
	if err != nil {
		return err
	}
	i, err := parseInfo(data)
	if err != nil {
		return errorf(http.StatusBadGateway, "airlock: %s", err)
	}
	if canonical && i.Version != req.version {
		return errorf(http.StatusBadGateway, "airlock: upstream answered %s.info with version %s", req.version, i.Version)
	}
	// A query (branch, commit) resolves to a version that may be held.
	a := req.artifact(i.Version)
	st, err := h.status(ctx, a)
	if err != nil {
		return err
	}
	if st.Hidden() {
		return refusal(a.String(), st)
	}
	if canonical {
		d, err := h.commit(ctx, func(w io.Writer) error { _, err := w.Write(data); return err }, nil)
		if err != nil {
			return err
		}
		fields := map[string]string{fieldInfoSHA: d}
		if !i.Time.IsZero() {
			// The commit time, chosen by the author: evidence of youth
			// at most, never of age.
			fields[fieldInfoTime] = i.Time.UTC().Format(time.RFC3339)
		}
		if _, _, err := h.o.Meta.Observe(ctx, a.Key(), fields); err != nil {
			return err
		}
	}
	if st.Quarantine == nil {
		if err := h.youngRefusal(a, h.cooldown(ctx, req, i.Version, false)); err != nil {
			return err
		}
	}
	writeJSON(w, data)
	return nil
}

func writeJSON(w http.ResponseWriter, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(bytes.TrimSpace(data))
}
