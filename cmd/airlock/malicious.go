package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/osv"
)

// malicious is the known-malicious feed: the OSV records of the configured
// paths, reloaded when they change. Every version it names is denied, on
// the fly by the fronts, and, for versions Airlock has already seen,
// recorded at once when the feed is loaded (a cached copy is never served
// again). It also holds the vulnerability advisories (policy.advisories),
// reloaded with it, whose fixed versions skip the cooldown.
type malicious struct {
	paths      []string
	advisory   []string
	meta       cache.Meta
	log        *slog.Logger
	feeds      atomic.Pointer[[]*osv.Feed]
	advisories atomic.Pointer[[]*osv.Feed]
	stamp      string
}

// actorFeed signs the decisions the feed makes.
const actorFeed = "airlock/known-malicious"

func loadMalicious(ctx context.Context, paths, advisories []string, meta cache.Meta, log *slog.Logger) (*malicious, error) {
	m := &malicious{paths: paths, advisory: advisories, meta: meta, log: log}
	if len(paths) == 0 && len(advisories) == 0 {
		m.feeds.Store(&[]*osv.Feed{})
		m.advisories.Store(&[]*osv.Feed{})
		return m, nil
	}
	if err := m.reload(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Findings is the fronts' check: a finding per record naming a.
func (m *malicious) Findings(a verify.Artifact) []verify.Finding {
	if m == nil {
		return nil
	}
	var out []verify.Finding
	for _, f := range *m.feeds.Load() {
		for _, r := range f.Match(a) {
			out = append(out, f.Finding(r, a))
		}
	}
	return out
}

// Fixes is the fronts' fast-track: the ids of the advisories that name
// a's version as the fix of a vulnerability.
func (m *malicious) Fixes(a verify.Artifact) []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, f := range *m.advisories.Load() {
		out = append(out, f.Fixes(a)...)
	}
	return out
}

// stampOf sums up the paths' modification times and sizes, to notice a
// changed feed without reading it.
func stampOf(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if info, err := d.Info(); err == nil {
				fmt.Fprintf(&b, "%s %d %d\n", path, info.ModTime().UnixNano(), info.Size())
			}
			return nil
		})
	}
	return b.String()
}

// reload loads every path; a path that does not load fails the reload
// and the previous feed stays (or, at start, Airlock does not start).
func (m *malicious) reload(ctx context.Context) error {
	stamp := stampOf(append(slices.Clone(m.paths), m.advisory...))
	var advisories []*osv.Feed
	for _, p := range m.advisory {
		f, err := osv.Load(ctx, p, osv.Options{Log: m.log})
		if err != nil {
			return fmt.Errorf("policy.advisories: %s: %w", p, err)
		}
		advisories = append(advisories, f)
	}
	var feeds []*osv.Feed
	total := 0
	for _, p := range m.paths {
		f, err := osv.Load(ctx, p, osv.Options{Log: m.log})
		if err != nil {
			return fmt.Errorf("policy.malicious: %s: %w", p, err)
		}
		feeds = append(feeds, f)
		total += f.Len()
		if f.Skipped() > 0 {
			m.log.Warn("known-malicious feed: skipped unreadable records", "path", p, "skipped", f.Skipped())
		}
	}
	m.feeds.Store(&feeds)
	m.advisories.Store(&advisories)
	m.stamp = stamp
	m.log.Info("known-malicious feed loaded", "paths", strings.Join(m.paths, ","), "records", total, "advisories", strings.Join(m.advisory, ","))
	if err := m.retro(ctx); err != nil {
		return err
	}
	return m.lift(ctx)
}

// retro denies every version Airlock has seen that the feed names, so
// that a cached copy is refused from now on and the admins see it.
func (m *malicious) retro(ctx context.Context) error {
	n := 0
	for _, eco := range []verify.Ecosystem{verify.NPM, verify.Go} {
		names := map[string]bool{}
		for _, f := range *m.feeds.Load() {
			for _, name := range f.Affected(eco) {
				names[name] = true
			}
		}
		for name := range names {
			keys, err := m.meta.ObservedKeys(ctx, string(eco)+":"+name+"@")
			if err != nil {
				return err
			}
			for _, k := range keys {
				a, err := verify.ParseArtifact(k)
				if err != nil || a.Name != name {
					continue
				}
				fs := m.Findings(a)
				if len(fs) == 0 {
					continue
				}
				st, err := m.meta.Status(ctx, a)
				if err != nil && !errors.Is(err, cache.ErrNotFound) {
					return err
				}
				if q := st.Quarantine; q != nil && (q.State == cache.Released || (q.State.Hides() && st.Decision.Verdict == verify.Deny)) {
					// Already denied; or released, by an admin's override
					// or because the feed dropped it before (a release
					// stands: Decide cannot re-hold it).
					continue
				}
				st, err = m.meta.Decide(ctx, a, verify.Decision{Verdict: verify.Deny, Findings: fs}, actorFeed)
				if err != nil {
					return err
				}
				n++
				id := ""
				if st.Quarantine != nil {
					id = st.Quarantine.ID
				}
				m.log.Warn("known malicious: denied a version Airlock had seen", "artifact", a.String(), "quarantine_id", id, "record", fs[0].Evidence["id"])
			}
		}
	}
	if n > 0 {
		m.log.Warn("known-malicious feed: denied versions Airlock had seen", "count", n)
	}
	return nil
}

// watch reloads the feed when its files change.
func (m *malicious) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if stampOf(append(slices.Clone(m.paths), m.advisory...)) == m.stamp {
				continue
			}
			if err := m.reload(ctx); err != nil {
				m.log.Error("reloading the known-malicious feed; keeping the previous one", "err", err)
			}
		}
	}
}

// lift releases holds that rested only on feed records that are gone
// (withdrawn, or no longer in the feed): the feed's own decision, undone by
// the feed, on the audit log.
func (m *malicious) lift(ctx context.Context) error {
	qs, err := m.meta.Quarantines(ctx, cache.QuarantineFilter{State: cache.Held})
	if err != nil {
		return err
	}
	for _, q := range qs {
		// The feed's findings carry its record id; a known-malicious
		// finding without one (npm's own takedown, proxy/npm) is not the
		// feed's to lift.
		onlyFeed := len(q.Findings) > 0
		for _, f := range q.Findings {
			if f.Check != osv.Check || f.Evidence["id"] == "" {
				onlyFeed = false
			}
		}
		if !onlyFeed || len(m.Findings(q.Artifact)) > 0 {
			continue
		}
		if _, err := m.meta.Release(ctx, q.ID, actorFeed, "no known-malicious record names it any more (withdrawn or removed from the feed)"); err != nil {
			return err
		}
		m.log.Warn("known malicious: lifted a denial the feed no longer supports", "artifact", q.Artifact.String(), "quarantine_id", q.ID)
	}
	return nil
}
