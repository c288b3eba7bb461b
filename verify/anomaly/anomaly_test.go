package anomaly

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 9, 8, 13, 0, 0, 0, time.UTC)

// rel is a release of line major, published days before t0 by alice with
// nothing special, to be tweaked per case.
func rel(v, line string, days int) Release {
	return Release{Version: v, Line: line, Published: t0.Add(-time.Duration(days) * 24 * time.Hour), Publisher: "alice", Maintainers: []string{"alice"}}
}

func with(r Release, f func(*Release)) Release { f(&r); return r }

func TestCooldown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       Release
		finding bool
		until   bool
	}{
		{"minutes old", with(rel("1.0.1", "1", 0), func(r *Release) { r.Published = t0.Add(-16 * time.Minute) }), true, true},
		{"23h old", with(rel("1.0.1", "1", 0), func(r *Release) { r.Published = t0.Add(-23 * time.Hour) }), true, true},
		{"exactly 24h", with(rel("1.0.1", "1", 0), func(r *Release) { r.Published = t0.Add(-24 * time.Hour) }), false, false},
		{"years old", rel("1.0.1", "1", 900), false, false},
		{"no publish time fails closed", with(rel("1.0.1", "1", 0), func(r *Release) { r.Published = time.Time{} }), true, false},
		{"published in the future", with(rel("1.0.1", "1", 0), func(r *Release) { r.Published = t0.Add(time.Hour) }), true, true},
	} {
		f := Cooldown(tc.r, t0, 24*time.Hour)
		if (f != nil) != tc.finding {
			t.Errorf("%s: finding = %v, want %v", tc.name, f, tc.finding)
			continue
		}
		if f == nil {
			continue
		}
		u, ok := CooldownUntil(*f)
		if ok != tc.until || (ok && !u.Equal(tc.r.Published.Add(24*time.Hour))) {
			t.Errorf("%s: until = %v, %v", tc.name, u, ok)
		}
	}
}

func TestInstallScriptAdded(t *testing.T) {
	post := func(r *Release) { r.InstallScripts = []string{"postinstall"} }
	for _, tc := range []struct {
		name  string
		h     History
		i     int
		added string
	}{
		{"postinstall added in a patch (Shai-Hulud)", History{rel("4.1.0", "4", 30), rel("4.1.1", "4", 20), with(rel("4.1.2", "4", 0), post)}, 2, "postinstall"},
		{"already had it", History{with(rel("4.1.1", "4", 20), post), with(rel("4.1.2", "4", 0), post)}, 1, ""},
		{"gypfile added", History{rel("1.0.0", "1", 20), with(rel("1.0.1", "1", 0), func(r *Release) { r.InstallScripts = []string{"gypfile"} })}, 1, "gypfile"},
		{"compared with the same line, not the newest version", History{rel("1.9.0", "1", 30), with(rel("2.0.0", "2", 20), post), with(rel("1.9.1", "1", 0), post)}, 2, "postinstall"},
		// The same line had it, though a newer major did not.
		{"same line had it", History{with(rel("1.9.0", "1", 30), post), rel("2.0.0", "2", 20), with(rel("1.9.1", "1", 0), post)}, 2, ""},
		{"first of a new line compares with the line below", History{rel("1.9.0", "1", 30), with(rel("2.0.0", "2", 0), post)}, 1, "postinstall"},
		{"first release ever", History{with(rel("0.0.1", "0.0", 0), post)}, 0, ""},
		{"prereleases skipped for a release", History{rel("1.0.0", "1", 30), with(with(rel("1.0.1-rc.1", "1", 10), post), func(r *Release) { r.Prerelease = true }), with(rel("1.0.1", "1", 0), post)}, 2, "postinstall"},
	} {
		f := InstallScriptAdded(tc.h, tc.i, 0)
		got := ""
		if f != nil {
			got = f.Evidence["added"]
		}
		if got != tc.added {
			t.Errorf("%s: added = %q (%v), want %q", tc.name, got, f, tc.added)
		}
	}
}

