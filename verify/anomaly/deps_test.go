package anomaly_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify/anomaly"
)

func TestAddedDependencies(t *testing.T) {
	deps := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	h := anomaly.History{
		{Version: "1.0.0", Line: "1", Dependencies: deps("a", "^1.0.0")},
		{Version: "1.0.1", Line: "1", Dependencies: deps("a", "^1.0.0", "b", "^2.0.0", "c", "*")},
		{Version: "2.0.0", Line: "2", Dependencies: deps("d", "^1.0.0")},
		{Version: "2.0.1", Line: "2", Dependencies: deps("d", "^1.1.0")}, // a range change is not a new dependency
	}
	tests := []struct {
		i    int
		want []string
	}{
		{0, nil}, // the first release: nothing is news
		{1, []string{"b", "c"}},
		{2, []string{"d"}}, // a new line is compared with the line below
		{3, nil},
	}
	for _, tt := range tests {
		if got := anomaly.AddedDependencies(h, tt.i, 0); !slices.Equal(got, tt.want) {
			t.Errorf("AddedDependencies(%s) = %v, want %v", h[tt.i].Version, got, tt.want)
		}
	}
}

func TestNewDependency(t *testing.T) {
	pub := time.Date(2026, 3, 31, 0, 21, 0, 0, time.UTC)
	r := anomaly.Release{Version: "1.14.1", Published: pub}
	tests := []struct {
		name string
		pkg  string
		dep  anomaly.Dependency
		want []string // substrings of the message; nil: no finding
	}{
		{"payload package with a postinstall, created the day before", "axios", anomaly.Dependency{Name: "plain-crypto-js", Range: "^4.2.1", Created: pub.Add(-18 * time.Hour),
			Resolved: anomaly.Release{Version: "4.2.1", InstallScripts: []string{"postinstall"}}},
			[]string{"plain-crypto-js@4.2.1 runs postinstall", "first published 18h0m0s before this release"}},
		{"old package with an install script", "axios", anomaly.Dependency{Name: "esbuild", Range: "^0.25.0", Created: pub.AddDate(-5, 0, 0),
			Resolved: anomaly.Release{Version: "0.25.9", InstallScripts: []string{"postinstall"}}},
			[]string{"esbuild@0.25.9 runs postinstall"}},
		{"package created after the release", "axios", anomaly.Dependency{Name: "later", Range: "*", Created: pub.Add(time.Hour)},
			[]string{"first published 1h0m0s after this release"}},
		{"old package, no scripts", "axios", anomaly.Dependency{Name: "lodash", Range: "^4.17.21", Created: pub.AddDate(-10, 0, 0),
			Resolved: anomaly.Release{Version: "4.17.21"}}, nil},
		{"old package recently updated", "axios", anomaly.Dependency{Name: "debug", Range: "^4", Created: pub.AddDate(-10, 0, 0),
			Resolved: anomaly.Release{Version: "4.4.3", Published: pub.Add(-time.Hour)}}, nil},
		{"creation unknown, no scripts", "axios", anomaly.Dependency{Name: "x", Range: "git+https://example.com/x.git"}, nil},
		{"a new package of the same scope", "@acme/widget", anomaly.Dependency{Name: "@acme/util", Range: "~2.0.0", Created: pub},
			nil},
		{"a new package of another scope", "@acme/widget", anomaly.Dependency{Name: "@evil/util", Range: "~2.0.0", Created: pub},
			[]string{"first published 0s before this release"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := anomaly.NewDependency(tt.pkg, r, tt.dep, 24*time.Hour)
			if tt.want == nil {
				if f != nil {
					t.Fatalf("finding %+v, want none", f)
				}
				return
			}
			if f == nil {
				t.Fatal("no finding")
			}
			if f.Check != "install-script-added" || f.Evidence["dependency"] != tt.dep.Name || f.Evidence["range"] != tt.dep.Range {
				t.Errorf("finding %+v", f)
			}
			for _, w := range tt.want {
				if !strings.Contains(f.Message, w) {
					t.Errorf("message %q lacks %q", f.Message, w)
				}
			}
		})
	}
	// With the cooldown off, only install scripts count.
	young := anomaly.Dependency{Name: "fresh", Range: "*", Created: pub.Add(-time.Hour)}
	if f := anomaly.NewDependency("axios", r, young, 0); f != nil {
		t.Errorf("cooldown 0: %+v", f)
	}
}

