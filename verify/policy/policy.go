// Package policy turns findings into actions. Checks (verify/anomaly,
// known-malicious feeds, CI records…) only report what they saw; a policy
// says, per namespace, which of those findings hold a version, which only
// warn, and whether Airlock enforces at all or runs dry.
package policy

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
)

// Action is what a finding of a check leads to.
type Action string

// The actions, weakest first. Warn serves the version and logs the finding;
// Quarantine holds it until an admin releases it (or, for cooldown, until
// it comes of age); Deny refuses it outright.
const (
	Allow      Action = "allow"
	Warn       Action = "warn"
	Quarantine Action = "quarantine"
	Deny       Action = "deny"
)

func (a Action) rank() int {
	return slices.Index([]Action{Allow, Warn, Quarantine, Deny}, a)
}

// Valid reports whether a is one of the actions.
func (a Action) Valid() bool { return a.rank() >= 0 }

// Mode is enforce (actions apply) or dry-run (every action is logged as a
// warning and nothing is held: to tune a policy against real traffic).
type Mode string

// The modes.
const (
	Enforce Mode = "enforce"
	DryRun  Mode = "dry-run"
)

// Checks with a default action. WithOther is the action of a check that
// must not hold a version alone (publish-window): it applies only when
// another finding holds the version too.
const (
	CheckCooldown          = "cooldown"
	CheckInstallScript     = "install-script-added"
	CheckInstallChanged    = "install-script-changed"
	CheckProvenanceRegress = "provenance-regression"
	CheckNewPublisher      = "new-publisher"
	CheckMaintainerAdded   = "maintainer-added"
	CheckPublishWindow     = "publish-window"
	CheckBurst             = "burst"
	CheckContentChanged    = "content-changed"
	CheckKnownMalicious    = "known-malicious"
	CheckCIDigest          = "ci-digest"
	CheckUnpublished       = "unpublished"
	CheckTyposquat         = "typosquat"
)

// Defaults are the actions for a newcomer: what real takeovers show to be
// strong signals hold the version, weak ones warn.
func Defaults() map[string]Action {
	return map[string]Action{
		CheckCooldown:          Quarantine,
		CheckInstallScript:     Quarantine,
		CheckInstallChanged:    Quarantine,
		CheckProvenanceRegress: Quarantine,
		CheckNewPublisher:      Quarantine,
		CheckMaintainerAdded:   Warn,
		CheckPublishWindow:     Warn,
		CheckBurst:             Warn,
		CheckContentChanged:    Quarantine,
		CheckKnownMalicious:    Deny,
		CheckCIDigest:          Quarantine,
		CheckUnpublished:       Quarantine,
		CheckTyposquat:         Warn,
	}
}

// DefaultCooldown is how young a version may be before it is served.
const DefaultCooldown = 24 * time.Hour

// Rule overrides actions for the artifacts its glob matches.
type Rule struct {
	// Match is "<ecosystem>:<name glob>", e.g. "npm:@acme/*",
	// "go:github.com/acme/*", "oci:ghcr/acme/*"; "*" crosses slashes.
	Match    string
	Actions  map[string]Action
	Cooldown *time.Duration
	// FastTrack skips the cooldown (a fixed version needed now).
	FastTrack bool
	// CI declares the namespace built by the organisation's CI: a
	// version must match a CI record (check ci-digest).
	CI bool
	// Window, when set, replaces the policy's publishing hours.
	Window *anomaly.Window
}

// Policy is the whole configuration of the engine.
type Policy struct {
	Mode     Mode
	Actions  map[string]Action // over Defaults
	Cooldown time.Duration
	// ReviewWindow bounds the anomaly checks (cooldown excepted) to
	// versions published within it: they judge how a release was
	// published, and a release public for longer without an advisory is
	// not what they exist to catch. Zero means no bound.
	ReviewWindow time.Duration
	// Window is the publishing hours publish-window compares with; the
	// zero Window compares with each publisher's own habit only.
	Window anomaly.Window
	Rules  []Rule // first match wins
}

// Default is the policy with no configuration: enforce, the default
// actions, a 24 h cooldown, anomaly checks on the last 30 days.
func Default() Policy {
	return Policy{Mode: Enforce, Actions: Defaults(), Cooldown: DefaultCooldown, ReviewWindow: 30 * 24 * time.Hour}
}

