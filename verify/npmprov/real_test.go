package npmprov_test

import (
	"context"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmprov"
	"github.com/airlock-proxy/airlock/verify/npmprov/npmprovtest"
	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// gundam-visor@1.0.1 is a real package published with provenance from
// GitHub Actions on 2024-06-03. testdata/gundam-visor@1.0.1.attestations.json
// is the registry's /-/npm/v1/attestations/gundam-visor@1.0.1 response as
// slsa-framework/slsa-verifier keeps it in its test data
// (cli/slsa-verifier/testdata/npm/gha/gundam-visor-cli-v1-tag.tgz.json),
// unmodified; that it verifies against the public-good root and the
// registry's published key is what shows it genuine.
const (
	gundamSHA512 = "8d9d7972f676516c75014aa074e11ae604d98f0b64ec6725a61e2838ff3dab162118fa71433fb31e1550d30bd0dec9d086ce032b94457b583900c507acf39c40"
	// gundamLogged is the publish attestation's Rekor integrated time; the
	// packument's time["1.0.1"] is the same moment give or take a second.
	gundamLogged = 1717453081
)

func realVerifier(t testing.TB) *npmprov.Verifier {
	t.Helper()
	tr, err := npmprov.DefaultTrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	return npmprov.New(tr, npmsig.DefaultKeys())
}

func TestRealAttestations(t *testing.T) {
	doc, err := os.ReadFile("testdata/gundam-visor@1.0.1.attestations.json")
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := hex.DecodeString(gundamSHA512)
	published := time.Unix(gundamLogged, 0)
	v := realVerifier(t)

	t.Run("verifies", func(t *testing.T) {
		r, err := v.Verify(context.Background(), "gundam-visor", "1.0.1", sum, doc, published)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Findings) != 0 || !r.Publish {
			t.Fatalf("publish %v, findings %+v", r.Publish, r.Findings)
		}
		want := npmprov.Provenance{
			PredicateType:    npmprov.PredicateSLSAProvenanceV1,
			SourceRepository: "github.com/ramonpetgrave64/gundam-visor",
			Workflow:         ".github/workflows/npm-publish.yml",
			Ref:              "refs/tags/v1.0.1",
			Commit:           "599500821344b070902a7a5666064bfdaba715df",
			Builder:          "https://github.com/actions/runner/github-hosted",
			Issuer:           "https://token.actions.githubusercontent.com",
			Identity:         "https://github.com/ramonpetgrave64/gundam-visor/.github/workflows/npm-publish.yml@refs/tags/v1.0.1",
		}
		if r.Provenance == nil || *r.Provenance != want {
			t.Fatalf("provenance %+v\nwant %+v", r.Provenance, want)
		}
	})
	t.Run("published after the key expired", func(t *testing.T) {
		r, err := v.Verify(context.Background(), "gundam-visor", "1.0.1", sum, doc, time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if r.Publish || r.Provenance == nil || len(r.Findings) != 1 || r.Findings[0].Evidence["reason"] != npmprov.ReasonExpiredKey {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("another tarball", func(t *testing.T) {
		other := append([]byte(nil), sum...)
		other[0] ^= 1
		r, err := v.Verify(context.Background(), "gundam-visor", "1.0.1", other, doc, published)
		if err != nil {
			t.Fatal(err)
		}
		if r.Publish || r.Provenance != nil || len(r.Findings) != 2 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("another trusted root", func(t *testing.T) {
		r, err := npmprov.New(npmprovtest.New(t).TrustedMaterial(), npmsig.DefaultKeys()).Verify(context.Background(), "gundam-visor", "1.0.1", sum, doc, published)
		if err != nil {
			t.Fatal(err)
		}
		if r.Publish || r.Provenance != nil || len(r.Findings) != 2 {
			t.Fatalf("%+v", r)
		}
	})
}

// testdata/sigstore.js@2.0.0-provenance.sigstore.json is the real
// provenance bundle of the npm package sigstore@2.0.0 (bundle v0.1, SLSA
// v1, 2023-08-18), from sigstore-go's test data
// (pkg/testing/data/bundles). Only the bundle is real: the test wraps it
// in the document shape itself.
func TestRealProvenanceBundle(t *testing.T) {
	b, err := os.ReadFile("testdata/sigstore.js@2.0.0-provenance.sigstore.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateSLSAProvenanceV1, Bundle: b})
	sum, _ := hex.DecodeString("46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c")
	r, err := realVerifier(t).Verify(context.Background(), "sigstore", "2.0.0", sum, doc, time.Unix(1692374735, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 || r.Provenance == nil {
		t.Fatalf("%+v", r)
	}
	p := r.Provenance
	if p.SourceRepository != "github.com/sigstore/sigstore-js" || p.Workflow != ".github/workflows/release.yml" ||
		p.Ref != "refs/heads/main" || p.Commit != "f0b49a04e5a62250e0f60fb128004a73110fe311" {
		t.Fatalf("%+v", p)
	}
	r, err = realVerifier(t).Verify(context.Background(), "@sigstore/sign", "2.0.0", sum, doc, time.Unix(1692374735, 0))
	if err != nil || r.Provenance != nil || len(r.Findings) != 1 || r.Findings[0].Evidence["reason"] != npmprov.ReasonSubject {
		t.Fatalf("other package: %+v %v", r, err)
	}
}
