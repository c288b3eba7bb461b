package oci_test

import (
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify/policy"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestNewSigner: an image of a repository signed only by an identity that
// signed none of its earlier images is held as new-publisher; the same
// identity in another signature format is not new; an admin's release
// makes the identity known.
func TestNewSigner(t *testing.T) {
	f := newFixture(t, requireSig(""), withChecks(policy.Default()))
	imgs := map[string]v1.Image{}
	sign := func(tag string, signers ...string) {
		imgs[tag] = image(t)
		f.push(t, "test/app:"+tag, imgs[tag])
		d := digestOf(t, imgs[tag])
		f.ver.permit(d)
		if f.ver.signers == nil {
			f.ver.signers = map[string][]string{}
		}
		f.ver.signers[d] = signers
	}
	sign("v1", "legacy: https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1 (https://token.actions.githubusercontent.com)")
	sign("v2", "bundle-referrer: https://github.com/acme/other/.github/workflows/ci.yml@refs/heads/main (https://token.actions.githubusercontent.com)")
	sign("v3", "bundle-referrer: https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1 (https://token.actions.githubusercontent.com)")
	sign("v4", "legacy: https://github.com/acme/other/.github/workflows/ci.yml@refs/heads/main (https://token.actions.githubusercontent.com)")

	pullImage(t, f, "up/test/app:v1", imgs["v1"]) // the first signer: nothing to compare with
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v2")
	e := wantErr(t, resp, body, 403, "DENIED")
	if !strings.Contains(e.Message, "new-publisher") || !strings.Contains(e.Message, "acme/other") {
		t.Errorf("v2 refusal: %s", e.Message)
	}
	a := digestArtifact("up/test/app", digestOf(t, imgs["v2"]))
	if q := f.quarantineOf(t, a); q.State != cache.Held || q.Findings[0].Check != policy.CheckNewPublisher || !strings.Contains(q.Findings[0].Evidence["previous_signers"], "acme/app") {
		t.Errorf("v2 record %+v", q)
	}
	pullImage(t, f, "up/test/app:v3", imgs["v3"]) // the known identity, as a bundle
	f.release(t, a)
	pullImage(t, f, "up/test/app:v2", imgs["v2"])
	pullImage(t, f, "up/test/app:v4", imgs["v4"]) // known since the release
}
