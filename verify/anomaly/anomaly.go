// Package anomaly holds the publish-time checks: signals in how a version
// was released, read from the package's own history, that real account
// takeovers show (a release younger than a day, an install script the line
// never had, provenance that earlier versions had and this one lacks, a
// publisher the package never used). Each check is a pure function over a
// History and returns a finding with its evidence, or nil; policy decides
// what a finding leads to.
package anomaly

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

// Release is what the checks know of one version.
type Release struct {
	Version string
	// Line groups versions a caret range keeps together: the major
	// version, or "0.<minor>" below 1.0.0.
	Line       string
	Prerelease bool
	// Published is the registry's publish time; zero when it gave none.
	Published time.Time
	// Publisher is who published (npm _npmUser); empty when unknown.
	Publisher string
	// TrustedPublisher is the trusted-publishing identity (npm OIDC),
	// empty for a release published with a token.
	TrustedPublisher string
	Provenance       bool
	SourceRepository string
	Workflow         string
	// InstallScripts are the lifecycle hooks that run on install:
	// preinstall, install, postinstall, and gypfile (an implicit
	// node-gyp rebuild).
	InstallScripts []string
	// InstallCommands are the install hooks' commands, by hook name.
	InstallCommands map[string]string
	Maintainers     []string
	// Dependencies are the runtime dependencies, name → range.
	Dependencies map[string]string
}

// History is every release of one package in version order, oldest first.
type History []Release

// Index returns the position of version, or -1.
func (h History) Index(version string) int {
	return slices.IndexFunc(h, func(r Release) bool { return r.Version == version })
}

// previous returns up to n releases before i in the same line, nearest
// first, skipping prereleases unless h[i] is one.
func (h History) previous(i, n int) []Release {
	var out []Release
	for j := i - 1; j >= 0 && len(out) < n; j-- {
		if h[j].Line == h[i].Line && (!h[j].Prerelease || h[i].Prerelease) {
			out = append(out, h[j])
		}
	}
	return out
}

// before returns the release just before i in the same line, else just
// before it at all (the first of a new line is compared with the line
// below); ok is false for the first release.
func (h History) before(i int) (Release, bool) {
	if p := h.previous(i, 1); len(p) == 1 {
		return p[0], true
	}
	for j := i - 1; j >= 0; j-- {
		if !h[j].Prerelease || h[i].Prerelease {
			return h[j], true
		}
	}
	return Release{}, false
}

// DefaultSettled is how long a release must have been public before the
// release it is compared with came out: Options.Settled's default.
const DefaultSettled = 24 * time.Hour

// baseline is the release that release i is compared with: the newest
// earlier release of its line (else, for the first of a line, of any
// line) that had been public for settled when i came out. A release made
// minutes before, as often by the same attacker (ua-parser-js 0.7.29,
// 0.8.0 and 1.0.0 within minutes; eslint-config-prettier 10.1.6 and
// 10.1.7), is no baseline: compared with it, the second malicious release
// looks normal. A release without a publish time is not known to be
// young, so it qualifies. When release i has no time, or no release is
// old enough, it is the release just before (before).
func (h History) baseline(i int, settled time.Duration) (Release, bool) {
	if settled > 0 && !h[i].Published.IsZero() {
		cut := h[i].Published.Add(-settled)
		old := func(r Release) bool { return !r.Published.After(cut) }
		for _, p := range h.previous(i, len(h)) {
			if old(p) {
				return p, true
			}
		}
		for j := i - 1; j >= 0; j-- {
			if (!h[j].Prerelease || h[i].Prerelease) && old(h[j]) {
				return h[j], true
			}
		}
	}
	return h.before(i)
}

// Cooldown finds a release younger than d at now, or one whose age is
// unknown: a missing publish time fails closed. The time is the
// registry's, which an attacker cannot push back, never Airlock's first
// sight of the version.
func Cooldown(r Release, now time.Time, d time.Duration) *verify.Finding {
	if r.Published.IsZero() {
		return &verify.Finding{Check: "cooldown", Message: "the registry gives no publish time for this version, so its age is unknown",
			Evidence: map[string]string{"cooldown": d.String()}}
	}
	age := now.Sub(r.Published)
	if age >= d {
		return nil
	}
	until := r.Published.Add(d)
	return &verify.Finding{
		Check:   "cooldown",
		Message: fmt.Sprintf("published %s ago, younger than the %s cooldown (served from %s)", roundAge(age), d, until.UTC().Format(time.RFC3339)),
		Evidence: map[string]string{
			"published": r.Published.UTC().Format(time.RFC3339), "until": until.UTC().Format(time.RFC3339), "cooldown": d.String(),
		},
	}
}

func roundAge(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// CooldownUntil parses the "until" evidence of a cooldown finding; ok is
// false when the finding has none (an unknown publish time never ends).
func CooldownUntil(f verify.Finding) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, f.Evidence["until"])
	return t, err == nil
}

