package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify/cosign/cosigntest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Keyless identities: A is the organisation the policy trusts, B another
// one with the same OIDC issuer.
const (
	ghIssuer        = "https://token.actions.githubusercontent.com"
	acmeSubject     = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1"
	otherOrgSubject = "https://github.com/evil/app/.github/workflows/release.yml@refs/tags/v1"
	acmeRegexp      = "https://github.com/acme/.*"
)

// keylessAirlock starts Airlock trusting trustedRoot (a trusted_root.json)
// for keyless signatures: up/keyless/** needs a signature by an identity
// under https://github.com/acme/ issued by GitHub Actions; no keys. extra
// is appended to the configuration (a policy section).
func keylessAirlock(t *testing.T, up *ociUpstream, trustedRoot, extra string) *instance {
	t.Helper()
	return startAirlock(t, fmt.Sprintf(`
oci:
  upstreams: [{name: up, url: "http://%s"}]
  tag_ttl: 0s
  timeout: 30s
  trusted_root: %q
  policies:
    - match: "up/keyless/**"
      require: signature
      identities: [{subject_regexp: %q, issuer: %q}]
%s`, up.Host, trustedRoot, acmeRegexp, ghIssuer, extra))
}

// noCooldown turns the cooldown off: the signatures below are seconds old,
// and their transparency-log time is a publish time the cooldown honours.
const noCooldown = "policy: {cooldown: 0s}\n"

// TestOCIKeylessCooldown: a keyless signature's transparency-log time is
// an image's publish time nobody can push back, so an image signed
// seconds ago is held by the default 24 h cooldown, with the log time in
// the reason; a fast_track rule lets a namespace through.
func TestOCIKeylessCooldown(t *testing.T) {
	up := newOCIUpstream(t)
	ss := cosigntest.New(t)
	trustedRoot := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := ss.WriteTrustedRoot(trustedRoot); err != nil {
		t.Fatal(err)
	}
	id := ss.Issue(t, acmeSubject, ghIssuer)
	for _, repo := range []string{"keyless/new", "keyless/fast"} {
		img := randomImage(t, 4096, "amd64")
		up.push(t, repo+":v1", img)
		d, err := name.NewDigest(up.Host + "/" + repo + "@" + digestOf(t, img))
		if err != nil {
			t.Fatal(err)
		}
		id.SignBundle(t, d)
	}
	inst := keylessAirlock(t, up, trustedRoot, "policy:\n  rules: [{match: \"oci:up/keyless/fast\", fast_track: true}]\n")
	_, out, err := cranePull(t, inst.host()+"/up/keyless/new:v1")
	if err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "cooldown: signed") || !strings.Contains(out, "transparency log time") {
		t.Errorf("crane pull of an image signed seconds ago: %v\n%s", err, out)
	}
	if _, out, err := cranePull(t, inst.host()+"/up/keyless/fast:v1"); err != nil {
		t.Errorf("crane pull of a fast-tracked namespace: %v\n%s", err, out)
	}
}

