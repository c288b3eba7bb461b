package fill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
)

// ---- helpers ----

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// content returns n pseudo-random bytes, the same for the same seed.
func content(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

type env struct {
	dir  string
	disk *cache.Disk
	g    *Group
}

// newEnv opens a store in a temporary directory and a Group on it. At the
// end of the test it waits for the Group and fails if a goroutine of this
// package or a descriptor of a file in the store is left.
func newEnv(t testing.TB, opt func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	disk, err := cache.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Blobs: disk, Timeout: 30 * time.Second}
	if opt != nil {
		opt(&o)
	}
	e := &env{dir: dir, disk: disk, g: New(o)}
	t.Cleanup(func() {
		e.wait(t)
		checkLeaks(t, dir)
		if n := e.g.files.Load(); n != 0 {
			t.Errorf("%d staged files still open for readers", n)
		}
	})
	return e
}

// wait waits for the Group's fetches to end, failing the test if they
// have not within 10s.
func (e *env) wait(t testing.TB) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		e.g.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("fetch still running after 10s")
	}
}

// checkLeaks fails when, after a grace period, a goroutine is still in
// this package's code or a descriptor is open on a file under dir (the
// latter best effort: a finalizer may have closed a leaked *os.File).
func checkLeaks(t testing.TB, dir string) {
	t.Helper()
	var gs, fds []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		gs, fds = leakedGoroutines(), openFiles(dir)
		if len(gs) == 0 && len(fds) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, g := range gs {
		t.Errorf("leaked goroutine:\n%s", g)
	}
	for _, f := range fds {
		t.Errorf("leaked descriptor on %s", f)
	}
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "cache/fill.(*") {
			leaked = append(leaked, g)
		}
	}
	return leaked
}

// openFiles lists the files under dir this process holds open (Linux).
func openFiles(dir string) []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var open []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			open = append(open, target)
		}
	}
	return open
}

func (e *env) has(t testing.TB, digest string) bool {
	t.Helper()
	ok, err := e.disk.Has(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// staged lists the files left in the store's staging directory.
func (e *env) staged(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ents {
		names = append(names, x.Name())
	}
	return names
}

func (e *env) stored(t testing.TB, digest string) []byte {
	t.Helper()
	rc, _, err := e.disk.Open(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// body is an upstream body that records being closed.
type body struct {
	io.Reader
	closed  atomic.Bool
	onClose func()
}

func (b *body) Close() error {
	b.closed.Store(true)
	if b.onClose != nil {
		b.onClose()
	}
	return nil
}

// source is an upstream for Fetch functions that counts the fetches.
type source struct {
	calls atomic.Int32
	mu    sync.Mutex
	last  *body
}

func (s *source) keep(b *body) *body {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = b
	return b
}

// closed reports whether the last body handed out was closed.
func (s *source) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last != nil && s.last.closed.Load()
}

// leftOpen reports whether a body was handed out and not closed.
func (s *source) leftOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last != nil && !s.last.closed.Load()
}

// bytes serves data, announcing size.
func (s *source) bytes(data []byte, size int64) Fetch {
	return func(context.Context) (io.ReadCloser, int64, error) {
		s.calls.Add(1)
		return s.keep(&body{Reader: bytes.NewReader(data)}), size, nil
	}
}

// pipe serves what the test writes to the returned writer, announcing
// size. Writes fail once the body is closed.
func (s *source) pipe(t testing.TB, size int64) (Fetch, *io.PipeWriter) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	return func(context.Context) (io.ReadCloser, int64, error) {
		s.calls.Add(1)
		return s.keep(&body{Reader: pr, onClose: func() { pr.Close() }}), size, nil
	}, pw
}

// http fetches url with c, as a front would.
func (s *source) http(c *http.Client, url string) Fetch {
	return func(ctx context.Context) (io.ReadCloser, int64, error) {
		s.calls.Add(1)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, 0, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("upstream: %s", resp.Status)
		}
		b := s.keep(&body{Reader: resp.Body, onClose: func() { resp.Body.Close() }})
		return b, resp.ContentLength, nil
	}
}

