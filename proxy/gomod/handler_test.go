package gomod_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/gomod"
	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/gosum"
)

// boltStore keeps the checksum database client's state in the metadata
// store, as cmd/airlock does.
type boltStore struct{ meta *cache.Bolt }

func (s boltStore) Load(ctx context.Context, name string) ([]byte, bool, error) {
	v, err := s.meta.Get(ctx, "sumdb", name)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (s boltStore) Swap(ctx context.Context, name string, old, new []byte) (bool, error) {
	err := s.meta.CompareAndSwap(ctx, "sumdb", name, old, new)
	if errors.Is(err, cache.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

func (s boltStore) Save(ctx context.Context, name string, v []byte) error {
	return s.meta.Put(ctx, "sumdb", name, v)
}

// fixture is a Handler on real stores in a temporary directory, in front of
// a gomodtest upstream.
type fixture struct {
	up       *gomodtest.Upstream
	meta     *cache.Bolt
	blobDir  string
	verifier *gosum.Verifier
	metrics  *metrics.Set
	h        *gomod.Handler
}

// newFixture serves up through a Handler whose verifier trusts the checksum
// database of db (normally up itself) at sumdbURL (normally db's own).
func newFixture(tb testing.TB, up, db *gomodtest.Upstream, sumdbURL string, opts ...func(*gomod.Options)) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	// The store reads the handler's clock, as cmd/airlock wires them: a
	// record first seen is seen at the handler's now.
	now := time.Now
	meta, err := cache.OpenBolt(filepath.Join(dir, "airlock.db"), cache.WithClock(func() time.Time { return now() }))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { meta.Close() })
	blobDir := filepath.Join(dir, "blobs")
	blobs, err := cache.OpenDisk(blobDir)
	if err != nil {
		tb.Fatal(err)
	}
	m := metrics.New()
	hc := &http.Client{}
	v, err := gosum.New(gosum.Options{
		Key: db.VerifierKey, URL: sumdbURL, Client: hc, Store: boltStore{meta},
		OnInconsistent: func(string) { m.SumDBHalted.Set(1) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	o := gomod.Options{
		Upstream: up.URL, SumDBURL: up.SumDBURL, Client: hc,
		Verifier: v, Meta: meta, Blobs: blobs,
		MaxZip: 500 << 20, MaxMod: 16 << 20, MaxInfo: 1 << 20,
		Metrics: m,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Now != nil {
		now = o.Now
	}
	h := gomod.New(o)
	return &fixture{up: up, meta: meta, blobDir: blobDir, verifier: v, metrics: m, h: h}
}

// get serves one request for a protocol path (without the /go prefix, as
// the router strips it).
func (f *fixture) get(t *testing.T, method, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(method, "/"+path, nil))
	return rec.Code, rec.Result().Header, rec.Body.String()
}

// files counts the regular files under the blob store: committed blobs and
// staged leftovers alike.
func (f *fixture) files(t *testing.T) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(f.blobDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// gauge reads a gauge without labels from the fixture's registry.
func (f *fixture) gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := f.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func (f *fixture) quarantines(t *testing.T) []cache.Quarantine {
	t.Helper()
	qs, err := f.meta.Quarantines(context.Background(), cache.QuarantineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// nothingDecided fails if the store holds a decision, a quarantine or an
// observed zip for path@version.
func (f *fixture) nothingDecided(t *testing.T, path, version string) {
	t.Helper()
	ctx := context.Background()
	a := verify.Artifact{Ecosystem: verify.Go, Name: path, Version: version}
	if st, err := f.meta.Status(ctx, a); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("status of %s = %+v, %v; want nothing decided", a, st, err)
	}
	if obs, err := f.meta.Observation(ctx, a.Key()); err == nil && obs.Fields["zip_sha256"] != "" {
		t.Errorf("observation of %s names a zip: %v", a, obs.Fields)
	}
}

// noBlobs fails unless the blob store holds no file at all.
func (f *fixture) noBlobs(t *testing.T) {
	t.Helper()
	if n := f.files(t); n != 0 {
		t.Errorf("blob store holds %d files, want none", n)
	}
}

func lib(path, version, body string) gomodtest.Module {
	pkg := path[strings.LastIndex(path, "/")+1:]
	return gomodtest.Module{Path: path, Version: version, Files: map[string]string{
		"go.mod":    "module " + path + "\n\ngo 1.21\n",
		pkg + ".go": "package " + pkg + "\n\n" + body,
	}}
}

func testMods() []gomodtest.Module {
	return []gomodtest.Module{
		lib("example.com/a", "v1.0.0", "func A() {}\n"),
		lib("example.com/c", "v1.0.0", "func C() {}\n"),
		lib("example.com/c", "v1.1.0", "func C() int { return 1 }\n"),
	}
}

// TestHandlerErrors drives the Handler through each way a request can fail
// and checks the status, that the answer is Airlock's plain-text reason,
// and what is (not) kept afterwards.
func TestHandlerErrors(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		// sumdb chooses the verifier's database; nil is the upstream's own.
		sumdb func(t *testing.T) (*gomodtest.Upstream, string)
		setup func(t *testing.T, f *fixture)
		code  int
		want  []string // in the body
		after func(t *testing.T, f *fixture, body string)
	}{
		{name: "uppercase not escaped", path: "example.com/A/@v/list", code: http.StatusBadRequest, want: []string{"airlock: invalid module path"}},
		{name: "invalid path element", path: "..%2f..%2fetc/@v/list", code: http.StatusBadRequest, want: []string{"airlock: invalid module path"}},
		{name: "non-canonical version", path: "example.com/a/@v/v1.0.zip", code: http.StatusBadRequest, want: []string{"airlock: invalid version"}},
		{name: "uppercase version", path: "example.com/a/@v/V1.0.0.mod", code: http.StatusBadRequest, want: []string{"airlock: invalid version"}},
		{name: "not a protocol path", path: "example.com/a", code: http.StatusNotFound, want: []string{"airlock: not a module proxy path"}},
		{name: "unknown extension", path: "example.com/a/@v/v1.0.0.exe", code: http.StatusNotFound, want: []string{"airlock: unknown file extension .exe"}},
		{name: "traversal in file", path: "example.com/a/@v/../../x.zip", code: http.StatusNotFound, want: []string{"airlock: unknown file"}},
		{name: "write method", method: http.MethodPut, path: "example.com/a/@v/v1.0.0.zip", code: http.StatusMethodNotAllowed, want: []string{"airlock: the module proxy is read-only"}},
		{name: "other checksum database", path: "sumdb/sum.golang.org/supported", code: http.StatusNotFound, want: []string{"airlock: this proxy serves only the checksum database " + gomodtest.DefaultSumDBName}},
		{
			name: "unknown module", path: "example.com/nosuch/@v/v1.0.0.zip",
			code: http.StatusNotFound, want: []string{"airlock: not found upstream"},
			after: func(t *testing.T, f *fixture, _ string) {
				f.nothingDecided(t, "example.com/nosuch", "v1.0.0")
				f.noBlobs(t)
			},
		},
		{
			name: "unknown module list", path: "example.com/nosuch/@v/list",
			code: http.StatusNotFound, want: []string{"airlock: not found upstream"},
		},
		{
			name: "upstream says gone", path: "example.com/nosuch/@v/v1.0.0.mod",
			setup: func(t *testing.T, f *fixture) { f.up.SetNotFoundStatus(http.StatusGone) },
			code:  http.StatusGone, want: []string{"airlock: not found upstream"},
		},
		{
			// Some mirrors answer 403 for what they lack; to the go
			// command Airlock says 404, which lets it fall through.
			name: "upstream says forbidden", path: "example.com/nosuch/@v/v1.0.0.info",
			setup: func(t *testing.T, f *fixture) { f.up.SetNotFoundStatus(http.StatusForbidden) },
			code:  http.StatusNotFound, want: []string{"airlock: not found upstream"},
		},
		{
			name: "upstream down", path: "example.com/a/@v/v1.0.0.zip",
			setup: func(t *testing.T, f *fixture) { f.up.SetDown(true) },
			code:  http.StatusBadGateway, want: []string{"airlock: upstream answered 503"},
			after: func(t *testing.T, f *fixture, _ string) {
				f.nothingDecided(t, "example.com/a", "v1.0.0")
				f.noBlobs(t)
				if qs := f.quarantines(t); len(qs) != 0 {
					t.Errorf("an outage created quarantine records: %+v", qs)
				}
			},
		},
		{
			name: "truncated zip", path: "example.com/a/@v/v1.0.0.zip",
			setup: func(t *testing.T, f *fixture) { f.up.TruncateZip("example.com/a", "v1.0.0") },
			code:  http.StatusBadGateway, want: []string{"airlock: reading upstream example.com/a/@v/v1.0.0.zip", "unexpected EOF"},
			after: func(t *testing.T, f *fixture, _ string) {
				f.nothingDecided(t, "example.com/a", "v1.0.0")
				f.noBlobs(t)
				if qs := f.quarantines(t); len(qs) != 0 {
					t.Errorf("a transport error created quarantine records: %+v", qs)
				}
				// Not remembered as an answer: the next request
				// goes upstream again.
				const zipPath = "/example.com/a/@v/v1.0.0.zip"
				n := f.up.Requests(zipPath)
				if code, _, _ := f.get(t, http.MethodGet, "example.com/a/@v/v1.0.0.zip"); code != http.StatusBadGateway {
					t.Errorf("second request = %d, want 502", code)
				}
				if got := f.up.Requests(zipPath); got != n+1 {
					t.Errorf("second request made %d upstream requests, want 1", got-n)
				}
			},
		},
		{
			name: "tampered zip", path: "example.com/a/@v/v1.0.0.zip",
			setup: func(t *testing.T, f *fixture) {
				f.up.TamperZip("example.com/a", "v1.0.0", map[string]string{
					"go.mod": "module example.com/a\n\ngo 1.21\n",
					"a.go":   "package a\n\nfunc A() { /* backdoor */ }\n",
				})
			},
			code: http.StatusForbidden, want: []string{"airlock: go:example.com/a@v1.0.0 is quarantined", "sumdb-zip: ", "checksum mismatch"},
			after: func(t *testing.T, f *fixture, body string) {
				qs := f.quarantines(t)
				if len(qs) != 1 {
					t.Fatalf("quarantine records = %+v, want one", qs)
				}
				q := qs[0]
				if !strings.Contains(body, "("+q.ID+")") || !strings.Contains(body, "airlock quarantine release "+q.ID) {
					t.Errorf("body does not name the record %s:\n%s", q.ID, body)
				}
				if q.State != cache.Held || len(q.Findings) != 1 || q.Findings[0].Check != "sumdb-zip" {
					t.Errorf("record = %+v, want held with one sumdb-zip finding", q)
				}
				want := ""
				for line := range strings.SplitSeq(f.up.GoSum("example.com/a", "v1.0.0"), "\n") {
					if f := strings.Fields(line); len(f) == 3 && f[1] == "v1.0.0" {
						want = f[2]
					}
				}
				if ev := q.Findings[0].Evidence; ev["expected"] != want || ev["actual"] == "" || ev["actual"] == want {
					t.Errorf("evidence = %v, want expected %s and a different actual", ev, want)
				}
				if obs, err := f.meta.Observation(context.Background(), "go:example.com/a@v1.0.0"); err == nil && obs.Fields["zip_sha256"] != "" {
					t.Errorf("the tampered zip was recorded as served: %v", obs.Fields)
				}
				f.noBlobs(t)
				// Held: refused again without going upstream.
				n := f.up.Requests("/example.com/a/@v/v1.0.0.zip")
				if code, _, body2 := f.get(t, http.MethodGet, "example.com/a/@v/v1.0.0.zip"); code != http.StatusForbidden || !strings.Contains(body2, q.ID) {
					t.Errorf("second request = %d %q, want 403 naming %s", code, body2, q.ID)
				}
				if got := f.up.Requests("/example.com/a/@v/v1.0.0.zip"); got != n {
					t.Errorf("a held zip was fetched upstream again (%d times)", got-n)
				}
			},
		},
		{
			name: "tampered go.mod", path: "example.com/a/@v/v1.0.0.mod",
			setup: func(t *testing.T, f *fixture) {
				f.up.TamperMod("example.com/a", "v1.0.0", "module example.com/a\n\ngo 1.21\n\nrequire example.com/evil v1.0.0\n")
			},
			code: http.StatusForbidden, want: []string{"is quarantined", "sumdb-go.mod"},
			after: func(t *testing.T, f *fixture, body string) {
				events := func() int {
					ev, err := f.meta.Audit(context.Background(), 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					return len(ev)
				}
				n, before := f.up.Requests("/example.com/a/@v/v1.0.0.mod"), events()
				// Asking again neither refetches nor re-records.
				for range 3 {
					if code, _, _ := f.get(t, http.MethodGet, "example.com/a/@v/v1.0.0.mod"); code != http.StatusForbidden {
						t.Fatalf("repeat request = %d, want 403", code)
					}
				}
				if got := f.up.Requests("/example.com/a/@v/v1.0.0.mod"); got != n {
					t.Errorf("a held go.mod was fetched upstream %d more times", got-n)
				}
				if got := events(); got != before {
					t.Errorf("repeat requests wrote %d audit events, want none", got-before)
				}
				// The zip of a version whose go.mod failed is refused too,
				// though it matches the database.
				if code, _, _ := f.get(t, http.MethodGet, "example.com/a/@v/v1.0.0.zip"); code != http.StatusForbidden {
					t.Errorf("zip of a held version = %d, want 403", code)
				}
			},
		},
		{
			name: "not in checksum database", path: "example.com/a/@v/v1.0.0.zip",
			sumdb: func(t *testing.T) (*gomodtest.Upstream, string) {
				// A database that has never heard of example.com/a.
				db := gomodtest.New(t, lib("example.com/other", "v1.0.0", ""))
				return db, db.SumDBURL
			},
			code: http.StatusForbidden,
			want: []string{"airlock: example.com/a@v1.0.0 is not in the checksum database " + gomodtest.DefaultSumDBName, "go.private"},
			after: func(t *testing.T, f *fixture, _ string) {
				f.nothingDecided(t, "example.com/a", "v1.0.0")
				f.noBlobs(t)
				if qs := f.quarantines(t); len(qs) != 0 {
					t.Errorf("a version missing from the database was quarantined: %+v", qs)
				}
			},
		},
		{
			name: "checksum database unreachable", path: "example.com/a/@v/v1.0.0.mod",
			sumdb: func(t *testing.T) (*gomodtest.Upstream, string) {
				db := gomodtest.New(t)
				db.Close()
				return db, db.SumDBURL
			},
			code: http.StatusBadGateway, want: []string{"airlock: checksum database unavailable"},
			after: func(t *testing.T, f *fixture, _ string) {
				if qs := f.quarantines(t); len(qs) != 0 {
					t.Errorf("an unreachable database quarantined: %+v", qs)
				}
				f.noBlobs(t)
			},
		},
		{
			name: "checksum database forked", path: "example.com/c/@v/v1.0.0.zip",
			setup: func(t *testing.T, f *fixture) {
				if code, _, body := f.get(t, http.MethodGet, "example.com/a/@v/v1.0.0.zip"); code != http.StatusOK {
					t.Fatalf("warm-up: %d %s", code, body)
				}
				if g := f.gauge(t, "airlock_sumdb_inconsistent"); g != 0 {
					t.Fatalf("halted gauge before the fork = %v", g)
				}
				f.up.ForkSumDB("example.com/a", "v1.0.0", map[string]string{"go.mod": "module example.com/a\n", "a.go": "package a\n"})
			},
			code: http.StatusServiceUnavailable, want: []string{"airlock: the checksum database log is inconsistent"},
			after: func(t *testing.T, f *fixture, _ string) {
				if !f.verifier.Halted() {
					t.Errorf("verifier not halted")
				}
				if g := f.gauge(t, "airlock_sumdb_inconsistent"); g != 1 {
					t.Errorf("halted gauge = %v, want 1", g)
				}
				f.nothingDecided(t, "example.com/c", "v1.0.0")
				if qs := f.quarantines(t); len(qs) != 0 {
					t.Errorf("the fork was blamed on a module: %+v", qs)
				}
				// Every new file is refused, go.mod included...
				if code, _, _ := f.get(t, http.MethodGet, "example.com/c/@v/v1.1.0.mod"); code != http.StatusServiceUnavailable {
					t.Errorf("new .mod after the fork = %d, want 503", code)
				}
				// ...while what was verified before is still served.
				if code, _, _ := f.get(t, http.MethodGet, "example.com/a/@v/v1.0.0.zip"); code != http.StatusOK {
					t.Errorf("cached zip after the fork = %d, want 200", code)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := gomodtest.New(t, testMods()...)
			db, url := up, up.SumDBURL
			if tt.sumdb != nil {
				db, url = tt.sumdb(t)
			}
			f := newFixture(t, up, db, url)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			code, hdr, body := f.get(t, method, tt.path)
			if code != tt.code {
				t.Fatalf("%s %s = %d %q, want %d", method, tt.path, code, body, tt.code)
			}
			if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if cc := hdr.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store on an error", cc)
			}
			if !strings.HasPrefix(body, "airlock: ") {
				t.Errorf("body %q is not Airlock's reason", body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			if tt.after != nil {
				tt.after(t, f, body)
			}
		})
	}
}

// TestHandlerCacheHit: a verified .mod and .zip are served from the cache
// afterwards, without another upstream request, byte for byte the same.
func TestHandlerCacheHit(t *testing.T) {
	up := gomodtest.New(t, testMods()...)
	f := newFixture(t, up, up, up.SumDBURL)
	for _, tt := range []struct {
		file, ctype string
	}{
		{"v1.0.0.mod", "text/plain"},
		{"v1.0.0.zip", "application/zip"},
		{"v1.0.0.info", "application/json"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			p := "example.com/c/@v/" + tt.file
			code1, h1, body1 := f.get(t, http.MethodGet, p)
			if code1 != http.StatusOK {
				t.Fatalf("first GET %s = %d %s", p, code1, body1)
			}
			n := up.Requests("/" + p)
			if n != 1 {
				t.Fatalf("first GET made %d upstream requests for %s, want 1", n, p)
			}
			code2, h2, body2 := f.get(t, http.MethodGet, p)
			if code2 != http.StatusOK || body2 != body1 {
				t.Errorf("second GET = %d (%d bytes), want 200 with the same %d bytes", code2, len(body2), len(body1))
			}
			if got := up.Requests("/" + p); got != n {
				t.Errorf("cached %s went upstream again (%d more requests)", tt.file, got-n)
			}
			if ct := h2.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.ctype)
			}
			if e1, e2 := h1.Get("ETag"), h2.Get("ETag"); tt.file != "v1.0.0.info" && (e1 == "" || e1 != e2) {
				t.Errorf("ETag %q then %q, want the same digest", e1, e2)
			}
		})
	}
	// The zip was decided once, as allowed.
	st, err := f.meta.Status(context.Background(), verify.Artifact{Ecosystem: verify.Go, Name: "example.com/c", Version: "v1.0.0"})
	if err != nil || st.Decision.Verdict != verify.Allow || st.Quarantine != nil {
		t.Errorf("status = %+v, %v; want allowed", st, err)
	}
	// A conditional request on the digest is answered 304.
	_, h, _ := f.get(t, http.MethodGet, "example.com/c/@v/v1.0.0.zip")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/example.com/c/@v/v1.0.0.zip", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match the ETag = %d, want 304", rec.Code)
	}
}

// bigModule is a module whose zip is about size bytes: incompressible
// files, so that the zip is as large as its content.
func bigModule(path, version string, size int) gomodtest.Module {
	files := map[string]string{"go.mod": "module " + path + "\n\ngo 1.21\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	const chunk = 64 << 10
	for i := 0; i*chunk < size; i++ {
		buf := make([]byte, chunk)
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		files[fmt.Sprintf("data/blob%02d.bin", i)] = string(buf)
	}
	return gomodtest.Module{Path: path, Version: version, Files: files}
}

// BenchmarkZipHit serves a cached, verified ~1 MiB zip over a real HTTP
// connection, so that the blob store's file reaches the socket as it would
// in production (sendfile where the platform has it).
func BenchmarkZipHit(b *testing.B) {
	up := gomodtest.New(b, bigModule("example.com/big", "v1.0.0", 1<<20))
	f := newFixture(b, up, up, up.SumDBURL)
	srv := httptest.NewServer(f.h)
	b.Cleanup(srv.Close)
	url := srv.URL + "/example.com/big/@v/v1.0.0.zip"
	get := func() int64 {
		resp, err := srv.Client().Get(url)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET: %d %v", resp.StatusCode, err)
		}
		return n
	}
	size := get() // fetch, verify, commit
	if size < 1<<20 {
		b.Fatalf("zip is %d bytes, want at least 1 MiB", size)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if n := get(); n != size {
			b.Fatalf("served %d bytes, want %d", n, size)
		}
	}
	if n := up.Requests("/example.com/big/@v/v1.0.0.zip"); n != 1 {
		b.Fatalf("upstream saw %d zip requests, want 1", n)
	}
}

// BenchmarkZipCold measures a miss: upstream fetch of a fresh ~1 MiB
// version, checksum database lookup, zip check and hash, commit, decision,
// and serving it. Publishing the version upstream is not timed.
func BenchmarkZipCold(b *testing.B) {
	m := bigModule("example.com/big", "v1.0.0", 1<<20)
	up := gomodtest.New(b)
	f := newFixture(b, up, up, up.SumDBURL)
	srv := httptest.NewServer(f.h)
	b.Cleanup(srv.Close)
	var size int64
	b.ReportAllocs()
	for i := range b.N {
		b.StopTimer()
		m.Version = fmt.Sprintf("v1.0.%d", i)
		up.Add(m)
		b.StartTimer()
		resp, err := srv.Client().Get(srv.URL + "/example.com/big/@v/" + m.Version + ".zip")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v", m.Version, resp.StatusCode, err)
		}
		size = n
	}
	b.SetBytes(size)
}

// A verified go.mod's requirements are fetched and verified before the
// client asks, so its next requests are hits; a requirement that fails
// verification is held like any other, and nothing is read ahead for a
// go.mod the client never asked about.
func TestReadAhead(t *testing.T) {
	root := lib("example.com/root", "v1.0.0", "func R() {}\n")
	root.Files["go.mod"] = "module example.com/root\n\ngo 1.21\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/c v1.1.0\n\texample.com/bad v1.0.0\n)\n"
	a := lib("example.com/a", "v1.0.0", "func A() {}\n")
	a.Files["go.mod"] = "module example.com/a\n\ngo 1.21\n\nrequire example.com/deep v1.0.0\n"
	mods := append(testMods()[1:], root, a,
		lib("example.com/bad", "v1.0.0", "func B() {}\n"),
		lib("example.com/deep", "v1.0.0", "func D() {}\n"))
	up := gomodtest.New(t, mods...)
	up.TamperMod("example.com/bad", "v1.0.0", "module example.com/bad\n\nrequire example.com/evil v1.0.0\n")
	f := newFixture(t, up, up, up.SumDBURL, func(o *gomod.Options) { o.ReadAhead = 2 })

	if code, _, body := f.get(t, http.MethodGet, "example.com/root/@v/v1.0.0.mod"); code != http.StatusOK {
		t.Fatalf("root go.mod = %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range []string{"example.com/a/@v/v1.0.0.mod", "example.com/c/@v/v1.1.0.mod", "example.com/bad/@v/v1.0.0.mod"} {
		for f.up.Requests("/"+m) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not read ahead", m)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Wait for the held record of the tampered requirement.
	for len(f.quarantines(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("tampered requirement read ahead but not held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"example.com/a/@v/v1.0.0.mod", http.StatusOK},
		{"example.com/c/@v/v1.1.0.mod", http.StatusOK},
		{"example.com/bad/@v/v1.0.0.mod", http.StatusForbidden},
	} {
		n := f.up.Requests("/" + tc.path)
		if code, _, body := f.get(t, http.MethodGet, tc.path); code != tc.code {
			t.Errorf("%s = %d %s, want %d", tc.path, code, body, tc.code)
		}
		if got := f.up.Requests("/" + tc.path); got != n {
			t.Errorf("%s went upstream after read-ahead (%d requests)", tc.path, got-n)
		}
	}
	// example.com/deep is required by a read-ahead go.mod only.
	time.Sleep(100 * time.Millisecond)
	if n := f.up.Requests("/example.com/deep/@v/v1.0.0.mod"); n != 0 {
		t.Errorf("read-ahead went two levels deep (%d requests for example.com/deep)", n)
	}
}
