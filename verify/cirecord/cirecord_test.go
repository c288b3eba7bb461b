package cirecord_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
)

// memStore is a Store with compare-and-swap semantics.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
	// puts counts successful writes, to show that no-ops write nothing.
	puts int
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) Load(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return bytes.Clone(v), ok, nil
}

func (s *memStore) Swap(_ context.Context, key string, old, new []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[key]
	if (old == nil) == ok || (ok && !bytes.Equal(cur, old)) {
		return false, nil
	}
	s.m[key] = bytes.Clone(new)
	s.puts++
	return true, nil
}

// metaStore adapts cache.Meta as the wiring does (see cmd/airlock's
// bucketStore): records in bucket cirecord.Bucket, ErrNotFound as
// absent, ErrConflict as a lost swap.
type metaStore struct{ meta *cache.Bolt }

func (s metaStore) Load(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.meta.Get(ctx, cirecord.Bucket, key)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (s metaStore) Swap(ctx context.Context, key string, old, new []byte) (bool, error) {
	err := s.meta.CompareAndSwap(ctx, cirecord.Bucket, key, old, new)
	if errors.Is(err, cache.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

func sri(seed string) string {
	h := sha512.Sum512([]byte(seed))
	return "sha512-" + base64.StdEncoding.EncodeToString(h[:])
}

func h1(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return "h1:" + base64.StdEncoding.EncodeToString(h[:])
}

func sha(seed string) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(seed)))
}

const commit = "0123456789abcdef0123456789abcdef01234567"

func npmRecord() cirecord.Record {
	return cirecord.Record{
		Artifact: verify.Artifact{Ecosystem: verify.NPM, Name: "@acme/app", Version: "1.2.3"},
		Digest:   sri("npm"), Builder: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3",
		Commit: commit, Source: cirecord.SourceAPI,
	}
}

func goRecord() cirecord.Record {
	return cirecord.Record{
		Artifact: verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/app", Version: "v1.2.3"},
		Digest:   h1("go"), Source: cirecord.SourceAPI,
	}
}

func ociRecord() cirecord.Record {
	return cirecord.Record{
		Artifact: verify.Artifact{Ecosystem: verify.OCI, Name: "ghcr/acme/app", Version: "1.2.3"},
		Digest:   sha("oci"), Source: cirecord.SourceGoreleaser,
	}
}