func TestBurstAcross(t *testing.T) {
	at := time.Date(2025, 9, 8, 13, 16, 0, 0, time.UTC)
	r := anomaly.Release{Version: "4.4.2", Publisher: "qix", Published: at}
	log := anomaly.PublishLog{
		{Package: "chalk", Version: "5.6.1", Published: at.Add(-20 * time.Minute)},
		{Package: "ansi-styles", Version: "6.2.2", Published: at.Add(10 * time.Minute)},
		{Package: "debug", Version: "4.4.1", Published: at.Add(-40 * 24 * time.Hour)}, // the package itself, long ago
		{Package: "strip-ansi", Version: "7.1.1", Published: at.Add(-3 * time.Hour)},  // outside the window
	}
	tests := []struct {
		name string
		r    anomaly.Release
		log  anomaly.PublishLog
		want string // substring; "" for no finding
	}{
		{"two other packages within the hour", r, log, "qix published 2 other projects within 1h0m0s of this release: ansi-styles@6.2.2, chalk@5.6.1"},
		{"one other package is not a burst", r, log[1:], ""},
		{"the package's own releases do not count", r, anomaly.PublishLog{
			{Package: "debug", Version: "4.4.3", Published: at}, {Package: "chalk", Version: "5.6.1", Published: at},
		}, ""},
		{"a monorepo's scope is one release", anomaly.Release{Version: "7.28.0", Publisher: "nicolo", Published: at}, anomaly.PublishLog{
			{Package: "@babel/core", Version: "7.28.0", Published: at}, {Package: "@babel/types", Version: "7.28.0", Published: at},
			{Package: "chalk", Version: "5.6.1", Published: at},
		}, ""},
		{"other scopes count once each", r, anomaly.PublishLog{
			{Package: "@babel/core", Version: "7.28.0", Published: at}, {Package: "@babel/types", Version: "7.28.0", Published: at},
		}, ""},
		{"unknown publisher", anomaly.Release{Version: "1.0.0", Published: at}, log, ""},
		{"unknown time", anomaly.Release{Version: "1.0.0", Publisher: "qix"}, log, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg := "debug"
			if strings.HasPrefix(tt.name, "a monorepo") {
				pkg = "@babel/parser"
			}
			f := anomaly.BurstAcross(pkg, tt.r, tt.log)
			switch {
			case tt.want == "" && f != nil:
				t.Errorf("finding %+v, want none", f)
			case tt.want != "" && (f == nil || !strings.Contains(f.Message, tt.want) || f.Check != "burst"):
				t.Errorf("finding %+v, want %q", f, tt.want)
			}
		})
	}
}

func TestPublishLogAdd(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := func(pkg string, ago time.Duration) anomaly.Publish {
		return anomaly.Publish{Package: pkg, Version: "1.0.0", Published: now.Add(-ago)}
	}
	log, changed := anomaly.PublishLog(nil).Add([]anomaly.Publish{p("a", time.Hour), p("b", 2*time.Hour), p("old", 40*24*time.Hour)}, now, 30*24*time.Hour, 3)
	if !changed || len(log) != 2 || log[0].Package != "a" {
		t.Fatalf("log = %+v, %v", log, changed)
	}
	if _, changed := log.Add([]anomaly.Publish{p("a", time.Hour)}, now, 30*24*time.Hour, 3); changed {
		t.Error("adding a known release changed the log")
	}
	log, _ = log.Add([]anomaly.Publish{p("c", 3*time.Hour), p("d", 0)}, now, 30*24*time.Hour, 3)
	var names []string
	for _, e := range log {
		names = append(names, e.Package)
	}
	if !slices.Equal(names, []string{"d", "a", "b"}) {
		t.Errorf("bounded log = %v, want the newest three", names)
	}
}

