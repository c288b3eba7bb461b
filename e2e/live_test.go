package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLiveGoGraph downloads a real module graph through Airlock from the
// public Go module proxy and checksum database, on the embedded defaults.
// Opt-in (AIRLOCK_LIVE=1): CI has no route to the public services.
func TestLiveGoGraph(t *testing.T) {
	if os.Getenv("AIRLOCK_LIVE") != "1" {
		t.Skip("set AIRLOCK_LIVE=1 to run against the public Go module proxy and checksum database")
	}
	inst := startAirlock(t, "go:\n  timeout: 2m\n")
	home := t.TempDir()
	modcache := filepath.Join(home, "modcache")
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", modcache).Run() })
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/live\n\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport (\n\t_ \"github.com/google/uuid\"\n\t_ \"github.com/gorilla/mux\"\n\t_ \"golang.org/x/mod/module\"\n)\n\nfunc main() {}\n"), 0o644)
	env := append(os.Environ(),
		"GOPROXY="+inst.URL+"/go", "GOSUMDB=sum.golang.org", "GOFLAGS=-mod=mod",
		"GOMODCACHE="+modcache, "GOPATH="+filepath.Join(home, "gopath"),
		"GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOTOOLCHAIN=local", "GOWORK=off")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_, metrics := inst.get(t, "/metrics")
	if !strings.Contains(metrics, `airlock_verifications_total{check="sumdb-zip",ecosystem="go",result="pass"}`) {
		t.Errorf("no passing zip verifications recorded:\n%s", metrics)
	}
}