func TestValidate(t *testing.T) {
	with := func(r cirecord.Record, fn func(*cirecord.Record)) cirecord.Record { fn(&r); return r }
	tests := []struct {
		name  string
		r     cirecord.Record
		field string // "" for valid
	}{
		{"npm scoped", npmRecord(), ""},
		{"npm unscoped prerelease", with(npmRecord(), func(r *cirecord.Record) { r.Artifact.Name, r.Artifact.Version = "left-pad", "1.0.0-rc.1+build.5" }), ""},
		{"npm bad name", with(npmRecord(), func(r *cirecord.Record) { r.Artifact.Name = "../etc/passwd" }), "artifact.name"},
		{"npm bad scope", with(npmRecord(), func(r *cirecord.Record) { r.Artifact.Name = "@/app" }), "artifact.name"},
		{"npm v-prefixed version", with(npmRecord(), func(r *cirecord.Record) { r.Artifact.Version = "v1.2.3" }), "artifact.version"},
		{"npm short version", with(npmRecord(), func(r *cirecord.Record) { r.Artifact.Version = "1.2" }), "artifact.version"},
		{"npm sha1 digest", with(npmRecord(), func(r *cirecord.Record) { r.Digest = "sha1-" + base64.StdEncoding.EncodeToString(make([]byte, 20)) }), "digest"},
		{"npm two entries", with(npmRecord(), func(r *cirecord.Record) { r.Digest = sri("a") + " " + sri("b") }), "digest"},
		{"npm hex digest", with(npmRecord(), func(r *cirecord.Record) { r.Digest = strings.Repeat("ab", 64) }), "digest"},
		{"npm truncated digest", with(npmRecord(), func(r *cirecord.Record) { r.Digest = sri("a")[:40] }), "digest"},
		{"go", goRecord(), ""},
		{"go pseudo-version", with(goRecord(), func(r *cirecord.Record) { r.Artifact.Version = "v0.0.0-20240101000000-0123456789ab" }), ""},
		{"go incompatible", with(goRecord(), func(r *cirecord.Record) { r.Artifact.Version = "v2.0.0+incompatible" }), ""},
		{"go bad path", with(goRecord(), func(r *cirecord.Record) { r.Artifact.Name = "github.com/acme/../app" }), "artifact"},
		{"go non-canonical", with(goRecord(), func(r *cirecord.Record) { r.Artifact.Version = "v1.2" }), "artifact"},
		{"go major mismatch", with(goRecord(), func(r *cirecord.Record) { r.Artifact.Version = "v2.0.0" }), "artifact"},
		{"go no h1", with(goRecord(), func(r *cirecord.Record) { r.Digest = strings.TrimPrefix(h1("x"), "h1:") }), "digest"},
		{"go short h1", with(goRecord(), func(r *cirecord.Record) { r.Digest = "h1:AAAA" }), "digest"},
		{"go sha256 digest", with(goRecord(), func(r *cirecord.Record) { r.Digest = sha("x") }), "digest"},
		{"oci tag", ociRecord(), ""},
		{"oci by digest", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Version = r.Digest }), ""},
		{"oci digest version differs", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Version = sha("other") }), "artifact.version"},
		{"oci no upstream", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Name = "app" }), "artifact.name"},
		{"oci uppercase repo", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Name = "ghcr/Acme/app" }), "artifact.name"},
		{"oci bad upstream", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Name = "ghcr.io:443/acme/app" }), "artifact.name"},
		{"oci bad tag", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Version = "-1.2.3" }), "artifact.version"},
		{"oci uppercase digest", with(ociRecord(), func(r *cirecord.Record) { r.Digest = strings.ToUpper(r.Digest) }), "digest"},
		{"oci sha512 digest", with(ociRecord(), func(r *cirecord.Record) { r.Digest = "sha512:" + strings.Repeat("a", 128) }), "digest"},
		{"unknown ecosystem", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Ecosystem = "pypi" }), "artifact.ecosystem"},
		{"artifact digest differs", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Digest = sha("other") }), "artifact.digest"},
		{"artifact digest same", with(ociRecord(), func(r *cirecord.Record) { r.Artifact.Digest = r.Digest }), ""},
		{"short commit", with(ociRecord(), func(r *cirecord.Record) { r.Commit = "0123456" }), "commit"},
		{"uppercase commit", with(ociRecord(), func(r *cirecord.Record) { r.Commit = strings.ToUpper(commit) }), "commit"},
		{"builder with newline", with(ociRecord(), func(r *cirecord.Record) { r.Builder = "a\nb" }), "builder"},
		{"unknown source", with(ociRecord(), func(r *cirecord.Record) { r.Source = "manual" }), "source"},
		{"no source", with(ociRecord(), func(r *cirecord.Record) { r.Source = "" }), "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, cirecord.ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Errorf("error %q does not name field %s", err, tt.field)
			}
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// testPut runs the Put contract against a store.
func testPut(t *testing.T, store cirecord.Store) {
	ctx := context.Background()
	rs := cirecord.New(store, fixedNow)
	r := npmRecord()
	got, created, err := rs.Put(ctx, r)
	if err != nil || !created {
		t.Fatalf("Put = created %v, %v; want a new record", created, err)
	}
	if !got.Recorded.Equal(t0) || got.Digest != r.Digest {
		t.Fatalf("Put = %+v", got)
	}

	// Same digest: no-op returning the first record, not the new one.
	again := r
	again.Builder, again.Source, again.Recorded = "someone else", cirecord.SourceInToto, t0.Add(time.Hour)
	got2, created, err := rs.Put(ctx, again)
	if err != nil || created {
		t.Fatalf("second Put = created %v, %v; want the stored record", created, err)
	}
	if got2 != got {
		t.Fatalf("second Put = %+v, want the stored %+v", got2, got)
	}

	// Different digest: ErrConflicting with both digests, nothing stored.
	bad := r
	bad.Digest = sri("evil")
	_, _, err = rs.Put(ctx, bad)
	if !errors.Is(err, cirecord.ErrConflicting) {
		t.Fatalf("conflicting Put = %v, want ErrConflicting", err)
	}
	var ce *cirecord.ConflictError
	if !errors.As(err, &ce) || ce.Existing.Digest != r.Digest || ce.Proposed.Digest != bad.Digest {
		t.Fatalf("conflict error %#v lacks both digests", err)
	}
	if !strings.Contains(err.Error(), r.Digest) || !strings.Contains(err.Error(), bad.Digest) {
		t.Errorf("message %q lacks a digest", err)
	}
	stored, err := rs.Get(ctx, r.Artifact)
	if err != nil || stored != got {
		t.Fatalf("after conflict Get = %+v, %v; want %+v", stored, err, got)
	}

	// Invalid records are refused before the store sees them.
	inv := r
	inv.Artifact.Version = "latest"
	if _, _, err := rs.Put(ctx, inv); !errors.Is(err, cirecord.ErrInvalid) {
		t.Fatalf("invalid Put = %v", err)
	}

	// Get of another artifact: ErrNotFound.
	other := r.Artifact
	other.Version = "9.9.9"
	if _, err := rs.Get(ctx, other); !errors.Is(err, cirecord.ErrNotFound) {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
	// Get ignores the query's digest.
	q := r.Artifact
	q.Digest = sri("whatever")
	if _, err := rs.Get(ctx, q); err != nil {
		t.Fatalf("Get with digest: %v", err)
	}
}

func TestPutMemory(t *testing.T) {
	s := newMemStore()
	testPut(t, s)
	if s.puts != 1 {
		t.Errorf("store written %d times, want 1", s.puts)
	}
}

func TestPutBolt(t *testing.T) {
	db, err := cache.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	testPut(t, metaStore{db})
}

// Concurrent Puts of one artifact: exactly one digest wins, the others
// conflict or no-op, none overwrites.
func TestPutRace(t *testing.T) {
	s := newMemStore()
	rs := cirecord.New(s, fixedNow)
	var wg sync.WaitGroup
	results := make([]error, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ociRecord()
			r.Digest = sha(fmt.Sprint(i % 2))
			_, _, results[i] = rs.Put(context.Background(), r)
		}()
	}
	wg.Wait()
	stored, err := rs.Get(context.Background(), ociRecord().Artifact)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range results {
		mine := sha(fmt.Sprint(i % 2))
		switch {
		case mine == stored.Digest && err != nil:
			t.Errorf("put %d of the winning digest: %v", i, err)
		case mine != stored.Digest && !errors.Is(err, cirecord.ErrConflicting):
			t.Errorf("put %d of the losing digest: %v", i, err)
		}
	}
	if s.puts != 1 {
		t.Errorf("store written %d times", s.puts)
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	rs := cirecord.New(newMemStore(), fixedNow)
	for _, r := range []cirecord.Record{npmRecord(), goRecord(), ociRecord()} {
		if _, _, err := rs.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	npm, gomod, oci := npmRecord(), goRecord(), ociRecord()
	tests := []struct {
		name     string
		a        verify.Artifact
		upstream string
		want     string // "" no finding, else message prefix
		reason   string
	}{
		{"npm match", npm.Artifact, npm.Digest, "", ""},
		{"npm match among entries", npm.Artifact, "sha1-" + base64.StdEncoding.EncodeToString(make([]byte, 20)) + " " + npm.Digest, "", ""},
		{"npm mismatch", npm.Artifact, sri("evil"), "digest differs", ""},
		{"npm sha1 only", npm.Artifact, "sha1-" + base64.StdEncoding.EncodeToString(make([]byte, 20)), "digest differs", "upstream integrity has no sha512 entry"},
		{"npm garbage", npm.Artifact, "not an integrity", "digest differs", "upstream integrity unreadable"},
		{"npm not recorded", verify.Artifact{Ecosystem: verify.NPM, Name: "@acme/app", Version: "1.2.4"}, npm.Digest, "not built by our CI", ""},
		{"go match", gomod.Artifact, gomod.Digest, "", ""},
		{"go mismatch", gomod.Artifact, h1("evil"), "digest differs", ""},
		{"oci match", oci.Artifact, oci.Digest, "", ""},
		{"oci match upper case", oci.Artifact, strings.ToUpper(oci.Digest[:7]) + strings.ToUpper(oci.Digest[7:]), "", ""},
		{"oci mismatch", oci.Artifact, sha("evil"), "digest differs", ""},
		{"oci other tag", verify.Artifact{Ecosystem: verify.OCI, Name: "ghcr/acme/app", Version: "latest"}, oci.Digest, "not built by our CI", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := rs.Check(ctx, tt.a, tt.upstream)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tt.want == "" {
				if f != nil {
					t.Fatalf("Check = %+v, want nil", f)
				}
				return
			}
			if f == nil {
				t.Fatal("Check = nil, want a finding")
			}
			if f.Check != cirecord.Check || !strings.HasPrefix(f.Message, tt.want) {
				t.Errorf("finding %+v, want %s %q", f, cirecord.Check, tt.want)
			}
			if f.Evidence["actual"] != tt.upstream {
				t.Errorf("evidence actual = %q", f.Evidence["actual"])
			}
			if tt.want == "digest differs" && f.Evidence["expected"] == "" {
				t.Errorf("evidence lacks expected digest: %v", f.Evidence)
			}
			if f.Evidence["reason"] != tt.reason {
				t.Errorf("reason = %q, want %q", f.Evidence["reason"], tt.reason)
			}
		})
	}
	// Mismatch evidence carries who built the recorded digest.
	f, _ := rs.Check(ctx, npm.Artifact, sri("evil"))
	if f.Evidence["builder"] != npm.Builder || f.Evidence["commit"] != npm.Commit || f.Evidence["expected"] != npm.Digest {
		t.Errorf("evidence %v", f.Evidence)
	}
}

// A store error is an error, not a finding.
func TestCheckStoreError(t *testing.T) {
	rs := cirecord.New(failStore{}, fixedNow)
	f, err := rs.Check(context.Background(), ociRecord().Artifact, sha("x"))
	if err == nil || f != nil {
		t.Fatalf("Check = %v, %v", f, err)
	}
}

type failStore struct{}

func (failStore) Load(context.Context, string) ([]byte, bool, error) {
	return nil, false, errors.New("disk on fire")
}

func (failStore) Swap(context.Context, string, []byte, []byte) (bool, error) {
	return false, errors.New("disk on fire")
}

// A stored record that no longer validates is an error, not a pass.
func TestGetCorrupt(t *testing.T) {
	s := newMemStore()
	a := ociRecord().Artifact
	_, _ = s.Swap(context.Background(), a.Key(), nil, []byte(`{"artifact":{"ecosystem":"oci","name":"ghcr/acme/app","version":"1.2.3"},"digest":"sha256:zz","source":"api"}`))
	rs := cirecord.New(s, fixedNow)
	if _, err := rs.Get(context.Background(), a); err == nil || errors.Is(err, cirecord.ErrNotFound) {
		t.Fatalf("Get corrupt = %v", err)
	}
	if _, err := rs.Check(context.Background(), a, sha("x")); err == nil {
		t.Fatal("Check of a corrupt record passed")
	}
}
