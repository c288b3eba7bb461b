package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"sync"
)

// hashChunk is how much the hasher reads back at a time.
const hashChunk = 128 << 10

var errStageOver = errors.New("blob already committed or discarded")

// Stage starts a blob in dir/tmp.
func (d *Disk) Stage(ctx context.Context) (Staged, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(d.tmpDir(), "stage-*")
	if err != nil {
		return nil, fmt.Errorf("staging blob: %w", err)
	}
	return &staged{d: d, f: f}, nil
}

// staged is a blob being written. It is used by one goroutine at a time.
//
// Its bytes are hashed behind the writer, by a goroutine that reads back
// what was written: a caller streaming a large layer to clients while it
// stages it (cache/fill) would otherwise put SHA-256, the costliest step
// per byte, between every upstream read and the next, and serve the
// layer at the hash's speed instead of at the copy's. Digest and Commit
// wait for the hasher to catch up, so nothing is named or committed on a
// hash of fewer bytes than were written.
type staged struct {
	d    *Disk
	f    *os.File
	size int64
	h    *hasher // started by the first Write
	// closed: f is closed. done: the temp file is renamed or removed, and
	// the stage is over.
	closed, done bool
}

func (s *staged) Write(p []byte) (int, error) {
	if s.done {
		return 0, errStageOver
	}
	n, err := s.f.Write(p)
	if n > 0 {
		s.size += int64(n)
		if s.h == nil {
			s.h = startHasher(s.f)
		}
		s.h.advance(s.size)
	}
	return n, err
}

func (s *staged) Name() string { return s.f.Name() }
func (s *staged) Size() int64  { return s.size }

// Digest is the digest of the bytes written so far, or "" if they could
// not be read back (Commit then reports why).
func (s *staged) Digest() string {
	if s.h == nil {
		return digestPrefix + hex.EncodeToString(sha256.New().Sum(nil))
	}
	sum, err := s.h.sum()
	if err != nil {
		return ""
	}
	return digestPrefix + hex.EncodeToString(sum)
}

// Commit makes the staged bytes the blob want. Whatever the outcome the
// stage is over: on error the temporary file is removed.
func (s *staged) Commit(ctx context.Context, want string) (err error) {
	if s.done {
		return errStageOver
	}
	defer func() {
		if err != nil {
			s.Discard()
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := digestHex(want)
	if err != nil {
		return err
	}
	if s.h != nil {
		if _, err := s.h.sum(); err != nil {
			return fmt.Errorf("committing blob %s: %w", want, err)
		}
	}
	if got := s.Digest(); got != want {
		return fmt.Errorf("committing blob %s: the bytes hash to %s: %w", want, got, ErrDigestMismatch)
	}
	s.stopHasher()
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("committing blob %s: %w", want, err)
	}
	s.closed = true
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("committing blob %s: %w", want, err)
	}
	if err := s.d.place(s.f.Name(), h); err != nil {
		return fmt.Errorf("committing blob %s: %w", want, err)
	}
	s.done = true
	return nil
}

// Discard drops the staged bytes. It is idempotent and does nothing after
// a successful Commit.
func (s *staged) Discard() error {
	if s.done {
		return nil
	}
	s.done = true
	s.stopHasher()
	var err error
	if !s.closed {
		s.closed = true
		err = s.f.Close()
	}
	if rerr := os.Remove(s.f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// stopHasher ends the hasher's goroutine before f is closed under it. The
// digest it reached stays readable.
func (s *staged) stopHasher() {
	if s.h != nil {
		s.h.stop()
	}
}

// hasher hashes a file that is being appended to, following its writer.
type hasher struct {
	f *os.File

	mu      sync.Mutex
	cond    *sync.Cond // on mu: written, hashed, err or stopped changed
	written int64      // bytes in f, set by the writer
	hashed  int64      // bytes hashed
	err     error      // reading back failed; nothing more is hashed
	stopped bool
	exited  chan struct{}

	// sha is written by the hasher's goroutine while hashed < written,
	// and read by sum once they are equal.
	sha hash.Hash
}

func startHasher(f *os.File) *hasher {
	h := &hasher{f: f, sha: sha256.New(), exited: make(chan struct{})}
	h.cond = sync.NewCond(&h.mu)
	go h.run()
	return h
}

func (h *hasher) advance(written int64) {
	h.mu.Lock()
	h.written = written
	h.mu.Unlock()
	h.cond.Broadcast()
}

// sum waits until every byte written is hashed and returns the sum.
func (h *hasher) sum() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.hashed < h.written && h.err == nil && !h.stopped {
		h.cond.Wait()
	}
	if h.err != nil {
		return nil, h.err
	}
	if h.hashed < h.written {
		return nil, errStageOver
	}
	return h.sha.Sum(nil), nil
}

func (h *hasher) stop() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	h.cond.Broadcast()
	<-h.exited
}

func (h *hasher) isStopped() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopped
}

func (h *hasher) run() {
	defer close(h.exited)
	buf := make([]byte, hashChunk)
	var off int64
	for {
		h.mu.Lock()
		for off == h.written && !h.stopped {
			h.cond.Wait()
		}
		end, stopped := h.written, h.stopped
		h.mu.Unlock()
		if stopped {
			return
		}
		for off < end {
			if h.isStopped() {
				return
			}
			n, err := h.f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
			h.sha.Write(buf[:n])
			off += int64(n)
			if err == nil && n == 0 {
				err = fmt.Errorf("reading back the staged file at %d of %d bytes: no progress", off, end)
			}
			if err != nil {
				h.mu.Lock()
				h.err = fmt.Errorf("reading back the staged file to hash it: %w", err)
				h.mu.Unlock()
				h.cond.Broadcast()
				return
			}
		}
		h.mu.Lock()
		h.hashed = off
		h.mu.Unlock()
		h.cond.Broadcast()
	}
}
