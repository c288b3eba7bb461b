package npm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/proxy/npm/packument"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// securityPlaceholder is the version npm's security team publishes when
// it takes a malicious package down: every other version is removed and
// the package is left as a "security holding package".
const securityPlaceholder = "0.0.1-security"

// takedowns reacts to versions upstream stopped serving. A cached copy
// would otherwise outlive the takedown: clients with a lockfile fetch the
// tarball by URL and never read the packument. When npm replaced the
// package with its security placeholder, every version Airlock has seen
// is known malicious; a version gone from "versions" that "time" still
// names was unpublished (by its author, or by npm), and the registry no
// longer vouches for its bytes. Only versions Airlock observed are
// recorded: the others it never served and upstream no longer offers.
func (h *Handler) takedowns(ctx context.Context, d *doc) error {
	if !h.checksOn() {
		return nil
	}
	placeholder := d.pk.Versions[securityPlaceholder] != nil
	gone := map[string]bool{}
	for v := range d.pk.Time {
		if d.pk.Versions[v] != nil {
			continue
		}
		if _, _, ok := packument.Line(v); ok {
			gone[v] = true
		}
	}
	if !placeholder && len(gone) == 0 {
		return nil
	}
	prefix := artifact(d.name, "").Key()
	keys, err := h.o.Meta.ObservedKeys(ctx, prefix)
	if err != nil {
		return fmt.Errorf("listing observed versions of %s: %w", d.name, err)
	}
	for _, k := range keys {
		v := strings.TrimPrefix(k, prefix)
		if v == securityPlaceholder || (!placeholder && !gone[v]) {
			continue
		}
		a := artifact(d.name, v)
		f := verify.Finding{Check: policy.CheckUnpublished,
			Message:  "removed upstream: the registry no longer serves this version (unpublished or taken down)",
			Evidence: map[string]string{"version": v}}
		if placeholder {
			f = verify.Finding{Check: policy.CheckKnownMalicious,
				Message:  "npm replaced the package with its security holding package (" + securityPlaceholder + "): taken down as malicious",
				Evidence: map[string]string{"source": "npm registry takedown", "placeholder": securityPlaceholder}}
		}
		if err := h.recordTakedown(ctx, a, f); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) recordTakedown(ctx context.Context, a verify.Artifact, f verify.Finding) error {
	o := h.o.Checks.For(a).Decide([]verify.Finding{f})
	if o.Verdict == verify.Allow {
		h.o.Log.Warn("finding", "artifact", a.String(), "check", f.Check, "finding", f.Message, "dry_run", o.DryRun)
		return nil
	}
	st, err := h.status(ctx, a)
	if err != nil {
		return err
	}
	if st.Quarantine != nil && st.Quarantine.State.Hides() && coversAll(st.Quarantine.Findings, o.Holding) {
		return nil // seen before: no new audit event
	}
	st, err = h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: o.Verdict, Findings: o.Holding}, actor)
	if err != nil {
		return fmt.Errorf("recording the takedown of %s: %w", a, err)
	}
	if st.Hidden() {
		h.o.Metrics.Quarantines.WithLabelValues("npm").Inc()
		h.o.Log.Warn("quarantined", "artifact", a.String(), "check", f.Check, "quarantine_id", st.Quarantine.ID, "finding", f.Message)
	}
	return nil
}

// revalidateLater refreshes a stale packument in the background after a
// cached tarball was served, so that a takedown reaches clients that
// install from a lockfile and never read the packument: the next request
// for a version taken down is refused. At most one refresh per package
// runs at a time, and none while the packument is fresh.
func (h *Handler) revalidateLater(ctx context.Context, name string) {
	if !h.checksOn() {
		return
	}
	if d := h.docs.get(name); d != nil && h.o.Now().Sub(time.Unix(0, d.fetched.Load())) < h.o.MaxAge {
		return
	}
	ctx = context.WithoutCancel(ctx)
	// Another key than refresh's: load calls refresh, and singleflight
	// would make it wait for itself under one key.
	h.flight.DoChan("revalidate\x00"+name, func() (any, error) {
		if _, err := h.load(ctx, name); err != nil {
			h.o.Log.Debug("background packument revalidation", "package", name, "err", err)
		}
		return nil, nil
	})
}