// gatedServer sends the Content-Length of data, its first head bytes, then
// waits until release is called before sending the rest (or, with cut,
// dropping the connection). It counts requests. release is idempotent and
// also runs at cleanup, before the server is closed.
func gatedServer(t testing.TB, data []byte, head int, cut bool) (srv *httptest.Server, hits *atomic.Int32, release func()) {
	hits = new(atomic.Int32)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:head])
		http.NewResponseController(w).Flush()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		if cut {
			panic(http.ErrAbortHandler)
		}
		w.Write(data[head:])
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first: Close waits for the handler
	return srv, hits, release
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type readResult struct {
	data []byte
	err  error
}

// readAll reads r to its end in a goroutine.
func readAll(r io.Reader) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- readResult{b, err}
	}()
	return ch
}

// ---- tests ----

// A miss is streamed: the client gets the first bytes while upstream still
// holds back the rest, and the blob is committed only once it all arrived.
func TestMissStreams(t *testing.T) {
	e := newEnv(t, nil)
	data := content(1<<20, 1)
	want := digestOf(data)
	half := len(data) / 2
	srv, hits, openGate := gatedServer(t, data, half, false)
	var src source

	r, err := e.g.Open(testCtx(t), want, src.http(srv.Client(), srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Cached() {
		t.Error("Cached() = true for a miss")
	}
	if _, ok := r.File(); ok {
		t.Error("File() available while fetching")
	}
	if r.Size() != int64(len(data)) {
		t.Errorf("Size() = %d, want %d", r.Size(), len(data))
	}
	first := make([]byte, half)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatalf("reading the first half before upstream sent the rest: %v", err)
	}
	if !bytes.Equal(first, data[:half]) {
		t.Fatal("first half differs")
	}
	if e.has(t, want) {
		t.Error("blob committed before upstream sent all of it")
	}
	openGate()
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, data[half:]) {
		t.Fatalf("second half differs (%d bytes, want %d)", len(rest), len(data)-half)
	}
	e.wait(t)
	if !e.has(t, want) {
		t.Error("blob not committed")
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("upstream hit %d times, want 1", n)
	}
	if !src.closed() {
		t.Error("upstream body not closed")
	}
}

// Concurrent Opens of one digest make one fetch, and every reader gets the
// whole blob.
func TestConcurrentOpensOneFetch(t *testing.T) {
	const readers = 16
	var commits atomic.Int32
	var committedSize atomic.Int64
	e := newEnv(t, func(o *Options) {
		o.OnCommit = func(d string, n int64) { commits.Add(1); committedSize.Store(n) }
	})
	data := content(3<<20+17, 2)
	want := digestOf(data)
	srv, hits, openGate := gatedServer(t, data, 1000, false)
	gate := make(chan struct{}) // readers start once every Open returned
	var src source
	fetch := src.http(srv.Client(), srv.URL)
	ctx := testCtx(t)

	var opened, done sync.WaitGroup
	results := make([]readResult, readers)
	cached := make([]bool, readers)
	opened.Add(readers)
	done.Add(readers)
	for i := range readers {
		go func() {
			defer done.Done()
			r, err := e.g.Open(ctx, want, fetch)
			opened.Done()
			if err != nil {
				results[i].err = err
				return
			}
			defer r.Close()
			cached[i] = r.Cached()
			<-gate
			results[i].data, results[i].err = io.ReadAll(r)
		}()
	}
	// Every Open returns while upstream holds the body back: they all
	// follow the one fetch in flight.
	opened.Wait()
	close(gate)
	openGate()
	done.Wait()

	for i, res := range results {
		if res.err != nil {
			t.Errorf("reader %d: %v", i, res.err)
		} else if !bytes.Equal(res.data, data) {
			t.Errorf("reader %d: got %d bytes differing from the blob's %d", i, len(res.data), len(data))
		}
		if cached[i] {
			t.Errorf("reader %d: Cached() = true while the fetch was in flight", i)
		}
	}
	e.wait(t)
	if n := hits.Load(); n != 1 {
		t.Errorf("upstream hit %d times, want 1", n)
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("Fetch called %d times, want 1", n)
	}
	if !e.has(t, want) {
		t.Fatal("blob not committed")
	}
	if !bytes.Equal(e.stored(t, want), data) {
		t.Error("stored blob differs")
	}
	if n, size := commits.Load(), committedSize.Load(); n != 1 || size != int64(len(data)) {
		t.Errorf("OnCommit called %d times with size %d, want once with %d", n, size, len(data))
	}
}

