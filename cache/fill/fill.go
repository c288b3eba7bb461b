// Package fill serves blobs that are not cached yet by streaming them from
// upstream to the client and into the blob store at once.
//
// One Group makes at most one upstream fetch per digest at a time. The
// fetch runs in its own goroutine (the leader), detached from the client
// that started it: it copies the upstream body into a cache.Staged and
// publishes how many bytes are on disk. Every Reader of that digest, the
// first one included, follows the staged file as it grows, through one
// read-only descriptor opened before the first byte was written, and gets
// io.EOF only once the store has committed the bytes under the digest
// asked for. A wrong digest, a body shorter or longer than announced, a
// body past Options.MaxSize, an upstream error or the timeout commit
// nothing and make every Reader fail instead of ending, so that an HTTP
// handler aborts its response and the client sees an error rather than a
// short or wrong body.
package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-proxy/airlock/cache"
)

// Errors a fill fails with besides cache.ErrDigestMismatch, the fetch's
// own error and the context's, to be inspected with errors.Is.
var (
	// ErrTooLarge: the blob is larger than Options.MaxSize.
	ErrTooLarge = errors.New("blob larger than the size limit")
	// ErrSizeMismatch: upstream sent more or fewer bytes than it
	// announced. A short body also wraps io.ErrUnexpectedEOF.
	ErrSizeMismatch = errors.New("blob size differs from the announced size")
)

// Fetch opens the upstream body of one blob. size is the expected length,
// or -1 if unknown. The body is always closed by the Group.
type Fetch func(ctx context.Context) (body io.ReadCloser, size int64, err error)

// Options configure a Group. Zero Timeout and zero MaxSize mean no bound.
type Options struct {
	Blobs cache.Blobs
	// Timeout bounds one whole upstream fetch, from calling Fetch to the
	// commit. The fetch runs detached from any one client's context, so
	// that other readers and the cache still get the bytes if the first
	// client leaves; this is what ends it if upstream stalls.
	Timeout time.Duration
	// MaxSize is the largest blob fetched; a fetch past it fails.
	MaxSize int64
	Log     *slog.Logger
	// OnCommit, if set, is called by the fetching goroutine after a blob
	// was committed.
	OnCommit func(digest string, size int64)
}

// copyBuf is the size of the leader's reads from upstream: each one is a
// write to the staged file and a wake-up of the readers waiting.
const copyBuf = 256 << 10

// Group fetches blobs, one fetch per digest at a time. Its methods are safe
// for concurrent use.
type Group struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	fills   map[string]*fill // in flight, by digest
	running int              // leader goroutines not yet returned
	idle    *sync.Cond       // on mu, signalled when running drops to 0

	files atomic.Int64 // staged files open for readers
}

// New returns a Group storing into o.Blobs.
func New(o Options) *Group {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Group{o: o, log: log, fills: map[string]*fill{}}
	g.idle = sync.NewCond(&g.mu)
	return g
}

// Wait blocks until no fetch is running. Fetches started while it waits
// are waited for too. It is for shutdown and tests.
func (g *Group) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.running > 0 {
		g.idle.Wait()
	}
}

// Open returns a reader for the blob with digest want, "sha256:<hex>"
// (the only algorithm the blob store accepts; anything else is an error
// wrapping cache.ErrInvalidDigest, and nothing is fetched).
//
// If the store holds the blob the Reader reads the stored file. Otherwise
// Open starts, or joins, the one fetch of want and returns a Reader that
// follows the bytes as they are written. Open waits until the fetch has
// answered (Fetch returned), so that an upstream that refuses (not found,
// too large) is an error here, before a handler has sent its headers, and
// Size is known when upstream announced it. A blob found corrupt in the
// store is fetched again.
//
// ctx bounds Open and every Read of the returned Reader; it does not bound
// the fetch itself (see Options.Timeout).
func (g *Group) Open(ctx context.Context, want string, fetch Fetch) (*Reader, error) {
	if err := cache.CheckDigest(want); err != nil {
		return nil, err
	}
	if fetch == nil {
		return nil, errors.New("fill: nil Fetch")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if f := g.join(want); f != nil {
			return f.follow(ctx)
		}
		r, err := g.openStored(ctx, want)
		if r != nil || err != nil {
			return r, err
		}
		g.mu.Lock()
		if f := g.fills[want]; f != nil {
			f.acquire()
			g.mu.Unlock()
			return f.follow(ctx)
		}
		if attempt == 0 {
			// A fetch may have committed want and gone between the
			// store lookup and now: one stat, under the lock so that
			// no fill can finish unseen, spares a second fetch.
			has, err := g.o.Blobs.Has(ctx, want)
			if err != nil {
				g.mu.Unlock()
				return nil, err
			}
			if has {
				g.mu.Unlock()
				continue
			}
		}
		f := &fill{g: g, want: want, fetch: fetch, size: -1, ready: make(chan struct{}), refs: 2}
		g.fills[want] = f
		g.running++
		g.mu.Unlock()
		go g.run(f, ctx)
		return f.follow(ctx)
	}
}

