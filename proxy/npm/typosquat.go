package npm

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// knownNames is the set of package names Airlock has fetched: what this
// organisation uses, which a typosquat imitates. Loaded from the
// observations on first use, then grown as packuments are fetched.
type knownNames struct {
	mu     sync.Mutex
	loaded bool // the observations were read (retried until they are)
	set    map[string]bool
	list   []string // sorted; rebuilt when set grows
}

func (h *Handler) names(ctx context.Context) []string {
	k := &h.known
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set == nil {
		k.set = map[string]bool{}
	}
	if !k.loaded {
		// Not the request's to cancel: the list serves every later one.
		keys, err := h.o.Meta.ObservedKeys(context.WithoutCancel(ctx), "npm:")
		if err != nil {
			h.o.Log.Warn("listing the packages in use, for the typosquat check", "err", err)
		} else {
			k.loaded = true
			for _, key := range keys {
				rest := strings.TrimPrefix(key, "npm:")
				if i := strings.LastIndex(rest, "@"); i > 0 {
					k.set[rest[:i]] = true
				}
			}
			k.list = nil
		}
	}
	if k.list == nil {
		k.list = make([]string, 0, len(k.set))
		for n := range k.set {
			k.list = append(k.list, n)
		}
		slices.Sort(k.list)
	}
	return k.list
}

// addName records a package as in use.
func (h *Handler) addName(name string) {
	k := &h.known
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set == nil {
		k.set = map[string]bool{}
	}
	if !k.set[name] {
		k.set[name] = true
		k.list = nil
	}
}

// typosquat is the typosquat finding of a young package (first published
// within the review window) whose name is one keystroke from a package in
// use here; computed once per packument. Established packages are not
// judged: color and colors have both been real for a decade.
func (h *Handler) typosquat(ctx context.Context, d *doc, e policy.Effective) *verify.Finding {
	d.squatOnce.Do(func() {
		var created time.Time
		for _, r := range d.history() {
			if !r.Published.IsZero() && (created.IsZero() || r.Published.Before(created)) {
				created = r.Published
			}
		}
		if created.IsZero() || (e.ReviewWindow > 0 && h.o.Now().Sub(created) >= e.ReviewWindow) {
			return
		}
		d.squat = anomaly.Typosquat(d.name, h.names(ctx))
	})
	return d.squat
}
