package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func openTestDisk(t testing.TB, dir string) *Disk {
	t.Helper()
	d, err := OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// put stores content and returns its digest.
func put(t *testing.T, d *Disk, content []byte) string {
	t.Helper()
	ctx := context.Background()
	s, err := d.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Discard()
	if _, err := s.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, s.Digest()); err != nil {
		t.Fatal(err)
	}
	return s.Digest()
}

func readBlob(t *testing.T, d *Disk, digest string) ([]byte, error) {
	t.Helper()
	r, size, err := d.Open(context.Background(), digest)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != size {
		t.Fatalf("Open size %d, read %d bytes", size, len(b))
	}
	return b, nil
}

func tmpEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDiskRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTestDisk(t, dir)
	for _, content := range [][]byte{[]byte("module example.com/a\n"), {}, bytes.Repeat([]byte("zip"), 100_000)} {
		s, err := d.Stage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Written in pieces, as a download arrives.
		for chunk := range slicesChunk(content, 4096) {
			if _, err := s.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		want := digestOf(content)
		if s.Size() != int64(len(content)) || s.Digest() != want {
			t.Fatalf("staged size %d digest %s, want %d %s", s.Size(), s.Digest(), len(content), want)
		}
		// Verifiers read the staged file by name before the commit.
		staged, err := os.ReadFile(s.Name())
		if err != nil || !bytes.Equal(staged, content) {
			t.Fatalf("reading staged file %s: %v", s.Name(), err)
		}
		if !strings.HasPrefix(s.Name(), filepath.Join(dir, "tmp")+string(filepath.Separator)) {
			t.Fatalf("staged file %s is not in tmp/", s.Name())
		}
		if ok, err := d.Has(ctx, want); ok || err != nil {
			t.Fatalf("Has before commit = %v, %v", ok, err)
		}
		if err := s.Commit(ctx, want); err != nil {
			t.Fatal(err)
		}
		if ok, err := d.Has(ctx, want); !ok || err != nil {
			t.Fatalf("Has after commit = %v, %v", ok, err)
		}
		h := strings.TrimPrefix(want, "sha256:")
		fi, err := os.Stat(filepath.Join(dir, "sha256", h[:2], h))
		if err != nil {
			t.Fatalf("blob not at its fan-out path: %v", err)
		}
		if fi.Mode().Perm() != fileMode {
			t.Errorf("blob mode %v, want %v", fi.Mode().Perm(), os.FileMode(fileMode))
		}
		r, size, err := d.Open(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.(*os.File); !ok {
			t.Errorf("Open returned %T, want *os.File for sendfile", r)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, content) || size != int64(len(content)) {
			t.Fatalf("Open read %d bytes (size %d), %v; want %d bytes", len(got), size, err, len(content))
		}
		// Second open is served from the verified state; same bytes.
		if got, err := readBlob(t, d, want); err != nil || !bytes.Equal(got, content) {
			t.Fatalf("second Open: %v", err)
		}
	}
	if left := tmpEntries(t, dir); len(left) != 0 {
		t.Fatalf("tmp/ holds %v after commits", left)
	}
	if _, _, err := d.Open(ctx, digestOf([]byte("never stored"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of missing blob: %v, want ErrNotFound", err)
	}
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > n {
			if !yield(b[:n]) {
				return
			}
			b = b[n:]
		}
		yield(b)
	}
}

func TestDiskCommitMismatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTestDisk(t, dir)
	s, err := d.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("evil"))
	name := s.Name()
	other := digestOf([]byte("good"))
	if err := s.Commit(ctx, other); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Commit under a wrong digest: %v, want ErrDigestMismatch", err)
	}
	for _, dg := range []string{other, digestOf([]byte("evil"))} {
		if ok, _ := d.Has(ctx, dg); ok {
			t.Errorf("blob %s exists after a failed commit", dg)
		}
	}
	if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staged file still there after mismatch: %v", err)
	}
	// The stage is over, whatever the caller does next.
	if _, err := s.Write([]byte("more")); err == nil {
		t.Error("Write after a failed Commit succeeded")
	}
	if err := s.Commit(ctx, digestOf([]byte("evil"))); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := s.Discard(); err != nil {
		t.Errorf("Discard after a failed Commit: %v", err)
	}
}

