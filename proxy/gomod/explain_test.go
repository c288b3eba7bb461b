package gomod_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/gomod"
	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

func TestExplain(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Now()}
	old := lib("example.com/c", "v1.0.0", "func C() {}\n")
	old.Time = c.t.Add(-60 * 24 * time.Hour)
	young := lib("example.com/c", "v1.1.0", "func C() int { return 1 }\n")
	young.Time = c.t.Add(-2 * time.Hour)
	up := gomodtest.New(t, old, young)
	zip := strings.Fields(up.GoSum("example.com/c", "v1.0.0"))[2]
	p := policy.Default()
	p.Rules = []policy.Rule{{Match: "go:example.com/c", CI: true}}
	f := newFixture(t, up, up, up.SumDBURL, func(o *gomod.Options) {
		o.Checks, o.Now = p, c.now
		o.CI = func(_ context.Context, a verify.Artifact, h1 string) (*verify.Finding, error) {
			if h1 == zip {
				return nil, nil
			}
			return &verify.Finding{Check: policy.CheckCIDigest, Message: "digest differs from the one our CI built", Evidence: map[string]string{"actual": h1}}, nil
		}
	})
	mod := func(v string) verify.Artifact {
		return verify.Artifact{Ecosystem: verify.Go, Name: "example.com/c", Version: v}
	}

	// Never downloaded: the database's record gives the hash CI is
	// compared with.
	x, err := f.h.Explain(ctx, mod("v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if x.Verdict != verify.Allow {
		t.Errorf("v1.0.0 verdict %s: %+v", x.Verdict, x.Checks)
	}
	for _, check := range []string{"sumdb", policy.CheckCooldown, policy.CheckCIDigest, policy.CheckKnownMalicious} {
		if c, ok := x.Check(check); !ok || c.Result != policy.Pass {
			t.Errorf("v1.0.0 %s = %+v, want pass", check, c)
		}
	}
	if c, _ := x.Check("sumdb"); !strings.Contains(c.Note, zip) {
		t.Errorf("sumdb note %q lacks the zip hash", c.Note)
	}

	// Young, and not what CI built: two findings, held.
	x, err = f.h.Explain(ctx, mod("v1.1.0"))
	if err != nil {
		t.Fatal(err)
	}
	if x.Verdict != verify.Quarantine {
		t.Errorf("v1.1.0 verdict %s", x.Verdict)
	}
	for _, check := range []string{policy.CheckCooldown, policy.CheckCIDigest} {
		if c, ok := x.Check(check); !ok || c.Result != policy.Found || c.Action != policy.Quarantine {
			t.Errorf("v1.1.0 %s = %+v, want a finding to quarantine", check, c)
		}
	}
	// Explaining served nothing.
	if up.Requests(".zip") != 0 {
		t.Errorf("explain downloaded %d zips", up.Requests(".zip"))
	}
	// Not in the database.
	x, err = f.h.Explain(ctx, mod("v1.9.0"))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := x.Check("sumdb"); !ok || c.Result != policy.Found || x.Verdict == verify.Allow {
		t.Errorf("unknown version: %+v, verdict %s", c, x.Verdict)
	}
	// An invalid name is the caller's error.
	if _, err := f.h.Explain(ctx, verify.Artifact{Ecosystem: verify.Go, Name: "Example.com/../c", Version: "v1"}); err == nil {
		t.Error("invalid module accepted")
	}
}
