package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// actorPolicy signs releases the policy makes on its own.
const actorPolicy = "airlock/policy"

// ciCheck compares an artifact's upstream digest with what the
// organisation's CI recorded (cirecord.Records.Check).
type ciCheck func(ctx context.Context, a verify.Artifact, digest string) (*verify.Finding, error)

// reevaluate releases the holds in f that nothing supports any more, and
// returns their ids. A hold goes when every finding is gone (a cooldown
// that has ended, a ci-digest finding whose upstream digest now matches a
// CI record) — facts, so this happens in dry-run too — or when the
// current policy would not hold for the findings left, which dry-run
// does not do (it takes no new action, and a release would outlast it).
// Verification failures, known-malicious findings (the feed lifts its
// own) and admins' blocks are never released here. Run at start, so
// that a policy loosened in the file frees what it held, and for a
// package when a CI record arrives; tightening is tighten's.
func reevaluate(ctx context.Context, meta cache.Meta, pol policy.Policy, now time.Time, ci ciCheck, f cache.QuarantineFilter, log *slog.Logger) ([]string, error) {
	f.State = cache.Held
	qs, err := meta.Quarantines(ctx, f)
	if err != nil {
		return nil, err
	}
	known := policy.Defaults()
	var released []string
	for _, q := range qs {
		live, gone, ok := liveFindings(ctx, q.Findings, known, now, ci)
		if !ok {
			continue
		}
		var reason string
		switch {
		case len(live) == 0:
			reason = "nothing holds it any more: " + strings.Join(gone, "; ")
		case pol.Mode == policy.DryRun:
			continue
		case pol.For(q.Artifact).Decide(live).Verdict != verify.Allow:
			continue
		default:
			var checks []string
			for _, f := range live {
				checks = append(checks, f.Check)
			}
			slices.Sort(checks)
			reason = fmt.Sprintf("the policy no longer holds it for %s", strings.Join(slices.Compact(checks), ", "))
			if len(gone) > 0 {
				reason += "; " + strings.Join(gone, "; ")
			}
		}
		if _, err := meta.Release(ctx, q.ID, actorPolicy, reason); err != nil {
			if errors.Is(err, cache.ErrConflict) {
				continue // released meanwhile, by an admin or another pass
			}
			return released, err
		}
		released = append(released, q.ID)
		log.Info("hold released", "artifact", q.Artifact.String(), "quarantine_id", q.ID, "reason", reason)
	}
	return released, nil
}

// liveFindings sorts a hold's findings into those that still stand and
// notes on those gone. ok is false when the hold is not the policy's to
// release: no findings (an admin's block), a verification failure, or a
// known-malicious finding.
func liveFindings(ctx context.Context, fs []verify.Finding, known map[string]policy.Action, now time.Time, ci ciCheck) (live []verify.Finding, gone []string, ok bool) {
	if len(fs) == 0 {
		return nil, nil, false
	}
	for _, f := range fs {
		if _, isPolicy := known[f.Check]; !isPolicy || f.Check == policy.CheckKnownMalicious {
			return nil, nil, false
		}
		switch f.Check {
		case policy.CheckCooldown:
			if until, ok := anomaly.CooldownUntil(f); ok && !now.Before(until) {
				gone = append(gone, "cooldown ended at "+until.UTC().Format(time.RFC3339))
				continue
			}
		case policy.CheckCIDigest:
			if note, ok := ciSatisfied(ctx, f, ci); ok {
				gone = append(gone, note)
				continue
			}
		}
		live = append(live, f)
	}
	return live, gone, true
}

// ciSatisfied reports whether a ci-digest finding no longer stands: the
// digest it saw upstream (its evidence) now matches a CI record. A
// finding without that evidence, or a record that cannot be read, stands.
func ciSatisfied(ctx context.Context, f verify.Finding, ci ciCheck) (string, bool) {
	if ci == nil {
		return "", false
	}
	a, err := verify.ParseArtifact(f.Evidence["artifact"])
	actual := f.Evidence["actual"]
	if err != nil || actual == "" || strings.HasSuffix(actual, "…") {
		return "", false
	}
	nf, err := ci(ctx, a, actual)
	if err != nil || nf != nil {
		return "", false
	}
	return fmt.Sprintf("a CI record of %s matches %s", a, actual), true
}

// bucketPolicy holds the fingerprint of the policy tighten last ran
// under.
const bucketPolicy = "policy"

// policyFingerprint sums up what decides what tighten would hold: the
// policy section and the checks' default actions (which a new release of
// Airlock may change).
func policyFingerprint(p config.Policy) string {
	b, _ := json.Marshal(struct {
		Policy   config.Policy
		Defaults map[string]policy.Action
	}{p, policy.Defaults()})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// tightenOnChange runs tighten when the policy differs from the one it
// last ran under: tighten reads every observation, and a start under an
// unchanged policy would find nothing new to hold (what was served since
// was judged under this same policy).
func tightenOnChange(ctx context.Context, meta cache.Meta, cfg config.Policy, pol policy.Policy, now time.Time, ci ciCheck, log *slog.Logger) error {
	fp := policyFingerprint(cfg)
	last, err := meta.Get(ctx, bucketPolicy, "tightened")
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		return err
	}
	if string(last) == fp {
		return nil
	}
	if _, err := tighten(ctx, meta, pol, now, ci, log); err != nil {
		return err
	}
	return meta.Put(ctx, bucketPolicy, "tightened", []byte(fp))
}

// tighten holds what was served under a looser policy and the current one
// would hold: an allowed artifact whose decision carries findings (the
// warnings it was served with, or what dry-run would have held), judged
// again under pol. Run at start, so that a check turned from warn to
// quarantine, or dry-run turned to enforce, reaches cached copies too:
// a lockfile install fetches a cached tarball by URL and never sees the
// re-judged metadata. Cooldowns that have ended do not count; nothing
// happens in dry-run.
func tighten(ctx context.Context, meta cache.Meta, pol policy.Policy, now time.Time, ci ciCheck, log *slog.Logger) ([]string, error) {
	if pol.Mode != policy.Enforce {
		return nil, nil
	}
	keys, err := meta.ObservedKeys(ctx, "")
	if err != nil {
		return nil, err
	}
	known := policy.Defaults()
	var held []string
	for _, k := range keys {
		a, err := verify.ParseArtifact(k)
		if err != nil {
			continue // an observation of something else (a tag's state)
		}
		st, err := meta.Status(ctx, a)
		if errors.Is(err, cache.ErrNotFound) {
			continue
		}
		if err != nil {
			return held, err
		}
		if st.Quarantine != nil || st.Decision.Verdict != verify.Allow || len(st.Decision.Findings) == 0 {
			continue
		}
		live, _, ok := liveFindings(ctx, st.Decision.Findings, known, now, ci)
		if !ok || len(live) == 0 {
			continue
		}
		o := pol.For(a).Decide(live)
		if o.Verdict == verify.Allow {
			continue
		}
		st, err = meta.Decide(ctx, a, verify.Decision{Verdict: o.Verdict, Findings: o.Holding}, actorPolicy)
		if err != nil {
			return held, err
		}
		if st.Quarantine != nil {
			held = append(held, st.Quarantine.ID)
			log.Warn("held under the current policy", "artifact", a.String(), "quarantine_id", st.Quarantine.ID, "findings", len(o.Holding))
		}
	}
	return held, nil
}
