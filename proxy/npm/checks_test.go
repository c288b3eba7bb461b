package npm_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm"
	"github.com/airlock-proxy/airlock/proxy/npm/npmtest"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

func TestCooldownHoldsThenReleases(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	if err := reg.Add(npmtest.Package{Name: "pkg", Versions: []npmtest.Version{
		{Version: "1.0.0", Published: now.Add(-30 * 24 * time.Hour)},
		{Version: "1.1.0", Published: now.Add(-time.Hour)},
	}}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = policy.Default() })
	_, body := f.get(t, "/pkg", "")
	pk := decode(t, body)
	if _, ok := pk["versions"].(map[string]any)["1.1.0"]; ok {
		t.Error("a version an hour old is listed")
	}
	if pk["dist-tags"].(map[string]any)["latest"] != "1.0.0" {
		t.Errorf("latest = %v", pk["dist-tags"])
	}
	if msg := pk["policyRestrictions"].(map[string]any)["message"].(string); !strings.Contains(msg, "cooldown") {
		t.Errorf("restriction = %q", msg)
	}
	// Nothing recorded for age alone; the tarball asked for anyway is
	// refused and that hold recorded.
	if qs, _ := f.meta.Quarantines(ctx, cache.QuarantineFilter{}); len(qs) != 0 {
		t.Errorf("the view recorded %v", qs)
	}
	resp, body := f.get(t, "/pkg/-/pkg-1.1.0.tgz", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "cooldown") {
		t.Fatalf("young tarball = %d %s", resp.StatusCode, body)
	}
	// A day later it comes of age: listed, served, the hold released by the clock.
	f.now = f.now.Add(24 * time.Hour)
	_, body = f.get(t, "/pkg", "")
	if decode(t, body)["dist-tags"].(map[string]any)["latest"] != "1.1.0" {
		t.Errorf("after the cooldown latest = %s", body)
	}
	if resp, body := f.get(t, "/pkg/-/pkg-1.1.0.tgz", ""); resp.StatusCode != 200 {
		t.Errorf("after the cooldown the tarball = %d %s", resp.StatusCode, body)
	}
	q, err := f.meta.Quarantine(ctx, "q-000001")
	if err != nil || q.State != cache.Released || q.UpdatedBy != "airlock/cooldown" {
		t.Errorf("the cooldown hold = %+v, %v; want released by airlock/cooldown", q, err)
	}
}

// TestIncidentShape: a patch published minutes ago by a new publisher,
// with a new postinstall and without the provenance earlier releases had
// (the shape of the 2025 takeovers) is withheld and recorded with every
// finding as soon as the packument is read; a range resolves to the last
// good release; an admin's release lets it through.
func TestIncidentShape(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{Attest: func(string, string, []byte) ([]byte, error) { return []byte(`{"attestations":[]}`), nil }})
	now := time.Now()
	if err := reg.Add(npmtest.Package{Name: "lib", Versions: []npmtest.Version{
		{Version: "1.4.0", Published: now.Add(-60 * 24 * time.Hour), Provenance: true},
		{Version: "1.4.1", Published: now.Add(-20 * 24 * time.Hour), Provenance: true},
		{Version: "1.4.2", Published: now.Add(-10 * time.Minute), Publisher: "mallory", Scripts: map[string]string{"postinstall": "node steal.js"}},
	}}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = policy.Default() })
	_, body := f.get(t, "/lib", "application/vnd.npm.install-v1+json")
	if decode(t, body)["dist-tags"].(map[string]any)["latest"] != "1.4.1" {
		t.Errorf("latest = %s", body)
	}
	q, err := f.meta.Quarantine(ctx, "q-000001")
	if err != nil || q.Artifact.Version != "1.4.2" || q.State != cache.Held {
		t.Fatalf("record = %+v, %v", q, err)
	}
	got := map[string]bool{}
	for _, fd := range q.Findings {
		got[fd.Check] = true
	}
	for _, c := range []string{"cooldown", "install-script-added", "new-publisher", "provenance-regression"} {
		if !got[c] {
			t.Errorf("findings lack %s: %+v", c, q.Findings)
		}
	}
	x, err := f.h.Explain(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "lib", Version: "1.4.2"})
	if err != nil {
		t.Fatal(err)
	}
	if x.Verdict != verify.Quarantine || x.Quarantine != "q-000001" || x.State != "held" {
		t.Errorf("explain = %+v", x)
	}
	// Reading the packument again adds nothing to the record or the log.
	before, _ := f.meta.Audit(ctx, 0, 0)
	f.get(t, "/lib", "")
	after, _ := f.meta.Audit(ctx, 0, 0)
	if len(after) != len(before) {
		t.Errorf("a second read of the packument wrote %d audit events", len(after)-len(before))
	}
	if _, err := f.meta.Release(ctx, "q-000001", "alice", "reviewed with the maintainer"); err != nil {
		t.Fatal(err)
	}
	if resp, body := f.get(t, "/lib/-/lib-1.4.2.tgz", ""); resp.StatusCode != 200 {
		t.Errorf("released version = %d %s", resp.StatusCode, body)
	}
	_, body = f.get(t, "/lib", "")
	if decode(t, body)["dist-tags"].(map[string]any)["latest"] != "1.4.2" {
		t.Errorf("after release latest = %s", body)
	}
}

