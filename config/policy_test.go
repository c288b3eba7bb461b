package config

import (
	"strings"
	"testing"
	"time"
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
	p := c.Policy
	if p.Mode != "dry-run" || p.Cooldown.D() != 48*time.Hour || p.ReviewWindow != DefaultPolicy().ReviewWindow || p.MaliciousRefresh.D() != 10*time.Minute {
		t.Errorf("policy = %+v", p)
	}
	if len(p.Rules) != 2 || p.Rules[0].Cooldown == nil || *p.Rules[0].Cooldown != 0 || p.Rules[0].Actions["new-publisher"] != "warn" || !p.Rules[1].FastTrack {
		t.Errorf("rules = %+v", p.Rules)
	}
}

func TestPolicyErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"policy: {mode: audit}", "policy.mode"},
		{"policy: {cooldown: -1h}", "policy.cooldown"},
		{"policy: {review_window: -1h}", "policy.review_window"},
		{"policy: {actions: {cooldown: hold}}", "policy.actions.cooldown"},
		{"policy: {rules: [{match: lodash}]}", "policy.rules[0].match"},
		{"policy: {rules: [{match: 'pypi:x'}]}", "policy.rules[0].match"},
		{"policy: {rules: [{match: 'npm:['}]}", "policy.rules[0].match"},
		{"policy: {rules: [{match: 'npm:x', actions: {new-publisher: maybe}}]}", "policy.rules[0].actions.new-publisher"},
		{"policy: {rules: [{match: 'npm:x', cooldown: -2h}]}", "policy.rules[0].cooldown"},
		{"policy: {rules: [{match: 'npm:x', colour: red}]}", "policy.rules[0].colour"},
		{"policy: {malicious: [/nonexistent/osv]}", "policy.malicious[0]"},
		{"policy: {advisories: [/nonexistent/osv]}", "policy.advisories[0]"},
		{"policy: {malicious_refresh: 0s}", "policy.malicious_refresh"},
		{"policy: {publish_window: {timezone: Mars/Olympus, days: [mon], hours: '08:00-19:00'}}", "policy.publish_window.timezone"},
		{"policy: {publish_window: {timezone: UTC, days: [someday], hours: '08:00-19:00'}}", "policy.publish_window.days"},
		{"policy: {publish_window: {timezone: UTC, days: [mon], hours: '8-19'}}", "policy.publish_window.hours"},
		{"policy: {rules: [{match: 'npm:x', publish_window: {timezone: UTC, days: [], hours: '08:00-19:00'}}]}", "policy.rules[0].publish_window.days"},
	} {
		_, err := Load(writeConfig(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: err = %v, want it to name %s", tc.body, err, tc.key)
		}
	}
}
