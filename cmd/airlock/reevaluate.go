package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// actorPolicy signs releases the policy makes on its own.
const actorPolicy = "airlock/policy"

// reevaluate releases holds the policy no longer supports: records whose
// every finding is a publish-time check (no verification failure, no
// admin's block) and which the current policy would not hold, with a
// cooldown that has ended counted as gone. Run at start, so that a policy
// loosened in the file frees what it held; tightening takes effect as
// versions are next judged.
func reevaluate(ctx context.Context, meta cache.Meta, pol policy.Policy, now time.Time, log *slog.Logger) error {
	if pol.Mode == policy.DryRun {
		// Dry-run takes no new action; releasing would outlast it.
		return nil
	}
	qs, err := meta.Quarantines(ctx, cache.QuarantineFilter{State: cache.Held})
	if err != nil {
		return err
	}
	known := policy.Defaults()
	for _, q := range qs {
		if len(q.Findings) == 0 {
			continue
		}
		var live []verify.Finding
		onlyPolicy := true
		for _, f := range q.Findings {
			if _, ok := known[f.Check]; !ok || f.Check == policy.CheckKnownMalicious || f.Check == policy.CheckCIDigest {
				// Verification failures always hold; the feed and the
				// CI records lift their own.
				onlyPolicy = false
				break
			}
			if f.Check == policy.CheckCooldown {
				if until, ok := anomaly.CooldownUntil(f); ok && !now.Before(until) {
					continue
				}
			}
			live = append(live, f)
		}
		if !onlyPolicy {
			continue
		}
		if o := pol.For(q.Artifact).Decide(live); o.Verdict != verify.Allow {
			continue
		}
		var checks []string
		for _, f := range q.Findings {
			checks = append(checks, f.Check)
		}
		slices.Sort(checks)
		reason := fmt.Sprintf("the policy no longer holds it for %s", strings.Join(slices.Compact(checks), ", "))
		if _, err := meta.Release(ctx, q.ID, actorPolicy, reason); err != nil {
			return err
		}
		log.Info("released by the current policy", "artifact", q.Artifact.String(), "quarantine_id", q.ID, "reason", reason)
	}
	return nil
}
