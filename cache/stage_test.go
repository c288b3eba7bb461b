package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// newStage returns a disk store and a blob staged in it, discarded at the
// end of the test.
func newStage(t *testing.T) (*Disk, Staged) {
	t.Helper()
	d := openTestDisk(t, t.TempDir())
	s, err := d.Stage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Discard() })
	return d, s
}

// The hasher runs behind the writer: whenever Digest is asked, it must
// cover exactly the bytes written so far, however far behind it was.
func TestStageDigestFollowsWrites(t *testing.T) {
	ctx := context.Background()
	d, s := newStage(t)
	r := rand.New(rand.NewPCG(1, 2))
	var all []byte
	for i, n := range []int{1, 0, 3 << 20, 7, hashChunk, hashChunk + 1, 1 << 20} {
		chunk := make([]byte, n)
		for j := range chunk {
			chunk[j] = byte(r.Uint32())
		}
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
		all = append(all, chunk...)
		if got, want := s.Digest(), digestOf(all); got != want {
			t.Fatalf("after write %d (%d bytes in all): Digest = %s, want %s", i, len(all), got, want)
		}
	}
	if err := s.Commit(ctx, digestOf(all)); err != nil {
		t.Fatal(err)
	}
	// The digest stays readable after the commit (npm records it).
	if got := s.Digest(); got != digestOf(all) {
		t.Errorf("Digest after Commit = %s", got)
	}
	rc, size, err := d.Open(ctx, digestOf(all))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if size != int64(len(all)) || !bytes.Equal(got, all) {
		t.Fatalf("stored %d bytes, want %d", size, len(all))
	}
}

// The digest is of the bytes on disk, not of those handed to Write: a
// staged file damaged before it was hashed cannot be committed under the
// name of what was meant to be written.
func TestStageHashesWhatIsOnDisk(t *testing.T) {
	ctx := context.Background()
	d, s := newStage(t)
	content := bytes.Repeat([]byte("layer"), 1<<18)
	st := s.(*staged)
	// Hold the hasher: it hashes nothing until it can take the lock.
	st.h = startHasher(st.f)
	st.h.mu.Lock()
	if _, err := st.f.Write(content); err != nil {
		t.Fatal(err)
	}
	st.size = int64(len(content))
	st.h.written = st.size
	// Flip one byte behind the writer's back.
	if _, err := st.f.WriteAt([]byte("X"), 12345); err != nil {
		t.Fatal(err)
	}
	st.h.mu.Unlock()
	st.h.cond.Broadcast()

	err := s.Commit(ctx, digestOf(content))
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Commit of a damaged staged file = %v, want ErrDigestMismatch", err)
	}
	if ok, _ := d.Has(ctx, digestOf(content)); ok {
		t.Fatal("the damaged file was committed")
	}
}

// Bytes that cannot be read back are never named: Digest is empty and
// Commit says why.
func TestStageReadBackFailure(t *testing.T) {
	ctx := context.Background()
	_, s := newStage(t)
	content := []byte("some bytes")
	if _, err := s.Write(content); err != nil {
		t.Fatal(err)
	}
	s.Digest() // the hasher has caught up
	st := s.(*staged)
	// The file loses bytes the writer reported as written.
	if err := st.f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	st.size += 5
	st.h.advance(st.size)
	if got := s.Digest(); got != "" {
		t.Errorf("Digest of bytes that could not be read back = %q, want empty", got)
	}
	err := s.Commit(ctx, digestOf(append(content, "more."...)))
	if err == nil || !errors.Is(err, io.EOF) {
		t.Fatalf("Commit = %v, want the read-back failure", err)
	}
	if _, statErr := os.Stat(st.f.Name()); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("staged file left behind after a failed commit: %v", statErr)
	}
}

// Discard ends the hasher even when it is far behind, so that neither a
// goroutine nor a descriptor outlives the stage.
func TestStageDiscardStopsHasher(t *testing.T) {
	ctx := context.Background()
	d := openTestDisk(t, t.TempDir())
	s, err := d.Stage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range 32 {
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	st := s.(*staged)
	done := make(chan error, 1)
	go func() { done <- s.Discard() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Discard did not return")
	}
	select {
	case <-st.h.exited:
	default:
		t.Fatal("the hasher's goroutine is still running after Discard")
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, errStageOver) {
		t.Errorf("Write after Discard = %v", err)
	}
}

// BenchmarkStage writes a 64 MiB blob in 256 KiB chunks, as the fill's
// leader does, and asks for its digest: the hash runs beside the writes.
// The commit's fsync is left out; it is the disk's speed, not ours.
func BenchmarkStage(b *testing.B) {
	const size, chunk = 64 << 20, 256 << 10
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	want := digestOf(data)
	d := openTestDisk(b, b.TempDir())
	ctx := context.Background()
	b.SetBytes(size)
	for b.Loop() {
		s, err := d.Stage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += chunk {
			if _, err := s.Write(data[off : off+chunk]); err != nil {
				b.Fatal(err)
			}
		}
		if got := s.Digest(); got != want {
			b.Fatalf("digest %s, want %s", got, want)
		}
		s.Discard()
	}
}
