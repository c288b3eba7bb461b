package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

const digestPrefix = "sha256:"

// Permissions: private modules can be cached too, and the only reader of
// the store is the airlock process, so nothing is readable by others.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// maxVerified bounds the memory of which blobs were checked (~250 bytes an
// entry). Past it an arbitrary entry is forgotten, which only costs that
// blob one more hash when it is opened again.
const maxVerified = 100_000

// CheckDigest returns nil when d is a digest the blob store accepts:
// "sha256:" and 64 lowercase hex digits, nothing else. The error wraps
// ErrInvalidDigest.
func CheckDigest(d string) error {
	_, err := digestHex(d)
	return err
}

// digestHex validates d and returns its hex part, the only piece of a
// digest that ever becomes part of a path.
func digestHex(d string) (string, error) {
	h, ok := strings.CutPrefix(d, digestPrefix)
	if !ok || len(h) != sha256.Size*2 {
		return "", fmt.Errorf("%w %q: want sha256: and 64 lowercase hex digits", ErrInvalidDigest, clip(d))
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("%w %q: want sha256: and 64 lowercase hex digits", ErrInvalidDigest, clip(d))
		}
	}
	return h, nil
}

// clip keeps error messages short when a digest came from a request.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Disk is the Blobs driver on a local directory:
//
//	dir/sha256/ab/abcdef…   committed blobs, fanned out by the first byte
//	dir/tmp/                staged blobs
//
// Its methods are safe for concurrent use.
type Disk struct {
	dir     string
	cleaned int

	mu sync.Mutex
	// verified holds, per blob hex, the file as it was when its content
	// was last found to match its name.
	verified map[string]os.FileInfo
}

var _ Blobs = (*Disk)(nil)

// OpenDisk opens (creating if needed) the blob store in dir. Staged files
// left in dir/tmp by a crash are removed: they were never committed.
// Only one process may use dir at a time.
func OpenDisk(dir string) (*Disk, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	d := &Disk{dir: abs, verified: map[string]os.FileInfo{}}
	for _, sub := range []string{d.blobRoot(), d.tmpDir()} {
		if err := os.MkdirAll(sub, dirMode); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	entries, err := os.ReadDir(d.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(d.tmpDir(), e.Name())); err != nil {
			return nil, fmt.Errorf("blob store: removing leftover staged file: %w", err)
		}
		d.cleaned++
	}
	return d, nil
}

// Cleaned is how many leftover staged files OpenDisk removed, for the
// caller to log.
func (d *Disk) Cleaned() int { return d.cleaned }

func (d *Disk) blobRoot() string { return filepath.Join(d.dir, "sha256") }
func (d *Disk) tmpDir() string   { return filepath.Join(d.dir, "tmp") }

// path is only ever called with the output of digestHex.
func (d *Disk) path(h string) string { return filepath.Join(d.blobRoot(), h[:2], h) }

// Has reports whether the blob is stored, without checking its content.
func (d *Disk) Has(ctx context.Context, digest string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	h, err := digestHex(digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(d.path(h))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("blob %s: %w", digest, err)
	}
}

// Open returns the blob as an *os.File and its size. The content is
// hashed the first time the blob is opened, and again whenever the file
// is no longer the one last hashed (other inode, size or mtime); a blob
// that no longer matches its name is removed and ErrDigestMismatch
// returned.
func (d *Disk) Open(ctx context.Context, digest string) (io.ReadSeekCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	h, err := digestHex(digest)
	if err != nil {
		return nil, 0, err
	}
	p := d.path(h)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blob %s: %w", digest, err)
	}
	// Stat the open file, not the path: what is checked is what is served.
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blob %s: %w", digest, err)
	}
	if d.isVerified(h, fi) {
		return f, fi.Size(), nil
	}
	// Hashed without the lock: a large blob must not stall other opens.
	// Concurrent first opens may each hash it, which is only wasted work.
	sum := sha256.New()
	_, err = io.Copy(sum, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blob %s: verifying: %w", digest, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h {
		f.Close()
		d.forget(h)
		// Only the file that was hashed is removed; the path may already
		// hold a good copy committed since.
		if cur, err := os.Stat(p); err == nil && os.SameFile(cur, fi) {
			os.Remove(p)
		}
		return nil, 0, fmt.Errorf("blob %s: stored content hashes to sha256:%s; removed: %w", digest, got, ErrDigestMismatch)
	}
	d.remember(h, fi)
	return f, fi.Size(), nil
}

func (d *Disk) isVerified(h string, fi os.FileInfo) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	prev, ok := d.verified[h]
	return ok && os.SameFile(prev, fi) && prev.Size() == fi.Size() && prev.ModTime().Equal(fi.ModTime())
}

func (d *Disk) remember(h string, fi os.FileInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.verified[h]; !ok && len(d.verified) >= maxVerified {
		for k := range d.verified {
			delete(d.verified, k)
			break
		}
	}
	d.verified[h] = fi
}

func (d *Disk) forget(h string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.verified, h)
}

// place moves the synced file tmp to blob h.
func (d *Disk) place(tmp, h string) error {
	dir := filepath.Dir(d.path(h))
	switch err := os.Mkdir(dir, dirMode); {
	case err == nil:
		// A new fan-out directory must itself survive a crash.
		if err := syncDir(d.blobRoot()); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrExist):
		return err
	}
	target := d.path(h)
	if _, err := os.Lstat(target); err == nil {
		// Same name, same content: nothing to add. A damaged copy is
		// found and removed by Open.
		return os.Remove(tmp)
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	// Its bytes were hashed as they were staged: the first Open need not
	// read a multi-gigabyte layer again.
	if fi, err := os.Stat(target); err == nil {
		d.remember(h, fi)
	}
	return syncDir(dir)
}

// syncDir makes a rename or creation in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
