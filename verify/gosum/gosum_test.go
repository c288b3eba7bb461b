package gosum

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
)

// memStore is a Store in memory, with a real compare-and-swap.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) Load(_ context.Context, name string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	return bytes.Clone(v), ok, nil
}

func (s *memStore) Swap(_ context.Context, name string, old, new []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[name]
	if (old == nil && ok) || (old != nil && (!ok || !bytes.Equal(cur, old))) {
		return false, nil
	}
	s.m[name] = bytes.Clone(new)
	return true, nil
}

func (s *memStore) Save(_ context.Context, name string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = bytes.Clone(v)
	return nil
}

// testDB is a checksum database signed with a test key, serving the
// hashes in sums ("path version" or "path version/go.mod" -> h1:).
type testDB struct {
	srv  *httptest.Server
	key  string
	mu   sync.Mutex
	sums map[string]string
}

func newTestDB(t testing.TB, skey, vkey string, sums map[string]string) *testDB {
	db := &testDB{key: vkey, sums: sums}
	gosum := func(path, vers string) ([]byte, error) {
		db.mu.Lock()
		defer db.mu.Unlock()
		mod, ok1 := db.sums[path+" "+vers+"/go.mod"]
		zip, ok2 := db.sums[path+" "+vers]
		if !ok1 || !ok2 {
			return nil, os.ErrNotExist // the server maps only the bare error (os.IsNotExist) to 404
		}
		return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", path, vers, zip, path, vers, mod), nil
	}
	h := sumdb.NewServer(sumdb.NewTestServer(skey, gosum))
	db.srv = httptest.NewServer(h)
	t.Cleanup(db.srv.Close)
	return db
}

