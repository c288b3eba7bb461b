package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestLiveNPM installs a real project through Airlock from the npm
// registry. Opt-in (AIRLOCK_LIVE=1): CI has no route to the public
// registry. The registry reachable from this project's machines is a
// mirror that strips dist.signatures and the keys endpoint and rewrites
// many publish times, so the test configures keys: none and says so;
// against registry.npmjs.org itself the default (npm's published keys)
// applies.
func TestLiveNPM(t *testing.T) {
	if os.Getenv("AIRLOCK_LIVE") != "1" {
		t.Skip("set AIRLOCK_LIVE=1 to run against the npm registry")
	}
	upstream := os.Getenv("AIRLOCK_LIVE_NPM")
	if upstream == "" {
		upstream = "https://registry.npmjs.org"
	}
	t.Logf("upstream %s with npm.keys: none (the reachable mirror strips registry signatures) and policy in dry-run (its publish times are partly ingest times, so the cooldown would hold versions that are old)", upstream)
	inst := startAirlock(t, "npm:\n  upstream: "+upstream+"\n  keys: none\npolicy:\n  mode: dry-run\n")
	p := newNPMProject(t, inst.URL+"/npm/", map[string]string{
		"express": "^4.21.0", "chalk": "^4.1.2", "debug": "^4.3.0", "lodash": "^4.17.21", "@babel/code-frame": "^7.24.0",
	})
	if out, err := p.run(t, "install"); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	for _, name := range []string{"express", "chalk", "debug", "lodash", "@babel/code-frame"} {
		if p.installed(t, name) == "" {
			t.Errorf("%s not installed", name)
		}
	}
	// Block the installed chalk: a range now takes the one before it, and
	// the exact version fails with Airlock's reason.
	chalk := p.installed(t, "chalk")
	out, err := inst.cli(t, "quarantine", "block", "npm:chalk@"+chalk, "--reason", "live test")
	if err != nil {
		t.Fatalf("block: %v\n%s", err, out)
	}
	q := p.cloneFresh(t)
	if out, err := q.run(t, "install", "chalk@^4"); err != nil {
		t.Fatalf("npm install chalk@^4 with %s blocked: %v\n%s", chalk, err, out)
	}
	if got := q.installed(t, "chalk"); got == chalk || got == "" {
		t.Errorf("chalk@^4 installed %q with %s blocked", got, chalk)
	}
	out, err = q.run(t, "install", "chalk@"+chalk)
	if err == nil || !strings.Contains(out, "live test") {
		t.Errorf("npm install chalk@%s while blocked: %v\n%s", chalk, err, out)
	}
}

// cloneFresh is an empty project on the same registry with its own cache.
func (p *npmProject) cloneFresh(t *testing.T) *npmProject {
	t.Helper()
	return newNPMProject(t, p.registry, nil)
}
