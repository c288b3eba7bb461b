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
	// PublishWindow is the namespace's publishing hours; releases
	// outside them are a weak finding (publish-window).
	PublishWindow *Window `yaml:"publish_window"`
	// Rules override for namespaces; the first match applies.
	Rules []PolicyRule `yaml:"rules"`
	// Malicious are known-malicious feeds: directories or zips of OSV
	// records in the ossf/malicious-packages layout (or osv.dev's
	// per-ecosystem all.zip). A version they name is denied.
	Malicious []string `yaml:"malicious"`
	// MaliciousRefresh is how often the feeds' files (malicious and
	// advisories) are checked for changes (and reloaded, re-judging every
	// version seen).
	MaliciousRefresh Duration `yaml:"malicious_refresh"`
	// Advisories are vulnerability feeds (OSV records: osv.dev's
	// per-ecosystem all.zip, or a directory of them). A version an
	// advisory names as the fix of a vulnerability skips the cooldown:
	// a security fix is not held for a day.
	Advisories []string `yaml:"advisories"`
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
	// CI declares the namespace built by the organisation's CI: every
	// version must match a CI record (POST /admin/api/v1/ci/records,
	// airlock ci import).
	CI bool `yaml:"ci"`
	// PublishWindow replaces the policy's publishing hours.
	PublishWindow *Window `yaml:"publish_window"`
}

// Window is a namespace's publishing hours.
type Window struct {
	// Timezone is an IANA name: Europe/Berlin, America/New_York, UTC.
	Timezone string `yaml:"timezone"`
	// Days are mon, tue, wed, thu, fri, sat, sun.
	Days []string `yaml:"days"`
	// Hours is "HH:MM-HH:MM"; an end before the start spans midnight.
	Hours string `yaml:"hours"`
}

// weekdays by their names in the file.
var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Parse checks the window and returns its parts: the location, the days
// by time.Weekday, and the hours as minutes after midnight.
func (w Window) Parse() (*time.Location, [7]bool, int, int, error) {
	var days [7]bool
	loc, err := time.LoadLocation(w.Timezone)
	if err != nil || w.Timezone == "" {
		return nil, days, 0, 0, fmt.Errorf("timezone: %q is not an IANA time zone (e.g. Europe/Berlin)", w.Timezone)
	}
	if len(w.Days) == 0 {
		return nil, days, 0, 0, fmt.Errorf("days: name at least one of mon, tue, wed, thu, fri, sat, sun")
	}
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return nil, days, 0, 0, fmt.Errorf("days: %q is not one of mon, tue, wed, thu, fri, sat, sun", d)
		}
		days[wd] = true
	}
	var h1, m1, h2, m2 int
	if n, err := fmt.Sscanf(w.Hours, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil || n != 4 ||
		h1 < 0 || h1 > 23 || h2 < 0 || h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59 {
		return nil, days, 0, 0, fmt.Errorf("hours: %q: want HH:MM-HH:MM, e.g. 08:00-19:00", w.Hours)
	}
	return loc, days, h1*60 + m1, h2*60 + m2, nil
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
	for i, m := range p.Advisories {
		if _, err := os.Stat(m); err != nil {
			return fmt.Errorf("policy.advisories[%d]: %w", i, err)
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
	if p.PublishWindow != nil {
		if _, _, _, _, err := p.PublishWindow.Parse(); err != nil {
			return fmt.Errorf("policy.publish_window.%w", err)
		}
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
		if r.PublishWindow != nil {
			if _, _, _, _, err := r.PublishWindow.Parse(); err != nil {
				return fmt.Errorf("%s.publish_window.%w", key, err)
			}
		}
	}
	return nil
}