// InstallScriptAdded finds install hooks the release has and the one
// before it in its line did not: most worms and stealers of npm takeovers
// ran from a newly added postinstall.
func InstallScriptAdded(h History, i int, settled time.Duration) *verify.Finding {
	prev, ok := h.baseline(i, settled)
	if !ok {
		return nil
	}
	var added []string
	for _, s := range h[i].InstallScripts {
		if !slices.Contains(prev.InstallScripts, s) {
			added = append(added, s)
		}
	}
	if len(added) == 0 {
		return nil
	}
	return &verify.Finding{
		Check:   "install-script-added",
		Message: fmt.Sprintf("adds %s, which %s did not have", strings.Join(added, ", "), prev.Version),
		Evidence: map[string]string{
			"added": strings.Join(added, ","), "previous": prev.Version, "previous_scripts": strings.Join(prev.InstallScripts, ","),
		},
	}
}

// regressionDepth is how many earlier releases of the line provenance is
// compared with.
const regressionDepth = 3

// ProvenanceRegression finds a release with less provenance than earlier
// releases of its line had, or provenance from another repository or
// workflow. Only the same line is compared (an old major without
// provenance is no evidence), and trusted publishing counts as at least
// provenance: moving to it is not a regression.
func ProvenanceRegression(h History, i int) *verify.Finding {
	r := h[i]
	for _, p := range h.previous(i, regressionDepth) {
		if !p.Provenance && p.TrustedPublisher == "" {
			continue
		}
		ev := map[string]string{"previous": p.Version, "previous_repository": p.SourceRepository, "previous_workflow": p.Workflow}
		switch {
		case !r.Provenance && r.TrustedPublisher == "":
			return &verify.Finding{Check: "provenance-regression",
				Message:  fmt.Sprintf("has no provenance or trusted publisher, which %s had", p.Version),
				Evidence: ev}
		case r.Provenance && p.Provenance && p.SourceRepository != "" && !strings.EqualFold(r.SourceRepository, p.SourceRepository):
			ev["repository"] = r.SourceRepository
			return &verify.Finding{Check: "provenance-regression",
				Message:  fmt.Sprintf("was built from %s, %s from %s", r.SourceRepository, p.Version, p.SourceRepository),
				Evidence: ev}
		case r.Provenance && p.Provenance && p.Workflow != "" && r.Workflow != p.Workflow:
			ev["workflow"] = r.Workflow
			return &verify.Finding{Check: "provenance-regression",
				Message:  fmt.Sprintf("was built by workflow %s, %s by %s", r.Workflow, p.Version, p.Workflow),
				Evidence: ev}
		}
		return nil // the nearest release with provenance decides
	}
	return nil
}

// NewPublisher finds a release published by someone who published none of
// the last n releases before it. An unknown publisher (a registry or
// mirror that does not say) is not a finding.
func NewPublisher(h History, i, n int) *verify.Finding {
	r := h[i]
	who := r.Publisher
	if r.TrustedPublisher != "" {
		who = r.TrustedPublisher
	}
	if who == "" || i == 0 {
		return nil
	}
	var seen []string
	for j := i - 1; j >= 0 && len(seen) < n; j-- {
		p := h[j].Publisher
		if h[j].TrustedPublisher != "" {
			p = h[j].TrustedPublisher
		}
		if p == "" {
			continue
		}
		if p == who {
			return nil
		}
		seen = append(seen, p)
	}
	if len(seen) == 0 {
		return nil
	}
	return &verify.Finding{
		Check:    "new-publisher",
		Message:  fmt.Sprintf("published by %s, who published none of the %d releases before it", who, len(seen)),
		Evidence: map[string]string{"publisher": who, "recent_publishers": strings.Join(dedupe(seen), ",")},
	}
}

