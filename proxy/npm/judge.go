package npm

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm/packument"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/npmsig"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// checksOn reports whether the publish-time checks run at all.
func (h *Handler) checksOn() bool { return h.o.Checks.Mode != "" }

// history is the package's releases in version order, built once per
// packument: versions that are not strict semver are left out.
func (d *doc) history() anomaly.History {
	d.histOnce.Do(func() {
		vs := make([]string, 0, len(d.pk.Versions))
		for v := range d.pk.Versions {
			if _, _, ok := packument.Line(v); ok {
				vs = append(vs, v)
			}
		}
		slices.SortFunc(vs, func(a, b string) int { c, _ := packument.CompareVersions(a, b); return c })
		d.hist = make(anomaly.History, len(vs))
		for i, v := range vs {
			d.hist[i] = release(d.pk, d.pk.Versions[v])
		}
	})
	return d.hist
}

// release is what the anomaly checks know of a version, from the
// packument alone: all of it is there for every version, so a version is
// judged against its real history, not against what Airlock happened to
// fetch before.
func release(pk *packument.Packument, v *packument.Version) anomaly.Release {
	line, pre, _ := packument.Line(v.Version)
	r := anomaly.Release{Version: v.Version, Line: line, Prerelease: pre, Provenance: v.HasProvenance()}
	r.Published, _ = pk.PublishTime(v.Version)
	if v.NpmUser != nil {
		r.Publisher = v.NpmUser.Name
		if len(v.NpmUser.TrustedPublisher) > 0 && string(v.NpmUser.TrustedPublisher) != "null" {
			r.TrustedPublisher = trustedID(v.NpmUser.TrustedPublisher)
		}
	}
	for _, m := range v.Maintainers {
		r.Maintainers = append(r.Maintainers, m.Name)
	}
	for k, cmd := range v.InstallScripts() {
		r.InstallScripts = append(r.InstallScripts, k)
		if r.InstallCommands == nil {
			r.InstallCommands = map[string]string{}
		}
		r.InstallCommands[k] = cmd
	}
	if v.Gypfile {
		r.InstallScripts = append(r.InstallScripts, "gypfile")
	}
	slices.Sort(r.InstallScripts)
	r.Dependencies = v.Dependencies
	return r
}

// trustedID renders npm's trustedPublisher object ({"id": "github",
// "oidcConfigId": "…"}) as one comparable string.
func trustedID(raw []byte) string {
	s := strings.Join(strings.Fields(string(raw)), "")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// judge runs the publish-time checks on one version and applies the
// policy: cooldown against the clock, the history checks (cached per
// packument) for versions inside the review window.
func (h *Handler) judge(ctx context.Context, d *doc, a verify.Artifact) (policy.Effective, []verify.Finding, policy.Outcome) {
	e, _ := h.policyFor(a)
	hist := d.history()
	i := hist.Index(a.Version)
	if i < 0 {
		fs := h.o.Malicious(a)
		return e, fs, e.Decide(fs)
	}
	now := h.o.Now()
	// Known-malicious judges every version, however old.
	fs := h.o.Malicious(a)
	if e.CI {
		fs = append(fs, h.ciFinding(ctx, a, d.pk.Versions[a.Version])...)
	}
	if e.Cooldown > 0 {
		if f := anomaly.Cooldown(hist[i], now, e.Cooldown); f != nil {
			fs = append(fs, *f)
		}
	}
	if p := hist[i].Published; e.ReviewWindow == 0 || p.IsZero() || now.Sub(p) < e.ReviewWindow {
		fs = append(fs, d.historyFindings(i)...)
		fs = append(fs, h.newDependencyFindings(ctx, d, i, e)...)
		if d.pk.DistTags["latest"] == a.Version {
			if f := anomaly.LatestBackwards(hist, i); f != nil {
				fs = append(fs, *f)
			}
		}
		if f := anomaly.PublishWindow(hist, i, e.Window); f != nil {
			fs = append(fs, *f)
		}
		if f := h.typosquat(ctx, d, e); f != nil {
			fs = append(fs, *f)
		}
		if f := anomaly.Burst(hist, i); f != nil {
			fs = append(fs, *f)
		} else if f := h.burstAcross(ctx, d.name, hist[i]); f != nil {
			fs = append(fs, *f)
		}
	}
	return e, fs, e.Decide(fs)
}

// historyFindings caches the history checks of release i: they depend on
// the packument only.
func (d *doc) historyFindings(i int) []verify.Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.findings == nil {
		d.findings = map[int][]verify.Finding{}
	}
	fs, ok := d.findings[i]
	if !ok {
		fs = anomaly.Check(d.hist, i, anomaly.Options{})
		d.findings[i] = fs
	}
	return fs
}

