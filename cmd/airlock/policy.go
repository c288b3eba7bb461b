package main

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// buildPolicy turns the policy section into the engine's policy. The file
// was validated by config; what only the engine knows (its check names) is
// checked here, still naming the key.
func buildPolicy(p config.Policy) (policy.Policy, error) {
	known := policy.Defaults()
	actions := func(key string, m map[string]string) (map[string]policy.Action, error) {
		out := map[string]policy.Action{}
		for check, a := range m {
			if _, ok := known[check]; !ok {
				return nil, fmt.Errorf("%s.%s: unknown check (known: %v)", key, check, slices.Sorted(maps.Keys(known)))
			}
			out[check] = policy.Action(a)
		}
		return out, nil
	}
	out := policy.Policy{Mode: policy.Mode(p.Mode), Cooldown: p.Cooldown.D(), ReviewWindow: p.ReviewWindow.D()}
	window := func(w *config.Window) anomaly.Window {
		loc, days, from, to, _ := w.Parse() // validated by config
		return anomaly.Window{Location: loc, Days: days, From: from, To: to}
	}
	if p.PublishWindow != nil {
		out.Window = window(p.PublishWindow)
	}
	var err error
	if out.Actions, err = actions("policy.actions", p.Actions); err != nil {
		return out, err
	}
	for i, r := range p.Rules {
		rule := policy.Rule{Match: r.Match, FastTrack: r.FastTrack, CI: r.CI}
		if rule.Actions, err = actions(fmt.Sprintf("policy.rules[%d].actions", i), r.Actions); err != nil {
			return out, err
		}
		if r.PublishWindow != nil {
			w := window(r.PublishWindow)
			rule.Window = &w
		}
		if r.Cooldown != nil {
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