// Validate checks the rules; errors name the rule.
func (p Policy) Validate() error {
	if p.Mode != Enforce && p.Mode != DryRun {
		return fmt.Errorf("mode %q: want enforce or dry-run", p.Mode)
	}
	for c, a := range p.Actions {
		if !a.Valid() {
			return fmt.Errorf("actions.%s: %q: want allow, warn, quarantine or deny", c, a)
		}
	}
	for i, r := range p.Rules {
		eco, glob, ok := strings.Cut(r.Match, ":")
		if !ok || glob == "" || (eco != string(verify.Go) && eco != string(verify.NPM) && eco != string(verify.OCI) && eco != "*") {
			return fmt.Errorf("rules[%d].match %q: want <go|npm|oci|*>:<name glob>", i, r.Match)
		}
		if _, err := path.Match(glob, ""); err != nil {
			return fmt.Errorf("rules[%d].match %q: %w", i, r.Match, err)
		}
		for c, a := range r.Actions {
			if !a.Valid() {
				return fmt.Errorf("rules[%d].actions.%s: %q: want allow, warn, quarantine or deny", i, c, a)
			}
		}
	}
	return nil
}

// Match reports whether a rule's "<ecosystem>:<glob>" matches a; "*" in
// the glob crosses "/" (module paths and scoped names have several).
func Match(match string, a verify.Artifact) bool {
	eco, glob, ok := strings.Cut(match, ":")
	if !ok || (eco != "*" && eco != string(a.Ecosystem)) {
		return false
	}
	// NUL is in no name, so it stands in for the slash path.Match would
	// not let "*" cross.
	ok, _ = path.Match(strings.ReplaceAll(glob, "/", "\x00"), strings.ReplaceAll(a.Name, "/", "\x00"))
	return ok
}

// Effective is the policy for one artifact.
type Effective struct {
	Mode         Mode
	Actions      map[string]Action
	Cooldown     time.Duration
	ReviewWindow time.Duration
	FastTrack    bool
	CI           bool
	Window       anomaly.Window
	Rule         string // the matching rule's Match, "" for none
}

// For returns the policy that applies to a.
func (p Policy) For(a verify.Artifact) Effective {
	e := Effective{Mode: p.Mode, Actions: Defaults(), Cooldown: p.Cooldown, ReviewWindow: p.ReviewWindow, Window: p.Window}
	for c, act := range p.Actions {
		e.Actions[c] = act
	}
	for _, r := range p.Rules {
		if !Match(r.Match, a) {
			continue
		}
		e.Rule = r.Match
		for c, act := range r.Actions {
			e.Actions[c] = act
		}
		if r.Cooldown != nil {
			e.Cooldown = *r.Cooldown
		}
		e.FastTrack, e.CI = r.FastTrack, r.CI
		if r.Window != nil {
			e.Window = *r.Window
		}
		break
	}
	return e
}

// Action returns the action for a check's finding; checks the policy does
// not know hold the version (fail closed).
func (e Effective) Action(check string) Action {
	if a, ok := e.Actions[check]; ok {
		return a
	}
	return Quarantine
}

// Outcome is what a set of findings comes to.
type Outcome struct {
	// Verdict is Allow, Quarantine or Deny (Warn findings allow).
	Verdict verify.Verdict
	// Holding are the findings behind a Quarantine or Deny verdict.
	Holding []verify.Finding
	// Warnings are findings that only warn (all of them in dry-run).
	Warnings []verify.Finding
	// DryRun says a hold was turned into warnings by the mode.
	DryRun bool
}

// Decide maps findings to the outcome. A publish-window finding holds
// only alongside another holding finding, however it is configured: alone
// it is too weak a signal (it misses chalk and Shai-Hulud 2.0 and fires on
// every late-night release).
func (e Effective) Decide(fs []verify.Finding) Outcome {
	var out Outcome
	worst := Allow
	var window []verify.Finding
	for _, f := range fs {
		a := e.Action(f.Check)
		if f.Check == CheckCooldown && e.FastTrack {
			a = Allow
		}
		switch {
		case a == Allow:
		case a == Warn:
			out.Warnings = append(out.Warnings, f)
		case f.Check == CheckPublishWindow:
			window = append(window, f)
		default:
			out.Holding = append(out.Holding, f)
			if a.rank() > worst.rank() {
				worst = a
			}
		}
	}
	if len(out.Holding) > 0 {
		out.Holding = append(out.Holding, window...)
	} else {
		out.Warnings = append(out.Warnings, window...)
	}
	switch worst {
	case Deny:
		out.Verdict = verify.Deny
	case Quarantine:
		out.Verdict = verify.Quarantine
	default:
		out.Verdict = verify.Allow
	}
	if e.Mode == DryRun && out.Verdict != verify.Allow {
		out.Warnings = append(out.Warnings, out.Holding...)
		out.Holding, out.Verdict, out.DryRun = nil, verify.Allow, true
	}
	return out
}

