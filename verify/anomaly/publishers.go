package anomaly

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

// Publish is one release of any package by one publisher, as the proxy
// saw it in a package's metadata.
type Publish struct {
	Package   string    `json:"package"`
	Version   string    `json:"version"`
	Published time.Time `json:"published"`
}

// BurstPackages is how many other packages a publisher must have
// released within BurstWindow of a release for BurstAcross to find it.
const BurstPackages = 2

// BurstAcross finds a release whose publisher released at least
// BurstPackages other packages within BurstWindow of it: one account
// pushing many packages at once is what a stolen token or a worm does
// (chalk/debug and 16 more on 2025-09-08 within two hours; Shai-Hulud
// republishing every package its victims could). others are the
// publisher's releases the proxy has seen, of any package; those of pkg
// itself are Burst's business and are ignored here, and so are those of
// other packages in its npm scope: a monorepo releasing @acme/* together
// is one project's release, not an account pushing everything it can.
// For the same reason another scope's packages count once.
func BurstAcross(pkg string, r Release, others []Publish) *verify.Finding {
	if r.Publisher == "" || r.Published.IsZero() {
		return nil
	}
	scope := npmScope(pkg)
	// One entry per project: a package, or a scope's packages together.
	seen := map[string]string{}
	for _, p := range others {
		if p.Package == pkg || p.Published.IsZero() || (scope != "" && npmScope(p.Package) == scope) {
			continue
		}
		project := p.Package
		if s := npmScope(p.Package); s != "" {
			project = s
		}
		if d := p.Published.Sub(r.Published); d > -BurstWindow && d < BurstWindow {
			if _, ok := seen[project]; !ok {
				seen[project] = p.Package + "@" + p.Version
			}
		}
	}
	if len(seen) < BurstPackages {
		return nil
	}
	var rel []string
	for _, s := range seen {
		rel = append(rel, s)
	}
	slices.Sort(rel)
	shown := rel
	if len(shown) > 10 {
		shown = append(slices.Clone(shown[:10]), fmt.Sprintf("and %d more", len(rel)-10))
	}
	return &verify.Finding{Check: "burst",
		Message: fmt.Sprintf("%s published %d other projects within %s of this release: %s", r.Publisher, len(rel), BurstWindow, strings.Join(shown, ", ")),
		Evidence: map[string]string{"publisher": r.Publisher, "packages": strings.Join(rel, ","), "window": BurstWindow.String(),
			"published": r.Published.UTC().Format(time.RFC3339)}}
}

// npmScope is "@scope" of a scoped npm name, else "".
func npmScope(name string) string {
	if s, _, ok := strings.Cut(name, "/"); ok && strings.HasPrefix(s, "@") {
		return s
	}
	return ""
}

// PublishLog is one publisher's recent releases, kept bounded: Add
// merges new ones, drops those older than keep before now, and keeps the
// newest max.
type PublishLog []Publish

// Add merges ps into the log and reports whether it changed.
func (l PublishLog) Add(ps []Publish, now time.Time, keep time.Duration, max int) (PublishLog, bool) {
	out := slices.Clone(l)
	changed := false
	for _, p := range ps {
		if slices.ContainsFunc(out, func(q Publish) bool { return q.Package == p.Package && q.Version == p.Version }) {
			continue
		}
		out = append(out, p)
		changed = true
	}
	out = slices.DeleteFunc(out, func(p Publish) bool {
		old := now.Sub(p.Published) > keep
		changed = changed || old
		return old
	})
	slices.SortFunc(out, func(a, b Publish) int { return b.Published.Compare(a.Published) })
	if len(out) > max {
		out, changed = out[:max], true
	}
	return out, changed
}
