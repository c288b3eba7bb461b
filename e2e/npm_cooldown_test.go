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
