package anomaly_test

// Replay of real npm takeovers through the publish-time checks: each
// incident in testdata/incidents is the metadata of its malicious
// versions and the releases before them, reconstructed from public
// advisories and write-ups (sources and unknowns are in each file). The
// test judges every malicious version the way the npm front does
// (proxy/npm/judge.go) under policy.Default(): 10 minutes after its
// publish, and at the first public report. It renders the results table
// and compares it with docs/DETECTION.md, so the doc cannot drift from
// the code:
//
//	go test ./verify/anomaly -run Replay -update-detection
//
// rewrites the section between <!-- replay:begin --> and <!-- replay:end -->.

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/semver"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/policy"
)

var updateDetection = flag.Bool("update-detection", false, "rewrite the generated sections of docs/DETECTION.md")

const detectionDoc = "../../docs/DETECTION.md"

// incident is one file of testdata/incidents.
type incident struct {
	Incident       string            `json:"incident"`
	Package        string            `json:"package"`
	Sources        []string          `json:"sources"`
	AdvisoryAt     string            `json:"advisory_at"`
	AdvisorySource string            `json:"advisory_source"`
	FeedAt         string            `json:"feed_at"`
	Notes          string            `json:"notes"`
	Releases       []incidentRelease `json:"releases"`
	Malicious      []string          `json:"malicious"`

	file string
}

type incidentRelease struct {
	Version string `json:"version"`
	Line    string `json:"line"`
	// Published is RFC 3339, or empty when unknown (an old release whose
	// time only a mirror's ingest stamp would give).
	Published string `json:"published"`
	// PublishedPrecision is "lower-bound" when only the day is known and
	// Published is its start.
	PublishedPrecision string `json:"published_precision"`
	Publisher          string `json:"publisher"`
	TrustedPublisher   string `json:"trusted_publisher"`
	// Provenance is null when unknown; the checks then see none.
	Provenance     *bool    `json:"provenance"`
	InstallScripts []string `json:"install_scripts"`
	// InstallCommands are the hooks' commands where known.
	InstallCommands map[string]string `json:"install_commands"`
	Maintainers     []string          `json:"maintainers"`
	// AddedDependencies are dependencies this release added, with what
	// their range resolved to when it was published.
	AddedDependencies []incidentDep `json:"added_dependencies"`
}

type incidentDep struct {
	Name  string `json:"name"`
	Range string `json:"range"`
	// Created is the dependency package's first publish, RFC 3339, or
	// empty when unknown.
	Created                string   `json:"created"`
	Resolved               string   `json:"resolved"`
	ResolvedInstallScripts []string `json:"resolved_install_scripts"`
}

func loadIncidents(t *testing.T) []incident {
	t.Helper()
	files, err := filepath.Glob("testdata/incidents/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no incidents: %v", err)
	}
	var out []incident
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var in incident
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		in.file = filepath.Base(f)
		if len(in.Sources) == 0 || in.AdvisoryAt == "" || len(in.Malicious) == 0 {
			t.Fatalf("%s: needs sources, advisory_at and malicious", f)
		}
		for _, m := range in.Malicious {
			if !slices.ContainsFunc(in.Releases, func(r incidentRelease) bool { return r.Version == m }) {
				t.Fatalf("%s: malicious %s is not among the releases", f, m)
			}
		}
		out = append(out, in)
	}
	// Oldest incident first.
	slices.SortFunc(out, func(a, b incident) int { return strings.Compare(a.AdvisoryAt, b.AdvisoryAt) })
	return out
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

// historyAt is the package's history as a registry would have shown it
// at now: releases published by then (or of unknown, older time), in
// version order.
func (in incident) historyAt(t *testing.T, now time.Time) anomaly.History {
	var h anomaly.History
	for _, r := range in.Releases {
		p := mustTime(t, r.Published)
		if !p.IsZero() && p.After(now) {
			continue
		}
		h = append(h, anomaly.Release{
			Version: r.Version, Line: r.Line, Prerelease: semver.Prerelease("v"+r.Version) != "",
			Published: p, Publisher: r.Publisher, TrustedPublisher: r.TrustedPublisher,
			Provenance: r.Provenance != nil && *r.Provenance, InstallScripts: slices.Sorted(slices.Values(r.InstallScripts)),
			InstallCommands: r.InstallCommands, Maintainers: r.Maintainers,
		})
	}
	slices.SortStableFunc(h, func(a, b anomaly.Release) int { return semver.Compare("v"+a.Version, "v"+b.Version) })
	return h
}

