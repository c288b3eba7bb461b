package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/npm/npmtest"
)

// TestNPMCooldownEnds: a version published an hour ago is not what npm
// resolves a range to, and its tarball is refused with the cooldown's
// reason; a day later (the clock injected into the e2e build, Airlock
// restarted on the same data) npm installs it and the hold is released by
// the clock, on the audit log.
func TestNPMCooldownEnds(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	if err := reg.Add(npmtest.Package{Name: "fresh", Versions: []npmtest.Version{
		{Version: "1.0.0", Published: now.Add(-30 * 24 * time.Hour)},
		{Version: "1.1.0", Published: now.Add(-time.Hour)},
	}}); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, reg.KeysJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("npm:\n  upstream: %s\n  keys: %s\n", reg.URL, keys)
	inst := startAirlock(t, cfg)

	p := newNPMProject(t, inst.URL+"/npm/", map[string]string{"fresh": "^1.0.0"})
	if out, err := p.run(t, "install"); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	if got := p.installed(t, "fresh"); got != "1.0.0" {
		t.Errorf("within the cooldown npm installed %q, want 1.0.0", got)
	}
	code, body := inst.get(t, "/npm/fresh/-/fresh-1.1.0.tgz")
	if code != http.StatusForbidden || !strings.Contains(body, "cooldown") {
		t.Fatalf("tarball of the young version = %d %s", code, body)
	}
	held := recordFor(t, inst, "fresh", "1.1.0")

	inst = restartAirlock(t, inst, cfg, "AIRLOCK_E2E_CLOCK_OFFSET=25h")
	p = newNPMProject(t, inst.URL+"/npm/", map[string]string{"fresh": "^1.0.0"})
	if out, err := p.run(t, "install"); err != nil {
		t.Fatalf("npm install a day later: %v\n%s", err, out)
	}
	if got := p.installed(t, "fresh"); got != "1.1.0" {
		t.Errorf("a day later npm installed %q, want 1.1.0", got)
	}
	out, err := inst.cli(t, "quarantine", "show", held.ID)
	if err != nil || !strings.Contains(out, "released") || !strings.Contains(out, "cooldown ended") {
		t.Errorf("the hold a day later: %v\n%s", err, out)
	}
}

// TestNPMAdvisoryFastTrack: with policy.advisories, a version an OSV
// advisory names as the fix of a vulnerability is installed an hour
// after its publish, while a young version no advisory names is not.
func TestNPMAdvisoryFastTrack(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	now := time.Now()
	for _, p := range []npmtest.Package{
		{Name: "patched", Versions: []npmtest.Version{
			{Version: "1.0.0", Published: now.Add(-30 * 24 * time.Hour)},
			{Version: "1.0.1", Published: now.Add(-time.Hour)},
		}},
		{Name: "unpatched", Versions: []npmtest.Version{
			{Version: "2.0.0", Published: now.Add(-30 * 24 * time.Hour)},
			{Version: "2.0.1", Published: now.Add(-time.Hour)},
		}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, reg.KeysJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	advisories := t.TempDir()
	adv := `{"id":"GHSA-test-fix0-0001","modified":"2026-01-01T00:00:00Z","summary":"prototype pollution",` +
		`"affected":[{"package":{"ecosystem":"npm","name":"patched"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.1"}]}]}]}`
	if err := os.WriteFile(filepath.Join(advisories, "GHSA-test-fix0-0001.json"), []byte(adv), 0o644); err != nil {
		t.Fatal(err)
	}
	inst := startAirlock(t, fmt.Sprintf("npm:\n  upstream: %s\n  keys: %s\npolicy:\n  advisories: [%s]\n", reg.URL, keys, advisories))
	p := newNPMProject(t, inst.URL+"/npm/", map[string]string{"patched": "^1.0.0", "unpatched": "^2.0.0"})
	if out, err := p.run(t, "install"); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	if got := p.installed(t, "patched"); got != "1.0.1" {
		t.Errorf("the advisory's fix: installed %q, want 1.0.1", got)
	}
	if got := p.installed(t, "unpatched"); got != "2.0.0" {
		t.Errorf("a young version no advisory names: installed %q, want 2.0.0", got)
	}
	if out, err := inst.cli(t, "explain", "npm:patched@1.0.1"); err != nil || !strings.Contains(out, "GHSA-test-fix0-0001") {
		t.Errorf("explain: %v\n%s", err, out)
	}
}
