package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
)

// Upstream faults, end to end: the go command against a running Airlock
// against a gomodtest upstream that misbehaves.

// goConfig is airlockFor's configuration, kept as text so that a test can
// restart Airlock with it; upstream may be a front of up (see fixableFront).
func goConfig(upstream string, up *gomodtest.Upstream) string {
	return fmt.Sprintf(`
go:
  upstream: %s
  sumdb:
    key: %s
  list_ttl: 0s
  timeout: 20s
policy:
  cooldown: 0s # versions are published while Airlock runs; the cooldown has tests of its own
`, upstream, up.VerifierKey)
}

// fixableFront is an upstream in front of up that forwards everything to
// it, until fix makes it answer one path with the given bytes itself: the
// upstream's operator repairing a broken file. gomodtest has no way to undo
// TruncateZip, so the repair happens here.
type fixableFront struct {
	*httptest.Server
	path  string
	body  []byte
	fixed atomic.Bool
}

func newFixableFront(t *testing.T, up *gomodtest.Upstream, path string, body []byte) *fixableFront {
	t.Helper()
	target, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixableFront{path: path, body: body}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the truncation is the point
	// Pass each write on at once, so that a cut-off body reaches the
	// client as one (headers, then fewer bytes than declared), not as a
	// connection closed before any answer.
	rp.FlushInterval = -1
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.fixed.Load() && r.URL.Path == f.path {
			w.Header().Set("Content-Type", "application/zip")
			w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
			w.Write(f.body)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// adminGet reads an admin API path with the instance's token and decodes a
// 200 answer into v.
func (inst *instance) adminGet(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, inst.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+inst.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode
}

// metric returns the value of one series on /metrics, e.g.
// `airlock_quarantines_total{ecosystem="go"}`, and whether it is there.
func (inst *instance) metric(t *testing.T, series string) (float64, bool) {
	t.Helper()
	code, body := inst.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
}

// quarantineRecord is a quarantine record as the admin API renders it.
type quarantineRecord struct {
	ID       string
	State    string
	Artifact struct{ Name, Version string }
	Findings []struct {
		Check    string
		Message  string
		Evidence map[string]string
	}
}

func quarantines(t *testing.T, inst *instance) []quarantineRecord {
	t.Helper()
	out, err := inst.cli(t, "quarantine", "list", "--json")
	if err != nil {
		t.Fatalf("quarantine list: %v\n%s", err, out)
	}
	var l struct{ Quarantines []quarantineRecord }
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("quarantine list --json: %v\n%s", err, out)
	}
	return l.Quarantines
}

// stop ends an instance the way an operator does, and waits for it, so
// that its data directory is free for another process.
func (inst *instance) stop(t *testing.T) {
	t.Helper()
	inst.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- inst.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		inst.cmd.Process.Kill()
		<-done
		t.Fatal("airlock did not stop on interrupt within 10s")
	}
}

// restartAirlock stops inst and runs `airlock serve` again on the same data
// directory, as startAirlock does on a fresh one, with env added (e.g.
// AIRLOCK_E2E_CLOCK_OFFSET=25h: a day later).
func restartAirlock(t *testing.T, inst *instance, configYAML string, env ...string) *instance {
	t.Helper()
	inst.stop(t)
	next := startAirlockOn(t, configYAML, inst.Data, env...)
	if next.Token != inst.Token {
		t.Errorf("the admin token changed across a restart on the same data directory")
	}
	return next
}

