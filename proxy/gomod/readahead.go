package gomod

import (
	"context"
	"sync"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/airlock-proxy/airlock/verify"
)

// readAhead fetches and verifies, in the background, the go.mod files that
// a verified go.mod requires. The go command walks the module graph a few
// requests at a time, and each miss costs an upstream round trip plus a
// checksum-database lookup; having the next level verified by the time it
// asks turns those misses into hits. One level only: the read-ahead of a
// read-ahead would fetch the graph the go command prunes.
type readAhead struct {
	h       *Handler
	max     int // concurrent fetches; 0 disables
	mu      sync.Mutex
	queue   []module.Version
	queued  map[module.Version]bool
	running int
}

// maxQueued bounds the backlog; past it new work is dropped, which only
// costs the speed-up.
const maxQueued = 4096

// maxRequires bounds how many requirements of one go.mod are read ahead.
const maxRequires = 512

// requiresOf parses the requirements of a verified go.mod.
func requiresOf(data []byte) []module.Version {
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return nil
	}
	out := make([]module.Version, 0, min(len(f.Require), maxRequires))
	for _, r := range f.Require {
		if len(out) == maxRequires {
			break
		}
		out = append(out, r.Mod)
	}
	return out
}

// add queues versions whose go.mod is not cached yet.
func (ra *readAhead) add(ctx context.Context, mods []module.Version) {
	if ra.max == 0 {
		return
	}
	var todo []module.Version
	for _, m := range mods {
		if module.Check(m.Path, m.Version) != nil || module.CanonicalVersion(m.Version) != m.Version {
			continue
		}
		if _, ok := ra.h.private(m.Path); ok {
			continue // never fetched ahead of an explicit request
		}
		a := verify.Artifact{Ecosystem: verify.Go, Name: m.Path, Version: m.Version}
		if obs, err := ra.h.o.Meta.Observation(ctx, a.Key()); err == nil && obs.Fields[fieldModSHA] != "" {
			continue
		}
		todo = append(todo, m)
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.queued == nil {
		ra.queued = map[module.Version]bool{}
	}
	for _, m := range todo {
		if len(ra.queue) >= maxQueued || ra.queued[m] {
			continue
		}
		ra.queued[m] = true
		ra.queue = append(ra.queue, m)
	}
	for ra.running < ra.max && ra.running < len(ra.queue) {
		ra.running++
		go ra.work(context.WithoutCancel(ctx))
	}
}

func (ra *readAhead) work(ctx context.Context) {
	for {
		ra.mu.Lock()
		if len(ra.queue) == 0 {
			ra.running--
			ra.mu.Unlock()
			return
		}
		m := ra.queue[0]
		ra.queue = ra.queue[1:]
		ra.mu.Unlock()

		ra.fetch(ctx, m)

		ra.mu.Lock()
		delete(ra.queued, m)
		ra.mu.Unlock()
	}
}

func (ra *readAhead) fetch(ctx context.Context, m module.Version) {
	epath, err1 := module.EscapePath(m.Path)
	ever, err2 := module.EscapeVersion(m.Version)
	if err1 != nil || err2 != nil {
		return
	}
	req := request{path: m.Path, epath: epath, kind: "mod", version: m.Version, ever: ever}
	a := req.artifact(m.Version)
	// The same flight key as a client's request, so a client asking now
	// waits for this fetch instead of starting its own.
	_, err := ra.h.once(ctx, "mod\x00"+a.Key(), func(ctx context.Context) (string, error) {
		return ra.h.fetchMod(ctx, req, a, false)
	})
	if err != nil {
		ra.h.o.Log.Debug("read-ahead of go.mod failed", "module", m.Path, "version", m.Version, "err", err)
		return
	}
	ra.h.o.Metrics.CacheMisses.WithLabelValues("go", "mod-read-ahead").Inc()
}
