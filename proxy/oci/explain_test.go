package oci_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

func TestExplain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, requireSig(""), withChecks(policy.Default()))
	signed, unsigned := image(t), image(t)
	f.push(t, "test/app:v1", signed)
	f.push(t, "test/other:v1", unsigned)
	f.ver.permit(digestOf(t, signed))
	f.ver.signedAt = f.clock.Now().Add(-48 * time.Hour)
	oci := func(name, version string) verify.Artifact {
		return verify.Artifact{Ecosystem: verify.OCI, Name: name, Version: version}
	}

	x, err := f.h.Explain(ctx, oci("up/test/app", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	if x.Verdict != verify.Allow || x.Facts["digest"] != digestOf(t, signed) || x.Facts["signed_at"] == "" {
		t.Errorf("signed image: %+v", x)
	}
	for _, check := range []string{"signature", policy.CheckCooldown, "tag-moved"} {
		if c, ok := x.Check(check); !ok || c.Result != policy.Pass {
			t.Errorf("signed %s = %+v, want pass", check, c)
		}
	}
	// Nothing was served or recorded.
	if f.faults.count("GET", "/blobs/") != 0 {
		t.Error("explain fetched blobs")
	}
	if st, err := f.meta.Status(ctx, digestArtifact("up/test/app", digestOf(t, signed))); err == nil && !st.Decided.IsZero() {
		t.Errorf("explain decided: %+v", st)
	}

	x, err = f.h.Explain(ctx, oci("up/test/other", digestOf(t, unsigned)))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := x.Check("signature"); !ok || c.Result != policy.Found || x.Verdict == verify.Allow {
		t.Errorf("unsigned: %+v", x)
	}

	// The tag moves upstream to the unsigned image: drift and signature.
	pullImage(t, f, "up/test/app:v1", signed)
	f.push(t, "test/app:v1", unsigned)
	x, err = f.h.Explain(ctx, oci("up/test/app", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []string{"signature", "tag-moved"} {
		if c, ok := x.Check(check); !ok || c.Result != policy.Found {
			t.Errorf("moved tag %s = %+v, want a finding", check, c)
		}
	}
	if x.Facts["tag_serves"] != digestOf(t, signed) {
		t.Errorf("facts %v", x.Facts)
	}

	// A name that is not an upstream's goes to the Docker Hub mirror:
	// the answer says how Airlock keys it.
	_, err = f.h.Explain(ctx, oci("nowhere/app", "v1"))
	var sc interface{ StatusCode() int }
	if !errors.As(err, &sc) || sc.StatusCode() != 400 || !strings.Contains(err.Error(), "oci:hub/nowhere/app") {
		t.Errorf("name outside every upstream: %v", err)
	}
}