// TestGoTruncatedZipIsNotCached: a download cut short by the upstream is a
// transport failure. The go command fails with Airlock's 502, nothing of the
// partial download is kept or decided, nobody is asked to review anything,
// and once the upstream serves the whole file again it goes through.
func TestGoTruncatedZipIsNotCached(t *testing.T) {
	const mod, vers = "example.com/c", "v1.0.0"
	const zipPath = "/" + mod + "/@v/" + vers + ".zip"
	up := gomodtest.New(t, testGraph()...)
	whole := upstreamGet(t, up.URL+zipPath)
	up.TruncateZip(mod, vers)
	front := newFixableFront(t, up, zipPath, whole)
	inst := startAirlock(t, goConfig(front.URL, up))

	dir := mainModule(t, []string{mod + " " + vers}, mod)
	gc := newGoClient(t, inst, up)
	out, err := gc.run(dir, "build", "./...")
	if err == nil {
		t.Fatalf("go build with a truncated upstream zip succeeded:\n%s", out)
	}
	for _, want := range []string{"502 Bad Gateway", "airlock: reading upstream " + strings.TrimPrefix(zipPath, "/"), "unexpected EOF"} {
		if !strings.Contains(out, want) {
			t.Errorf("go output lacks %q:\n%s", want, out)
		}
	}

	// Each attempt goes upstream again: a partial download is not cached,
	// and the failure is not remembered as an answer either.
	for i := range 2 {
		before := up.Requests(zipPath)
		code, body := inst.get(t, "/go"+zipPath)
		if code != http.StatusBadGateway || !strings.HasPrefix(body, "airlock: ") {
			t.Errorf("attempt %d: zip = %d %q, want 502 with Airlock's reason", i, code, body)
		}
		if got := up.Requests(zipPath); got != before+1 {
			t.Errorf("attempt %d: upstream saw %d zip requests, want 1 (nothing may be served from a partial download)", i, got-before)
		}
	}

	// No decision recorded, and no zip: the admin API knows only what the
	// go.mod showed.
	var st struct {
		Decision    struct{ Verdict string }
		Quarantine  *quarantineRecord
		Observation *struct{ Fields map[string]string }
	}
	code := inst.adminGet(t, "/admin/api/v1/artifacts/go:"+mod+"@"+vers, &st)
	if code != http.StatusOK && code != http.StatusNotFound {
		t.Errorf("artifact status after failed downloads = %d", code)
	}
	if st.Decision.Verdict != "" || st.Quarantine != nil {
		t.Errorf("artifact status after failed downloads = %+v, want nothing decided", st)
	}
	if st.Observation != nil && (st.Observation.Fields["zip_sha256"] != "" || st.Observation.Fields["zip_h1"] != "") {
		t.Errorf("a partial download was recorded as the zip: %v", st.Observation.Fields)
	}
	// A transport error is not evidence against the module.
	if qs := quarantines(t, inst); len(qs) != 0 {
		t.Errorf("a truncated download created quarantine records: %+v", qs)
	}
	if v, ok := inst.metric(t, `airlock_quarantines_total{ecosystem="go"}`); ok && v != 0 {
		t.Errorf("airlock_quarantines_total = %v after a transport error, want 0", v)
	}

	// The upstream is repaired: the same client now builds, and the
	// version is allowed.
	front.fixed.Store(true)
	if out, err := gc.run(dir, "build", "./..."); err != nil {
		t.Fatalf("go build after the upstream was repaired: %v\n%s", err, out)
	}
	if code := inst.adminGet(t, "/admin/api/v1/artifacts/go:"+mod+"@"+vers, &st); code != http.StatusOK || st.Decision.Verdict != "allow" || st.Quarantine != nil {
		t.Errorf("artifact status after a good download = %d %+v, want 200 allow without quarantine", code, st)
	}
	if code, body := inst.get(t, "/go"+zipPath); code != http.StatusOK || body != string(whole) {
		t.Errorf("zip after repair = %d (%d bytes), want 200 with the %d upstream bytes", code, len(body), len(whole))
	}
}

func upstreamGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return body
}

