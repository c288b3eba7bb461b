// Package gosum verifies Go module content against a Go checksum database
// (sum.golang.org or any database with a note verifier key).
//
// It wraps golang.org/x/mod/sumdb.Client, whose state — the latest signed
// tree head, the tiles and the lookup records it has authenticated — is
// persisted through a Store, so that a database that rolls back or forks
// its log is caught across restarts, not just within one process.
package gosum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/mod/zip"
)

// Errors returned by Check, to be inspected with errors.Is.
var (
	// ErrMismatch: the content's hash differs from the database's record.
	ErrMismatch = errors.New("checksum mismatch with the checksum database")
	// ErrNotInDB: the database has no record of the version. An empty
	// answer is never taken as a pass.
	ErrNotInDB = errors.New("not found in the checksum database")
	// ErrInconsistent: the database served a tree inconsistent with one it
	// signed before (a forked or rolled-back log). Once seen, the Verifier
	// admits nothing new until the process is restarted by an operator
	// who has looked into it.
	ErrInconsistent = errors.New("checksum database log is inconsistent")
	// ErrBadZip: the module zip is malformed (zip.CheckZip).
	ErrBadZip = errors.New("invalid module zip")
	// ErrUnavailable: the database could not be reached or answered an
	// error; nothing is admitted on its account.
	ErrUnavailable = errors.New("checksum database unavailable")
)

// Store persists the client's state. Names are slash-separated, starting
// with the database name ("sum.golang.org/latest", "sum.golang.org/tile/…").
type Store interface {
	// Load returns the value and whether it exists.
	Load(ctx context.Context, name string) ([]byte, bool, error)
	// Swap replaces old (nil: absent) with new atomically; false when the
	// stored value was not old.
	Swap(ctx context.Context, name string, old, new []byte) (bool, error)
	Save(ctx context.Context, name string, value []byte) error
}

// Options configure a Verifier.
type Options struct {
	// Key is the database's note verifier key, "name+hash+key".
	Key string
	// URL is the database's base URL; paths such as /lookup/… and
	// /tile/… are appended to it.
	URL    string
	Client *http.Client
	Store  Store
	Log    *slog.Logger
	// OnInconsistent is called once when the log is found inconsistent,
	// to raise an alert.
	OnInconsistent func(msg string)
}

// maxResponse bounds one answer of the database: a lookup is a record and
// a signed note, a tile at most 2^8 hashes or records.
const maxResponse = 4 << 20

// Verifier checks go.mod files and module zips against the database.
type Verifier struct {
	name string
	// client is replaced after a failed lookup: sumdb.Client remembers
	// every lookup and tile result, errors included, for its lifetime, so
	// one network blip would refuse that version (or every version needing
	// that tile) until a restart. A new client starts from the Store, which
	// holds everything authenticated so far, so nothing verified is lost.
	client atomic.Pointer[sumdb.Client]
	ops    *ops
	log    *slog.Logger
}

// New returns a Verifier. It does not contact the database.
func New(o Options) (*Verifier, error) {
	v, err := note.NewVerifier(o.Key)
	if err != nil {
		return nil, fmt.Errorf("gosum: bad key: %w", err)
	}
	if o.Store == nil || o.URL == "" {
		return nil, errors.New("gosum: Store and URL are required")
	}
	hc := o.Client
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	op := &ops{
		key:            o.Key,
		base:           strings.TrimSuffix(o.URL, "/"),
		hc:             hc,
		store:          o.Store,
		log:            log,
		onInconsistent: o.OnInconsistent,
	}
	ver := &Verifier{name: v.Name(), ops: op, log: log}
	ver.client.Store(sumdb.NewClient(op))
	return ver, nil
}

// Name is the database name.
func (v *Verifier) Name() string { return v.name }

// Halted reports whether the log was found inconsistent.
func (v *Verifier) Halted() bool { return v.ops.halted.Load() }

// Evidence is what a check saw, for findings and observations.
type Evidence struct {
	// Want is the database's hash, Got the content's ("h1:…").
	Want, Got string
	// RecordID is the record's index in the log; TreeSize the size of the
	// latest tree the Verifier has authenticated.
	RecordID, TreeSize int64
}

