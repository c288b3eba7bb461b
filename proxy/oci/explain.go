package oci

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// StatusCode lets the admin API answer an explain failure with the
// registry error's status (404 for an unknown upstream, 400 for a bad
// reference, 502 for an upstream failure).
func (e *regError) StatusCode() int { return e.status }

// Explain runs the checks on an image without serving it: for
// oci:<upstream>/<repository>:<tag> the digest upstream gives the tag
// now, and for …@sha256:… that digest; then the signature policy, the
// cooldown by the signature's log time, the tag's drift from the digest
// it serves (with when it moved, among the facts), and the CI record of a
// CI namespace, with the digest's record.
func (h *Handler) Explain(ctx context.Context, a verify.Artifact) (policy.Explanation, error) {
	t, rerr := h.selectTarget(a.Name, "", "")
	if rerr != nil {
		return policy.Explanation{}, rerr
	}
	if t.key != a.Name {
		return policy.Explanation{}, errorf(http.StatusBadRequest, codeNameInvalid, "name the repository as Airlock keys it: oci:%s", t.key)
	}
	tag, d := "", a.Version
	if !strings.HasPrefix(a.Version, "sha256:") {
		tag = a.Version
		var err error
		if d, _, err = t.up.headManifest(ctx, t.repo, tag); err != nil {
			return policy.Explanation{}, h.upstreamFailure(t.up, err, "tag "+t.key+":"+tag, codeManifestUnknown)
		}
	}
	art := t.digestArtifact(d)
	e := h.o.Checks.For(art)
	fixed := map[string]policy.Action{checkSignature: policy.Quarantine, checkTagMoved: policy.Quarantine}
	facts := map[string]string{"digest": d}
	var (
		ran   []string
		fs    []verify.Finding
		notes []policy.Checked
	)
	if t.pol.Require {
		ran = append(ran, checkSignature)
		v, err := h.verify(ctx, t, d)
		switch {
		case err != nil:
			return policy.Explanation{}, err
		case v.Verified:
			facts["signers"] = strings.Join(v.Signers, ", ")
			if !v.SignedAt.IsZero() {
				facts["signed_at"] = v.SignedAt.UTC().Format(time.RFC3339)
			}
			if h.o.Checks.Mode != "" && e.Cooldown > 0 && !e.FastTrack {
				ran = append(ran, policy.CheckCooldown)
				if f := h.youngFinding(art, v.SignedAt); f != nil {
					fs = append(fs, *f)
				}
			}
		default:
			fs = append(fs, v.Findings...)
		}
	} else {
		notes = append(notes, policy.Checked{Check: checkSignature, Result: policy.NotRun, Note: "not required by the repository's policy"})
	}
	if tag != "" {
		var ts tagState
		found, err := h.getJSON(ctx, bucketTag, t.key+":"+tag, &ts)
		if err != nil {
			return policy.Explanation{}, err
		}
		if found {
			facts["tag_serves"] = ts.Digest
			if !ts.Moved.IsZero() {
				facts["tag_moved"] = ts.Moved.UTC().Format(time.RFC3339)
			}
		}
		ran = append(ran, checkTagMoved)
		if found && ts.Digest != "" && ts.Digest != d {
			fs = append(fs, verify.Finding{Check: checkTagMoved,
				Message:  fmt.Sprintf("tag %s moved upstream from %s to %s (tags: %s)", tag, ts.Digest, d, t.pol.Tags),
				Evidence: map[string]string{"tag": tag, "old": ts.Digest, "new": d}})
		}
		tagged := t.tagArtifact(tag)
		if h.o.Checks.Mode != "" && h.o.Checks.For(tagged).CI && !materialTag.MatchString(tag) {
			ran = append(ran, policy.CheckCIDigest)
			f, err := h.o.CI(ctx, tagged, d)
			if err != nil {
				f = &verify.Finding{Check: policy.CheckCIDigest, Message: "the CI records could not be read: " + oneLine(err.Error())}
			}
			if f != nil {
				fs = append(fs, *f)
			}
		}
	} else if h.o.Checks.Mode != "" && e.CI {
		notes = append(notes, policy.Checked{Check: policy.CheckCIDigest, Result: policy.NotRun, Note: "CI records name tags: explain oci:" + t.key + ":<tag>"})
	}
	st, err := h.status(ctx, art)
	if err != nil {
		return policy.Explanation{}, err
	}
	run := policy.Run{Ran: ran, Findings: fs, Fixed: fixed, Notes: notes, Off: h.o.Checks.Mode == ""}
	if q := st.Quarantine; q != nil {
		run.Recorded = q.Findings
	}
	x := e.Explain(a, run)
	x.Facts = facts
	if q := st.Quarantine; q != nil {
		x.Quarantine, x.State = q.ID, string(q.State)
	}
	return x, nil
}
