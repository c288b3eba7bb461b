package cirecord_test

import (
	"crypto"
	"os"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify/cirecord"
)

// FuzzFromGoreleaser: whatever artifacts.json and checksums.txt say, the
// import returns an error and no records, or records that all validate.
func FuzzFromGoreleaser(f *testing.F) {
	arts, err := os.ReadFile("testdata/goreleaser/artifacts.json")
	if err != nil {
		f.Fatal(err)
	}
	sums, err := os.ReadFile("testdata/goreleaser/checksums.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(arts, sums)
	f.Add([]byte(`[{"name":"ghcr.io/acme/app:1@`+digestIndex+`","type":"Docker Manifest"}]`), []byte(nil))
	f.Add([]byte(`[{"name":"alpine","type":"Published Docker Image","extra":{"Digest":"`+digestHub+`"}}]`), []byte(strings.Repeat("a", 64)+"  *x\r\n"))
	f.Add([]byte(`[{"name":"localhost:5000/a:b","type":"Docker Manifest","extra":{"Digest":null,"Checksum":"sha256:`+strings.Repeat("a", 64)+`"}}]`), []byte(strings.Repeat("b", 64)+"  localhost:5000/a:b"))
	opt := cirecord.GoreleaserOptions{Registries: map[string]string{"ghcr.io": "ghcr", "docker.io": "hub", "localhost:5000": "local", "": "x", "ghcr.io/acme/": "acme/"}}
	f.Fuzz(func(t *testing.T, artifacts, checksums []byte) {
		imp, err := cirecord.ImportGoreleaser(artifacts, checksums, opt)
		if err != nil {
			if imp.Records != nil || imp.Skipped != nil {
				t.Fatalf("error %v with a result %+v", err, imp)
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range imp.Records {
			if err := r.Validate(); err != nil {
				t.Fatalf("record %+v: %v", r, err)
			}
			if r.Source != cirecord.SourceGoreleaser || seen[r.Artifact.Key()] {
				t.Fatalf("record %+v", r)
			}
			seen[r.Artifact.Key()] = true
		}
	})
}

// FuzzFromDSSE: a validly signed statement of any content gives an error
// and no records, or records that all validate.
func FuzzFromDSSE(f *testing.F) {
	f.Add(slsaV1(npmSubject, goSubject, ociSubject, binSubject))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"pkg:oci/app@sha256%3A` + hexSHA256("x") + `?repository_url=ghcr.io/acme/app&tag=v1","digest":{}}],"predicateType":"https://slsa.dev/provenance/v0.2","predicate":{"materials":[{"digest":{"sha1":"` + commit + `"}}]}}`))
	key := newECDSA(f)
	sign := ecdsaSigner(f, key)
	keys := []crypto.PublicKey{&key.PublicKey}
	opt := cirecord.InTotoOptions{Registries: map[string]string{"ghcr.io": "ghcr"}, SkipUnmapped: true}
	f.Fuzz(func(t *testing.T, payload []byte) {
		recs, err := cirecord.FromDSSE(dsse(t, payload, sign), keys, opt)
		if err != nil {
			if recs != nil {
				t.Fatalf("error %v with records %+v", err, recs)
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("no records and no error")
		}
		for _, r := range recs {
			if err := r.Validate(); err != nil {
				t.Fatalf("record %+v: %v", r, err)
			}
		}
	})
}