func newKey(t testing.TB) (skey, vkey string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

func modHash(t *testing.T, gomod string) string {
	h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(gomod)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeZip writes a module zip with the given files and returns its path
// and h1: hash.
func writeZip(t testing.TB, path, vers string, files map[string]string) (string, string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	prefix := path + "@" + vers + "/"
	for name, body := range files {
		w, err := zw.Create(prefix + name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(f, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return f, h
}

const (
	modPath = "example.com/hello"
	modVers = "v1.0.0"
	goMod   = "module example.com/hello\n\ngo 1.21\n"
)

func setup(t *testing.T) (*testDB, string, *memStore) {
	skey, vkey := newKey(t)
	zipFile, zipHash := writeZip(t, modPath, modVers, map[string]string{"go.mod": goMod, "hello.go": "package hello\n"})
	db := newTestDB(t, skey, vkey, map[string]string{
		modPath + " " + modVers:             zipHash,
		modPath + " " + modVers + "/go.mod": modHash(t, goMod),
	})
	return db, zipFile, newMemStore()
}

func newVerifier(t *testing.T, db *testDB, store Store, alerts *[]string) *Verifier {
	t.Helper()
	v, err := New(Options{Key: db.key, URL: db.srv.URL, Store: store, OnInconsistent: func(m string) {
		if alerts != nil {
			*alerts = append(*alerts, m)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheck(t *testing.T) {
	db, zipFile, store := setup(t)
	v := newVerifier(t, db, store, nil)
	ctx := context.Background()

	ev, err := v.CheckMod(ctx, modPath, modVers, []byte(goMod))
	if err != nil {
		t.Fatalf("CheckMod: %v", err)
	}
	if ev.Want != ev.Got || ev.RecordID != 0 || ev.TreeSize != 1 {
		t.Errorf("evidence = %+v, want matching hashes, record 0, tree 1", ev)
	}
	if _, err := v.CheckZip(ctx, modPath, modVers, zipFile); err != nil {
		t.Fatalf("CheckZip: %v", err)
	}

	tests := []struct {
		name string
		run  func() (Evidence, error)
		want error
	}{
		{"mod tampered", func() (Evidence, error) {
			return v.CheckMod(ctx, modPath, modVers, []byte(goMod+"require evil.com/x v1.0.0\n"))
		}, ErrMismatch},
		{"zip tampered", func() (Evidence, error) {
			f, _ := writeZip(t, modPath, modVers, map[string]string{"go.mod": goMod, "hello.go": "package hello\nfunc init(){}\n"})
			return v.CheckZip(ctx, modPath, modVers, f)
		}, ErrMismatch},
		{"zip malformed", func() (Evidence, error) {
			f := filepath.Join(t.TempDir(), "bad.zip")
			os.WriteFile(f, []byte("not a zip"), 0o644)
			return v.CheckZip(ctx, modPath, modVers, f)
		}, ErrBadZip},
		{"zip with wrong prefix", func() (Evidence, error) {
			f, _ := writeZip(t, "example.com/other", modVers, map[string]string{"go.mod": goMod})
			return v.CheckZip(ctx, modPath, modVers, f)
		}, ErrBadZip},
		{"unknown version", func() (Evidence, error) {
			return v.CheckMod(ctx, modPath, "v9.9.9", []byte(goMod))
		}, ErrNotInDB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := tt.run()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrMismatch && (ev.Want == "" || ev.Got == "" || ev.Want == ev.Got || ev.RecordID < 0) {
				t.Errorf("mismatch evidence incomplete: %+v", ev)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	db, _, store := setup(t)
	v := newVerifier(t, db, store, nil)
	db.srv.Close()
	_, err := v.CheckMod(context.Background(), modPath, modVers, []byte(goMod))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// A failed lookup is not remembered: once the database answers again, the
// same version verifies (sumdb.Client alone would repeat the first error
// for its lifetime).
func TestTransientFailureNotCached(t *testing.T) {
	db, zipFile, store := setup(t)
	v := newVerifier(t, db, store, nil)
	ctx := context.Background()
	for _, status := range []int{http.StatusBadGateway, http.StatusNotFound} {
		h := db.srv.Config.Handler
		db.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "blip", status)
		})
		_, err := v.CheckZip(ctx, modPath, modVers, zipFile)
		want := ErrUnavailable
		if status == http.StatusNotFound {
			want = ErrNotInDB
		}
		if !errors.Is(err, want) {
			t.Fatalf("database answering %d: err = %v, want %v", status, err, want)
		}
		db.srv.Config.Handler = h
		if _, err := v.CheckZip(ctx, modPath, modVers, zipFile); err != nil {
			t.Fatalf("after a %d, database back: %v", status, err)
		}
		// Forget the verified lookup so the next round asks the database.
		store.mu.Lock()
		for k := range store.m {
			if strings.Contains(k, "/lookup/") {
				delete(store.m, k)
			}
		}
		store.mu.Unlock()
		v = newVerifier(t, db, store, nil)
	}
}

func TestMissingIsBounded(t *testing.T) {
	o := &ops{}
	for i := range maxMissing + 10 {
		o.setMissing(fmt.Sprintf("/lookup/example.com/m%d@v1.0.0", i), true)
	}
	if n := len(o.missing); n > maxMissing {
		t.Fatalf("missing holds %d paths, want at most %d", n, maxMissing)
	}
	if !o.notFound(fmt.Sprintf("example.com/m%d", maxMissing+9), "v1.0.0") {
		t.Error("latest marker lost")
	}
}

// A lookup answered once is served from the Store afterwards, so a
// verified version can be re-checked while the database is down.
func TestLookupPersisted(t *testing.T) {
	db, zipFile, store := setup(t)
	if _, err := newVerifier(t, db, store, nil).CheckZip(context.Background(), modPath, modVers, zipFile); err != nil {
		t.Fatal(err)
	}
	db.srv.Close()
	v2 := newVerifier(t, db, store, nil)
	if _, err := v2.CheckZip(context.Background(), modPath, modVers, zipFile); err != nil {
		t.Fatalf("second verifier, database down: %v", err)
	}
}

// A database that, after a restart of Airlock, presents a log that does not
// extend the tree Airlock authenticated before is caught: the persisted
// latest tree is the reference.
func TestForkDetectedAcrossRestart(t *testing.T) {
	skey, vkey := newKey(t)
	_, zipHash := writeZip(t, modPath, modVers, map[string]string{"go.mod": goMod})
	sums := map[string]string{
		modPath + " " + modVers:             zipHash,
		modPath + " " + modVers + "/go.mod": modHash(t, goMod),
		"example.com/b v1.0.0":              zipHash,
		"example.com/b v1.0.0/go.mod":       modHash(t, goMod),
		"example.com/c v1.0.0":              zipHash,
		"example.com/c v1.0.0/go.mod":       modHash(t, goMod),
	}
	store := newMemStore()
	ctx := context.Background()

	honest := newTestDB(t, skey, vkey, sums)
	v1 := newVerifier(t, honest, store, nil)
	if _, err := v1.CheckMod(ctx, modPath, modVers, []byte(goMod)); err != nil {
		t.Fatal(err)
	}
	if _, err := v1.CheckMod(ctx, "example.com/b", "v1.0.0", []byte(goMod)); err != nil {
		t.Fatal(err)
	}

	// Same key, fresh log: its record 0 is example.com/c, so its tree of
	// size 1 cannot be a prefix of the honest tree of size 2 that Airlock
	// authenticated (and persisted) before the "restart".
	forked := newTestDB(t, skey, vkey, sums)
	var alerts []string
	v2 := newVerifier(t, forked, store, &alerts)
	_, err := v2.CheckMod(ctx, "example.com/c", "v1.0.0", []byte(goMod))
	if !errors.Is(err, ErrInconsistent) {
		t.Fatalf("forked log: err = %v, want ErrInconsistent", err)
	}
	if !v2.Halted() || len(alerts) != 1 {
		t.Fatalf("halted = %v, alerts = %d; want halted with one alert", v2.Halted(), len(alerts))
	}
	// Once halted, nothing new is admitted, even what was verified before.
	if _, err := v2.CheckMod(ctx, modPath, modVers, []byte(goMod)); !errors.Is(err, ErrInconsistent) {
		t.Errorf("after halt: err = %v, want ErrInconsistent", err)
	}
}

func TestMissingMarkerIsPerPath(t *testing.T) {
	o := &ops{}
	p, _ := module.EscapePath("example.com/A")
	o.setMissing("/lookup/"+p+"@v1.0.0", true)
	if !o.notFound("example.com/A", "v1.0.0/go.mod") || o.notFound("example.com/a", "v1.0.0") {
		t.Error("notFound keyed wrongly")
	}
	_ = http.StatusOK
}

// A Prefetch followed by a Check makes one lookup, not two.
func TestPrefetchSharesLookup(t *testing.T) {
	db, _, store := setup(t)
	var mu sync.Mutex
	lookups := 0
	h := db.srv.Config.Handler
	db.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/lookup/") {
			mu.Lock()
			lookups++
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	v := newVerifier(t, db, store, nil)
	v.Prefetch(modPath, modVers)
	if _, err := v.CheckMod(context.Background(), modPath, modVers, []byte(goMod)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if lookups != 1 {
		t.Errorf("%d lookups, want 1", lookups)
	}
}

// A Prefetch that fails while the database is down leaves nothing behind:
// the check after it recovers passes.
func TestPrefetchFailureNotRemembered(t *testing.T) {
	db, zipFile, store := setup(t)
	v := newVerifier(t, db, store, nil)
	h := db.srv.Config.Handler
	db.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	})
	c := v.client.Load()
	v.Prefetch(modPath, modVers)
	deadline := time.Now().Add(5 * time.Second)
	for v.client.Load() == c && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	db.srv.Config.Handler = h
	if _, err := v.CheckZip(context.Background(), modPath, modVers, zipFile); err != nil {
		t.Fatalf("after the database came back: %v", err)
	}
}
