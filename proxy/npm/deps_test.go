package npm_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm"
	"github.com/airlock-proxy/airlock/proxy/npm/npmtest"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// TestNewDependency: the axios 2026-03 shape. A patch release adds a
// dependency on a package created the day before, whose version runs a
// postinstall; the release itself has no install script. It is held for
// the dependency, and so is the next release an hour later; a release
// adding an old dependency without scripts is not.
func TestNewDependency(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	add := func(p npmtest.Package) {
		t.Helper()
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	add(npmtest.Package{Name: "left-pad", Versions: []npmtest.Version{{Version: "1.3.0", Published: now.AddDate(-3, 0, 0)}}})
	add(npmtest.Package{Name: "plain-crypto-js", Versions: []npmtest.Version{
		{Version: "4.2.0", Published: now.Add(-50 * time.Hour)},
		{Version: "4.2.1", Published: now.Add(-49 * time.Hour), Scripts: map[string]string{"postinstall": "node setup.js"}},
	}})
	add(npmtest.Package{Name: "client", Versions: []npmtest.Version{
		{Version: "1.14.0", Published: now.Add(-30 * 24 * time.Hour)},
		{Version: "1.14.1", Published: now.Add(-48 * time.Hour), Dependencies: map[string]string{"plain-crypto-js": "^4.2.0"}},
		{Version: "1.14.2", Published: now.Add(-47 * time.Hour), Dependencies: map[string]string{"plain-crypto-js": "^4.2.0", "left-pad": "^1.3.0"}},
	}})
	add(npmtest.Package{Name: "tidy", Versions: []npmtest.Version{
		{Version: "2.0.0", Published: now.Add(-30 * 24 * time.Hour)},
		{Version: "2.0.1", Published: now.Add(-48 * time.Hour), Dependencies: map[string]string{"left-pad": "^1.3.0"}},
	}})
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = policy.Default() })
	_, body := f.get(t, "/client", "")
	pk := decode(t, body)
	vs := pk["versions"].(map[string]any)
	if _, ok := vs["1.14.1"]; ok {
		t.Error("1.14.1, which adds a postinstall through a day-old dependency, is listed")
	}
	if _, ok := vs["1.14.0"]; !ok {
		t.Error("1.14.0 is withheld")
	}
	st, err := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "client", Version: "1.14.1"})
	if err != nil || st.Quarantine == nil {
		t.Fatalf("1.14.1 not on record: %+v, %v", st, err)
	}
	fd := st.Quarantine.Findings[0]
	if fd.Check != policy.CheckInstallScript || fd.Evidence["dependency"] != "plain-crypto-js" || fd.Evidence["resolved"] != "4.2.1" ||
		!strings.Contains(fd.Message, "runs postinstall") || !strings.Contains(fd.Message, "before this release") {
		t.Errorf("finding %+v", fd)
	}
	resp, body := f.get(t, "/client/-/client-1.14.1.tgz", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "plain-crypto-js") {
		t.Errorf("tarball 1.14.1 = %d %s", resp.StatusCode, body)
	}
	// 1.14.2, an hour after 1.14.1, is compared with 1.14.0 (1.14.1 had
	// not been public for a day): the payload is as new in it.
	if st, _ := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "client", Version: "1.14.2"}); st.Quarantine == nil ||
		st.Quarantine.Findings[0].Evidence["dependency"] != "plain-crypto-js" {
		t.Errorf("1.14.2: %+v", st.Quarantine)
	}
	// A release adding only an old, script-free dependency is not held.
	_, body = f.get(t, "/tidy", "")
	if _, ok := decode(t, body)["versions"].(map[string]any)["2.0.1"]; !ok {
		st, _ := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "tidy", Version: "2.0.1"})
		t.Errorf("tidy@2.0.1 withheld: %+v", st.Quarantine)
	}
	if qs, _ := f.meta.Quarantines(ctx, cache.QuarantineFilter{}); len(qs) != 2 {
		t.Errorf("records: %+v", qs)
	}
}

// TestBurstAcrossPackages: one account releasing several packages within
// the hour (chalk/debug, 2025-09-08) is a burst, seen across every
// packument Airlock reads; the third package read carries the finding.
func TestBurstAcrossPackages(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	for i, name := range []string{"chalk", "ansi-styles", "debug", "unrelated"} {
		who := "qix"
		if name == "unrelated" {
			who = "someone"
		}
		if err := reg.Add(npmtest.Package{Name: name, Versions: []npmtest.Version{
			{Version: "1.0.0", Published: now.Add(-90 * 24 * time.Hour), Publisher: who},
			{Version: "1.0.1", Published: now.Add(-48*time.Hour + time.Duration(i)*10*time.Minute), Publisher: who},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	p := policy.Default()
	p.Actions = map[string]policy.Action{policy.CheckBurst: policy.Quarantine}
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = p })
	for _, name := range []string{"chalk", "ansi-styles", "unrelated", "debug"} {
		f.get(t, "/"+name, "")
	}
	st, err := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "debug", Version: "1.0.1"})
	if err != nil || st.Quarantine == nil {
		t.Fatalf("debug@1.0.1 not held: %+v, %v", st, err)
	}
	if fd := st.Quarantine.Findings[0]; fd.Check != policy.CheckBurst || fd.Evidence["packages"] != "ansi-styles@1.0.1,chalk@1.0.1" {
		t.Errorf("finding %+v", fd)
	}
	// A publisher with one package has no burst.
	if st, _ := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "unrelated", Version: "1.0.1"}); st.Quarantine != nil {
		t.Errorf("unrelated@1.0.1 held: %+v", st.Quarantine)
	}
}

