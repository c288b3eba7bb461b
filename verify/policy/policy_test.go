package policy

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

func find(checks ...string) []verify.Finding {
	var fs []verify.Finding
	for _, c := range checks {
		fs = append(fs, verify.Finding{Check: c, Message: c})
	}
	return fs
}

func checks(fs []verify.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Check)
	}
	slices.Sort(out)
	return out
}

func TestDecide(t *testing.T) {
	npm := verify.Artifact{Ecosystem: verify.NPM, Name: "@acme/app", Version: "1.0.0"}
	hour := time.Hour
	p := Default()
	p.Rules = []Rule{
		{Match: "npm:@acme/*", Actions: map[string]Action{CheckNewPublisher: Warn}, Cooldown: &hour},
		{Match: "npm:lodash", FastTrack: true},
	}
	window := Default()
	window.Actions = map[string]Action{CheckPublishWindow: Quarantine}
	for _, tc := range []struct {
		name     string
		p        Policy
		a        verify.Artifact
		fs       []verify.Finding
		verdict  verify.Verdict
		holding  []string
		warnings []string
	}{
		{"nothing found", p, npm, nil, verify.Allow, nil, nil},
		{"defaults hold the strong signals", Default(), npm, find(CheckInstallScript, CheckNewPublisher), verify.Quarantine, []string{CheckInstallScript, CheckNewPublisher}, nil},
		{"a rule turns one into a warning", p, npm, find(CheckInstallScript, CheckNewPublisher), verify.Quarantine, []string{CheckInstallScript}, []string{CheckNewPublisher}},
		{"known-malicious denies", p, npm, find(CheckKnownMalicious, CheckCooldown), verify.Deny, []string{CheckCooldown, CheckKnownMalicious}, nil},
		{"publish-window warns by default", p, npm, find(CheckPublishWindow, CheckCooldown), verify.Quarantine, []string{CheckCooldown}, []string{CheckPublishWindow}},
		{"publish-window set to hold, alone, only warns", window, npm, find(CheckPublishWindow), verify.Allow, nil, []string{CheckPublishWindow}},
		{"publish-window set to hold adds to a hold", window, npm, find(CheckPublishWindow, CheckCooldown), verify.Quarantine, []string{CheckCooldown, CheckPublishWindow}, nil},
		{"an unknown check fails closed", p, npm, find("brand-new-check"), verify.Quarantine, []string{"brand-new-check"}, nil},
		{"fast-track skips the cooldown", p, verify.Artifact{Ecosystem: verify.NPM, Name: "lodash", Version: "4.17.22"}, find(CheckCooldown), verify.Allow, nil, nil},
		{"fast-track keeps other holds", p, verify.Artifact{Ecosystem: verify.NPM, Name: "lodash", Version: "4.17.22"}, find(CheckCooldown, CheckInstallScript), verify.Quarantine, []string{CheckInstallScript}, nil},
		{"dry-run holds nothing", func() Policy { q := Default(); q.Mode = DryRun; return q }(), npm, find(CheckKnownMalicious, CheckInstallScript), verify.Allow, nil, []string{CheckInstallScript, CheckKnownMalicious}},
		{"allow silences", func() Policy { q := Default(); q.Actions = map[string]Action{CheckCooldown: Allow}; return q }(), npm, find(CheckCooldown), verify.Allow, nil, nil},
	} {
		e := tc.p.For(tc.a)
		out := e.Decide(tc.fs)
		if out.Verdict != tc.verdict || !slices.Equal(checks(out.Holding), tc.holding) || !slices.Equal(checks(out.Warnings), tc.warnings) {
			t.Errorf("%s: %s holding %v warnings %v; want %s %v %v", tc.name, out.Verdict, checks(out.Holding), checks(out.Warnings), tc.verdict, tc.holding, tc.warnings)
		}
	}
	if e := p.For(npm); e.Cooldown != time.Hour || e.Rule != "npm:@acme/*" {
		t.Errorf("For(@acme/app) = %+v", e)
	}
	if e := p.For(verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/x"}); e.Cooldown != DefaultCooldown || e.Rule != "" {
		t.Errorf("For(go) = %+v", e)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		match string
		a     verify.Artifact
		want  bool
	}{
		{"npm:@acme/*", verify.Artifact{Ecosystem: verify.NPM, Name: "@acme/app"}, true},
		{"npm:@acme/*", verify.Artifact{Ecosystem: verify.NPM, Name: "@acme2/app"}, false},
		{"npm:*", verify.Artifact{Ecosystem: verify.NPM, Name: "@x/y"}, true},
		{"go:github.com/acme/*", verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/a/v2"}, true},
		{"go:github.com/acme/*", verify.Artifact{Ecosystem: verify.NPM, Name: "github.com/acme/a"}, false},
		{"oci:ghcr/acme/*", verify.Artifact{Ecosystem: verify.OCI, Name: "ghcr/acme/app"}, true},
		{"*:*", verify.Artifact{Ecosystem: verify.OCI, Name: "x"}, true},
		{"npm", verify.Artifact{Ecosystem: verify.NPM, Name: "npm"}, false},
	} {
		if got := Match(tc.match, tc.a); got != tc.want {
			t.Errorf("Match(%q, %v) = %v", tc.match, tc.a, got)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Policy{
		{Mode: "audit"},
		{Mode: Enforce, Actions: map[string]Action{CheckCooldown: "hold"}},
		{Mode: Enforce, Rules: []Rule{{Match: "lodash"}}},
		{Mode: Enforce, Rules: []Rule{{Match: "pypi:x"}}},
		{Mode: Enforce, Rules: []Rule{{Match: "npm:["}}},
		{Mode: Enforce, Rules: []Rule{{Match: "npm:x", Actions: map[string]Action{CheckCooldown: "nope"}}}},
	} {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) passed", p)
		}
	}
}

func TestExplain(t *testing.T) {
	e := Default().For(verify.Artifact{Ecosystem: verify.NPM, Name: "lib", Version: "1.0.1"})
	a := verify.Artifact{Ecosystem: verify.NPM, Name: "lib", Version: "1.0.1"}
	script := verify.Finding{Check: CheckInstallScript, Message: "adds postinstall"}
	integrity := verify.Finding{Check: "npm-integrity", Message: "bytes differ"}
	tests := []struct {
		name    string
		run     Run
		verdict verify.Verdict
		checks  map[string]string // check → result
	}{
		{"clean", Run{Ran: []string{CheckCooldown, CheckInstallScript}}, verify.Allow,
			map[string]string{CheckCooldown: Pass, CheckInstallScript: Pass}},
		{"a policy finding", Run{Ran: []string{CheckCooldown, CheckInstallScript}, Findings: []verify.Finding{script}}, verify.Quarantine,
			map[string]string{CheckCooldown: Pass, CheckInstallScript: Found}},
		{"a fixed check from the record", Run{Ran: []string{CheckCooldown}, Fixed: map[string]Action{"npm-integrity": Quarantine},
			Recorded: []verify.Finding{integrity, script}}, verify.Quarantine,
			map[string]string{CheckCooldown: Pass, "npm-integrity": Found}},
		{"a note a finding overrides", Run{Findings: []verify.Finding{script},
			Notes: []Checked{{Check: CheckInstallScript, Result: NotRun}, {Check: "signature", Result: NotRun}}}, verify.Quarantine,
			map[string]string{CheckInstallScript: Found, "signature": NotRun}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Explain(a, tt.run)
			if x.Verdict != tt.verdict {
				t.Errorf("verdict %s, want %s", x.Verdict, tt.verdict)
			}
			got := map[string]string{}
			for _, c := range x.Checks {
				if _, dup := got[c.Check]; dup {
					t.Errorf("%s listed twice", c.Check)
				}
				got[c.Check] = c.Result
			}
			if !maps.Equal(got, tt.checks) {
				t.Errorf("checks %v, want %v", got, tt.checks)
			}
		})
	}
	if x := e.Explain(a, Run{Off: true}); x.Mode != "off" {
		t.Errorf("mode %q", x.Mode)
	}
}