// withheld is why a version is kept from clients: a quarantine record, or
// the checks' outcome for a version nobody fetched yet.
type withheld struct {
	id     string // quarantine id; empty for a version only the checks hold
	reason string
}

// withheldVersions returns the versions clients must not see. An admin's
// release wins over the checks; a hold whose only reason was the cooldown
// ends when the version comes of age.
func (h *Handler) withheldVersions(ctx context.Context, d *doc) (map[string]withheld, error) {
	qs, err := h.o.Meta.Quarantines(ctx, cache.QuarantineFilter{Ecosystem: verify.NPM, Name: d.name})
	if err != nil {
		return nil, err
	}
	out := map[string]withheld{}
	recorded := map[string]bool{}
	for _, q := range qs {
		if q.Artifact.Name != d.name {
			continue
		}
		recorded[q.Artifact.Version] = true
		if !q.State.Hides() || h.comeOfAge(ctx, q) {
			continue
		}
		out[q.Artifact.Version] = withheld{id: q.ID, reason: reason(q)}
	}
	if !h.checksOn() {
		return out, nil
	}
	for _, r := range d.history() {
		if recorded[r.Version] {
			continue
		}
		a := artifact(d.name, r.Version)
		_, _, o := h.judge(ctx, d, a)
		if o.Verdict == verify.Allow {
			continue
		}
		w := withheld{reason: summary(o.Holding)}
		if !onlyCooldown(o.Holding) {
			// A suspect release goes on record (and to the admins'
			// quarantine list) as soon as a client's view would show
			// it, not when somebody asks for its tarball. A version
			// held for its age alone is not recorded: it is released by
			// the clock, and recording every young version of every
			// package would bury the real holds.
			st, err := h.o.Meta.Decide(ctx, a, verify.Decision{Verdict: o.Verdict, Findings: o.Holding}, actor)
			if err != nil {
				return nil, err
			}
			if st.Quarantine != nil {
				w.id = st.Quarantine.ID
			}
			h.o.Metrics.Quarantines.WithLabelValues("npm").Inc()
			h.o.Log.Warn("quarantined", "artifact", a.String(), "quarantine_id", w.id, "findings", w.reason)
		}
		out[r.Version] = w
	}
	return out, nil
}

func onlyCooldown(fs []verify.Finding) bool {
	for _, f := range fs {
		if f.Check != policy.CheckCooldown {
			return false
		}
	}
	return true
}

// summary names the findings in one line: the first in full, the rest by
// check.
func summary(fs []verify.Finding) string {
	if len(fs) == 0 {
		return "held"
	}
	s := fs[0].Check + ": " + oneLine(fs[0].Message)
	if len(fs) > 1 {
		var more []string
		for _, f := range fs[1:] {
			more = append(more, f.Check)
		}
		s += " (and " + strings.Join(more, ", ") + ")"
	}
	return s
}

