package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
)

func goMod(path string, requires ...string) string {
	s := "module " + path + "\n\ngo 1.21\n"
	for _, r := range requires {
		s += "\nrequire " + r + "\n"
	}
	return s
}

func lib(path, version, body string, requires ...string) gomodtest.Module {
	pkg := path[strings.LastIndex(path, "/")+1:]
	return gomodtest.Module{Path: path, Version: version, Files: map[string]string{
		"go.mod":    goMod(path, requires...),
		pkg + ".go": "package " + pkg + "\n\n" + body,
		"LICENSE":   "MIT\n",
	}}
}

// testGraph is a small module graph: b requires a, and a has two versions.
func testGraph() []gomodtest.Module {
	return []gomodtest.Module{
		lib("example.com/a", "v1.0.0", "func Name() string { return \"a1.0\" }\n"),
		lib("example.com/a", "v1.1.0", "func Name() string { return \"a1.1\" }\n"),
		lib("example.com/b", "v1.0.0", "import \"example.com/a\"\n\nfunc Name() string { return \"b+\" + a.Name() }\n", "example.com/a v1.1.0"),
		lib("example.com/c", "v1.0.0", "func V() int { return 1 }\n"),
		lib("example.com/c", "v1.1.0", "func V() int { return 2 }\n"),
		lib("example.com/evil", "v1.0.0", "func X() {}\n"),
	}
}

func airlockFor(t *testing.T, up *gomodtest.Upstream) *instance {
	return startAirlock(t, fmt.Sprintf(`
go:
  upstream: %s
  sumdb:
    key: %s
  list_ttl: 0s
  timeout: 20s
policy:
  cooldown: 0s # versions are published while Airlock runs; the cooldown has tests of its own
`, up.URL, up.VerifierKey))
}

// goClient runs the real go command with its own empty module cache,
// pointed only at Airlock, with the checksum database reached through it.
type goClient struct {
	t   *testing.T
	env []string
}

func newGoClient(t *testing.T, inst *instance, up *gomodtest.Upstream) *goClient {
	home := t.TempDir()
	modcache := filepath.Join(home, "modcache")
	c := &goClient{t: t, env: append(os.Environ(),
		"GOPROXY="+inst.URL+"/go",
		"GOSUMDB="+up.VerifierKey,
		"GOFLAGS=-mod=mod",
		"GOMODCACHE="+modcache,
		"GOPATH="+filepath.Join(home, "gopath"),
		"GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local",
		"GOWORK=off",
	)}
	t.Cleanup(func() {
		// The module cache is read-only; let t.TempDir remove it.
		exec.Command("chmod", "-R", "u+w", modcache).Run()
	})
	return c
}