// Map renders the evidence for a finding.
func (e Evidence) Map() map[string]string {
	m := map[string]string{"expected": e.Want, "actual": e.Got}
	if e.RecordID >= 0 {
		m["record_id"] = strconv.FormatInt(e.RecordID, 10)
	}
	if e.TreeSize > 0 {
		m["tree_size"] = strconv.FormatInt(e.TreeSize, 10)
	}
	return m
}

// lookup asks the current client, and after a failure asks once more with
// a fresh one: the failure may be an old one that the client remembered
// (from a Prefetch while the database was unreachable, say).
func (v *Verifier) lookup(path, vers string) ([]string, error) {
	for attempt := 0; ; attempt++ {
		c := v.client.Load()
		lines, err := c.Lookup(path, vers)
		if err == nil || v.Halted() {
			return lines, err
		}
		v.client.CompareAndSwap(c, sumdb.NewClient(v.ops))
		if attempt == 1 {
			return nil, err
		}
	}
}

// Prefetch starts the database lookup for a version in the background, so
// that it runs while the caller downloads the content; the Check that
// follows waits for it instead of starting its own. It returns at once.
func (v *Verifier) Prefetch(path, version string) {
	if v.Halted() {
		return
	}
	c := v.client.Load()
	go func() {
		// The result lands in c's cache; a failure must not stay there.
		if _, err := c.Lookup(path, version); err != nil {
			v.client.CompareAndSwap(c, sumdb.NewClient(v.ops))
		}
	}()
}

// CheckMod verifies a go.mod file. The error wraps ErrMismatch, ErrNotInDB,
// ErrInconsistent or ErrUnavailable.
func (v *Verifier) CheckMod(ctx context.Context, path, version string, gomod []byte) (Evidence, error) {
	got, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		return Evidence{}, err
	}
	return v.check(ctx, path, version+"/go.mod", got)
}

// CheckZip verifies a module zip held in a local file: its structure with
// zip.CheckZip, then its h1: hash against the database.
func (v *Verifier) CheckZip(ctx context.Context, path, version, zipFile string) (Evidence, error) {
	if _, err := zip.CheckZip(module.Version{Path: path, Version: version}, zipFile); err != nil {
		return Evidence{RecordID: -1}, fmt.Errorf("%w: %w", ErrBadZip, err)
	}
	got, err := dirhash.HashZip(zipFile, dirhash.Hash1)
	if err != nil {
		return Evidence{RecordID: -1}, fmt.Errorf("%w: %w", ErrBadZip, err)
	}
	return v.check(ctx, path, version, got)
}

// Record looks a version up without checking content: its record id and
// the tree size, for judging when it entered the database, and in Want the
// zip's hash the database holds. The error wraps ErrNotInDB,
// ErrInconsistent or ErrUnavailable.
func (v *Verifier) Record(ctx context.Context, path, version string) (Evidence, error) {
	ev := Evidence{RecordID: -1}
	if v.Halted() {
		return ev, ErrInconsistent
	}
	lines, err := v.lookup(path, version)
	if err != nil {
		if v.ops.notFound(path, version) {
			return ev, fmt.Errorf("%s@%s: %w", path, version, ErrNotInDB)
		}
		return ev, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 3 && f[0] == path && f[1] == version {
			ev.Want = f[2]
		}
	}
	ev.RecordID, ev.TreeSize = v.ops.recordAndTree(ctx, v.name, path, version)
	return ev, nil
}