// comeOfAge releases a hold whose every finding is a cooldown that has
// ended, or of a version an advisory names as a fix, and reports whether
// it did: a version held for its age alone is served once it is old
// enough, with the release on the audit log.
func (h *Handler) comeOfAge(ctx context.Context, q cache.Quarantine) bool {
	if q.State != cache.Held || len(q.Findings) == 0 {
		return false
	}
	var last time.Time
	for _, f := range q.Findings {
		if f.Check != policy.CheckCooldown {
			return false
		}
		until, ok := anomaly.CooldownUntil(f)
		if !ok {
			return false
		}
		if until.After(last) {
			last = until
		}
	}
	reason := "came of age: published before " + last.Add(-h.o.Checks.For(q.Artifact).Cooldown).UTC().Format(time.RFC3339)
	if h.o.Now().Before(last) {
		_, fixes := h.policyFor(q.Artifact)
		if len(fixes) == 0 {
			return false
		}
		reason = "fast-tracked: the fix named by " + strings.Join(fixes, ", ")
	}
	if _, err := h.o.Meta.Release(ctx, q.ID, actorCooldown, reason); err != nil {
		h.o.Log.Warn("releasing a version that came of age", "quarantine_id", q.ID, "err", err)
		return false
	}
	h.o.Log.Info("released: came of age", "artifact", q.Artifact.String(), "quarantine_id", q.ID)
	return true
}

// policyFor is the policy for a: its rule's, fast-tracked (no cooldown)
// when an advisory names the version as the fix of a vulnerability, with
// those advisories' ids.
func (h *Handler) policyFor(a verify.Artifact) (policy.Effective, []string) {
	e := h.o.Checks.For(a)
	if e.FastTrack || h.o.FastTrack == nil {
		return e, nil
	}
	fixes := h.o.FastTrack(a)
	if len(fixes) > 0 {
		e.FastTrack = true
	}
	return e, fixes
}

// actorCooldown signs automatic releases of versions that came of age.
const actorCooldown = "airlock/cooldown"

// checkPublish runs the publish-time checks on a version being fetched.
// Its verified provenance (prov: the observation fields checkProvenance
// gave) and the provenance Airlock recorded for the releases before it let
// provenance-regression also compare where they were built, which the
// packument alone does not say.
func (h *Handler) checkPublish(ctx context.Context, d *doc, a verify.Artifact, prov map[string]string) policy.Outcome {
	e, fs, _ := h.judge(ctx, d, a)
	repo := prov[fieldRepo]
	if repo == "" || slices.ContainsFunc(fs, func(f verify.Finding) bool { return f.Check == policy.CheckProvenanceRegress }) {
		return e.Decide(fs)
	}
	hist := slices.Clone(d.history())
	i := hist.Index(a.Version)
	if i < 0 {
		return e.Decide(fs)
	}
	hist[i].SourceRepository, hist[i].Workflow = repo, prov[fieldWorkflow]
	n := 0
	for j := i - 1; j >= 0 && n < 3; j-- {
		if hist[j].Line != hist[i].Line || !hist[j].Provenance {
			continue
		}
		n++
		if obs, err := h.o.Meta.Observation(ctx, artifact(a.Name, hist[j].Version).Key()); err == nil {
			hist[j].SourceRepository, hist[j].Workflow = obs.Fields[fieldRepo], obs.Fields[fieldWorkflow]
		}
	}
	if f := anomaly.ProvenanceRegression(hist, i); f != nil {
		fs = append(fs, *f)
	}
	return e.Decide(fs)
}

// ciFinding compares a version of a namespace built by the organisation's
// CI with its CI record: the sha512 of dist.integrity must be the digest
// CI recorded.
func (h *Handler) ciFinding(ctx context.Context, a verify.Artifact, v *packument.Version) []verify.Finding {
	digest := ""
	if v != nil {
		if in, err := npmsig.ParseIntegrity(v.Dist.Integrity); err == nil {
			for _, hsh := range in.Hashes {
				if hsh.Algorithm == npmsig.SHA512 {
					digest = hsh.String()
				}
			}
		}
	}
	f, err := h.o.CI(ctx, a, digest)
	if err != nil {
		// Fail closed: no record could be read, so none matches.
		f = &verify.Finding{Check: policy.CheckCIDigest, Message: "the CI records could not be read: " + oneLine(err.Error())}
	}
	if f == nil {
		return nil
	}
	return []verify.Finding{*f}
}