func TestLatestBackwards(t *testing.T) {
	at := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	rel := func(v string, days int, pre bool) anomaly.Release {
		return anomaly.Release{Version: v, Published: at.AddDate(0, 0, days), Prerelease: pre}
	}
	h := anomaly.History{
		rel("1.9.0", -100, false),
		rel("1.9.1", 0, false), // a backport published after 2.0.0
		rel("2.0.0", -10, false),
		rel("3.0.0-rc.1", -1, true),
	}
	if f := anomaly.LatestBackwards(h, 1); f == nil || f.Check != "content-changed" || f.Evidence["higher"] != "2.0.0" {
		t.Errorf("a later lower release as latest: %+v", f)
	}
	if f := anomaly.LatestBackwards(h, 0); f != nil {
		t.Errorf("a rollback to an older release: %+v", f)
	}
	if f := anomaly.LatestBackwards(h, 2); f != nil {
		t.Errorf("the highest release (a prerelease above does not count): %+v", f)
	}
}

func TestInstallScriptChanged(t *testing.T) {
	at := time.Date(2025, 8, 26, 22, 32, 0, 0, time.UTC)
	rel := func(v string, days int, cmds map[string]string) anomaly.Release {
		return anomaly.Release{Version: v, Line: "21", Published: at.AddDate(0, 0, days), InstallCommands: cmds}
	}
	post := func(c string) map[string]string { return map[string]string{"postinstall": c} }
	tests := []struct {
		name string
		h    anomaly.History
		want string // substring; "" for none
	}{
		{"nx: same hook, another command", anomaly.History{rel("21.4.1", -5, post("node ./bin/post-install")), rel("21.5.0", 0, post("node telemetry.js"))},
			`postinstall from "node ./bin/post-install" to "node telemetry.js"`},
		{"unchanged", anomaly.History{rel("1.0.0", -5, post("node-gyp rebuild")), rel("1.0.1", 0, post("node-gyp rebuild"))}, ""},
		{"moved to another hook", anomaly.History{
			rel("18.1.0", -5, map[string]string{"install": "node install.js"}),
			rel("18.2.0", 0, map[string]string{"postinstall": "node install.js"})}, ""},
		{"a new hook is not a change", anomaly.History{rel("1.0.0", -5, nil), rel("1.0.1", 0, post("node x.js"))}, ""},
		{"only the form changed", anomaly.History{rel("0.4.3", -5, map[string]string{"install": "./bin/install.js"}),
			rel("0.5.0", 0, map[string]string{"install": "node  ./bin/install.js || exit 0"})}, ""},
		{"nx 21.x: a tolerated failure does not hide a new script", anomaly.History{rel("21.4.1", -5, post("node ./bin/post-install || exit 0")),
			rel("21.5.0", 0, post("node telemetry.js"))}, "telemetry.js"},
		{"compared with the settled release, not the attacker's previous one", anomaly.History{
			rel("21.4.0", -5, post("node ./bin/post-install")),
			anomaly.Release{Version: "21.4.1", Line: "21", Published: at.Add(-10 * time.Minute), InstallCommands: post("node telemetry.js")},
			rel("21.5.0", 0, post("node telemetry.js"))}, "node telemetry.js"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := anomaly.InstallScriptChanged(tt.h, len(tt.h)-1, anomaly.DefaultSettled)
			switch {
			case tt.want == "" && f != nil:
				t.Errorf("finding %+v", f)
			case tt.want != "" && (f == nil || f.Check != "install-script-changed" || !strings.Contains(f.Message, tt.want)):
				t.Errorf("finding %+v, want %q", f, tt.want)
			}
		})
	}
}

