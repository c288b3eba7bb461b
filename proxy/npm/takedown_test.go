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

// TestTakedowns: a cached version upstream stops serving is held even for
// a client that only fetches its tarball by URL (a lockfile install); when
// npm replaces the package with its security placeholder, every version
// Airlock saw is denied as known malicious.
func TestTakedowns(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0", "1.1.0", "1.2.0")
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = policy.Default() })
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if resp, body := f.get(t, "/pkg/-/pkg-"+v+".tgz", ""); resp.StatusCode != 200 {
			t.Fatalf("tarball %s = %d %s", v, resp.StatusCode, body)
		}
	}

	// Unpublished upstream. The client only asks for the cached tarball:
	// the first answer is served (the packument is revalidated after it),
	// the next is refused.
	reg.Unpublish("pkg", "1.0.0")
	f.now = f.now.Add(2 * time.Minute)
	before := reg.Requests("/pkg")
	if resp, _ := f.get(t, "/pkg/-/pkg-1.0.0.tgz", ""); resp.StatusCode != 200 {
		t.Fatalf("cached tarball before revalidation = %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	var st cache.Status
	for time.Now().Before(deadline) {
		st, _ = f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "pkg", Version: "1.0.0"})
		if st.Quarantine != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if reg.Requests("/pkg") == before {
		t.Fatal("the stale packument was not revalidated after a cached tarball hit")
	}
	if st.Quarantine == nil || st.Quarantine.State != cache.Held || st.Quarantine.Findings[0].Check != policy.CheckUnpublished {
		t.Fatalf("1.0.0 after its takedown: %+v", st)
	}
	resp, body := f.get(t, "/pkg/-/pkg-1.0.0.tgz", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "removed upstream") {
		t.Errorf("unpublished cached tarball = %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.get(t, "/pkg/-/pkg-1.1.0.tgz", ""); resp.StatusCode != 200 {
		t.Errorf("1.1.0 = %d, want served", resp.StatusCode)
	}
	// 1.2.0 was never fetched: nothing to record.
	if st, err := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "pkg", Version: "1.2.0"}); err == nil && st.Quarantine != nil {
		t.Errorf("1.2.0, never served, recorded: %+v", st.Quarantine)
	}

	// npm security takes the package down.
	if err := reg.Add(npmtest.Package{Name: "pkg", Versions: []npmtest.Version{{Version: "0.0.1-security", Published: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.1.0", "1.2.0"} {
		reg.Unpublish("pkg", v)
	}
	f.now = f.now.Add(2 * time.Minute)
	f.get(t, "/pkg", "")
	resp, body = f.get(t, "/pkg/-/pkg-1.1.0.tgz", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "security holding package") {
		t.Errorf("taken-down cached tarball = %d %s", resp.StatusCode, body)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		st, _ := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "pkg", Version: v})
		if st.Quarantine == nil || st.Decision.Verdict != verify.Deny || !policy.HasCheck(st.Quarantine.Findings, policy.CheckKnownMalicious) {
			t.Errorf("%s after the security takedown: %+v", v, st)
		}
	}
}

// In dry-run a takedown is logged, not held.
func TestTakedownDryRun(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0", "1.1.0")
	p := policy.Default()
	p.Mode = policy.DryRun
	f := newFixture(t, reg, func(o *npm.Options) { o.Checks = p })
	f.get(t, "/pkg/-/pkg-1.0.0.tgz", "")
	reg.Unpublish("pkg", "1.0.0")
	f.now = f.now.Add(2 * time.Minute)
	f.get(t, "/pkg", "")
	if resp, _ := f.get(t, "/pkg/-/pkg-1.0.0.tgz", ""); resp.StatusCode != 200 {
		t.Errorf("dry-run: cached tarball = %d", resp.StatusCode)
	}
}

// TestAdvisoryFastTrack: a version an advisory names as the fix of a
// vulnerability skips the cooldown; one held for its age before the
// advisory arrived is released on the next view.
func TestAdvisoryFastTrack(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	if err := reg.Add(npmtest.Package{Name: "lib", Versions: []npmtest.Version{
		{Version: "1.0.0", Published: now.Add(-30 * 24 * time.Hour)},
		{Version: "1.0.1", Published: now.Add(-time.Hour)},
	}}); err != nil {
		t.Fatal(err)
	}
	var advisories []string
	f := newFixture(t, reg, func(o *npm.Options) {
		o.Checks = policy.Default()
		o.FastTrack = func(a verify.Artifact) []string {
			if a.Version == "1.0.1" {
				return advisories
			}
			return nil
		}
	})
	if resp, body := f.get(t, "/lib/-/lib-1.0.1.tgz", ""); resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "cooldown") {
		t.Fatalf("young fix before its advisory = %d %s", resp.StatusCode, body)
	}
	advisories = []string{"GHSA-aaaa-bbbb-cccc"}
	f.now = f.now.Add(2 * time.Minute)
	_, body := f.get(t, "/lib", "")
	if decode(t, body)["dist-tags"].(map[string]any)["latest"] != "1.0.1" {
		t.Errorf("the fast-tracked fix is not latest: %s", body)
	}
	if resp, _ := f.get(t, "/lib/-/lib-1.0.1.tgz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("fast-tracked tarball = %d", resp.StatusCode)
	}
	st, _ := f.meta.Status(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "lib", Version: "1.0.1"})
	if st.Quarantine == nil || st.Quarantine.State != cache.Released || !strings.Contains(st.Quarantine.Reason, "GHSA-aaaa-bbbb-cccc") {
		t.Errorf("the age hold: %+v", st.Quarantine)
	}
	x, err := f.h.Explain(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "lib", Version: "1.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range x.Checks {
		if c.Check == policy.CheckCooldown && (c.Result != policy.NotRun || !strings.Contains(c.Note, "GHSA-aaaa-bbbb-cccc")) {
			t.Errorf("explain cooldown %+v", c)
		}
	}
}