func TestProvenanceRegression(t *testing.T) {
	prov := func(repo, wf string) func(*Release) {
		return func(r *Release) { r.Provenance, r.SourceRepository, r.Workflow = true, repo, wf }
	}
	tp := func(r *Release) { r.TrustedPublisher = "github:acme/app:release.yml" }
	good := prov("github.com/acme/app", ".github/workflows/release.yml")
	for _, tc := range []struct {
		name string
		h    History
		i    int
		want string // substring of the message, "" for no finding
	}{
		{"provenance dropped (nx, axios)", History{with(rel("21.5.0", "21", 10), good), with(rel("21.5.1", "21", 0), func(*Release) {})}, 1, "no provenance"},
		{"never had it", History{rel("1.0.0", "1", 10), rel("1.0.1", "1", 0)}, 1, ""},
		{"kept it", History{with(rel("1.0.0", "1", 10), good), with(rel("1.0.1", "1", 0), good)}, 1, ""},
		// pnpm users' false positives: only the same major line counts.
		{"an older major without provenance is no regression", History{with(rel("2.0.0", "2", 10), good), rel("1.9.9", "1", 0)}, 1, ""},
		{"moved from provenance to trusted publishing", History{with(rel("1.0.0", "1", 10), good), with(rel("1.0.1", "1", 0), tp)}, 1, ""},
		{"trusted publishing dropped", History{with(rel("1.0.0", "1", 10), tp), rel("1.0.1", "1", 0)}, 1, "no provenance"},
		{"another repository", History{with(rel("1.0.0", "1", 10), good), with(rel("1.0.1", "1", 0), prov("github.com/evil/app", ".github/workflows/release.yml"))}, 1, "github.com/evil/app"},
		{"another workflow", History{with(rel("1.0.0", "1", 10), good), with(rel("1.0.1", "1", 0), prov("github.com/acme/app", ".github/workflows/pwn.yml"))}, 1, "pwn.yml"},
		{"repository case differs only", History{with(rel("1.0.0", "1", 10), good), with(rel("1.0.1", "1", 0), prov("github.com/ACME/app", ".github/workflows/release.yml"))}, 1, ""},
	} {
		f := ProvenanceRegression(tc.h, tc.i)
		switch {
		case tc.want == "" && f != nil:
			t.Errorf("%s: unexpected finding %v", tc.name, f.Message)
		case tc.want != "" && (f == nil || !strings.Contains(f.Message, tc.want)):
			t.Errorf("%s: finding %v, want one saying %q", tc.name, f, tc.want)
		}
	}
}

func TestNewPublisher(t *testing.T) {
	by := func(who string) func(*Release) { return func(r *Release) { r.Publisher = who } }
	for _, tc := range []struct {
		name string
		h    History
		i    int
		want bool
	}{
		{"takeover by a stranger", History{rel("1.0.0", "1", 30), rel("1.0.1", "1", 20), with(rel("1.0.2", "1", 0), by("mallory"))}, 2, true},
		{"same publisher", History{rel("1.0.0", "1", 30), rel("1.0.1", "1", 0)}, 1, false},
		{"a co-maintainer who published before", History{with(rel("1.0.0", "1", 30), by("bob")), rel("1.0.1", "1", 20), with(rel("1.0.2", "1", 0), by("bob"))}, 2, false},
		{"unknown publisher (mirror strips _npmUser)", History{rel("1.0.0", "1", 30), with(rel("1.0.1", "1", 0), by(""))}, 1, false},
		{"history without publishers", History{with(rel("1.0.0", "1", 30), by("")), with(rel("1.0.1", "1", 0), by("bob"))}, 1, false},
		{"first release", History{rel("1.0.0", "1", 0)}, 0, false},
		{"moved to trusted publishing with the same id", History{
			with(rel("1.0.0", "1", 30), func(r *Release) { r.TrustedPublisher = "gh:acme" }),
			with(rel("1.0.1", "1", 0), func(r *Release) { r.TrustedPublisher = "gh:acme"; r.Publisher = "GitHub Actions" })}, 1, false},
	} {
		if f := NewPublisher(tc.h, tc.i, 5); (f != nil) != tc.want {
			t.Errorf("%s: finding %v, want %v", tc.name, f, tc.want)
		}
	}
}

