package npm

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/npmsig"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// Explain runs the checks on a version without serving it: the
// packument's facts, the registry signatures, the publish-time checks and
// the policy, with what Airlock recorded when it fetched the tarball
// (integrity, provenance) if it did.
func (h *Handler) Explain(ctx context.Context, a verify.Artifact) (policy.Explanation, error) {
	if err := npmsig.CheckName(a.Name); err != nil {
		return policy.Explanation{}, errorf(http.StatusBadRequest, "%s", err)
	}
	if err := npmsig.CheckVersion(a.Version); err != nil {
		return policy.Explanation{}, errorf(http.StatusBadRequest, "%s", err)
	}
	d, v, err := h.version(ctx, a)
	if err != nil {
		return policy.Explanation{}, err
	}
	ran := []string{checkPublishTime}
	var fs []verify.Finding
	published, hasTime := d.pk.PublishTime(a.Version)
	if !hasTime {
		fs = append(fs, verify.Finding{Check: checkPublishTime, Message: "the upstream packument has no publish time for this version"})
	}
	if _, signs, err := h.registryKeys(ctx); err == nil && signs {
		ran = append(ran, npmsig.CheckSignature)
		_, sf, err := h.checkSignatures(ctx, a, v, published)
		if err != nil {
			return policy.Explanation{}, err
		}
		fs = append(fs, sf...)
	}
	e, fixes := h.policyFor(a)
	var notes []policy.Checked
	if h.checksOn() {
		_, pf, _ := h.judge(ctx, d, a)
		switch {
		case e.Cooldown > 0 && e.FastTrack:
			// The policy skips it; a finding would only confuse.
			pf = slices.DeleteFunc(pf, func(f verify.Finding) bool { return f.Check == policy.CheckCooldown })
			note := "skipped: a fast_track rule"
			if len(fixes) > 0 {
				note = "skipped: the fix named by " + strings.Join(fixes, ", ")
			}
			notes = append(notes, policy.Checked{Check: policy.CheckCooldown, Result: policy.NotRun, Note: note})
		case e.Cooldown > 0:
			ran = append(ran, policy.CheckCooldown)
		}
		fs = append(fs, pf...)
		if e.CI {
			ran = append(ran, policy.CheckCIDigest)
		}
		ran = append(ran, policy.CheckInstallScript, policy.CheckInstallChanged, policy.CheckProvenanceRegress, policy.CheckNewPublisher, policy.CheckMaintainerAdded, policy.CheckPublishWindow, policy.CheckBurst, policy.CheckTyposquat)
	}
	fixed := map[string]policy.Action{checkPublishTime: policy.Quarantine, npmsig.CheckSignature: policy.Quarantine,
		checkIntegrity: policy.Quarantine, checkProvenance: policy.Quarantine, checkSource: policy.Quarantine}
	st, err := h.status(ctx, a)
	if err != nil {
		return policy.Explanation{}, err
	}
	run := policy.Run{Ran: ran, Findings: fs, Fixed: fixed, Notes: notes, Off: !h.checksOn()}
	if q := st.Quarantine; q != nil {
		// Findings made when the tarball was fetched (integrity,
		// provenance) are known only from the record.
		run.Recorded = q.Findings
	}
	x := e.Explain(a, run)
	obs, err := h.o.Meta.Observation(ctx, a.Key())
	switch {
	case err == nil:
		x.Facts = obs.Fields
		if obs.Fields[fieldTarball] != "" {
			x.Checks = append(x.Checks, policy.Checked{Check: checkIntegrity, Result: policy.Pass, Note: "verified when the tarball was fetched"})
		}
		if p := obs.Fields[fieldProvenance]; p != "" && p != "none" {
			x.Checks = append(x.Checks, policy.Checked{Check: checkProvenance, Result: policy.Pass, Note: "verified: " + obs.Fields[fieldRepo]})
		}
	case errors.Is(err, cache.ErrNotFound):
		x.Checks = append(x.Checks, policy.Checked{Check: checkIntegrity, Result: policy.NotRun, Note: "runs when the tarball is first fetched"})
		if v.HasProvenance() {
			x.Checks = append(x.Checks, policy.Checked{Check: checkProvenance, Result: policy.NotRun, Note: "runs when the tarball is first fetched"})
		}
	default:
		return policy.Explanation{}, err
	}
	if q := st.Quarantine; q != nil {
		x.Quarantine, x.State = q.ID, string(q.State)
	}
	return x, nil
}
