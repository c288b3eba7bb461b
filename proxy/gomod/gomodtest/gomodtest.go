// Package gomodtest runs a local stand-in for the public Go module proxy and
// its checksum database, serving modules that a test builds in memory.
//
// It exists so that Airlock's tests, including end-to-end tests that drive
// the real go command, never reach the network and can misbehave on demand:
// tamper with or truncate a download, go down, answer slowly, or fork the
// checksum database log. Like net/http/httptest, an [Upstream] is an HTTP
// server on 127.0.0.1 that lives for the duration of one test:
//
//	up := gomodtest.New(t, gomodtest.Module{
//		Path: "example.com/a", Version: "v1.0.0",
//		Files: map[string]string{"go.mod": "module example.com/a\n", "a.go": "package a\n"},
//	})
//	// go command environment: GOPROXY=up.URL GOSUMDB=up.VerifierKey
//
// The checksum database is signed with a key generated per Upstream, so the
// go command (or any sumdb client) must be given [Upstream.VerifierKey], and
// must start from a fresh GOPATH: it caches the latest signed tree in
// $GOPATH/pkg/sumdb/<name>, and a tree from another Upstream of the same name
// would look like a forked log.
package gomodtest

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// DefaultSumDBName is the checksum database name every Upstream uses. It
// must be a host[/path] for the go command to accept it.
const DefaultSumDBName = "sum.airlock.test"

// Module is one module version to serve.
type Module struct {
	Path, Version string
	// Files maps file names, relative to the module root and slash
	// separated, to their content. "go.mod" is required: it is also what
	// the .mod endpoint serves.
	Files map[string]string
	// Time is the .info Time; zero means a fixed default, so that
	// everything served is reproducible.
	Time time.Time
}

// Upstream is a running module proxy with a checksum database. Its exported
// fields are set by New and must not be changed.
type Upstream struct {
	URL         string // base URL of the proxy, e.g. http://127.0.0.1:PORT; use as GOPROXY
	SumDBName   string // checksum database name, DefaultSumDBName
	SumDBURL    string // URL + "/sumdb/" + SumDBName: the database's own base URL
	VerifierKey string // note verifier key "name+hash+key"; use as GOSUMDB

	t      testing.TB
	srv    *httptest.Server
	dir    string        // scratch space: dirhash.HashZip wants a file
	signer string        // note signer key of the checksum database
	closed chan struct{} // closed by Close, to cut delays short

	mu       sync.Mutex
	mods     map[string]map[string]*version // module path -> version -> content
	db       *sumdb.TestServer              // current log; ForkSumDB replaces it
	forks    map[string][]byte              // path@version -> go.sum lines a forked log records
	down     bool
	delay    time.Duration
	missing  int      // status for unknown modules and versions
	requests []string // URL paths of every request, in arrival order
}

// version is what is served for one module version.
type version struct {
	info     []byte
	mod, zip []byte // served: may differ from what sum records after tampering
	sum      []byte // go.sum lines of the original content, which the sumdb records
	truncate bool
}

// New starts an Upstream serving mods and stops it when the test ends.
func New(t testing.TB, mods ...Module) *Upstream {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, DefaultSumDBName)
	if err != nil {
		t.Fatalf("gomodtest: generating sumdb key: %v", err)
	}
	u := &Upstream{
		SumDBName:   DefaultSumDBName,
		VerifierKey: vkey,
		t:           t,
		dir:         t.TempDir(),
		signer:      skey,
		closed:      make(chan struct{}),
		mods:        make(map[string]map[string]*version),
		forks:       make(map[string][]byte),
		missing:     http.StatusNotFound,
	}
	u.db = sumdb.NewTestServer(skey, u.gosum)
	for _, m := range mods {
		u.Add(m)
	}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	u.URL = u.srv.URL
	u.SumDBURL = u.URL + "/sumdb/" + u.SumDBName
	t.Cleanup(u.Close)
	return u
}

// Close stops the server; New arranges for it to run at the end of the test.
func (u *Upstream) Close() {
	u.mu.Lock()
	select {
	case <-u.closed:
		u.mu.Unlock()
		return
	default:
		close(u.closed)
	}
	u.mu.Unlock()
	u.srv.Close()
}

// Add serves another module version. It appears in the version list at
// once, and in the checksum database on its first lookup, as on the real
// sumdb. Adding a version twice is a test bug: use TamperZip instead.
func (u *Upstream) Add(m Module) {
	u.t.Helper()
	v, err := u.build(m)
	if err != nil {
		u.t.Fatalf("gomodtest: %s@%s: %v", m.Path, m.Version, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mods[m.Path][m.Version] != nil {
		u.t.Fatalf("gomodtest: %s@%s added twice", m.Path, m.Version)
	}
	if u.mods[m.Path] == nil {
		u.mods[m.Path] = make(map[string]*version)
	}
	u.mods[m.Path][m.Version] = v
}

// TamperZip serves a zip of files for path@version instead of the original,
// while the checksum database keeps the original's hash.
func (u *Upstream) TamperZip(path, version string, files map[string]string) {
	u.t.Helper()
	zip, err := u.buildZip(module.Version{Path: path, Version: version}, files)
	if err != nil {
		u.t.Fatalf("gomodtest: tampered zip for %s@%s: %v", path, version, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lookup(path, version).zip = zip
}

// TamperMod serves gomod as the .mod of path@version instead of the
// original, while the checksum database keeps the original's hash.
func (u *Upstream) TamperMod(path, version, gomod string) {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lookup(path, version).mod = []byte(gomod)
}

// TruncateZip makes the .zip of path@version declare its full
// Content-Length but send only half the body before closing the connection.
func (u *Upstream) TruncateZip(path, version string) {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lookup(path, version).truncate = true
}

// SetDown makes every request, checksum database included, answer 503
// while down is true, to simulate an outage.
func (u *Upstream) SetDown(down bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.down = down
}

// SetDelay holds every .zip answer for d, to widen race windows.
func (u *Upstream) SetDelay(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.delay = d
}

// SetNotFoundStatus sets the status of answers about unknown modules and
// versions: 404 by default, 410 as proxy.golang.org sometimes answers, or
// 403 as some mirrors do.
func (u *Upstream) SetNotFoundStatus(code int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.missing = code
}

// Requests counts the requests so far whose URL path ends with suffix, e.g.
// "/@v/v1.0.0.zip". Paths are as sent, so module paths are case-escaped.
func (u *Upstream) Requests(suffix string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, p := range u.requests {
		if strings.HasSuffix(p, suffix) {
			n++
		}
	}
	return n
}

// GoSum returns the go.sum lines the checksum database records (or will
// record) for path@version, computed from the original content.
func (u *Upstream) GoSum(path, version string) string {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	return string(u.lookup(path, version).sum)
}

// lookup returns the served content of path@version, failing the test if
// there is none. u.mu must be held.
func (u *Upstream) lookup(path, version string) *version {
	u.t.Helper()
	v := u.mods[path][version]
	if v == nil {
		u.t.Fatalf("gomodtest: %s@%s was never added", path, version)
	}
	return v
}