// join returns the fill of want in flight, with a reference taken, or nil.
func (g *Group) join(want string) *fill {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.fills[want]
	if f != nil {
		f.acquire()
	}
	return f
}

// openStored returns a Reader on the stored blob, or nil and no error when
// the store does not hold it (or held a corrupt copy, which it removed).
func (g *Group) openStored(ctx context.Context, want string) (*Reader, error) {
	rc, size, err := g.o.Blobs.Open(ctx, want)
	switch {
	case err == nil:
		return &Reader{ctx: ctx, rc: rc, size: size}, nil
	case errors.Is(err, cache.ErrNotFound):
		return nil, nil
	case errors.Is(err, cache.ErrDigestMismatch):
		g.log.Warn("stored blob was corrupt, fetching it again", "digest", want, "err", err)
		return nil, nil
	default:
		return nil, err
	}
}

// run is the leader: it fetches f into the store and publishes the outcome.
func (g *Group) run(f *fill, parent context.Context) {
	start := time.Now()
	ctx := context.WithoutCancel(parent)
	var cancel context.CancelFunc
	if g.o.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, g.o.Timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	n, err := g.pull(ctx, f)
	cancel()

	// Forget the fill before publishing its outcome: from here a new Open
	// finds the blob in the store, or starts a new fetch after a failure.
	g.mu.Lock()
	delete(g.fills, f.want)
	g.mu.Unlock()

	f.finish(err)
	if err != nil {
		g.log.Warn("blob fetch failed; nothing cached", "digest", f.want, "bytes", n, "duration", time.Since(start), "err", err)
	} else {
		g.log.Debug("blob fetched and cached", "digest", f.want, "bytes", n, "duration", time.Since(start))
		if g.o.OnCommit != nil {
			g.o.OnCommit(f.want, n)
		}
	}
	f.release()

	g.mu.Lock()
	g.running--
	if g.running == 0 {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

// pull copies the upstream body of f into a staged blob and commits it,
// returning the number of bytes received.
func (g *Group) pull(ctx context.Context, f *fill) (int64, error) {
	body, size, err := f.fetch(ctx)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return 0, fmt.Errorf("fetching blob %s: %w", f.want, err)
	}
	if body == nil {
		return 0, fmt.Errorf("fetching blob %s: upstream gave no body", f.want)
	}
	// The body is closed once, when the fetch ends or when its context
	// does: a Read blocked on a stalled upstream must not outlive the
	// timeout.
	closeBody := sync.OnceValue(body.Close)
	defer closeBody()
	stop := context.AfterFunc(ctx, func() { closeBody() })
	defer stop()

	if size < 0 {
		size = -1
	}
	if limit := g.o.MaxSize; limit > 0 && size > limit {
		return 0, fmt.Errorf("fetching blob %s: upstream announces %d bytes, more than the limit of %d: %w", f.want, size, limit, ErrTooLarge)
	}
	st, err := g.o.Blobs.Stage(ctx)
	if err != nil {
		return 0, err
	}
	defer st.Discard()
	// One descriptor, opened before the first write, serves every reader
	// with ReadAt: it stays valid when Commit renames the file into the
	// store or Discard removes it.
	rf, err := os.Open(st.Name())
	if err != nil {
		return 0, fmt.Errorf("fetching blob %s: opening the staged file: %w", f.want, err)
	}
	g.files.Add(1)
	f.start(size, rf)

	buf := make([]byte, copyBuf)
	var n int64
	for {
		m, rerr := body.Read(buf)
		if m > 0 {
			if size >= 0 && n+int64(m) > size {
				return n, fmt.Errorf("fetching blob %s: upstream sent more than the %d bytes it announced: %w", f.want, size, ErrSizeMismatch)
			}
			if limit := g.o.MaxSize; limit > 0 && n+int64(m) > limit {
				return n, fmt.Errorf("fetching blob %s: more than the limit of %d bytes: %w", f.want, limit, ErrTooLarge)
			}
			if _, err := st.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("fetching blob %s: staging: %w", f.want, err)
			}
			n += int64(m)
			f.progress(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if cerr := ctx.Err(); cerr != nil {
				// The body was closed by the timeout: report that,
				// not the read on a closed body it caused.
				return n, fmt.Errorf("fetching blob %s: after %d bytes: %w", f.want, n, cerr)
			}
			return n, fmt.Errorf("fetching blob %s: after %d bytes: %w", f.want, n, rerr)
		}
	}
	if size >= 0 && n < size {
		return n, fmt.Errorf("fetching blob %s: upstream sent %d of the %d bytes it announced: %w: %w", f.want, n, size, ErrSizeMismatch, io.ErrUnexpectedEOF)
	}
	if got := st.Digest(); got != f.want {
		return n, fmt.Errorf("fetching blob %s: upstream bytes hash to %s: %w", f.want, got, cache.ErrDigestMismatch)
	}
	// The bytes are whole and hash to their name: readers may finish now
	// instead of waiting for Commit's fsync of a large layer. A failed
	// commit only means the next request fetches again.
	f.verify()
	if err := st.Commit(ctx, f.want); err != nil {
		return n, fmt.Errorf("fetching blob %s: %w", f.want, err)
	}
	return n, nil
}

// fill is one fetch in flight and the readers following it.
type fill struct {
	g     *Group
	want  string
	fetch Fetch
	// ready is closed once the fetch has answered: start or finish ran.
	ready chan struct{}

	mu       sync.Mutex
	size     int64    // announced by upstream, -1 if unknown
	file     *os.File // read side of the staged file; nil before start and after the last release
	written  int64    // bytes in file, all readable
	verified bool     // every byte is written and the digest matched
	finished bool     // the leader is done: err says how
	err      error    // why the fetch failed before verification; readers see it
	wake     chan struct{}
	// refs counts the leader and every Reader not yet closed (and every
	// Open still waiting); file is closed when it drops to zero.
	refs       int
	readyClose bool
}

func (f *fill) acquire() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

func (f *fill) release() {
	f.mu.Lock()
	f.refs--
	var file *os.File
	if f.refs == 0 {
		file, f.file = f.file, nil
	}
	f.mu.Unlock()
	if file != nil {
		file.Close()
		f.g.files.Add(-1)
	}
}

// wakeLocked wakes every reader waiting for news of f.
func (f *fill) wakeLocked() {
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

func (f *fill) readyLocked() {
	if !f.readyClose {
		f.readyClose = true
		close(f.ready)
	}
}

// start publishes that upstream answered with a body of size bytes, which
// will be readable from file.
func (f *fill) start(size int64, file *os.File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.size = size
	f.file = file
	f.readyLocked()
}

func (f *fill) progress(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written = n
	f.wakeLocked()
}

func (f *fill) verify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verified = true
	f.wakeLocked()
}

// finish publishes the end of the fetch. A failure after verification
// (the commit) is the store's problem, not the readers': they already
// have every verified byte.
func (f *fill) finish(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished = true
	if !f.verified {
		f.err = err
	}
	f.wakeLocked()
	f.readyLocked()
}

// follow waits for the fetch to answer and returns a Reader on it. The
// caller's reference passes to the Reader, or is released on error.
func (f *fill) follow(ctx context.Context) (*Reader, error) {
	select {
	case <-f.ready:
	case <-ctx.Done():
		f.release()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	size, err := f.size, f.err
	f.mu.Unlock()
	if err != nil {
		f.release()
		return nil, err
	}
	return &Reader{ctx: ctx, f: f, size: size}, nil
}

// Reader reads one blob, from the store or following its fetch. A Reader
// is for one goroutine at a time.
type Reader struct {
	ctx    context.Context
	size   int64
	rc     io.ReadSeekCloser // a stored blob
	f      *fill             // a blob being fetched
	off    int64
	closed bool
}

// Read reads the next bytes of the blob. Following a fetch it blocks until
// more bytes are written; it returns io.EOF only after every byte arrived
// and hashed to the digest (the commit to the store may still be running),
// and an error (wrapping cache.ErrDigestMismatch,
// ErrSizeMismatch, ErrTooLarge or the upstream's error) as soon as the fetch
// fails, whatever is left unread. When the context given to Open is done it
// returns the context's error; the fetch goes on.
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fs.ErrClosed
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if r.rc != nil {
		return r.rc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	f := r.f
	for {
		f.mu.Lock()
		if f.err != nil {
			err := f.err
			f.mu.Unlock()
			return 0, err
		}
		if avail := f.written - r.off; avail > 0 {
			file := f.file
			f.mu.Unlock()
			if int64(len(p)) > avail {
				p = p[:avail]
			}
			// file stays open: this Reader holds a reference.
			n, err := file.ReadAt(p, r.off)
			r.off += int64(n)
			if n > 0 {
				return n, nil
			}
			if err == nil || err == io.EOF {
				err = io.ErrNoProgress
			}
			return 0, fmt.Errorf("reading staged blob %s: %w", f.want, err)
		}
		if f.verified || f.finished {
			f.mu.Unlock()
			return 0, io.EOF
		}
		if f.wake == nil {
			f.wake = make(chan struct{})
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// Close releases the Reader. It does not stop the fetch.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.rc != nil {
		return r.rc.Close()
	}
	r.f.release()
	return nil
}

// Size is the blob's size: for a stored blob its size, for one being
// fetched the size upstream announced, or -1 if it did not.
func (r *Reader) Size() int64 { return r.size }

// Cached reports whether the Reader reads a blob already in the store.
func (r *Reader) Cached() bool { return r.rc != nil }

// File returns, for a stored blob, the underlying seekable reader (an
// *os.File with the disk driver) positioned where Read left it, so that a
// handler can use http.ServeContent for ranges and sendfile. It does not
// observe the context given to Open. For a blob being fetched it returns
// nil, false.
func (r *Reader) File() (io.ReadSeeker, bool) {
	if r.rc == nil {
		return nil, false
	}
	return r.rc, true
}
