package config

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"
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
	// Malicious are known-malicious feeds: directories or zips of OSV
	// records in the ossf/malicious-packages layout (or osv.dev's
	// per-ecosystem all.zip). A version they name is denied.
	Malicious []string `yaml:"malicious"`
	// MaliciousRefresh is how often the feeds' files are checked for
	// changes (and reloaded, re-judging every version seen).
	MaliciousRefresh Duration `yaml:"malicious_refresh"`
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
// checks on the last 30 days, feeds checked for changes every 10 minutes.
func DefaultPolicy() Policy {
	return Policy{Mode: "enforce", Cooldown: Duration(24 * time.Hour), ReviewWindow: Duration(30 * 24 * time.Hour), MaliciousRefresh: Duration(10 * time.Minute)}
}

// validActions are what a check's finding may lead to.
var validActions = map[string]bool{"allow": true, "warn": true, "quarantine": true, "deny": true}

// validate checks what the file can get wrong; the check names themselves
// are the policy engine's and are checked when cmd builds it.
func (p Policy) validate() error {
	if p.Mode != "enforce" && p.Mode != "dry-run" {
		return fmt.Errorf("policy.mode: %q must be enforce or dry-run", p.Mode)
	}
	if p.Cooldown < 0 {
		return fmt.Errorf("policy.cooldown: must not be negative")
	}
	if p.ReviewWindow < 0 {
		return fmt.Errorf("policy.review_window: must not be negative")
	}
	if p.MaliciousRefresh <= 0 {
		return fmt.Errorf("policy.malicious_refresh: must be positive")
	}
	for i, m := range p.Malicious {
		if _, err := os.Stat(m); err != nil {
			return fmt.Errorf("policy.malicious[%d]: %w", i, err)
		}
	}
	actions := func(key string, m map[string]string) error {
		for check, a := range m {
			if !validActions[a] {
				return fmt.Errorf("%s.%s: %q must be allow, warn, quarantine or deny", key, check, a)
			}
		}
		return nil
	}
	if err := actions("policy.actions", p.Actions); err != nil {
		return err
	}
	for i, r := range p.Rules {
		key := fmt.Sprintf("policy.rules[%d]", i)
		eco, glob, ok := strings.Cut(r.Match, ":")
		if !ok || glob == "" || (eco != "go" && eco != "npm" && eco != "oci" && eco != "*") {
			return fmt.Errorf("%s.match: %q: want <go|npm|oci|*>:<name glob>, e.g. npm:@acme/*", key, r.Match)
		}
		if _, err := path.Match(glob, ""); err != nil {
			return fmt.Errorf("%s.match: %q: %w", key, r.Match, err)
		}
		if r.Cooldown != nil && *r.Cooldown < 0 {
			return fmt.Errorf("%s.cooldown: must not be negative", key)
		}
		if err := actions(key+".actions", r.Actions); err != nil {
			return err
		}
	}
	return nil
}