// TestLatestBackwards: a lower version published after a higher one and
// tagged latest (which npm's client refuses to do implicitly) is held as
// content-changed; a rollback of latest to an older release is not.
func TestLatestBackwards(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	for _, p := range []npmtest.Package{
		{Name: "lib", Versions: []npmtest.Version{
			{Version: "1.9.0", Published: now.Add(-100 * 24 * time.Hour)},
			{Version: "2.0.0", Published: now.Add(-10 * 24 * time.Hour)},
			{Version: "1.9.1", Published: now.Add(-48 * time.Hour)},
		}, DistTags: map[string]string{"latest": "1.9.1"}},
		{Name: "rolled-back", Versions: []npmtest.Version{
			{Version: "1.9.0", Published: now.Add(-100 * 24 * time.Hour)},
			{Version: "2.0.0", Published: now.Add(-10 * 24 * time.Hour)},
		}, DistTags: map[string]string{"latest": "1.9.0"}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = policy.Default() })
	_, body := f.get(t, "/lib", "")
	if latest := decode(t, body)["dist-tags"].(map[string]any)["latest"]; latest == "1.9.1" {
		t.Error("latest still names 1.9.1")
	}
	st, err := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "lib", Version: "1.9.1"})
	if err != nil || st.Quarantine == nil || st.Quarantine.Findings[0].Check != policy.CheckContentChanged || st.Quarantine.Findings[0].Evidence["higher"] != "2.0.0" {
		t.Fatalf("1.9.1: %+v, %v", st, err)
	}
	_, body = f.get(t, "/rolled-back", "")
	if latest := decode(t, body)["dist-tags"].(map[string]any)["latest"]; latest != "1.9.0" {
		t.Errorf("a rollback's latest = %v", latest)
	}
}

// TestTyposquat: a young package one keystroke from a package in use here
// is a typosquat finding (warn by default; held when the policy says
// so); an established look-alike is not judged.
func TestTyposquat(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	for _, p := range []npmtest.Package{
		{Name: "lodash", Versions: []npmtest.Version{{Version: "4.17.21", Published: now.AddDate(-4, 0, 0)}}},
		{Name: "lodahs", Versions: []npmtest.Version{{Version: "4.17.21", Published: now.Add(-48 * time.Hour)}}},
		{Name: "lodasg", Versions: []npmtest.Version{{Version: "1.0.0", Published: now.AddDate(-3, 0, 0)}}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	p := policy.Default()
	p.Actions = map[string]policy.Action{policy.CheckTyposquat: policy.Quarantine}
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = p })
	if resp, _ := f.get(t, "/lodash/-/lodash-4.17.21.tgz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("lodash = %d", resp.StatusCode)
	}
	resp, body := f.get(t, "/lodahs/-/lodahs-4.17.21.tgz", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "typosquat") || !strings.Contains(npmError(t, body), "lodash") {
		t.Errorf("lodahs = %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.get(t, "/lodasg/-/lodasg-1.0.0.tgz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("an established look-alike = %d", resp.StatusCode)
	}
	// By default it is a warning: served, on the allow decision.
	f2 := newFixture(t, reg, func(o *npm.Options) { o.Checks = policy.Default() })
	f2.get(t, "/lodash/-/lodash-4.17.21.tgz", "")
	if resp, _ := f2.get(t, "/lodahs/-/lodahs-4.17.21.tgz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("default policy: lodahs = %d", resp.StatusCode)
	}
	st, _ := f2.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "lodahs", Version: "4.17.21"})
	if !policy.HasCheck(st.Decision.Findings, policy.CheckTyposquat) {
		t.Errorf("the warning is not on the decision: %+v", st.Decision)
	}
}

// TestNewDependencyAliasAndOutside: an alias is checked as the package it
// names, and a dependency from outside the registry is a finding.
func TestNewDependencyAliasAndOutside(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	for _, p := range []npmtest.Package{
		{Name: "lodash", Versions: []npmtest.Version{{Version: "4.17.21", Published: now.AddDate(-4, 0, 0)}}},
		{Name: "plain-crypto-js", Versions: []npmtest.Version{{Version: "4.2.1", Published: now.AddDate(-1, 0, 0), Scripts: map[string]string{"postinstall": "node setup.js"}}}},
		{Name: "aliased", Versions: []npmtest.Version{
			{Version: "1.0.0", Published: now.AddDate(0, -2, 0)},
			{Version: "1.0.1", Published: now.Add(-48 * time.Hour), Dependencies: map[string]string{"lodash": "npm:plain-crypto-js@4.2.1"}},
		}},
		{Name: "gitdep", Versions: []npmtest.Version{
			{Version: "1.0.0", Published: now.AddDate(0, -2, 0)},
			{Version: "1.0.1", Published: now.Add(-48 * time.Hour), Dependencies: map[string]string{"helper": "git+https://example.invalid/helper.git"}},
		}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = policy.Default() })
	for name, want := range map[string]string{"aliased": "npm:plain-crypto-js", "gitdep": "from outside the registry"} {
		f.get(t, "/"+name, "")
		st, err := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: name, Version: "1.0.1"})
		if err != nil || st.Quarantine == nil || !strings.Contains(st.Quarantine.Findings[0].Message, want) {
			t.Errorf("%s@1.0.1: %+v, %v; want a finding naming %q", name, st.Quarantine, err, want)
		}
	}
}
