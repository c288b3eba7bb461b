package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/npm/npmtest"
	"github.com/airlock-proxy/airlock/verify/npmprov/npmprovtest"
)

// TestNPMIncidentReplay replays the shape of the 2025 npm takeovers: a
// patch release published minutes ago by a new publisher, with a new
// postinstall and without the provenance its line had. npm install of the
// range gets the previous release; the new one is held with its findings,
// which airlock explain shows; an admin's release lets it install.
func TestNPMIncidentReplay(t *testing.T) {
	sig := npmprovtest.New(t)
	key, keyid := npmprovtest.RegistryKey(t)
	src := npmprovtest.Source{Repository: "github.com/victim/lib", Workflow: ".github/workflows/release.yml", Ref: "refs/tags/v1", Commit: strings.Repeat("c", 40)}
	reg := npmtest.New(t, npmtest.Options{Key: key, Attest: func(name, version string, sha512 []byte) ([]byte, error) {
		return sig.Attestations(name, version, sha512, src, key, keyid)
	}})
	now := time.Now()
	if err := reg.Add(npmtest.Package{Name: "@victim/lib", Versions: []npmtest.Version{
		{Version: "3.1.0", Published: now.Add(-90 * 24 * time.Hour), Provenance: true},
		{Version: "3.1.1", Published: now.Add(-12 * 24 * time.Hour), Provenance: true},
		{Version: "3.1.2", Published: now.Add(-7 * time.Minute), Publisher: "npm-token-mallory",
			Scripts: map[string]string{"postinstall": "node bundle.js"}},
	}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keys, root := filepath.Join(dir, "keys.json"), filepath.Join(dir, "trusted_root.json")
	os.WriteFile(keys, reg.KeysJSON(), 0o600)
	os.WriteFile(root, sig.TrustedRootJSON(), 0o600)
	inst := startAirlock(t, fmt.Sprintf("npm:\n  upstream: %s\n  keys: %s\n  trusted_root: %s\n", reg.URL, keys, root))

	p := newNPMProject(t, inst.URL+"/npm/", nil)
	if out, err := p.run(t, "install", "@victim/lib@^3.1.0"); err != nil {
		t.Fatalf("npm install @victim/lib@^3.1.0: %v\n%s", err, out)
	}
	if got := p.installed(t, "@victim/lib"); got != "3.1.1" {
		t.Errorf("installed %q, want the last good release 3.1.1", got)
	}
	out, _ := inst.cli(t, "quarantine", "list")
	if !strings.Contains(out, "npm:@victim/lib@3.1.2") || !strings.Contains(out, "held") {
		t.Fatalf("3.1.2 is not on the quarantine list:\n%s", out)
	}
	out, err := inst.cli(t, "explain", "npm:@victim/lib@3.1.2")
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	for _, want := range []string{"Verdict:", "quarantine", "cooldown", "install-script-added", "postinstall",
		"new-publisher", "npm-token-mallory", "provenance-regression", "npm-registry-signature", "pass", "q-000001"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	out, err = p.run(t, "install", "@victim/lib@3.1.2")
	if err == nil || !strings.Contains(out, "install-script-added") {
		t.Errorf("npm install @victim/lib@3.1.2 while held: %v\n%s", err, out)
	}

	if out, err := inst.cli(t, "quarantine", "release", "q-000001", "--reason", "maintainer confirmed the release"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	p.cache = t.TempDir()
	if out, err := p.run(t, "install", "@victim/lib@3.1.2"); err != nil {
		t.Fatalf("npm install after release: %v\n%s", err, out)
	}
	if got := p.installed(t, "@victim/lib"); got != "3.1.2" {
		t.Errorf("after release installed %q", got)
	}
}
