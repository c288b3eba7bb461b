package npmprov

import (
	"context"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmsig"
)

func FuzzParse(f *testing.F) {
	if doc, err := os.ReadFile("testdata/gundam-visor@1.0.1.attestations.json"); err == nil {
		f.Add(doc)
	}
	for _, s := range []string{`{"attestations":[]}`, `{}`, `null`, `{"attestations":[{"predicateType":1}]}`, `{"attestations":[{"bundle":null}]} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		atts, err := parse(doc)
		if err != nil {
			return
		}
		if len(doc) > MaxAttestationsSize || len(atts) > maxAttestations {
			t.Fatalf("accepted %d bytes, %d attestations", len(doc), len(atts))
		}
	})
}

// FuzzVerify mutates a real document: whatever survives must never vouch
// for another version, and a provenance that still verifies must say
// what the real one says.
func FuzzVerify(f *testing.F) {
	doc, err := os.ReadFile("testdata/gundam-visor@1.0.1.attestations.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add([]byte(`{"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","bundle":{}}]}`))
	tr, err := DefaultTrustedRoot()
	if err != nil {
		f.Fatal(err)
	}
	v := New(tr, npmsig.DefaultKeys())
	sum, _ := hex.DecodeString("8d9d7972f676516c75014aa074e11ae604d98f0b64ec6725a61e2838ff3dab162118fa71433fb31e1550d30bd0dec9d086ce032b94457b583900c507acf39c40")
	published := time.Unix(1717453081, 0)
	f.Fuzz(func(t *testing.T, doc []byte) {
		r, err := v.Verify(context.Background(), "gundam-visor", "1.0.2", sum, doc, published)
		if err == nil && (r.Provenance != nil || r.Publish) {
			t.Fatalf("1.0.2 verified: %+v", r)
		}
		r, err = v.Verify(context.Background(), "gundam-visor", "1.0.1", sum, doc, published)
		if err != nil {
			return
		}
		if p := r.Provenance; p != nil && (p.SourceRepository != "github.com/ramonpetgrave64/gundam-visor" || p.Commit != "599500821344b070902a7a5666064bfdaba715df") {
			t.Fatalf("mutated provenance verified: %+v", p)
		}
	})
}