// MaintainerAdded finds maintainers the release lists and the one before
// it did not.
func MaintainerAdded(h History, i int, settled time.Duration) *verify.Finding {
	prev, ok := h.baseline(i, settled)
	if !ok || len(prev.Maintainers) == 0 {
		return nil
	}
	var added []string
	for _, m := range h[i].Maintainers {
		if !slices.Contains(prev.Maintainers, m) {
			added = append(added, m)
		}
	}
	if len(added) == 0 {
		return nil
	}
	return &verify.Finding{
		Check:    "maintainer-added",
		Message:  fmt.Sprintf("lists maintainers %s, which %s did not", strings.Join(added, ", "), prev.Version),
		Evidence: map[string]string{"added": strings.Join(added, ","), "previous": prev.Version},
	}
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// Options tune Check.
type Options struct {
	// Publishers is how many earlier releases new-publisher looks at.
	Publishers int
	// Settled is how long before a release the release it is compared
	// with must have been published (install scripts, maintainers);
	// DefaultSettled when zero.
	Settled time.Duration
}

// Check runs every history check on release i (all but cooldown, which
// depends on the clock and is run where the time is known).
func Check(h History, i int, o Options) []verify.Finding {
	if o.Publishers <= 0 {
		o.Publishers = 5
	}
	if o.Settled <= 0 {
		o.Settled = DefaultSettled
	}
	var out []verify.Finding
	for _, f := range []*verify.Finding{
		InstallScriptAdded(h, i, o.Settled),
		InstallScriptChanged(h, i, o.Settled),
		ProvenanceRegression(h, i),
		NewPublisher(h, i, o.Publishers),
		MaintainerAdded(h, i, o.Settled),
	} {
		if f != nil {
			out = append(out, *f)
		}
	}
	return out
}

// Window is a namespace's publishing hours: releases outside them are
// unusual. The zero Window (no days) checks nothing.
type Window struct {
	Location *time.Location
	Days     [7]bool // by time.Weekday
	From, To int     // minutes after midnight; To <= From spans midnight
}

func (w Window) contains(t time.Time) bool {
	t = t.In(w.Location)
	m := t.Hour()*60 + t.Minute()
	if w.From < w.To {
		return w.Days[t.Weekday()] && m >= w.From && m < w.To
	}
	// Across midnight: the part after midnight belongs to the day before.
	if m >= w.From {
		return w.Days[t.Weekday()]
	}
	return m < w.To && w.Days[(t.Weekday()+6)%7]
}

// usualDepth is how many of a publisher's earlier releases make a habit.
const usualDepth = 5

// PublishWindow finds a release published outside the configured hours,
// or outside its publisher's own habit (no earlier release of theirs
// within two hours of the time of day, given at least five). It is a weak
// signal alone (chalk and Shai-Hulud 2.0 were published in office hours):
// policy adds it to other findings, never holds on it alone.
func PublishWindow(h History, i int, w Window) *verify.Finding {
	r := h[i]
	if r.Published.IsZero() {
		return nil
	}
	if w.Location != nil && w.Days != [7]bool{} && !w.contains(r.Published) {
		local := r.Published.In(w.Location)
		return &verify.Finding{Check: "publish-window",
			Message:  fmt.Sprintf("published %s, outside the namespace's publishing hours", local.Format("Mon 15:04 MST")),
			Evidence: map[string]string{"published": r.Published.UTC().Format(time.RFC3339), "local": local.Format(time.RFC3339), "timezone": w.Location.String()}}
	}
	if r.Publisher == "" {
		return nil
	}
	var hours []string
	usual := false
	for j := i - 1; j >= 0 && len(hours) < usualDepth; j-- {
		p := h[j]
		if p.Publisher != r.Publisher || p.Published.IsZero() {
			continue
		}
		d := minutesApart(p.Published, r.Published)
		if d <= 120 {
			usual = true
		}
		hours = append(hours, p.Published.UTC().Format("15:04"))
	}
	if usual || len(hours) < usualDepth {
		return nil
	}
	return &verify.Finding{Check: "publish-window",
		Message:  fmt.Sprintf("published at %s UTC, far from %s's usual hours", r.Published.UTC().Format("15:04"), r.Publisher),
		Evidence: map[string]string{"published": r.Published.UTC().Format(time.RFC3339), "usual_utc": strings.Join(hours, ",")}}
}

// minutesApart is the distance between two times of day, around the clock.
func minutesApart(a, b time.Time) int {
	ma := a.UTC().Hour()*60 + a.UTC().Minute()
	mb := b.UTC().Hour()*60 + b.UTC().Minute()
	d := ma - mb
	if d < 0 {
		d = -d
	}
	return min(d, 24*60-d)
}

// BurstWindow is how close releases must be to count as one burst.
const BurstWindow = time.Hour

// Burst finds a release its publisher made together with releases of
// other lines of the package, within BurstWindow: a takeover pushes
// every major at once (ua-parser-js, eslint-config-prettier), while a
// maintainer's backports are rarer. Unknown publishers or times never make
// a burst.
func Burst(h History, i int) *verify.Finding {
	r := h[i]
	if r.Publisher == "" || r.Published.IsZero() {
		return nil
	}
	lines := map[string]string{r.Line: r.Version}
	for j, p := range h {
		if j == i || p.Publisher != r.Publisher || p.Published.IsZero() {
			continue
		}
		if d := p.Published.Sub(r.Published); d > -BurstWindow && d < BurstWindow {
			if _, ok := lines[p.Line]; !ok {
				lines[p.Line] = p.Version
			}
		}
	}
	if len(lines) < 2 {
		return nil
	}
	var vs []string
	for _, v := range lines {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return &verify.Finding{Check: "burst",
		Message:  fmt.Sprintf("%s published %d release lines within %s: %s", r.Publisher, len(lines), BurstWindow, strings.Join(vs, ", ")),
		Evidence: map[string]string{"publisher": r.Publisher, "versions": strings.Join(vs, ","), "window": BurstWindow.String()}}
}