func (c *goClient) run(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mainModule writes a module that imports the given packages.
func mainModule(t *testing.T, requires []string, imports ...string) string {
	dir := t.TempDir()
	src := "package main\n\nimport (\n"
	for _, imp := range imports {
		src += "\t_ " + `"` + imp + `"` + "\n"
	}
	src += ")\n\nfunc main() {}\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod("example.com/main", requires...)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGoGraphBuildsThroughAirlock(t *testing.T) {
	up := gomodtest.New(t, testGraph()...)
	inst := airlockFor(t, up)

	dir := mainModule(t, []string{"example.com/b v1.0.0"}, "example.com/b")
	if out, err := newGoClient(t, inst, up).run(dir, "build", "./..."); err != nil {
		t.Fatalf("go build through Airlock failed: %v\n%s", err, out)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil || !strings.Contains(string(sum), "example.com/a v1.1.0 h1:") {
		t.Fatalf("go.sum lacks example.com/a v1.1.0: %s", sum)
	}
	zips := up.Requests("/@v/v1.1.0.zip")
	if zips != 1 {
		t.Errorf("upstream saw %d requests for a's zip, want 1", zips)
	}

	// A second client with an empty module cache is served from Airlock's
	// cache: upstream sees no new zip request.
	dir2 := mainModule(t, []string{"example.com/b v1.0.0"}, "example.com/b")
	if out, err := newGoClient(t, inst, up).run(dir2, "build", "./..."); err != nil {
		t.Fatalf("second build failed: %v\n%s", err, out)
	}
	if got := up.Requests("/@v/v1.1.0.zip"); got != zips {
		t.Errorf("warm build made %d more upstream zip requests", got-zips)
	}

	// Metrics saw the hits.
	_, metrics := inst.get(t, "/metrics")
	if !strings.Contains(metrics, `airlock_cache_hits_total{ecosystem="go",kind="zip"}`) {
		t.Errorf("no zip cache hits in /metrics")
	}
}

func TestGoTamperedZipIsQuarantined(t *testing.T) {
	up := gomodtest.New(t, testGraph()...)
	up.TamperZip("example.com/evil", "v1.0.0", map[string]string{
		"go.mod":  goMod("example.com/evil"),
		"evil.go": "package evil\n\nfunc X() {}\n\nfunc init() { /* backdoor */ }\n",
	})
	inst := airlockFor(t, up)

	dir := mainModule(t, []string{"example.com/evil v1.0.0"}, "example.com/evil")
	out, err := newGoClient(t, inst, up).run(dir, "build", "./...")
	if err == nil {
		t.Fatalf("go build of a tampered module succeeded:\n%s", out)
	}
	for _, want := range []string{"403 Forbidden", "airlock: go:example.com/evil@v1.0.0 is quarantined", "checksum mismatch", "airlock quarantine release q-"} {
		if !strings.Contains(out, want) {
			t.Errorf("go output lacks %q:\n%s", want, out)
		}
	}

	// The admin sees it, with the evidence.
	listing, err := inst.cli(t, "quarantine", "list", "--json")
	if err != nil {
		t.Fatalf("quarantine list: %v\n%s", err, listing)
	}
	var l struct {
		Quarantines []struct {
			ID       string
			State    string
			Artifact struct{ Name, Version string }
			Findings []struct {
				Check    string
				Evidence map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(listing), &l); err != nil {
		t.Fatalf("quarantine list --json: %v\n%s", err, listing)
	}
	if len(l.Quarantines) != 1 {
		t.Fatalf("want one quarantine record, got %s", listing)
	}
	q := l.Quarantines[0]
	if q.Artifact.Name != "example.com/evil" || q.State != "held" || len(q.Findings) == 0 {
		t.Fatalf("record = %+v", q)
	}
	ev := q.Findings[0].Evidence
	if ev["expected"] == "" || ev["actual"] == "" || ev["expected"] == ev["actual"] || ev["record_id"] == "" || ev["tree_size"] == "" {
		t.Errorf("evidence incomplete: %v", ev)
	}

	// Nothing of the tampered zip is served, not even on a retry.
	if code, body := inst.get(t, "/go/example.com/evil/@v/v1.0.0.zip"); code != http.StatusForbidden || !strings.Contains(body, q.ID) {
		t.Errorf("zip: %d %q", code, body)
	}
	if code, _ := inst.get(t, "/go/example.com/evil/@v/list"); code != http.StatusOK {
		t.Errorf("list: %d", code)
	} else if _, body := inst.get(t, "/go/example.com/evil/@v/list"); strings.Contains(body, "v1.0.0") {
		t.Errorf("held version listed: %q", body)
	}

	audit, err := inst.cli(t, "audit")
	if err != nil || !strings.Contains(audit, "hold") || !strings.Contains(audit, "example.com/evil") {
		t.Errorf("audit lacks the hold: %v\n%s", err, audit)
	}
}

func TestGoBlockAndRelease(t *testing.T) {
	up := gomodtest.New(t, testGraph()...)
	inst := airlockFor(t, up)

	out, err := inst.cli(t, "quarantine", "block", "go:example.com/c@v1.1.0", "--reason", "suspicious release")
	if err != nil {
		t.Fatalf("block: %v\n%s", err, out)
	}
	dir := mainModule(t, nil, "example.com/c")
	gc := newGoClient(t, inst, up)
	if out, err := gc.run(dir, "get", "example.com/c@v1"); err != nil {
		t.Fatalf("go get example.com/c@v1: %v\n%s", err, out)
	}
	if out, _ := gc.run(dir, "list", "-m", "example.com/c"); !strings.Contains(out, "example.com/c v1.0.0") {
		t.Fatalf("with v1.1.0 blocked, go get picked: %s", out)
	}
	out, err = gc.run(dir, "get", "example.com/c@v1.1.0")
	if err == nil || !strings.Contains(out, "blocked by an admin") || !strings.Contains(out, "suspicious release") {
		t.Fatalf("go get of the blocked version: err=%v\n%s", err, out)
	}

	// Release it: resolution finds it again.
	id := quarantineID(t, inst, "example.com/c")
	if out, err := inst.cli(t, "quarantine", "release", id); err == nil {
		t.Fatalf("release without --reason succeeded: %s", out)
	}
	if out, err := inst.cli(t, "quarantine", "release", id, "--reason", "reviewed"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	if out, err := gc.run(dir, "get", "example.com/c@v1"); err != nil {
		t.Fatalf("go get after release: %v\n%s", err, out)
	}
	if out, _ := gc.run(dir, "list", "-m", "example.com/c"); !strings.Contains(out, "example.com/c v1.1.0") {
		t.Fatalf("after release, go get picked: %s", out)
	}
	audit, _ := inst.cli(t, "audit", "--json")
	for _, action := range []string{`"block"`, `"release"`, `"reviewed"`} {
		if !strings.Contains(audit, action) {
			t.Errorf("audit lacks %s:\n%s", action, audit)
		}
	}
}

func quarantineID(t *testing.T, inst *instance, name string) string {
	t.Helper()
	out, err := inst.cli(t, "quarantine", "list", "--json")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	var l struct {
		Quarantines []struct {
			ID       string
			Artifact struct{ Name string }
		}
	}
	json.Unmarshal([]byte(out), &l)
	for _, q := range l.Quarantines {
		if q.Artifact.Name == name {
			return q.ID
		}
	}
	t.Fatalf("no quarantine record for %s in %s", name, out)
	return ""
}

func TestGoInvalidPaths(t *testing.T) {
	up := gomodtest.New(t, testGraph()...)
	inst := airlockFor(t, up)
	tests := []struct {
		path string
		want int
	}{
		{"/go/example.com/A/@v/list", http.StatusBadRequest}, // uppercase must be escaped
		{"/go/example.com/a/@v/v1.0.0.exe", http.StatusNotFound},
		{"/go/example.com/a/@v/V1.0.0.zip", http.StatusBadRequest},
		{"/go/example.com/a/@v/v1.0.zip", http.StatusBadRequest}, // not canonical
		{"/go/example.com/a/@v/../../../etc/passwd.zip", http.StatusNotFound},
		{"/go/..%2f..%2fetc/@v/list", http.StatusBadRequest},
		{"/go/example.com/a", http.StatusNotFound},
		{"/go/example.com/nosuch/@v/v1.0.0.zip", http.StatusNotFound},
		{"/go/sumdb/other.db/supported", http.StatusNotFound},
		{"/go/sumdb/" + up.SumDBName + "/supported", http.StatusOK},
		{"/go/sumdb/" + up.SumDBName + "/tile/8/0/../../x", http.StatusBadRequest},
	}
	for _, tt := range tests {
		code, body := inst.get(t, tt.path)
		if code != tt.want {
			t.Errorf("GET %s = %d %q, want %d", tt.path, code, body, tt.want)
		}
		if code >= 400 && !strings.HasPrefix(body, "airlock:") {
			t.Errorf("GET %s: body %q is not Airlock's plain-text reason", tt.path, body)
		}
	}
}

func TestGoUpstreamDown(t *testing.T) {
	up := gomodtest.New(t, testGraph()...)
	inst := airlockFor(t, up)
	if code, body := inst.get(t, "/go/example.com/a/@v/v1.0.0.zip"); code != http.StatusOK {
		t.Fatalf("warm-up: %d %s", code, body)
	}
	up.SetDown(true)
	code, body := inst.get(t, "/go/example.com/a/@v/v1.1.0.zip")
	if code != http.StatusBadGateway || !strings.HasPrefix(body, "airlock: upstream") {
		t.Errorf("uncached zip with upstream down = %d %q, want 502 with a reason", code, body)
	}
	// What was verified before is still served.
	if code, _ := inst.get(t, "/go/example.com/a/@v/v1.0.0.zip"); code != http.StatusOK {
		t.Errorf("cached zip with upstream down = %d, want 200", code)
	}
	up.SetDown(false)
	if code, body := inst.get(t, "/go/example.com/a/@v/v1.1.0.zip"); code != http.StatusOK {
		t.Errorf("after upstream recovered: %d %s (a failed fetch must leave nothing behind)", code, body)
	}
}

func TestGoConcurrentDownloadsFetchOnce(t *testing.T) {
	up := gomodtest.New(t, testGraph()...)
	up.SetDelay(300 * time.Millisecond) // hold the zip so that all requests overlap
	inst := airlockFor(t, up)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = inst.get(t, "/go/example.com/b/@v/v1.0.0.zip")
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if n := up.Requests("example.com/b/@v/v1.0.0.zip"); n != 1 {
		t.Errorf("8 concurrent requests made %d upstream fetches, want 1", n)
	}
}