// TestGoTamperedModIsQuarantined: a go.mod whose hash is not the checksum
// database's holds the version, with both hashes as evidence; the go
// command is told why, and version resolution no longer lands on it.
func TestGoTamperedModIsQuarantined(t *testing.T) {
	const mod, vers = "example.com/c", "v1.1.0"
	up := gomodtest.New(t, testGraph()...)
	tampered := goMod(mod, "example.com/evil v1.0.0")
	up.TamperMod(mod, vers, tampered)
	inst := airlockFor(t, up)

	wantHash := goModHash(t, up.GoSum(mod, vers))
	gotHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(tampered)), nil
	})
	if err != nil {
		t.Fatal(err)
	}

	dir := mainModule(t, []string{mod + " " + vers}, mod)
	gc := newGoClient(t, inst, up)
	out, err := gc.run(dir, "build", "./...")
	if err == nil {
		t.Fatalf("go build with a tampered go.mod succeeded:\n%s", out)
	}
	for _, want := range []string{"403 Forbidden", "airlock: go:" + mod + "@" + vers + " is quarantined", "sumdb-go.mod", "checksum mismatch", "airlock quarantine release q-"} {
		if !strings.Contains(out, want) {
			t.Errorf("go output lacks %q:\n%s", want, out)
		}
	}

	qs := quarantines(t, inst)
	if len(qs) != 1 {
		t.Fatalf("want one quarantine record, got %+v", qs)
	}
	q := qs[0]
	if q.Artifact.Name != mod || q.Artifact.Version != vers || q.State != "held" || len(q.Findings) != 1 || q.Findings[0].Check != "sumdb-go.mod" {
		t.Fatalf("record = %+v, want %s@%s held by one sumdb-go.mod finding", q, mod, vers)
	}
	ev := q.Findings[0].Evidence
	if ev["expected"] != wantHash || ev["actual"] != gotHash {
		t.Errorf("evidence = %v, want expected %s (the database's) and actual %s (the tampered go.mod's)", ev, wantHash, gotHash)
	}
	if ev["record_id"] == "" || ev["tree_size"] == "" {
		t.Errorf("evidence lacks the log position: %v", ev)
	}
	show, err := inst.cli(t, "quarantine", "show", q.ID)
	if err != nil {
		t.Fatalf("quarantine show: %v\n%s", err, show)
	}
	for _, want := range []string{"go:" + mod + "@" + vers, "held", "[sumdb-go.mod]", "expected:", wantHash, "actual:", gotHash, "airlock quarantine release " + q.ID} {
		if !strings.Contains(show, want) {
			t.Errorf("quarantine show lacks %q:\n%s", want, show)
		}
	}

	// Resolution walks around the held version, and everything of it is
	// refused with the record's id.
	tests := []struct {
		path       string
		code       int
		has, hasNo string
	}{
		{"/go/" + mod + "/@v/list", http.StatusOK, "v1.0.0\n", vers},
		{"/go/" + mod + "/@latest", http.StatusOK, `"Version":"v1.0.0"`, vers},
		{"/go/" + mod + "/@v/" + vers + ".info", http.StatusForbidden, q.ID, ""},
		{"/go/" + mod + "/@v/" + vers + ".mod", http.StatusForbidden, q.ID, "example.com/evil"},
		{"/go/" + mod + "/@v/" + vers + ".zip", http.StatusForbidden, q.ID, ""},
	}
	for _, tt := range tests {
		code, body := inst.get(t, tt.path)
		if code != tt.code || !strings.Contains(body, tt.has) || (tt.hasNo != "" && strings.Contains(body, tt.hasNo)) {
			t.Errorf("GET %s = %d %q, want %d with %q and without %q", tt.path, code, body, tt.code, tt.has, tt.hasNo)
		}
	}

	// A fresh `go get` of the major version lands on the allowed one.
	dir2 := mainModule(t, nil, mod)
	if out, err := gc.run(dir2, "get", mod+"@v1"); err != nil {
		t.Fatalf("go get %s@v1: %v\n%s", mod, err, out)
	}
	if out, _ := gc.run(dir2, "list", "-m", mod); !strings.Contains(out, mod+" v1.0.0") {
		t.Errorf("with %s held, go get picked: %s", vers, out)
	}
	if qs := quarantines(t, inst); len(qs) != 1 {
		t.Errorf("quarantine records after more requests: %+v, want still the one", qs)
	}
}