// TestOCIKeylessThroughAirlock verifies keyless signatures offline against
// a locally generated sigstore (cosigntest: a Fulcio-like CA embedding SCTs,
// a CT log, a Rekor-like log issuing SETs and inclusion proofs) whose
// trusted_root.json is the only trust Airlock is given. Signatures by the
// trusted identity pull (legacy .sig and bundle referrer); another
// organisation's identity, a certificate without an SCT, a signature
// without a tlog entry and a certificate from another CA are all denied.
// cosign verify, offline with the same trusted root, succeeds through
// Airlock.
func TestOCIKeylessThroughAirlock(t *testing.T) {
	up := newOCIUpstream(t)
	ss, stranger := cosigntest.New(t), cosigntest.New(t)
	trustedRoot := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := ss.WriteTrustedRoot(trustedRoot); err != nil {
		t.Fatal(err)
	}

	imgs := map[string]v1.Image{}
	digest := func(repo string) name.Digest {
		d, err := name.NewDigest(up.Host + "/" + repo + "@" + digestOf(t, imgs[repo]))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, repo := range []string{"keyless/app", "keyless/bundle", "keyless/other-org", "keyless/no-sct", "keyless/no-tlog", "keyless/other-ca"} {
		imgs[repo] = randomImage(t, 4096, "amd64")
		up.push(t, repo+":v1", imgs[repo])
	}
	a := ss.Issue(t, acmeSubject, ghIssuer)
	a.SignLegacy(t, digest("keyless/app"))
	a.SignBundle(t, digest("keyless/bundle"))
	b := ss.Issue(t, otherOrgSubject, ghIssuer)
	b.SignLegacy(t, digest("keyless/other-org"))
	b.SignBundle(t, digest("keyless/other-org"))
	ss.Issue(t, acmeSubject, ghIssuer, cosigntest.WithoutSCT()).SignLegacy(t, digest("keyless/no-sct"))
	a.SignLegacy(t, digest("keyless/no-tlog"), cosigntest.WithoutTlog())
	stranger.Issue(t, acmeSubject, ghIssuer).SignLegacy(t, digest("keyless/other-ca"), cosigntest.LoggedBy(ss))

	inst := keylessAirlock(t, up, trustedRoot, noCooldown)
	via := func(repo string) string { return inst.host() + "/up/" + repo + ":v1" }
	artifact := func(repo string) string { return "oci:up/" + repo + "@" + digestOf(t, imgs[repo]) }

	t.Run("trusted identity pulls bit-identical", func(t *testing.T) {
		for _, repo := range []string{"keyless/app", "keyless/bundle"} {
			img, want := imgs[repo], digestOf(t, imgs[repo])
			dir, out, err := cranePull(t, via(repo))
			if err != nil {
				t.Fatalf("crane pull of %s, signed keylessly by %s: %v\n%s", repo, acmeSubject, err, out)
			}
			sameLayers(t, "crane "+repo, up, repo, img, dir)
			if got := layoutManifests(t, dir); len(got) != 1 || got[0] != want {
				t.Errorf("crane pulled %v of %s, want %s", got, repo, want)
			}
		}
		dir, out, err := skopeoCopy(t, via("keyless/app"))
		if err != nil {
			t.Fatalf("skopeo copy of a keyless-signed image: %v\n%s", err, out)
		}
		sameLayers(t, "skopeo", up, "keyless/app", imgs["keyless/app"], dir)
	})

	for _, c := range []struct{ name, repo, evidence string }{
		// evidence: what the finding must say of why the signature found
		// failed.
		{"another organisation's identity is denied", "keyless/other-org", otherOrgSubject},
		{"certificate without SCT is denied", "keyless/no-sct", "SCT"},
		{"signature without tlog entry is denied", "keyless/no-tlog", ""},
		{"certificate from another CA is denied", "keyless/other-ca", "certificate verification failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, out, err := cranePull(t, via(c.repo))
			id := wantDenied(t, "crane pull", out, err, artifact(c.repo))
			_, out, err = skopeoCopy(t, via(c.repo))
			if id2 := wantDenied(t, "skopeo copy", out, err, artifact(c.repo)); id2 != id {
				t.Errorf("skopeo was told quarantine id %q, crane %q", id2, id)
			}
			q := recordFor(t, inst, "up/"+c.repo, digestOf(t, imgs[c.repo]))
			if q.ID != id || q.State != "held" || !hasFinding(q, "signature") {
				t.Errorf("quarantine record %+v, want %s held with a signature finding", q, id)
			}
			// The evidence names the identity tried and the signature found,
			// with why it failed.
			ev := fmt.Sprint(q.Findings)
			if !strings.Contains(ev, acmeRegexp) || !strings.Contains(ev, ghIssuer) {
				t.Errorf("the evidence does not name the identity tried (%s, %s): %s", acmeRegexp, ghIssuer, ev)
			}
			for _, want := range []string{"found.legacy-tag:1", "sig.1:legacy-tag", c.evidence} {
				if !strings.Contains(ev, want) {
					t.Errorf("the evidence does not mention %q: %s", want, ev)
				}
			}
		})
	}

	t.Run("cosign verify through Airlock", func(t *testing.T) {
		c := newCosign(t)
		// Offline: newCosign's environment refuses any connection beyond
		// loopback, so no TUF update and no Rekor lookup.
		verify := func(regexp, repo string, extra ...string) (string, error) {
			args := append([]string{"verify",
				"--certificate-identity-regexp", regexp, "--certificate-oidc-issuer", ghIssuer,
				"--trusted-root", trustedRoot}, registryFlags...)
			return c.run(append(append(args, extra...), via(repo))...)
		}
		for repo, extra := range map[string][]string{
			"keyless/app":    nil,
			"keyless/bundle": {"--new-bundle-format"},
		} {
			out, err := verify(acmeRegexp, repo, extra...)
			if err != nil {
				t.Errorf("cosign verify %v of %s through Airlock: %v\n%s", extra, repo, err, out)
			} else if d := digestOf(t, imgs[repo]); !strings.Contains(out, d) {
				t.Errorf("cosign verify of %s does not name its digest %s:\n%s", repo, d, out)
			}
		}
		// cosign checks the identity itself: another organisation's regexp
		// rejects A's signature.
		if out, err := verify("https://github.com/evil/.*", "keyless/app"); err == nil {
			t.Errorf("cosign verify of keyless/app for another organisation's identity succeeded:\n%s", out)
		}
		// Airlock serves nothing of a denied image, signatures included.
		if out, err := verify(acmeRegexp, "keyless/other-org"); err == nil {
			t.Errorf("cosign verify of another organisation's image through Airlock succeeded:\n%s", out)
		}
	})
}
