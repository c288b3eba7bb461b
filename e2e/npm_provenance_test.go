package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/npm/npmtest"
	"github.com/airlock-proxy/airlock/verify/npmprov/npmprovtest"
)

// TestNPMProvenance: provenance made by a sigstore of the test's own, whose
// trusted root Airlock is handed as a file, is verified before a tarball is
// served, recorded as facts, and required where policy says so.
func TestNPMProvenance(t *testing.T) {
	sig := npmprovtest.New(t)
	key, keyid := npmprovtest.RegistryKey(t)
	sources := map[string]npmprovtest.Source{
		"@prov/good":   {Repository: "github.com/prov/good", Workflow: ".github/workflows/release.yml", Ref: "refs/tags/v1.0.0", Commit: strings.Repeat("a", 40)},
		"@prov/forked": {Repository: "github.com/evil/forked", Workflow: ".github/workflows/release.yml", Ref: "refs/heads/main", Commit: strings.Repeat("b", 40)},
	}
	reg := npmtest.New(t, npmtest.Options{Key: key, Attest: func(name, version string, sha512 []byte) ([]byte, error) {
		return sig.Attestations(name, version, sha512, sources[name], key, keyid)
	}})
	old := time.Now().Add(-72 * time.Hour)
	for _, p := range []npmtest.Package{
		{Name: "@prov/good", Versions: []npmtest.Version{{Version: "1.0.0", Published: old, Provenance: true}}},
		{Name: "@prov/forked", Versions: []npmtest.Version{{Version: "1.0.0", Published: old, Provenance: true}}},
		{Name: "@prov/none", Versions: []npmtest.Version{{Version: "1.0.0", Published: old}}},
		{Name: "plain", Versions: []npmtest.Version{{Version: "1.0.0", Published: old}}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if reg.KeyID() != keyid {
		t.Fatalf("registry keyid %s, attestations signed as %s", reg.KeyID(), keyid)
	}
	dir := t.TempDir()
	keys, root := filepath.Join(dir, "keys.json"), filepath.Join(dir, "trusted_root.json")
	os.WriteFile(keys, reg.KeysJSON(), 0o600)
	os.WriteFile(root, sig.TrustedRootJSON(), 0o600)
	inst := startAirlock(t, fmt.Sprintf(`npm:
  upstream: %s
  keys: %s
  trusted_root: %s
  policies:
    - match: "@prov/*"
      provenance: required
      source_repository: github.com/prov/*
`, reg.URL, keys, root))

	p := newNPMProject(t, inst.URL+"/npm/", nil)
	if out, err := p.run(t, "install", "@prov/good@1.0.0", "plain@1.0.0"); err != nil {
		t.Fatalf("npm install of a package with valid provenance: %v\n%s", err, out)
	}
	// The facts provenance gave are on record.
	out, err := inst.cli(t, "status", "npm:@prov/good@1.0.0", "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var st struct {
		Observation struct{ Fields map[string]string } `json:"observation"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for k, want := range map[string]string{
		"provenance":            "https://slsa.dev/provenance/v1",
		"provenance_repository": "github.com/prov/good",
		"provenance_workflow":   ".github/workflows/release.yml",
		"provenance_ref":        "refs/tags/v1.0.0",
		"provenance_commit":     strings.Repeat("a", 40),
		"provenance_issuer":     npmprovtest.GitHubIssuer,
	} {
		if got := st.Observation.Fields[k]; got != want {
			t.Errorf("observed %s = %q, want %q", k, got, want)
		}
	}
	// Attestations are served as Airlock verified them, at the path npm
	// derives from dist.attestations.url (the registry's host, no /npm).
	if code, body := inst.get(t, "/-/npm/v1/attestations/@prov%2fgood@1.0.0"); code != 200 || !strings.Contains(body, "https://slsa.dev/provenance/v1") {
		t.Errorf("attestations = %d %.200s", code, body)
	}

	for _, tc := range []struct{ spec, check string }{
		{"@prov/forked@1.0.0", "npm-source-repository"},
		{"@prov/none@1.0.0", "npm-provenance"},
	} {
		out, err := p.run(t, "install", tc.spec)
		if err == nil || !strings.Contains(out, tc.check) {
			t.Errorf("npm install %s: %v, want a refusal naming %s:\n%s", tc.spec, err, tc.check, out)
		}
	}

	// Attestations swapped to another package's fail the subject check.
	reg2sig := npmprovtest.New(t) // a sigstore Airlock does not trust
	reg2 := npmtest.New(t, npmtest.Options{Key: key, Attest: func(name, version string, sha512 []byte) ([]byte, error) {
		return reg2sig.Attestations(name, version, sha512, sources["@prov/good"], key, keyid)
	}})
	if err := reg2.Add(npmtest.Package{Name: "@prov/good", Versions: []npmtest.Version{{Version: "1.0.0", Published: old, Provenance: true}}}); err != nil {
		t.Fatal(err)
	}
	inst2 := startAirlock(t, fmt.Sprintf("npm:\n  upstream: %s\n  keys: %s\n  trusted_root: %s\n", reg2.URL, keys, root))
	code, body := inst2.get(t, "/npm/@prov/good/-/good-1.0.0.tgz")
	if code != 403 || !strings.Contains(body, "npm-provenance") {
		t.Errorf("provenance from an untrusted sigstore = %d %s, want 403 npm-provenance", code, body)
	}
}
