package config

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/airlock-proxy/airlock/verify/policy"
)

// Policy configures the policy engine: which findings of the publish-time
// checks hold a version, per namespace (see docs/POLICY.md).
type Policy struct {
	// Mode is enforce, or dry-run (findings are logged, nothing held).
	Mode string `yaml:"mode"`
	// Cooldown holds versions younger than this; 0 turns it off.
	Cooldown Duration `yaml:"cooldown"`
	// ReviewWindow bounds the history checks to versions published
	// within it; 0 means every version.
	ReviewWindow Duration `yaml:"review_window"`
	// Actions map a check to allow, warn, quarantine or deny, over the
	// defaults.
	Actions map[string]string `yaml:"actions"`
	// Rules override for namespaces; the first match applies.
	Rules []PolicyRule `yaml:"rules"`
}

// PolicyRule is a namespace's exceptions.
type PolicyRule struct {
	// Match is "<ecosystem>:<name glob>": npm:@acme/*, go:github.com/acme/*,
	// oci:ghcr/acme/*.
	Match    string            `yaml:"match"`
	Cooldown *Duration         `yaml:"cooldown"`
	Actions  map[string]string `yaml:"actions"`
	// FastTrack skips the cooldown for the namespace.
	FastTrack bool `yaml:"fast_track"`
}

// DefaultPolicy is the engine's default: enforce, 24 h cooldown, history
// checks on the last 30 days.
func DefaultPolicy() Policy {
	d := policy.Default()
	return Policy{Mode: string(d.Mode), Cooldown: Duration(d.Cooldown), ReviewWindow: Duration(d.ReviewWindow)}
}

// Build returns the engine's policy; errors name the key.
func (p Policy) Build() (policy.Policy, error) {
	known := policy.Defaults()
	actions := func(key string, m map[string]string) (map[string]policy.Action, error) {
		out := map[string]policy.Action{}
		for check, a := range m {
			if _, ok := known[check]; !ok {
				return nil, fmt.Errorf("%s.%s: unknown check (known: %v)", key, check, slices.Sorted(maps.Keys(known)))
			}
			if !policy.Action(a).Valid() {
				return nil, fmt.Errorf("%s.%s: %q must be allow, warn, quarantine or deny", key, check, a)
			}
			out[check] = policy.Action(a)
		}
		return out, nil
	}
	out := policy.Policy{Mode: policy.Mode(p.Mode), Cooldown: p.Cooldown.D(), ReviewWindow: p.ReviewWindow.D()}
	if out.Mode != policy.Enforce && out.Mode != policy.DryRun {
		return out, fmt.Errorf("policy.mode: %q must be enforce or dry-run", p.Mode)
	}
	if p.Cooldown < 0 || p.ReviewWindow < 0 {
		return out, fmt.Errorf("policy.cooldown, policy.review_window: must not be negative")
	}
	var err error
	if out.Actions, err = actions("policy.actions", p.Actions); err != nil {
		return out, err
	}
	for i, r := range p.Rules {
		key := fmt.Sprintf("policy.rules[%d]", i)
		rule := policy.Rule{Match: r.Match, FastTrack: r.FastTrack}
		if rule.Actions, err = actions(key+".actions", r.Actions); err != nil {
			return out, err
		}
		if r.Cooldown != nil {
			if *r.Cooldown < 0 {
				return out, fmt.Errorf("%s.cooldown: must not be negative", key)
			}
			d := time.Duration(*r.Cooldown)
			rule.Cooldown = &d
		}
		out.Rules = append(out.Rules, rule)
	}
	if err := out.Validate(); err != nil {
		return out, fmt.Errorf("policy.%w", err)
	}
	return out, nil
}
