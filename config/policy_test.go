package config

import (
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

func TestPolicyConfig(t *testing.T) {
	c, err := Load(writeConfig(t, `
policy:
  mode: dry-run
  cooldown: 48h
  actions:
    publish-window: quarantine
  rules:
    - match: "npm:@acme/*"
      cooldown: 0s
      actions: {new-publisher: warn}
    - match: "go:github.com/acme/*"
      fast_track: true
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Policy.Build()
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != policy.DryRun || p.Cooldown != 48*time.Hour || p.ReviewWindow != DefaultPolicy().ReviewWindow.D() {
		t.Errorf("policy = %+v", p)
	}
	e := p.For(verify.Artifact{Ecosystem: verify.NPM, Name: "@acme/x"})
	if e.Cooldown != 0 || e.Action(policy.CheckNewPublisher) != policy.Warn || e.Action(policy.CheckPublishWindow) != policy.Quarantine {
		t.Errorf("effective for @acme/x = %+v", e)
	}
	if e := p.For(verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/y"}); !e.FastTrack || e.Cooldown != 48*time.Hour {
		t.Errorf("effective for go acme = %+v", e)
	}
	if d, err := DefaultPolicy().Build(); err != nil || d.Mode != policy.Enforce || d.Cooldown != 24*time.Hour {
		t.Errorf("default policy = %+v, %v", d, err)
	}
}

func TestPolicyErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"policy: {mode: audit}", "policy.mode"},
		{"policy: {cooldown: -1h}", "policy.cooldown"},
		{"policy: {actions: {cooldwn: warn}}", "policy.actions.cooldwn"},
		{"policy: {actions: {cooldown: hold}}", "policy.actions.cooldown"},
		{"policy: {rules: [{match: lodash}]}", "policy.rules[0].match"},
		{"policy: {rules: [{match: 'npm:x', actions: {new-publisher: maybe}}]}", "policy.rules[0].actions.new-publisher"},
		{"policy: {rules: [{match: 'npm:x', cooldown: -2h}]}", "policy.rules[0].cooldown"},
		{"policy: {rules: [{match: 'npm:x', colour: red}]}", "policy.rules[0].colour"},
	} {
		_, err := Load(writeConfig(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: err = %v, want it to name %s", tc.body, err, tc.key)
		}
	}
}