// Explanation is every check run on one artifact, what each found and
// what the policy makes of it: the answer to "why is this held?" (and to
// "would this be held?") without serving anything.
type Explanation struct {
	Artifact verify.Artifact `json:"artifact"`
	Mode     Mode            `json:"mode"`
	Rule     string          `json:"rule,omitempty"`
	Checks   []Checked       `json:"checks"`
	// Verdict is what the findings come to under the policy now.
	Verdict verify.Verdict `json:"verdict"`
	// Quarantine and State describe the artifact's record, if any: an
	// admin's release or block stands whatever the checks say.
	Quarantine string            `json:"quarantine,omitempty"`
	State      string            `json:"state,omitempty"`
	Facts      map[string]string `json:"facts,omitempty"`
}

// Check returns the result of check, if the explanation has one.
func (x Explanation) Check(check string) (Checked, bool) {
	for _, c := range x.Checks {
		if c.Check == check {
			return c, true
		}
	}
	return Checked{}, false
}

// Checked is one check's result.
type Checked struct {
	Check   string          `json:"check"`
	Result  string          `json:"result"` // pass, finding, not-run
	Action  Action          `json:"action,omitempty"`
	Finding *verify.Finding `json:"finding,omitempty"`
	Note    string          `json:"note,omitempty"`
}

// Results for Checked.
const (
	Pass    = "pass"
	Found   = "finding"
	NotRun  = "not-run"
	Holding = "holding"
)

// Run is what an explainer found about one artifact.
type Run struct {
	// Ran are the checks that ran; each passes unless a finding names it.
	Ran      []string
	Findings []verify.Finding
	// Fixed are the verification checks that always hold (integrity,
	// signatures), with their own action.
	Fixed map[string]Action
	// Recorded are the findings of the artifact's quarantine record. Those
	// of fixed checks that did not run now (a download's integrity
	// failure) are added: only the record knows them.
	Recorded []verify.Finding
	// Notes are checks that did not run, and why; one a finding names is
	// dropped.
	Notes []Checked
	// Off says the publish-time checks are off (no policy section).
	Off bool
}

// Explain builds the explanation of a run under the policy.
func (e Effective) Explain(a verify.Artifact, r Run) Explanation {
	fs := slices.Clone(r.Findings)
	for _, f := range r.Recorded {
		if _, ok := r.Fixed[f.Check]; ok && !HasCheck(fs, f.Check) {
			fs = append(fs, f)
		}
	}
	x := Explanation{Artifact: a, Mode: e.Mode, Rule: e.Rule}
	if r.Off {
		x.Mode = "off"
	}
	var policyFindings []verify.Finding
	seen := map[string]bool{}
	for _, f := range fs {
		act, isFixed := r.Fixed[f.Check]
		if !isFixed {
			act = e.Action(f.Check)
			policyFindings = append(policyFindings, f)
		}
		x.Checks = append(x.Checks, Checked{Check: f.Check, Result: Found, Action: act, Finding: &f})
		seen[f.Check] = true
	}
	for _, c := range r.Ran {
		if !seen[c] {
			x.Checks = append(x.Checks, Checked{Check: c, Result: Pass})
			seen[c] = true
		}
	}
	for _, n := range r.Notes {
		if !seen[n.Check] {
			x.Checks = append(x.Checks, n)
		}
	}
	x.Verdict = e.Decide(policyFindings).Verdict
	for _, f := range fs {
		if _, isFixed := r.Fixed[f.Check]; isFixed && x.Verdict == verify.Allow {
			x.Verdict = verify.Quarantine
		}
	}
	return x
}

// HasCheck reports whether a finding of check is among fs.
func HasCheck(fs []verify.Finding, check string) bool {
	return slices.ContainsFunc(fs, func(f verify.Finding) bool { return f.Check == check })
}

// NoCIRecords is the CI check of a proxy that keeps no CI records: in a
// namespace declared built by CI, no version can match one, so every
// version is held (fail closed).
func NoCIRecords(context.Context, verify.Artifact, string) (*verify.Finding, error) {
	return &verify.Finding{Check: CheckCIDigest, Message: "not built by our CI: no CI records are kept"}, nil
}
