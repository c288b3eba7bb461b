package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
)

// TestGoCooldown: a version published after Airlock started (it enters the
// checksum database now, whatever commit time it claims) is not what
// `go get @latest` resolves to, and asking for it by name fails with the
// cooldown's reason; a day later it is.
func TestGoCooldown(t *testing.T) {
	up := gomodtest.New(t, lib("example.com/c", "v1.0.0", "func V() int { return 1 }\n"))
	cfg := fmt.Sprintf("go:\n  upstream: %s\n  sumdb:\n    key: %s\n  list_ttl: 0s\n", up.URL, up.VerifierKey)
	inst := startAirlock(t, cfg)
	dir := mainModule(t, []string{"example.com/c v1.0.0"}, "example.com/c")
	if out, err := newGoClient(t, inst, up).run(dir, "build", "./..."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// A new release, its commit backdated by a year.
	up.Add(lib("example.com/c", "v1.1.0", "func V() int { return 2 }\n"))

	g := newGoClient(t, inst, up)
	if out, err := g.run(dir, "get", "example.com/c@latest"); err != nil {
		t.Fatalf("go get @latest: %v\n%s", err, out)
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(gomod), "example.com/c v1.0.0") {
		t.Errorf("go get @latest moved to a version within the cooldown:\n%s", gomod)
	}
	out, err := g.run(dir, "get", "example.com/c@v1.1.0")
	if err == nil || !strings.Contains(out, "cooldown") || !strings.Contains(out, "checksum database") {
		t.Errorf("go get @v1.1.0 within the cooldown: %v\n%s", err, out)
	}

	// A day later (the clock injected into the e2e build), the version
	// Airlock saw enter the checksum database is old enough.
	inst = restartAirlock(t, inst, cfg, "AIRLOCK_E2E_CLOCK_OFFSET=25h")
	g = newGoClient(t, inst, up)
	if out, err := g.run(dir, "get", "example.com/c@latest"); err != nil {
		t.Fatalf("go get @latest a day later: %v\n%s", err, out)
	}
	gomod, _ = os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(gomod), "example.com/c v1.1.0") {
		t.Errorf("a day later go get @latest did not move to v1.1.0:\n%s", gomod)
	}
}