var invalidDigests = []string{
	"",
	"sha256:",
	"sha256",
	"sha256:" + strings.Repeat("A", 64),
	"sha256:" + strings.Repeat("a", 63),
	"sha256:" + strings.Repeat("a", 65),
	"sha256:" + strings.Repeat("a", 62) + "/a",
	"sha256:" + strings.Repeat("a", 63) + "g",
	"sha256:../" + strings.Repeat("a", 61),
	"../x",
	"sha512:" + strings.Repeat("a", 128),
	"sha512:" + strings.Repeat("a", 64),
	"SHA256:" + strings.Repeat("a", 64),
	" sha256:" + strings.Repeat("a", 64),
	"sha256:" + strings.Repeat("a", 64) + "\n",
	"sha256: " + strings.Repeat("a", 63),
	strings.Repeat("a", 64),
}

func TestDiskInvalidDigest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTestDisk(t, dir)
	for _, dg := range invalidDigests {
		if err := CheckDigest(dg); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("CheckDigest(%q) = %v", dg, err)
		}
		if _, err := d.Has(ctx, dg); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Has(%q) = %v", dg, err)
		}
		if _, _, err := d.Open(ctx, dg); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Open(%q) = %v", dg, err)
		}
		s, err := d.Stage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("x"))
		if err := s.Commit(ctx, dg); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Commit(%q) = %v", dg, err)
		}
	}
	if err := CheckDigest(digestOf(nil)); err != nil {
		t.Errorf("CheckDigest of a valid digest: %v", err)
	}
	// Nothing escaped into or beside the store.
	entries, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	if len(entries) != 0 {
		t.Errorf("sha256/ holds %d entries", len(entries))
	}
	if left := tmpEntries(t, dir); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
	top, _ := os.ReadDir(dir)
	if len(top) != 2 {
		t.Errorf("store dir holds %d entries, want sha256 and tmp", len(top))
	}
	long := "sha256:" + strings.Repeat("x", 10_000)
	if err := CheckDigest(long); err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a long digest is %d bytes", len(err.Error()))
	}
}

func TestDiskTampered(t *testing.T) {
	content := []byte("the real module zip")
	evil := []byte("the evil module zip") // same length
	tamper := map[string]func(t *testing.T, path string){
		// In place: same inode and size, a new mtime.
		"overwrite": func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, evil, 0o600); err != nil {
				t.Fatal(err)
			}
			later := fi.ModTime().Add(time.Minute)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
		},
		// Replaced by another file with the original size and mtime.
		"replace": func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			tmp := path + ".evil"
			if err := os.WriteFile(tmp, evil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		},
		"truncate": func(t *testing.T, path string) {
			if err := os.Truncate(path, 3); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, fn := range tamper {
		for _, openedBefore := range []bool{true, false} {
			sub := name + "/fresh"
			if openedBefore {
				sub = name + "/verified"
			}
			t.Run(sub, func(t *testing.T) {
				ctx := context.Background()
				dir := t.TempDir()
				d := openTestDisk(t, dir)
				dg := put(t, d, content)
				if openedBefore {
					if _, err := readBlob(t, d, dg); err != nil {
						t.Fatal(err)
					}
				}
				h := strings.TrimPrefix(dg, "sha256:")
				path := filepath.Join(dir, "sha256", h[:2], h)
				fn(t, path)
				if !openedBefore {
					// A new process knows nothing of earlier checks.
					d = openTestDisk(t, dir)
				}
				if _, _, err := d.Open(ctx, dg); !errors.Is(err, ErrDigestMismatch) {
					t.Fatalf("Open of tampered blob: %v, want ErrDigestMismatch", err)
				}
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("tampered blob not removed: %v", err)
				}
				if _, _, err := d.Open(ctx, dg); !errors.Is(err, ErrNotFound) {
					t.Fatalf("Open after removal: %v, want ErrNotFound", err)
				}
				// It can be fetched and committed again.
				put(t, d, content)
				if got, err := readBlob(t, d, dg); err != nil || !bytes.Equal(got, content) {
					t.Fatalf("Open after recommit: %q, %v", got, err)
				}
			})
		}
	}
}

