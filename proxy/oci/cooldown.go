package oci

import (
	"context"
	"fmt"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// actorCooldown signs the release of a digest held for its age alone.
const actorCooldown = "airlock/cooldown"

// signedYoung is the cooldown finding of a manifest whose signature
// entered a transparency log within the cooldown: the one publish time
// an image has that nobody can push back (a new digest cannot get an old
// log entry). A signature without a log entry (keys with the log turned
// off) proves no time, and then only a tag's move is timed (moveCooling).
// nil when the manifest is old enough, the policy serves young images, or
// the checks are off.
func (h *Handler) signedYoung(a verify.Artifact, signed time.Time) *verify.Finding {
	f := h.youngFinding(a, signed)
	if f == nil {
		return nil
	}
	if o := h.o.Checks.For(a).Decide([]verify.Finding{*f}); o.Verdict == verify.Allow {
		h.o.Log.Warn("finding", "artifact", a.String(), "check", f.Check, "finding", f.Message, "dry_run", o.DryRun)
		return nil
	}
	return f
}

// youngFinding is the cooldown finding of a signature log time within the
// cooldown, before the policy decides what it leads to.
func (h *Handler) youngFinding(a verify.Artifact, signed time.Time) *verify.Finding {
	e := h.o.Checks.For(a)
	if h.o.Checks.Mode == "" || e.Cooldown <= 0 || e.FastTrack || signed.IsZero() {
		return nil
	}
	now := h.now()
	age := now.Sub(signed)
	if age >= e.Cooldown {
		return nil
	}
	until := signed.Add(e.Cooldown)
	f := verify.Finding{Check: policy.CheckCooldown,
		Message: fmt.Sprintf("signed %s ago (transparency log time %s), younger than the %s cooldown (served from %s)",
			age.Round(time.Minute), signed.UTC().Format(time.RFC3339), e.Cooldown, until.UTC().Format(time.RFC3339)),
		Evidence: map[string]string{"signed": signed.UTC().Format(time.RFC3339), "until": until.UTC().Format(time.RFC3339), "cooldown": e.Cooldown.String()}}
	return &f
}

// comeOfAge releases a hold whose every finding is a cooldown that has
// ended, and reports whether it did: such a digest is served once it is
// old enough, with the release on the audit log.
func (h *Handler) comeOfAge(ctx context.Context, q *cache.Quarantine) bool {
	if q == nil || q.State != cache.Held || len(q.Findings) == 0 {
		return false
	}
	var last time.Time
	for _, f := range q.Findings {
		until, ok := anomaly.CooldownUntil(f)
		if f.Check != policy.CheckCooldown || !ok {
			return false
		}
		if until.After(last) {
			last = until
		}
	}
	if h.now().Before(last) {
		return false
	}
	if _, err := h.o.Meta.Release(ctx, q.ID, actorCooldown, "came of age: the cooldown ended at "+last.UTC().Format(time.RFC3339)); err != nil {
		h.o.Log.Warn("releasing a digest that came of age", "quarantine_id", q.ID, "err", err)
		return false
	}
	h.o.Log.Info("released: came of age", "artifact", q.Artifact.String(), "quarantine_id", q.ID)
	return true
}