func (v *Verifier) check(ctx context.Context, path, vers, got string) (Evidence, error) {
	ev := Evidence{Got: got, RecordID: -1}
	if v.Halted() {
		return ev, ErrInconsistent
	}
	if err := ctx.Err(); err != nil {
		return ev, err
	}
	lines, err := v.lookup(path, vers)
	if v.Halted() {
		return ev, fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	if err != nil {
		if v.ops.notFound(path, vers) {
			return ev, fmt.Errorf("%s@%s: %w", path, vers, ErrNotInDB)
		}
		return ev, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ev.RecordID, ev.TreeSize = v.ops.recordAndTree(ctx, v.name, path, vers)
	// Lookup returns the lines for exactly this path and version; none is a
	// failure (a database that answers with nothing must not pass content).
	want := ""
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == path && f[1] == vers && strings.HasPrefix(f[2], "h1:") {
			want = f[2]
		}
	}
	if want == "" {
		return ev, fmt.Errorf("%s@%s: %w (the record has no h1: line for it)", path, vers, ErrNotInDB)
	}
	ev.Want = want
	if want != got {
		return ev, fmt.Errorf("%s@%s: %w: database has %s, content hashes to %s", path, vers, ErrMismatch, want, got)
	}
	return ev, nil
}

// ops implements sumdb.ClientOps over HTTP and a Store.
type ops struct {
	key            string
	base           string
	hc             *http.Client
	store          Store
	log            *slog.Logger
	onInconsistent func(string)
	halted         atomic.Bool
	// missing remembers lookups the database answered 404/410, because
	// sumdb.Client flattens errors to text. Bounded: it only has to last
	// from ReadRemote to the notFound call of the same check.
	missingMu sync.Mutex
	missing   map[string]bool // remote path
}

// maxMissing bounds ops.missing; past it the set starts over.
const maxMissing = 4096

func (o *ops) setMissing(path string, missing bool) {
	o.missingMu.Lock()
	defer o.missingMu.Unlock()
	if !missing {
		delete(o.missing, path)
		return
	}
	if o.missing == nil || len(o.missing) >= maxMissing {
		o.missing = map[string]bool{}
	}
	o.missing[path] = true
}

func (o *ops) ReadRemote(path string) ([]byte, error) {
	// sumdb.Client gives no context; the http.Client's timeout bounds it.
	req, err := http.NewRequest(http.MethodGet, o.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	o.setMissing(path, resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone)
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", path, maxResponse)
	}
	return data, nil
}

func (o *ops) notFound(path, vers string) bool {
	epath, err1 := module.EscapePath(path)
	evers, err2 := module.EscapeVersion(strings.TrimSuffix(vers, "/go.mod"))
	if err1 != nil || err2 != nil {
		return false
	}
	o.missingMu.Lock()
	defer o.missingMu.Unlock()
	return o.missing["/lookup/"+epath+"@"+evers]
}

func (o *ops) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.key), nil
	}
	data, ok, err := o.store.Load(context.Background(), file)
	if err != nil {
		// Never start from an empty tree because storage failed: that
		// would forget the log we have already authenticated.
		return nil, err
	}
	if !ok {
		return []byte{}, nil
	}
	return data, nil
}

func (o *ops) WriteConfig(file string, old, new []byte) error {
	if len(old) == 0 {
		old = nil
	}
	ok, err := o.store.Swap(context.Background(), file, old, new)
	if err != nil {
		return err
	}
	if !ok {
		return sumdb.ErrWriteConflict
	}
	return nil
}

func (o *ops) ReadCache(file string) ([]byte, error) {
	data, ok, err := o.store.Load(context.Background(), file)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("not cached")
	}
	return data, nil
}

func (o *ops) WriteCache(file string, data []byte) {
	if err := o.store.Save(context.Background(), file, data); err != nil {
		o.log.Warn("checksum database cache write failed", "file", file, "err", err)
	}
}

func (o *ops) Log(msg string) { o.log.Info("checksum database", "msg", msg) }

func (o *ops) SecurityError(msg string) {
	if o.halted.CompareAndSwap(false, true) {
		o.log.Error("SECURITY: checksum database log is inconsistent; no new Go module versions are admitted", "detail", msg)
		if o.onInconsistent != nil {
			o.onInconsistent(msg)
		}
	}
}

// recordAndTree reads back the authenticated lookup record and latest tree
// for evidence; -1 and 0 when they cannot be read.
func (o *ops) recordAndTree(ctx context.Context, name, path, vers string) (int64, int64) {
	id := int64(-1)
	epath, err1 := module.EscapePath(path)
	evers, err2 := module.EscapeVersion(strings.TrimSuffix(vers, "/go.mod"))
	if err1 == nil && err2 == nil {
		if data, ok, err := o.store.Load(ctx, name+"/lookup/"+epath+"@"+evers); err == nil && ok {
			if rid, _, _, err := tlog.ParseRecord(data); err == nil {
				id = rid
			}
		}
	}
	var size int64
	if data, ok, err := o.store.Load(ctx, name+"/latest"); err == nil && ok {
		if v, err := note.NewVerifier(o.key); err == nil {
			if n, err := note.Open(data, note.VerifierList(v)); err == nil {
				if t, err := tlog.ParseTree([]byte(n.Text)); err == nil {
					size = t.N
				}
			}
		}
	}
	return id, size
}