func TestDiskCleansTmp(t *testing.T) {
	dir := t.TempDir()
	d := openTestDisk(t, dir)
	dg := put(t, d, []byte("kept"))
	s, err := d.Stage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("half a download"))
	// The process dies here: s is neither committed nor discarded.
	if err := os.MkdirAll(filepath.Join(dir, "tmp", "odd", "deeper"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "stage-123"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := openTestDisk(t, dir)
	if d2.Cleaned() != 3 {
		t.Errorf("Cleaned() = %d, want 3", d2.Cleaned())
	}
	if left := tmpEntries(t, dir); len(left) != 0 {
		t.Errorf("tmp/ holds %v after open", left)
	}
	if got, err := readBlob(t, d2, dg); err != nil || string(got) != "kept" {
		t.Errorf("committed blob after reopen: %q, %v", got, err)
	}
	if d := openTestDisk(t, dir); d.Cleaned() != 0 {
		t.Errorf("Cleaned() on a clean store = %d", d.Cleaned())
	}
}

func TestDiskDiscard(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTestDisk(t, dir)

	s, _ := d.Stage(ctx)
	s.Write([]byte("committed"))
	if err := s.Commit(ctx, s.Digest()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Discard(); err != nil {
			t.Fatalf("Discard after Commit: %v", err)
		}
	}
	if got, err := readBlob(t, d, digestOf([]byte("committed"))); err != nil || string(got) != "committed" {
		t.Fatalf("blob after Discard: %q, %v", got, err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}

	s, _ = d.Stage(ctx)
	s.Write([]byte("dropped"))
	name := s.Name()
	for range 2 {
		if err := s.Discard(); err != nil {
			t.Fatalf("Discard: %v", err)
		}
	}
	if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("discarded file still there: %v", err)
	}
	if err := s.Commit(ctx, digestOf([]byte("dropped"))); err == nil {
		t.Error("Commit after Discard succeeded")
	}
	if ok, _ := d.Has(ctx, digestOf([]byte("dropped"))); ok {
		t.Error("discarded blob is stored")
	}
}

func TestDiskConcurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := openTestDisk(t, dir)
	content := bytes.Repeat([]byte("same bytes from many downloads\n"), 10_000)
	want := digestOf(content)
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			s, err := d.Stage(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Discard()
			for chunk := range slicesChunk(content, 32<<10) {
				s.Write(chunk)
			}
			if err := s.Commit(ctx, want); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// And concurrent first opens, each of which may verify.
	for range n {
		wg.Go(func() {
			r, _, err := d.Open(ctx, want)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("concurrent Open read %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
	if left := tmpEntries(t, dir); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

func TestDiskCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d := openTestDisk(t, t.TempDir())
	s, err := d.Stage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("x"))
	cancel()
	dg := digestOf([]byte("x"))
	if err := s.Commit(ctx, dg); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit: %v", err)
	}
	if _, err := d.Stage(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Stage: %v", err)
	}
	if _, _, err := d.Open(ctx, dg); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: %v", err)
	}
	if _, err := d.Has(ctx, dg); !errors.Is(err, context.Canceled) {
		t.Errorf("Has: %v", err)
	}
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func FuzzDigest(f *testing.F) {
	for _, s := range invalidDigests {
		f.Add(s)
	}
	f.Add(digestOf(nil))
	f.Add(digestOf([]byte("x")))
	f.Add("sha256:" + strings.Repeat("0", 62) + "..")
	f.Add("sha256:" + strings.Repeat("f", 63) + "\x00")
	f.Add("sha256:" + strings.Repeat("é", 32))
	root := filepath.Join(string(filepath.Separator), "store", "sha256")
	d := &Disk{dir: filepath.Dir(root)}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := digestHex(s)
		if valid := digestRE.MatchString(s); valid != (err == nil) {
			t.Fatalf("digestHex(%q) error %v, valid %v", s, err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidDigest) {
				t.Fatalf("digestHex(%q) error %v does not wrap ErrInvalidDigest", s, err)
			}
			return
		}
		p := d.path(h)
		if filepath.Clean(p) != p || filepath.Dir(filepath.Dir(p)) != root || filepath.Base(p) != h {
			t.Fatalf("digest %q maps to %q, outside %s", s, p, root)
		}
	})
}

func TestOpenObserved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	meta, err := OpenBolt(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	disk, err := OpenDisk(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := disk.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("tarball"))
	d := st.Digest()
	if err := st.Commit(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenObserved(ctx, meta, disk, "npm:x@1.0.0", "tarball"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no observation: %v", err)
	}
	if _, _, err := meta.Observe(ctx, "npm:x@1.0.0", map[string]string{"integrity": "sha512-x"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenObserved(ctx, meta, disk, "npm:x@1.0.0", "tarball"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no field: %v", err)
	}
	if _, _, err := meta.Observe(ctx, "npm:x@1.0.0", map[string]string{"tarball": d}); err != nil {
		t.Fatal(err)
	}
	f, got, err := OpenObserved(ctx, meta, disk, "npm:x@1.0.0", "tarball")
	if err != nil || got != d {
		t.Fatalf("OpenObserved = %q, %v", got, err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "tarball" {
		t.Errorf("read %q", b)
	}
}
