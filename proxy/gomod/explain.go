package gomod

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/mod/module"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/gosum"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// checkSumDB names, in an explanation, the checksum database's record of
// a version; its failures are the sumdb-mod and sumdb-zip findings a
// download makes.
const checkSumDB = "sumdb"

// Explain runs the checks on a module version without serving it: the
// checksum database's record, the cooldown, the known-malicious feeds,
// the CI record for a CI namespace, and the policy, with what Airlock
// recorded when it downloaded the version (if it did). Like a list
// request it records what it looked up (the .info time, the record id, a
// tree-size sample): facts about the version, not a decision.
func (h *Handler) Explain(ctx context.Context, a verify.Artifact) (policy.Explanation, error) {
	if err := verify.CheckGoModule(a.Name, a.Version); err != nil {
		return policy.Explanation{}, errorf(http.StatusBadRequest, "%s", err)
	}
	epath, _ := module.EscapePath(a.Name)
	ever, _ := module.EscapeVersion(a.Version)
	req := request{path: a.Name, epath: epath, kind: "zip", version: a.Version, ever: ever}
	e := h.o.Checks.For(a)
	fixed := map[string]policy.Action{checkSumDB: policy.Quarantine, "sumdb-mod": policy.Quarantine, "sumdb-zip": policy.Quarantine,
		"invalid-zip": policy.Quarantine, "private": policy.Quarantine}
	var (
		ran   []string
		fs    []verify.Finding
		notes []policy.Checked
	)
	obs, err := h.o.Meta.Observation(ctx, a.Key())
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		return policy.Explanation{}, err
	}
	zipH1 := obs.Fields[fieldZipH1]

	if rule, private := h.private(a.Name); private {
		note := "private module: not in the checksum database; policy " + string(rule.Verdict)
		notes = append(notes, policy.Checked{Check: checkSumDB, Result: policy.NotRun, Note: note})
	} else {
		ev, err := h.o.Verifier.Record(ctx, a.Name, a.Version)
		switch {
		case err == nil:
			notes = append(notes, policy.Checked{Check: checkSumDB, Result: policy.Pass,
				Note: fmt.Sprintf("record %d, zip %s (tree size %d)", ev.RecordID, ev.Want, ev.TreeSize)})
			if zipH1 == "" {
				zipH1 = ev.Want // what CI's record is compared with before a download
			}
		case errors.Is(err, gosum.ErrNotInDB):
			fs = append(fs, verify.Finding{Check: checkSumDB, Message: "not in the checksum database: a download is refused"})
		default:
			notes = append(notes, policy.Checked{Check: checkSumDB, Result: policy.NotRun, Note: "the checksum database could not be read: " + oneLine(err.Error())})
		}
	}
	fs = append(fs, h.o.Malicious(a)...)
	ran = append(ran, policy.CheckKnownMalicious)
	if h.o.Checks.Mode != "" {
		switch fixes := h.fixes(a); {
		case e.Cooldown > 0 && len(fixes) > 0:
			notes = append(notes, policy.Checked{Check: policy.CheckCooldown, Result: policy.NotRun, Note: "skipped: the fix named by " + strings.Join(fixes, ", ")})
		case e.Cooldown > 0 && !e.FastTrack:
			ran = append(ran, policy.CheckCooldown)
			if f := h.cooldown(ctx, req, a.Version, true); f != nil {
				fs = append(fs, *f)
			}
		}
		if e.CI {
			ran = append(ran, policy.CheckCIDigest)
			if zipH1 == "" {
				notes = append(notes, policy.Checked{Check: policy.CheckCIDigest, Result: policy.NotRun, Note: "no zip hash known yet (runs when the zip is downloaded)"})
				ran = ran[:len(ran)-1]
			} else if f, err := h.o.CI(ctx, a, zipH1); err != nil {
				fs = append(fs, verify.Finding{Check: policy.CheckCIDigest, Message: "the CI records could not be read: " + oneLine(err.Error())})
			} else if f != nil {
				fs = append(fs, *f)
			}
		}
	}
	st, err := h.status(ctx, a)
	if err != nil {
		return policy.Explanation{}, err
	}
	run := policy.Run{Ran: ran, Findings: fs, Fixed: fixed, Notes: notes, Off: h.o.Checks.Mode == ""}
	if q := st.Quarantine; q != nil {
		// Findings of a download (a hash mismatch, a malformed zip) are
		// known only from the record.
		run.Recorded = q.Findings
	}
	x := e.Explain(a, run)
	if len(obs.Fields) > 0 {
		x.Facts = obs.Fields
	}
	if q := st.Quarantine; q != nil {
		x.Quarantine, x.State = q.ID, string(q.State)
	}
	if x.Facts == nil && st.Quarantine == nil {
		x.Checks = append(x.Checks, policy.Checked{Check: "sumdb-zip", Result: policy.NotRun, Note: "the zip is checked against the database when first downloaded"})
	}
	return x, nil
}