func TestTyposquat(t *testing.T) {
	known := []string{"lodash", "cross-env", "lodash.merge", "express", "react-dom", "ms", "@acme/utils"}
	tests := []struct {
		name string
		want string // the similar name; "" for none
	}{
		{"lodahs", "lodash"},      // transposition
		{"lodashs", "lodash"},     // insertion
		{"crossenv", "cross-env"}, // separators
		{"lodash_merge", "lodash.merge"},
		{"expres", "express"}, // deletion
		{"exprezz", ""},       // two edits
		{"react-dnd", ""},     // two edits
		{"lodash", ""},        // itself
		{"mz", ""},            // too short to judge
		{"@acme/utilz", "@acme/utils"},
		{"left-pad", ""},
	}
	for _, tt := range tests {
		f := anomaly.Typosquat(tt.name, known)
		got := ""
		if f != nil {
			got = f.Evidence["similar"]
			if f.Check != "typosquat" {
				t.Errorf("%s: check %q", tt.name, f.Check)
			}
		}
		if got != tt.want {
			t.Errorf("Typosquat(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestResolveDependency(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := anomaly.History{
		{Version: "1.0.0", Published: at},
		{Version: "1.2.0", Published: at.AddDate(0, 1, 0)},
		{Version: "2.0.0-beta.1", Published: at.AddDate(0, 2, 0), Prerelease: true},
		{Version: "2.0.0", Published: at.AddDate(0, 3, 0), InstallScripts: []string{"postinstall"}},
	}
	tags := map[string]string{"latest": "2.0.0", "next": "2.0.0-beta.1"}
	tests := []struct{ spec, want string }{
		{"^1.0.0", "1.2.0"},
		{"~1.0.0", "1.0.0"},
		{"*", "2.0.0"},
		{"", "2.0.0"},
		{">=1 <2", "1.2.0"},
		{"next", "2.0.0-beta.1"},
		{"latest", "2.0.0"},
		{"^3", ""},
		{"git+https://example.com/x.git", ""},
	}
	for _, tt := range tests {
		d := anomaly.ResolveDependency("x", tt.spec, h, tags, time.Time{})
		if d.Resolved.Version != tt.want || !d.Created.Equal(at) {
			t.Errorf("%q resolved to %q (created %v), want %q", tt.spec, d.Resolved.Version, d.Created, tt.want)
		}
	}
	if d := anomaly.ResolveDependency("x", "*", h, tags, at.AddDate(-1, 0, 0)); !d.Created.Equal(at.AddDate(-1, 0, 0)) {
		t.Errorf("the registry's created time is earlier: %v", d.Created)
	}
}

func TestSplitSpec(t *testing.T) {
	tests := []struct {
		name, spec, target, rng string
		outside                 bool
	}{
		{"lodash", "^4.17.21", "lodash", "^4.17.21", false},
		{"lodash", "latest", "lodash", "latest", false},
		{"lodash", "", "lodash", "", false},
		{"lodash", ">=4 <5 || 3.x", "lodash", ">=4 <5 || 3.x", false},
		{"lodash", "npm:plain-crypto-js@4.2.1", "plain-crypto-js", "4.2.1", false},
		{"x", "npm:@evil/pkg@^1", "@evil/pkg", "^1", false},
		{"x", "npm:@evil/pkg", "@evil/pkg", "", false},
		{"x", "git+https://github.com/evil/x.git", "x", "git+https://github.com/evil/x.git", true},
		{"x", "github:evil/x", "x", "github:evil/x", true},
		{"x", "evil/x#main", "x", "evil/x#main", true},
		{"x", "https://evil.example/x.tgz", "x", "https://evil.example/x.tgz", true},
		{"x", "file:../x", "x", "file:../x", true},
	}
	for _, tt := range tests {
		target, rng, outside := anomaly.SplitSpec(tt.name, tt.spec)
		if target != tt.target || rng != tt.rng || outside != tt.outside {
			t.Errorf("SplitSpec(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.name, tt.spec, target, rng, outside, tt.target, tt.rng, tt.outside)
		}
	}
	if f := anomaly.NewDependency("x", anomaly.Release{Version: "1.0.1"}, anomaly.Dependency{Name: "h", Range: "github:evil/h", Outside: true}, 0); f == nil || !strings.Contains(f.Message, "outside the registry") {
		t.Errorf("outside dependency: %+v", f)
	}
}