// judged is what the npm front would make of one version at one moment.
type judged struct {
	verdict  verify.Verdict
	holding  []string // checks behind a hold
	warnings []string
	history  []string // holding checks other than the cooldown
}

// judge mirrors proxy/npm/judge.go: the cooldown against the clock, and
// the history checks, new dependencies, publish-window and burst for
// versions within the review window, under policy.Default().
func judge(h anomaly.History, deps []anomaly.Dependency, name, version string, now time.Time) judged {
	e := policy.Default().For(verify.Artifact{Ecosystem: verify.NPM, Name: name, Version: version})
	i := h.Index(version)
	var fs []verify.Finding
	if e.Cooldown > 0 {
		if f := anomaly.Cooldown(h[i], now, e.Cooldown); f != nil {
			fs = append(fs, *f)
		}
	}
	if p := h[i].Published; e.ReviewWindow == 0 || p.IsZero() || now.Sub(p) < e.ReviewWindow {
		fs = append(fs, anomaly.Check(h, i, anomaly.Options{})...)
		for _, d := range deps {
			if f := anomaly.NewDependency(name, h[i], d, e.Cooldown); f != nil {
				fs = append(fs, *f)
			}
		}
		if f := anomaly.PublishWindow(h, i, e.Window); f != nil {
			fs = append(fs, *f)
		}
		if f := anomaly.Burst(h, i); f != nil {
			fs = append(fs, *f)
		}
	}
	o := e.Decide(fs)
	j := judged{verdict: o.Verdict}
	for _, f := range o.Holding {
		j.holding = append(j.holding, f.Check)
		if f.Check != policy.CheckCooldown {
			j.history = append(j.history, f.Check)
		}
	}
	for _, f := range o.Warnings {
		j.warnings = append(j.warnings, f.Check)
	}
	return j
}

// replayRow is one malicious version.
type replayRow struct {
	in            incident
	version       string
	published     time.Time
	lowerBound    bool
	advisory      time.Time
	feed          time.Time
	atTen, atAdv  judged
	historyAtTen  []string // would hold once the cooldown has passed
	warningsAtTen []string
}

type replayResult struct {
	rows []replayRow
	// per incident: every malicious version held
	incidents, heldTen, heldAdvisory, heldHistory int
	versions, versionsHistory                     int
}

func replay(t *testing.T) replayResult {
	var res replayResult
	for _, in := range loadIncidents(t) {
		res.incidents++
		adv := mustTime(t, in.AdvisoryAt)
		allTen, allAdv, allHist := true, true, true
		for _, m := range in.Malicious {
			var rel incidentRelease
			for _, r := range in.Releases {
				if r.Version == m {
					rel = r
				}
			}
			pub := mustTime(t, rel.Published)
			ten := pub.Add(10 * time.Minute)
			row := replayRow{in: in, version: m, published: pub, lowerBound: rel.PublishedPrecision == "lower-bound",
				advisory: adv, feed: mustTime(t, in.FeedAt)}
			var deps []anomaly.Dependency
			for _, d := range rel.AddedDependencies {
				deps = append(deps, anomaly.Dependency{Name: d.Name, Range: d.Range, Created: mustTime(t, d.Created),
					Resolved: anomaly.Release{Version: d.Resolved, InstallScripts: d.ResolvedInstallScripts}})
			}
			row.atTen = judge(in.historyAt(t, ten), deps, in.Package, m, ten)
			row.atAdv = judge(in.historyAt(t, adv), deps, in.Package, m, adv)
			row.historyAtTen = row.atTen.history
			row.warningsAtTen = row.atTen.warnings
			res.versions++
			if len(row.historyAtTen) > 0 {
				res.versionsHistory++
			} else {
				allHist = false
			}
			allTen = allTen && row.atTen.verdict != verify.Allow
			allAdv = allAdv && row.atAdv.verdict != verify.Allow
			res.rows = append(res.rows, row)
		}
		if allTen {
			res.heldTen++
		}
		if allAdv {
			res.heldAdvisory++
		}
		if allHist {
			res.heldHistory++
		}
	}
	return res
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}