var errUpstream = errors.New("upstream broke")

// Every way a fetch can go wrong commits nothing, fails every reader
// before EOF, closes the upstream body, and leaves the next Open to fetch
// again.
func TestFetchFailures(t *testing.T) {
	data := content(600<<10, 3) // several copy buffers
	want := digestOf(data)
	n := int64(len(data))
	wrong := bytes.Clone(data)
	wrong[len(wrong)-1] ^= 1

	type setup struct {
		fetch Fetch
		drive func() // sends upstream's side once the readers are open
	}
	pipeWriting := func(size int64, chunks ...[]byte) func(t *testing.T, s *source) setup {
		return func(t *testing.T, s *source) setup {
			fetch, pw := s.pipe(t, size)
			return setup{fetch, func() {
				for _, c := range chunks {
					if _, err := pw.Write(c); err != nil {
						return // the fill gave up reading
					}
				}
				pw.Close()
			}}
		}
	}
	tests := []struct {
		name    string
		opt     func(*Options)
		setup   func(t *testing.T, s *source) setup
		openErr error   // Open fails with this
		readErr []error // else every Read ends with an error that is all of these
		// A later Open fetches again, and succeeds, or with MaxSize too
		// small for the blob, fails again with this.
		again error
	}{
		{
			name:    "digest mismatch",
			setup:   pipeWriting(n, wrong),
			readErr: []error{cache.ErrDigestMismatch},
		},
		{
			name:    "body shorter than announced",
			setup:   pipeWriting(n, data[:n-1000]),
			readErr: []error{ErrSizeMismatch, io.ErrUnexpectedEOF},
		},
		{
			name:    "body shorter, size unknown",
			setup:   pipeWriting(-1, data[:n-1000]),
			readErr: []error{cache.ErrDigestMismatch},
		},
		{
			name:    "body longer than announced",
			setup:   pipeWriting(n-1000, data),
			readErr: []error{ErrSizeMismatch},
		},
		{
			name: "connection cut",
			setup: func(t *testing.T, s *source) setup {
				srv, _, release := gatedServer(t, data, len(data)/2, true)
				return setup{s.http(srv.Client(), srv.URL), release}
			},
			readErr: []error{io.ErrUnexpectedEOF},
		},
		{
			name: "upstream error mid-body",
			setup: func(t *testing.T, s *source) setup {
				fetch, pw := s.pipe(t, n)
				return setup{fetch, func() {
					pw.Write(data[:n/2])
					pw.CloseWithError(errUpstream)
				}}
			},
			readErr: []error{errUpstream},
		},
		{
			name:    "past MaxSize, size unknown",
			opt:     func(o *Options) { o.MaxSize = n / 2 },
			setup:   pipeWriting(-1, data),
			readErr: []error{ErrTooLarge},
			again:   ErrTooLarge,
		},
		{
			name:    "past MaxSize, size announced",
			opt:     func(o *Options) { o.MaxSize = n - 1 },
			setup:   pipeWriting(n, data),
			openErr: ErrTooLarge,
			again:   ErrTooLarge,
		},
		{
			name: "fetch fails",
			setup: func(t *testing.T, s *source) setup {
				return setup{func(context.Context) (io.ReadCloser, int64, error) {
					s.calls.Add(1)
					return nil, 0, errUpstream
				}, func() {}}
			},
			openErr: errUpstream,
		},
		{
			name: "upstream stalls past Timeout",
			opt:  func(o *Options) { o.Timeout = 300 * time.Millisecond },
			setup: func(t *testing.T, s *source) setup {
				fetch, pw := s.pipe(t, n)
				return setup{fetch, func() { pw.Write(data[:n/2]) }}
			},
			readErr: []error{context.DeadlineExceeded},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opt)
			var src source
			su := tt.setup(t, &src)
			ctx := testCtx(t)

			if tt.openErr != nil {
				r, err := e.g.Open(ctx, want, su.fetch)
				if err == nil {
					r.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, tt.openErr) {
					t.Errorf("Open: %v, want %v", err, tt.openErr)
				}
			} else {
				const readers = 4
				var rs []*Reader
				for range readers {
					r, err := e.g.Open(ctx, want, su.fetch)
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					defer r.Close()
					rs = append(rs, r)
				}
				var chs []<-chan readResult
				for _, r := range rs {
					chs = append(chs, readAll(r))
				}
				go su.drive() // a hung write is unblocked by pw.Close at cleanup
				for i, ch := range chs {
					res := <-ch
					if res.err == nil {
						t.Errorf("reader %d: read %d bytes and EOF, want an error", i, len(res.data))
						continue
					}
					for _, target := range tt.readErr {
						if !errors.Is(res.err, target) {
							t.Errorf("reader %d: %v, want it to wrap %v", i, res.err, target)
						}
					}
				}
				// A reader that had read nothing yet fails too.
				if _, err := rs[0].Read(make([]byte, 1)); err == nil || err == io.EOF {
					t.Errorf("Read after the failure: %v, want the failure", err)
				}
			}
			e.wait(t)
			if n := src.calls.Load(); n != 1 {
				t.Errorf("Fetch called %d times, want 1", n)
			}
			if e.has(t, want) {
				t.Error("blob committed")
			}
			if left := e.staged(t); len(left) > 0 {
				t.Errorf("staged files left: %v", left)
			}
			if src.leftOpen() {
				t.Error("upstream body not closed")
			}

			// The failure is not remembered: the next Open fetches again.
			var again source
			r, err := e.g.Open(ctx, want, again.bytes(data, n))
			if tt.again != nil {
				// Announced size past MaxSize: refused at Open.
				if err == nil {
					r.Close()
					t.Fatal("Open after the failure succeeded")
				}
				if !errors.Is(err, tt.again) {
					t.Errorf("Open after the failure: %v, want %v", err, tt.again)
				}
			} else {
				if err != nil {
					t.Fatalf("Open after the failure: %v", err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read after the failure: %d bytes, %v", len(got), err)
				}
			}
			e.wait(t)
			if again.calls.Load() != 1 {
				t.Errorf("Open after the failure fetched %d times, want 1", again.calls.Load())
			}
			if got := e.has(t, want); got != (tt.again == nil) {
				t.Errorf("after the second fetch: committed = %v, want %v", got, tt.again == nil)
			}
		})
	}
}

