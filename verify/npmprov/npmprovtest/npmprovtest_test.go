package npmprovtest

import (
	"crypto/sha512"
	"encoding/json"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// The document has the registry's shape and its bundles are v0.3 bundles
// sigstore-go reads; verification itself is npmprov's test.
func TestShape(t *testing.T) {
	s := New(t)
	if _, err := root.NewTrustedRootFromJSON(s.TrustedRootJSON()); err != nil {
		t.Fatal(err)
	}
	key, keyid := RegistryKey(t)
	sum := sha512.Sum512([]byte("x"))
	doc, err := s.Attestations("@acme/app", "1.0.0", sum[:], Source{Repository: "github.com/acme/app", Workflow: ".github/workflows/r.yml", Ref: "refs/heads/main", Commit: "abc"}, key, keyid)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Attestations []struct {
			PredicateType string          `json:"predicateType"`
			Bundle        json.RawMessage `json:"bundle"`
		} `json:"attestations"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Attestations) != 2 || d.Attestations[0].PredicateType != PredicateNPMPublish || d.Attestations[1].PredicateType != PredicateSLSAProvenanceV1 {
		t.Fatalf("%s", doc)
	}
	for i, a := range d.Attestations {
		var b bundle.Bundle
		if err := b.UnmarshalJSON(a.Bundle); err != nil {
			t.Fatalf("bundle %d: %v", i, err)
		}
		if b.GetMediaType() != BundleMediaType {
			t.Errorf("bundle %d: media type %q", i, b.GetMediaType())
		}
		if tl := b.GetVerificationMaterial().GetTlogEntries(); len(tl) != 1 || tl[0].GetKindVersion().GetKind() != "intoto" {
			t.Errorf("bundle %d: tlog entries %v", i, tl)
		}
	}
	if _, err := s.Attestations("a", "1.0.0", sum[:], Source{Repository: "https://github.com/acme/app"}, key, keyid); err == nil {
		t.Error("repository with a scheme accepted")
	}
	if _, err := KeysJSON(&key.PublicKey, keyid, time.Time{}); err != nil {
		t.Fatal(err)
	}
}