func verdictCell(j judged) string {
	if j.verdict == verify.Allow {
		return "**served**"
	}
	return "held: " + strings.Join(dedupe(j.holding), ", ")
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func orDash(s []string) string {
	if len(s) == 0 {
		return "—"
	}
	return strings.Join(dedupe(s), ", ")
}

// render is the generated section of docs/DETECTION.md.
func (res replayResult) render() string {
	var b strings.Builder
	b.WriteString("| incident | version | published (UTC) | first report | +10 min | at first report | holds after the cooldown | warns |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.rows {
		pub := r.published.UTC().Format("2006-01-02 15:04")
		delta := fmtDur(r.advisory.Sub(r.published))
		if r.lowerBound {
			pub = r.published.UTC().Format("2006-01-02") + " (day)"
			delta = "≤ " + delta
		}
		name := strings.TrimSuffix(r.in.file, ".json")
		fmt.Fprintf(&b, "| %s | %s@%s | %s | %s | %s | %s | %s | %s |\n",
			name, r.in.Package, r.version, pub, delta,
			verdictCell(r.atTen), verdictCell(r.atAdv), orDash(r.historyAtTen), orDash(r.warningsAtTen))
	}
	fmt.Fprintf(&b, "\nIncidents with every malicious version held 10 minutes after publish: **%d of %d**.  \n", res.heldTen, res.incidents)
	fmt.Fprintf(&b, "Incidents with every malicious version still held at the first public report: **%d of %d**.  \n", res.heldAdvisory, res.incidents)
	fmt.Fprintf(&b, "Incidents with every malicious version held by a check other than the cooldown (so still held once the cooldown ends, and recorded in `airlock quarantine list`): **%d of %d**; malicious versions: **%d of %d**.\n",
		res.heldHistory, res.incidents, res.versionsHistory, res.versions)
	return b.String()
}

// The measured outcome. The target is 9 of 10 incidents held
// before any advisory: the cooldown alone meets it. The history checks
// alone hold far fewer; DETECTION.md explains every miss. Change these
// only with the evidence, and the doc, that changed them.
const (
	wantIncidents       = 10
	wantHeldTen         = 10
	wantHeldAdvisory    = 10
	wantHeldHistory     = 8
	wantVersionsHistory = 15
	wantVersions        = 17
)

func TestReplayIncidents(t *testing.T) {
	res := replay(t)
	if res.incidents != wantIncidents {
		t.Errorf("incidents = %d, want %d", res.incidents, wantIncidents)
	}
	if res.heldTen < 9 {
		t.Errorf("held 10 minutes after publish: %d of %d, below the target of 9", res.heldTen, res.incidents)
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"incidents held at +10 min", res.heldTen, wantHeldTen},
		{"incidents held at the first report", res.heldAdvisory, wantHeldAdvisory},
		{"incidents held by history checks", res.heldHistory, wantHeldHistory},
		{"malicious versions", res.versions, wantVersions},
		{"malicious versions held by history checks", res.versionsHistory, wantVersionsHistory},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d (update the constants and docs/DETECTION.md with the evidence)", c.what, c.got, c.want)
		}
	}

	table := res.render()
	t.Log("\n" + table)
	if err := syncSection(detectionDoc, "replay", table, *updateDetection); err != nil {
		t.Error(err)
	}
}

// syncSection compares the text between <!-- name:begin --> and
// <!-- name:end --> in path with want, or rewrites it when update is set.
func syncSection(path, name, want string, update bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w (run with -update-detection after creating it with the markers)", path, err)
	}
	doc := string(b)
	begin, end := "<!-- "+name+":begin -->\n", "<!-- "+name+":end -->"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s…%s section", path, strings.TrimSpace(begin), end)
	}
	got := doc[i+len(begin) : j]
	if got == want {
		return nil
	}
	if !update {
		return fmt.Errorf("%s: the %s section differs from what the code measures; run go test ./verify/anomaly -run Replay -update-detection\n--- doc\n%s\n--- measured\n%s", path, name, got, want)
	}
	return os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644)
}
