package oci_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/oci"
	"github.com/airlock-proxy/airlock/verify/policy"
)

func withChecks(p policy.Policy) fixtureOpt {
	return func(o *oci.Options) { o.Checks = p }
}

// TestSignedYoungHeldUntilOfAge: a signature's transparency-log time is
// the image's publish time; within the cooldown the image is held with
// the reason, and the clock releases it (airlock/cooldown) once of age.
func TestSignedYoungHeldUntilOfAge(t *testing.T) {
	f := newFixture(t, requireSig(""), withChecks(policy.Default()))
	img := image(t)
	f.push(t, "test/app:v1", img)
	d := digestOf(t, img)
	f.ver.permit(d)
	f.ver.signedAt = f.clock.Now().Add(-time.Hour)

	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v1")
	e := wantErr(t, resp, body, 403, "DENIED")
	if !strings.Contains(e.Message, "cooldown: signed 1h0m0s ago") {
		t.Errorf("refusal %q lacks the cooldown", e.Message)
	}
	a := digestArtifact("up/test/app", d)
	if q := f.quarantineOf(t, a); q.State != cache.Held || q.Findings[0].Check != policy.CheckCooldown {
		t.Fatalf("record %+v", q)
	}
	f.clock.Add(23*time.Hour + time.Minute)
	pullImage(t, f, "up/test/app:v1", img)
	q := f.quarantineOf(t, a)
	if q.State != cache.Released || q.UpdatedBy != "airlock/cooldown" {
		t.Errorf("after the cooldown: %+v", q)
	}
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times", n)
	}
}

// Without a log time (a key signature with the log off) nothing proves
// the image young: served; and a fast-tracked namespace is served young.
func TestSignedWithoutLogTimeOrFastTrack(t *testing.T) {
	p := policy.Default()
	p.Rules = []policy.Rule{{Match: "oci:up/fast/*", FastTrack: true}}
	f := newFixture(t, requireSig(""), withChecks(p))
	old, fast := image(t), image(t)
	f.push(t, "test/app:v1", old)
	f.push(t, "fast/app:v1", fast)
	f.ver.permit(digestOf(t, old), digestOf(t, fast))
	pullImage(t, f, "up/test/app:v1", old)
	f.ver.signedAt = f.clock.Now().Add(-time.Minute)
	pullImage(t, f, "up/fast/app:v1", fast)
	if st, err := f.meta.Status(context.Background(), digestArtifact("up/fast/app", digestOf(t, fast))); err != nil || st.Quarantine != nil {
		t.Errorf("fast-tracked image: %+v, %v", st, err)
	}
}