// A client that goes away gets its context's error, and the fetch goes on
// for the others and for the cache.
func TestClientLeaves(t *testing.T) {
	data := content(1<<20, 4)
	want := digestOf(data)
	n := int64(len(data))
	const head = 10 << 10

	t.Run("first of two", func(t *testing.T) {
		e := newEnv(t, nil)
		var src source
		fetch, pw := src.pipe(t, n)
		ctx1, cancel1 := context.WithCancel(context.Background())
		defer cancel1()
		r1, err := e.g.Open(ctx1, want, fetch)
		if err != nil {
			t.Fatal(err)
		}
		defer r1.Close()
		r2, err := e.g.Open(testCtx(t), want, fetch)
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Close()
		rest := readAll(r2)

		go pw.Write(data[:head])
		if _, err := io.ReadFull(r1, make([]byte, head)); err != nil {
			t.Fatal(err)
		}
		// r1 now waits for bytes upstream has not sent.
		blocked := make(chan error, 1)
		go func() {
			_, err := r1.Read(make([]byte, 10))
			blocked <- err
		}()
		time.Sleep(20 * time.Millisecond)
		cancel1()
		select {
		case err := <-blocked:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("blocked Read after cancel: %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked Read did not return when its context was canceled")
		}
		r1.Close()

		if _, err := pw.Write(data[head:]); err != nil {
			t.Fatalf("upstream write after the first client left: %v", err)
		}
		pw.Close()
		res := <-rest
		if res.err != nil || !bytes.Equal(res.data, data) {
			t.Fatalf("second reader: %d bytes, %v", len(res.data), res.err)
		}
		e.wait(t)
		if !e.has(t, want) {
			t.Error("blob not committed")
		}
	})

	t.Run("the only client", func(t *testing.T) {
		e := newEnv(t, nil)
		var src source
		fetch, pw := src.pipe(t, n)
		ctx, cancel := context.WithCancel(context.Background())
		r, err := e.g.Open(ctx, want, fetch)
		if err != nil {
			t.Fatal(err)
		}
		go pw.Write(data[:head])
		if _, err := io.ReadFull(r, make([]byte, head)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := r.Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
			t.Errorf("Read after cancel: %v, want context.Canceled", err)
		}
		r.Close()
		if _, err := pw.Write(data[head:]); err != nil {
			t.Fatalf("upstream write after the client left: %v", err)
		}
		pw.Close()
		e.wait(t)
		if !e.has(t, want) {
			t.Fatal("blob not committed")
		}
		if !bytes.Equal(e.stored(t, want), data) {
			t.Error("stored blob differs")
		}
	})

	t.Run("during Open", func(t *testing.T) {
		e := newEnv(t, nil)
		var src source
		answer := make(chan struct{})
		inner := src.bytes(data, n)
		fetch := func(ctx context.Context) (io.ReadCloser, int64, error) {
			select {
			case <-answer:
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
			return inner(ctx)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		r, err := e.g.Open(ctx, want, fetch)
		if err == nil {
			r.Close()
			t.Fatal("Open returned before upstream answered and after its context ended")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Open: %v, want context.DeadlineExceeded", err)
		}
		close(answer)
		e.wait(t)
		if !e.has(t, want) {
			t.Error("blob not committed after the client left during Open")
		}
	})
}

// An Open after the commit reads the store, with the file for ServeContent.
func TestOpenAfterCommit(t *testing.T) {
	e := newEnv(t, nil)
	data := content(200<<10, 5)
	want := digestOf(data)
	var src source
	ctx := testCtx(t)

	r, err := e.g.Open(ctx, want, src.bytes(data, -1))
	if err != nil {
		t.Fatal(err)
	}
	if r.Cached() || r.Size() != -1 {
		t.Errorf("miss: Cached() = %v, Size() = %d; want false, -1", r.Cached(), r.Size())
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	e.wait(t)

	r, err = e.g.Open(ctx, want, func(context.Context) (io.ReadCloser, int64, error) {
		t.Error("fetched a cached blob")
		return nil, 0, errUpstream
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Cached() {
		t.Error("Cached() = false after commit")
	}
	if r.Size() != int64(len(data)) {
		t.Errorf("Size() = %d, want %d", r.Size(), len(data))
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached read: %d bytes, %v", len(got), err)
	}
	rs, ok := r.File()
	if !ok {
		t.Fatal("File() not available for a cached blob")
	}
	if _, isFile := rs.(*os.File); !isFile {
		t.Errorf("File() is a %T, want *os.File for sendfile", rs)
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/blob", nil)
	req.Header.Set("Range", "bytes=1000-1999")
	rec := httptest.NewRecorder()
	http.ServeContent(rec, req, "", time.Time{}, rs)
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), data[1000:2000]) {
		t.Errorf("ServeContent range: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if src.calls.Load() != 1 {
		t.Errorf("Fetch called %d times, want 1", src.calls.Load())
	}
}

// A stored blob that no longer matches its digest is fetched again.
func TestCorruptStoredBlobRefetched(t *testing.T) {
	e := newEnv(t, nil)
	data := content(100<<10, 6)
	want := digestOf(data)
	var src source
	ctx := testCtx(t)
	r, err := e.g.Open(ctx, want, src.bytes(data, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r)
	r.Close()
	e.wait(t)

	hexPart := strings.TrimPrefix(want, "sha256:")
	path := filepath.Join(e.dir, "sha256", hexPart[:2], hexPart)
	if err := os.WriteFile(path, content(len(data), 7), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err = e.g.Open(ctx, want, src.bytes(data, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	if r.Cached() {
		t.Error("corrupt blob served from the store")
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("refetch: %d bytes, %v", len(got), err)
	}
	e.wait(t)
	if src.calls.Load() != 2 {
		t.Errorf("Fetch called %d times, want 2", src.calls.Load())
	}
	if !bytes.Equal(e.stored(t, want), data) {
		t.Error("store not repaired")
	}
}

// A digest the store would not accept is refused before any fetch.
func TestInvalidDigest(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	for _, d := range []string{
		"",
		"sha256:",
		"sha256:" + hex64[:63],
		"sha256:" + hex64 + "0",
		"sha256:" + strings.ToUpper(hex64),
		"SHA256:" + hex64,
		"sha512:" + hex64 + hex64,
		"md5:" + hex64[:32],
		hex64,
		"sha256:../../" + hex64[:58],
	} {
		t.Run(d, func(t *testing.T) {
			e := newEnv(t, nil)
			var src source
			r, err := e.g.Open(context.Background(), d, src.bytes([]byte("x"), 1))
			if err == nil {
				r.Close()
				t.Fatal("Open accepted the digest")
			}
			if !errors.Is(err, cache.ErrInvalidDigest) {
				t.Errorf("Open: %v, want cache.ErrInvalidDigest", err)
			}
			if src.calls.Load() != 0 {
				t.Error("fetched for an invalid digest")
			}
		})
	}
}

func TestOpenCanceledContext(t *testing.T) {
	e := newEnv(t, nil)
	var src source
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := []byte("hello")
	r, err := e.g.Open(ctx, digestOf(data), src.bytes(data, 5))
	if !errors.Is(err, context.Canceled) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("Open: %v, want context.Canceled", err)
	}
	if src.calls.Load() != 0 {
		t.Error("fetched for a canceled request")
	}
}

func TestReaderClose(t *testing.T) {
	data := content(1000, 8)
	want := digestOf(data)
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			e := newEnv(t, nil)
			var src source
			if cached {
				r, err := e.g.Open(context.Background(), want, src.bytes(data, 1000))
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(r)
				r.Close()
				e.wait(t)
			}
			r, err := e.g.Open(context.Background(), want, src.bytes(data, 1000))
			if err != nil {
				t.Fatal(err)
			}
			if r.Cached() != cached {
				t.Fatalf("Cached() = %v", r.Cached())
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := r.Read(make([]byte, 1)); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Read after Close: %v, want fs.ErrClosed", err)
			}
		})
	}
}

// ---- benchmarks ----

// BenchmarkOpenCached measures serving a stored blob through a Reader.
func BenchmarkOpenCached(b *testing.B) {
	for _, size := range []int{16 << 10, 4 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			e := newEnv(b, nil)
			data := content(size, 9)
			want := digestOf(data)
			var src source
			ctx := context.Background()
			r, err := e.g.Open(ctx, want, src.bytes(data, int64(size)))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, r)
			r.Close()
			e.wait(b)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				r, err := e.g.Open(ctx, want, src.bytes(data, int64(size)))
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil || n != int64(size) || !r.Cached() {
					b.Fatalf("%d bytes, %v, cached %v", n, err, r.Cached())
				}
				r.Close()
			}
		})
	}
}

// BenchmarkFill measures one 64 MiB miss per op: upstream (in memory)
// into the store and out to the clients. "tee" is the plain alternative
// without followers: io.Copy into the staged blob and the one client at
// once; "follow-N" goes through a Group with N readers.
func BenchmarkFill(b *testing.B) {
	const size = 64 << 20
	data := content(size, 10)
	want := digestOf(data)
	hexPart := strings.TrimPrefix(want, "sha256:")
	ctx := context.Background()

	b.Run("tee", func(b *testing.B) {
		e := newEnv(b, nil)
		b.SetBytes(size)
		for b.Loop() {
			st, err := e.disk.Stage(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.MultiWriter(st, io.Discard), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			if err := st.Commit(ctx, want); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.Remove(filepath.Join(e.dir, "sha256", hexPart[:2], hexPart))
			b.StartTimer()
		}
	})
	for _, readers := range []int{1, 4} {
		b.Run("follow-"+strconv.Itoa(readers), func(b *testing.B) {
			e := newEnv(b, nil)
			var src source
			b.SetBytes(size)
			for b.Loop() {
				var wg sync.WaitGroup
				for range readers {
					r, err := e.g.Open(ctx, want, src.bytes(data, size))
					if err != nil {
						b.Fatal(err)
					}
					wg.Go(func() {
						defer r.Close()
						if n, err := io.Copy(io.Discard, r); err != nil || n != size {
							b.Errorf("%d bytes, %v", n, err)
						}
					})
				}
				wg.Wait()
				e.wait(b)
				b.StopTimer()
				if !e.has(b, want) {
					b.Fatal("not committed")
				}
				os.Remove(filepath.Join(e.dir, "sha256", hexPart[:2], hexPart))
				b.StartTimer()
			}
			if got := src.calls.Load(); got != int32(b.N) {
				b.Errorf("%d fetches for %d ops", got, b.N)
			}
		})
	}
}

// slowCommit is a store whose commits wait for a gate, like an fsync of a
// large layer on a slow disk.
type slowCommit struct {
	cache.Blobs
	gate chan struct{}
}

func (s slowCommit) Stage(ctx context.Context) (cache.Staged, error) {
	st, err := s.Blobs.Stage(ctx)
	if err != nil {
		return nil, err
	}
	return gatedStaged{st, s.gate}, nil
}

type gatedStaged struct {
	cache.Staged
	gate chan struct{}
}

func (g gatedStaged) Commit(ctx context.Context, want string) error {
	<-g.gate
	return g.Staged.Commit(ctx, want)
}

// Readers finish as soon as the bytes are whole and verified, without
// waiting for the store's commit; the blob is committed afterwards.
func TestReadersDoNotWaitForCommit(t *testing.T) {
	gate := make(chan struct{})
	var disk *cache.Disk
	e := newEnv(t, func(o *Options) {
		disk = o.Blobs.(*cache.Disk)
		o.Blobs = slowCommit{o.Blobs, gate}
	})
	data := content(300<<10, 9)
	want := digestOf(data)
	var src source
	r, err := e.g.Open(testCtx(t), want, src.bytes(data, int64(len(data))))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		got, err := io.ReadAll(r)
		if err == nil && !bytes.Equal(got, data) {
			err = errors.New("wrong bytes")
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader waited for the commit")
	}
	r.Close()
	if ok, _ := disk.Has(context.Background(), want); ok {
		t.Fatal("committed before the gate opened")
	}
	close(gate)
	e.wait(t)
	if ok, _ := disk.Has(context.Background(), want); !ok {
		t.Fatal("not committed after the gate opened")
	}
}