// goModHash picks the h1: of the "/go.mod" line from go.sum lines.
func goModHash(t *testing.T, gosum string) string {
	t.Helper()
	for line := range strings.SplitSeq(gosum, "\n") {
		if f := strings.Fields(line); len(f) == 3 && strings.HasSuffix(f[1], "/go.mod") {
			return f[2]
		}
	}
	t.Fatalf("no go.mod line in %q", gosum)
	return ""
}

// TestGoSumDBForkHaltsAdmission: once the checksum database serves a log
// that forks from the tree Airlock authenticated, no new version is
// admitted — the go command is told so — the halt is exported as a metric,
// and a restart on the same data does not forget the tree it saw.
func TestGoSumDBForkHaltsAdmission(t *testing.T) {
	up := gomodtest.New(t, testGraph()...)
	cfg := goConfig(up.URL, up)
	inst := startAirlock(t, cfg)
	const halted = "airlock_sumdb_inconsistent"
	const refusal = "airlock: the checksum database log is inconsistent"

	// Airlock authenticates a tree holding a's record.
	if code, body := inst.get(t, "/go/example.com/a/@v/v1.0.0.zip"); code != http.StatusOK {
		t.Fatalf("warm-up: %d %s", code, body)
	}
	if v, ok := inst.metric(t, halted); !ok || v != 0 {
		t.Fatalf("%s before the fork = %v (present %v), want 0", halted, v, ok)
	}

	// The log forks: a's record now names other content.
	up.ForkSumDB("example.com/a", "v1.0.0", map[string]string{
		"go.mod": goMod("example.com/a"),
		"a.go":   "package a\n\nfunc Name() string { return \"forked\" }\n",
	})

	dir := mainModule(t, []string{"example.com/c v1.0.0"}, "example.com/c")
	out, err := newGoClient(t, inst, up).run(dir, "build", "./...")
	if err == nil {
		t.Fatalf("go build of a new module after the sumdb forked succeeded:\n%s", out)
	}
	for _, want := range []string{"503 Service Unavailable", refusal} {
		if !strings.Contains(out, want) {
			t.Errorf("go output lacks %q:\n%s", want, out)
		}
	}
	if v, ok := inst.metric(t, halted); !ok || v != 1 {
		t.Errorf("%s after the fork = %v (present %v), want 1", halted, v, ok)
	}

	// Nothing new, of any kind of file, is admitted.
	for _, p := range []string{
		"/go/example.com/c/@v/v1.1.0.mod",
		"/go/example.com/c/@v/v1.1.0.zip",
		"/go/example.com/b/@v/v1.0.0.zip",
	} {
		if code, body := inst.get(t, p); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, refusal) {
			t.Errorf("GET %s after the fork = %d %q, want 503 %q", p, code, body, refusal)
		}
	}
	// The fork is not blamed on a module: nobody is asked to release one.
	if qs := quarantines(t, inst); len(qs) != 0 {
		t.Errorf("the fork created quarantine records: %+v", qs)
	}
	// What was verified against the authenticated tree is still served.
	if code, _ := inst.get(t, "/go/example.com/a/@v/v1.0.0.zip"); code != http.StatusOK {
		t.Errorf("cached zip after the fork = %d, want 200", code)
	}

	// A restart on the same data keeps the authenticated tree head, so the
	// fork is caught again at the first new version.
	inst = restartAirlock(t, inst, cfg)
	if code, body := inst.get(t, "/go/example.com/c/@v/v1.1.0.zip"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, refusal) {
		t.Errorf("new zip after a restart = %d %q, want 503 %q", code, body, refusal)
	}
	if v, ok := inst.metric(t, halted); !ok || v != 1 {
		t.Errorf("%s after a restart and a refused request = %v (present %v), want 1", halted, v, ok)
	}
	if code, body := inst.get(t, "/go/example.com/a/@v/v1.0.0.zip"); code != http.StatusOK || !strings.HasPrefix(body, "PK") {
		t.Errorf("cached zip after a restart = %d, want 200 with a zip", code)
	}
}
