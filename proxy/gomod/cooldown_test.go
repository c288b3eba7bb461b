package gomod_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/gomod"
	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// clock is a settable clock for the handler.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func withChecks(c *clock) func(*gomod.Options) {
	return func(o *gomod.Options) { o.Checks = policy.Default(); o.Now = c.now }
}

// TestCooldownByCommitTime: a version whose .info Time is within the
// cooldown is dropped from the list and @latest, and its .info and .zip
// are refused with the reason, until it comes of age; its go.mod is served.
func TestCooldownByCommitTime(t *testing.T) {
	c := &clock{t: time.Now()}
	old := lib("example.com/c", "v1.0.0", "func C() {}\n")
	old.Time = c.t.Add(-60 * 24 * time.Hour)
	young := lib("example.com/c", "v1.1.0", "func C() int { return 1 }\n")
	young.Time = c.t.Add(-2 * time.Hour)
	up := gomodtest.New(t, old, young)
	f := newFixture(t, up, up, up.SumDBURL, withChecks(c))

	if code, _, body := f.get(t, "GET", "example.com/c/@v/list"); code != 200 || strings.Contains(body, "v1.1.0") || !strings.Contains(body, "v1.0.0") {
		t.Errorf("list = %d %q, want v1.0.0 only", code, body)
	}
	if code, _, body := f.get(t, "GET", "example.com/c/@latest"); code != 200 || !strings.Contains(body, `"v1.0.0"`) {
		t.Errorf("@latest = %d %s, want v1.0.0", code, body)
	}
	for _, p := range []string{"example.com/c/@v/v1.1.0.info", "example.com/c/@v/v1.1.0.zip"} {
		code, _, body := f.get(t, "GET", p)
		if code != http.StatusForbidden || !strings.Contains(body, "cooldown") || !strings.Contains(body, "fast_track") {
			t.Errorf("%s = %d %q, want 403 naming the cooldown", p, code, body)
		}
	}
	if code, _, _ := f.get(t, "GET", "example.com/c/@v/v1.1.0.mod"); code != 200 {
		t.Errorf("go.mod of a young version = %d, want 200 (minimal version selection reads it)", code)
	}
	// A day on, it is old by both proofs: its commit time, and its record
	// (which entered the test database when Airlock first asked for it).
	c.t = c.t.Add(25 * time.Hour)
	for _, p := range []string{"example.com/c/@v/v1.1.0.info", "example.com/c/@v/v1.1.0.zip"} {
		if code, _, body := f.get(t, "GET", p); code != 200 {
			t.Errorf("after the cooldown %s = %d %q", p, code, body)
		}
	}
}

// TestCooldownByChecksumDatabase: the commit time is the author's to
// choose, so a backdated version is caught by its record id: it entered
// the checksum database after the tree size Airlock sampled.
func TestCooldownByChecksumDatabase(t *testing.T) {
	c := &clock{t: time.Now()}
	a := lib("example.com/a", "v1.0.0", "func A() {}\n")
	up := gomodtest.New(t, a)
	f := newFixture(t, up, up, up.SumDBURL, withChecks(c))
	// Airlock verifies something: it samples the tree.
	if code, _, body := f.get(t, "GET", "example.com/a/@v/v1.0.0.zip"); code != 200 {
		t.Fatalf("zip = %d %s", code, body)
	}
	c.t = c.t.Add(3 * 24 * time.Hour)
	// Published now, with a commit time years back.
	back := lib("example.com/b", "v1.0.0", "func B() {}\n")
	back.Time = c.t.Add(-3 * 365 * 24 * time.Hour)
	up.Add(back)
	if code, _, _ := f.get(t, "GET", "example.com/b/@v/v1.0.0.mod"); code != 200 {
		t.Fatalf("mod = %d", code)
	}
	code, _, body := f.get(t, "GET", "example.com/b/@v/v1.0.0.zip")
	if code != http.StatusForbidden || !strings.Contains(body, "checksum database") {
		t.Errorf("backdated new version = %d %q, want 403 by its record id", code, body)
	}
	// The version Airlock saw before is old by the same proof.
	if code, _, _ := f.get(t, "GET", "example.com/a/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("old version = %d", code)
	}
	c.t = c.t.Add(25 * time.Hour)
	if code, _, body := f.get(t, "GET", "example.com/b/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("a day later = %d %q", code, body)
	}
}

// TestCIDigest: a module of a namespace declared built by CI is served
// only when its zip hash is the CI record's.
func TestCIDigest(t *testing.T) {
	up := gomodtest.New(t, testMods()...)
	p := policy.Default()
	p.Cooldown = 0
	p.Rules = []policy.Rule{{Match: "go:example.com/c", CI: true}}
	want := strings.Fields(up.GoSum("example.com/c", "v1.0.0"))[2]
	f := newFixture(t, up, up, up.SumDBURL, func(o *gomod.Options) {
		o.Checks = p
		o.CI = func(_ context.Context, a verify.Artifact, h1 string) (*verify.Finding, error) {
			if a.Version == "v1.0.0" && h1 == want {
				return nil, nil
			}
			return &verify.Finding{Check: policy.CheckCIDigest, Message: "not built by our CI"}, nil
		}
	})
	if code, _, body := f.get(t, "GET", "example.com/c/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("recorded version = %d %s", code, body)
	}
	if code, _, body := f.get(t, "GET", "example.com/c/@v/v1.1.0.zip"); code != http.StatusForbidden || !strings.Contains(body, "ci-digest") {
		t.Errorf("unrecorded version = %d %s, want 403 ci-digest", code, body)
	}
	if code, _, _ := f.get(t, "GET", "example.com/a/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("a module outside the CI namespace = %d", code)
	}
}

// TestAdvisoryFastTrack: a version an advisory names as the fix of a
// vulnerability is served young, and listed for @latest.
func TestAdvisoryFastTrack(t *testing.T) {
	c := &clock{t: time.Now()}
	old := lib("example.com/c", "v1.0.0", "func C() {}\n")
	old.Time = c.t.Add(-60 * 24 * time.Hour)
	fix := lib("example.com/c", "v1.0.1", "func C() int { return 1 }\n")
	fix.Time = c.t.Add(-2 * time.Hour)
	up := gomodtest.New(t, old, fix)
	f := newFixture(t, up, up, up.SumDBURL, withChecks(c), func(o *gomod.Options) {
		o.FastTrack = func(a verify.Artifact) []string {
			if a.Version == "v1.0.1" {
				return []string{"GO-2026-0001"}
			}
			return nil
		}
	})
	if code, _, body := f.get(t, "GET", "example.com/c/@latest"); code != 200 || !strings.Contains(body, `"v1.0.1"`) {
		t.Errorf("@latest = %d %s, want the fix", code, body)
	}
	if code, _, body := f.get(t, "GET", "example.com/c/@v/v1.0.1.zip"); code != 200 {
		t.Errorf("zip of the young fix = %d %q", code, body)
	}
	x, err := f.h.Explain(context.Background(), verify.Artifact{Ecosystem: verify.Go, Name: "example.com/c", Version: "v1.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := x.Check(policy.CheckCooldown); !ok || c.Result != policy.NotRun || !strings.Contains(c.Note, "GO-2026-0001") {
		t.Errorf("explain cooldown %+v", c)
	}
}