func TestDryRunHoldsNothing(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	if err := reg.Add(npmtest.Package{Name: "pkg", Versions: []npmtest.Version{
		{Version: "1.0.0", Published: now.Add(-30 * 24 * time.Hour)},
		{Version: "1.0.1", Published: now.Add(-time.Minute), Scripts: map[string]string{"preinstall": "x"}},
	}}); err != nil {
		t.Fatal(err)
	}
	p := policy.Default()
	p.Mode = policy.DryRun
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = p })
	if resp, body := f.get(t, "/pkg/-/pkg-1.0.1.tgz", ""); resp.StatusCode != 200 {
		t.Fatalf("dry-run tarball = %d %s", resp.StatusCode, body)
	}
	st, err := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "pkg", Version: "1.0.1"})
	if err != nil || st.Decision.Verdict != verify.Allow || len(st.Decision.Findings) < 2 {
		t.Errorf("dry-run decision = %+v, %v; want allow annotated with the findings", st, err)
	}
	if qs, _ := f.meta.Quarantines(ctx, cache.QuarantineFilter{}); len(qs) != 0 {
		t.Errorf("dry-run quarantined %v", qs)
	}
}

// TestCIDigest: in a namespace declared built by CI, a version whose
// integrity is not the CI record's is withheld and refused; one that
// matches is served.
func TestCIDigest(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := reg.Add(npmtest.Package{Name: "@acme/app", Versions: []npmtest.Version{{Version: "1.0.0", Published: old}, {Version: "1.0.1", Published: old}}}); err != nil {
		t.Fatal(err)
	}
	p := policy.Default()
	p.Rules = []policy.Rule{{Match: "npm:@acme/*", CI: true}}
	good := reg.Integrity("@acme/app", "1.0.0")
	f := newFixture(t, reg, func(o *npm.Options) {
		o.Checks = p
		o.CI = func(_ context.Context, a verify.Artifact, digest string) (*verify.Finding, error) {
			if a.Version == "1.0.0" && digest == good {
				return nil, nil
			}
			return &verify.Finding{Check: policy.CheckCIDigest, Message: "not built by our CI", Evidence: map[string]string{"upstream": digest}}, nil
		}
	})
	_, body := f.get(t, "/@acme/app", "")
	if decode(t, body)["dist-tags"].(map[string]any)["latest"] != "1.0.0" {
		t.Errorf("latest = %s, want 1.0.0 (1.0.1 has no CI record)", body)
	}
	if resp, body := f.get(t, "/@acme/app/-/app-1.0.1.tgz", ""); resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "ci-digest") {
		t.Errorf("1.0.1 = %d %s, want 403 ci-digest", resp.StatusCode, body)
	}
	if resp, body := f.get(t, "/@acme/app/-/app-1.0.0.tgz", ""); resp.StatusCode != 200 {
		t.Errorf("1.0.0 = %d %s", resp.StatusCode, body)
	}
}