func TestCheckIncidentShape(t *testing.T) {
	// debug@4.4.2, 2025-09-08: a patch minutes old, by the maintainer's
	// phished account (same publisher), no install script (the payload
	// was in index.js): only the cooldown catches it.
	h := History{rel("4.4.0", "4", 300), rel("4.4.1", "4", 60), with(rel("4.4.2", "4", 0), func(r *Release) { r.Published = t0.Add(-10 * time.Minute) })}
	if fs := Check(h, 2, Options{}); len(fs) != 0 {
		t.Errorf("debug@4.4.2 history findings = %v, want none", fs)
	}
	if Cooldown(h[2], t0, 24*time.Hour) == nil {
		t.Error("debug@4.4.2 not caught by the cooldown")
	}
	// A Shai-Hulud shape: new publisher token, postinstall added,
	// provenance dropped.
	h = History{
		with(rel("1.2.0", "1", 40), func(r *Release) { r.Provenance, r.SourceRepository = true, "github.com/acme/x" }),
		with(rel("1.2.1", "1", 0), func(r *Release) { r.Publisher, r.InstallScripts = "npm-token-7", []string{"postinstall"} }),
	}
	fs := Check(h, 1, Options{})
	got := map[string]bool{}
	for _, f := range fs {
		got[f.Check] = true
	}
	for _, c := range []string{"install-script-added", "provenance-regression", "new-publisher"} {
		if !got[c] {
			t.Errorf("Shai-Hulud shape lacks %s: %v", c, fs)
		}
	}
}

func TestPublishWindow(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err) // Go embeds none unless asked; the UTC cases below still run
	}
	week := [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}
	office := Window{Location: berlin, Days: week, From: 8 * 60, To: 19 * 60}
	at := func(s string) Release {
		p, _ := time.Parse(time.RFC3339, s)
		return Release{Version: "1.0.1", Published: p, Publisher: "alice"}
	}
	for _, tc := range []struct {
		name string
		r    Release
		w    Window
		want bool
	}{
		{"Tuesday 10:00 Berlin", at("2025-09-09T08:00:00Z"), office, false},
		{"Tuesday 03:00 Berlin", at("2025-09-09T01:00:00Z"), office, true},
		{"Saturday noon", at("2025-09-13T10:00:00Z"), office, true},
		{"no window configured", at("2025-09-13T10:00:00Z"), Window{}, false},
		{"night shift across midnight", at("2025-09-09T21:30:00Z"), Window{Location: berlin, Days: week, From: 22 * 60, To: 6 * 60}, false},
	} {
		if f := PublishWindow(History{tc.r}, 0, tc.w); (f != nil) != tc.want {
			t.Errorf("%s: %v, want finding %v", tc.name, f, tc.want)
		}
	}
}

func TestPublishWindowHabit(t *testing.T) {
	day := func(d, hour int, who string) Release {
		return Release{Version: fmt.Sprintf("1.0.%d", d), Line: "1", Publisher: who,
			Published: time.Date(2025, 9, 1+d, hour, 0, 0, 0, time.UTC)}
	}
	h := History{day(0, 14, "alice"), day(1, 15, "alice"), day(2, 14, "alice"), day(3, 16, "alice"), day(4, 15, "alice")}
	if f := PublishWindow(append(h, day(5, 15, "alice")), 5, Window{}); f != nil {
		t.Errorf("in habit: %v", f)
	}
	if f := PublishWindow(append(h, day(5, 3, "alice")), 5, Window{}); f == nil {
		t.Error("03:00 for a 14:00–16:00 publisher: no finding")
	}
	if f := PublishWindow(append(h[:3], day(5, 3, "alice")), 3, Window{}); f != nil {
		t.Errorf("three releases are no habit: %v", f)
	}
}

func TestBurst(t *testing.T) {
	at := func(v, line string, minutes int, who string) Release {
		return Release{Version: v, Line: line, Publisher: who, Published: t0.Add(time.Duration(minutes) * time.Minute)}
	}
	// eslint-config-prettier, 2025-07-18: 8.10.1, 9.1.1, 10.1.6 within minutes.
	h := History{at("8.10.0", "8", -500000, "alice"), at("8.10.1", "8", 0, "alice"), at("9.1.1", "9", 4, "alice"), at("10.1.6", "10", 9, "alice")}
	if f := Burst(h, 1); f == nil || f.Evidence["versions"] != "10.1.6,8.10.1,9.1.1" {
		t.Errorf("three lines in minutes: %v", f)
	}
	for _, tc := range []struct {
		name string
		h    History
	}{
		{"two patches of one line", History{at("1.0.1", "1", 0, "alice"), at("1.0.2", "1", 10, "alice")}},
		{"lines a day apart", History{at("1.0.1", "1", 0, "alice"), at("2.0.1", "2", 24*60, "alice")}},
		{"different publishers", History{at("1.0.1", "1", 0, "alice"), at("2.0.1", "2", 5, "bob")}},
		{"unknown publisher", History{at("1.0.1", "1", 0, ""), at("2.0.1", "2", 5, "")}},
	} {
		if f := Burst(tc.h, 0); f != nil {
			t.Errorf("%s: %v", tc.name, f)
		}
	}
}
