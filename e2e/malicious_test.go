package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
)

// writeMAL drops an OSV record in the ossf/malicious-packages layout.
func writeMAL(t *testing.T, dir, id, ecosystem, name, version string) {
	t.Helper()
	p := filepath.Join(dir, "osv", "malicious", ecosystem, name, id+".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := fmt.Sprintf(`{"schema_version":"1.5.0","id":%q,"modified":%q,"published":%q,
"summary":"Malicious code in %s (%s)","details":"The package steals credentials.",
"affected":[{"package":{"ecosystem":%q,"name":%q},"versions":[%q]}]}`,
		id, time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339), name, ecosystem, ecosystem, name, version)
	if err := os.WriteFile(p, []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestKnownMalicious: a feed entry that appears while Airlock runs denies
// the version it names, including copies already cached, for npm and Go;
// releasing it needs an explicit override.
func TestKnownMalicious(t *testing.T) {
	feed := t.TempDir()
	reg, _ := npmUpstream(t, "")
	up := gomodtest.New(t, lib("example.com/c", "v1.0.0", "func V() int { return 1 }\n"))
	keys := filepath.Join(t.TempDir(), "keys.json")
	os.WriteFile(keys, reg.KeysJSON(), 0o600)
	inst := startAirlock(t, fmt.Sprintf(`npm:
  upstream: %s
  keys: %s
go:
  upstream: %s
  sumdb:
    key: %s
policy:
  cooldown: 0s
  malicious: [%s]
  malicious_refresh: 200ms
`, reg.URL, keys, up.URL, up.VerifierKey, feed))

	// Cached before the feed knows anything.
	p := newNPMProject(t, inst.URL+"/npm/", nil)
	if out, err := p.run(t, "install", "left-pad@1.3.0"); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	dir := mainModule(t, []string{"example.com/c v1.0.0"}, "example.com/c")
	if out, err := newGoClient(t, inst, up).run(dir, "build", "./..."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	writeMAL(t, feed, "MAL-2026-0001", "npm", "left-pad", "1.3.0")
	writeMAL(t, feed, "MAL-2026-0002", "Go", "example.com/c", "v1.0.0")
	waitFor(t, "the feed to deny the cached copies", func() bool {
		out, _ := inst.cli(t, "quarantine", "list")
		return strings.Contains(out, "npm:left-pad@1.3.0") && strings.Contains(out, "go:example.com/c@v1.0.0")
	})

	q := p.cloneFresh(t)
	out, err := q.run(t, "install", "left-pad@1.3.0")
	if err == nil || !strings.Contains(out, "known-malicious") || !strings.Contains(out, "MAL-2026-0001") {
		t.Errorf("npm install of a known-malicious version: %v\n%s", err, out)
	}
	if out, err := q.run(t, "install", "left-pad@^1.2.0"); err != nil || q.installed(t, "left-pad") != "1.2.0" {
		t.Errorf("npm install left-pad@^1.2.0 = %q: %v\n%s", q.installed(t, "left-pad"), err, out)
	}
	code, body := inst.get(t, "/npm/left-pad/-/left-pad-1.3.0.tgz")
	if code != 403 || !strings.Contains(body, "known-malicious") {
		t.Errorf("cached tarball = %d %s", code, body)
	}
	dir2 := mainModule(t, []string{"example.com/c v1.0.0"}, "example.com/c")
	out, err = newGoClient(t, inst, up).run(dir2, "build", "./...")
	if err == nil || !strings.Contains(out, "known-malicious") {
		t.Errorf("go build of a known-malicious module: %v\n%s", err, out)
	}

	// A release needs the override.
	list, _ := inst.cli(t, "quarantine", "list")
	var id string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "npm:left-pad@1.3.0") {
			id = strings.Fields(line)[0]
		}
	}
	if out, err := inst.cli(t, "quarantine", "release", id, "--reason", "sure"); err == nil || !strings.Contains(out, "override") {
		t.Errorf("release without --override: %v\n%s", err, out)
	}
	if out, err := inst.cli(t, "quarantine", "release", id, "--override", "--reason", "feed entry was a false positive"); err != nil {
		t.Errorf("release with --override: %v\n%s", err, out)
	}
	if code, _ := inst.get(t, "/npm/left-pad/-/left-pad-1.3.0.tgz"); code != 200 {
		t.Errorf("tarball after an override release = %d", code)
	}

	// The feed withdraws the Go record: the denial it made is lifted.
	if err := os.Remove(filepath.Join(feed, "osv", "malicious", "Go", "example.com/c", "MAL-2026-0002.json")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the withdrawn record's denial to lift", func() bool {
		out, _ := inst.cli(t, "quarantine", "list", "--state", "held")
		return !strings.Contains(out, "go:example.com/c@v1.0.0")
	})
	dir3 := mainModule(t, []string{"example.com/c v1.0.0"}, "example.com/c")
	if out, err := newGoClient(t, inst, up).run(dir3, "build", "./..."); err != nil {
		t.Errorf("go build after the record went: %v\n%s", err, out)
	}
	if out, _ := inst.cli(t, "audit"); !strings.Contains(out, "airlock/known-malicious") {
		t.Errorf("audit log lacks the feed's decisions:\n%s", out)
	}
}
