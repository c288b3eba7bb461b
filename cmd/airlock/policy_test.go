package main

import (
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

func TestBuildPolicy(t *testing.T) {
	zero := config.Duration(0)
	cfg := config.DefaultPolicy()
	cfg.Mode = "dry-run"
	cfg.Actions = map[string]string{"publish-window": "quarantine"}
	cfg.Rules = []config.PolicyRule{
		{Match: "npm:@acme/*", Cooldown: &zero, Actions: map[string]string{"new-publisher": "warn"}},
		{Match: "go:github.com/acme/*", FastTrack: true},
	}
	p, err := buildPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != policy.DryRun || p.Cooldown != 24*time.Hour {
		t.Errorf("policy = %+v", p)
	}
	e := p.For(verify.Artifact{Ecosystem: verify.NPM, Name: "@acme/x"})
	if e.Cooldown != 0 || e.Action(policy.CheckNewPublisher) != policy.Warn || e.Action(policy.CheckPublishWindow) != policy.Quarantine {
		t.Errorf("effective for @acme/x = %+v", e)
	}
	if e := p.For(verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/y"}); !e.FastTrack {
		t.Errorf("effective for go acme = %+v", e)
	}
	for _, tc := range []struct {
		mod func(*config.Policy)
		key string
	}{
		{func(p *config.Policy) { p.Actions = map[string]string{"cooldwn": "warn"} }, "policy.actions.cooldwn"},
		{func(p *config.Policy) {
			p.Rules = []config.PolicyRule{{Match: "npm:x", Actions: map[string]string{"typo": "warn"}}}
		}, "policy.rules[0].actions.typo"},
	} {
		c := config.DefaultPolicy()
		tc.mod(&c)
		if _, err := buildPolicy(c); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("err = %v, want it to name %s", err, tc.key)
		}
	}
}
