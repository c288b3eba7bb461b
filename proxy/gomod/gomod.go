// Package gomod is the GOPROXY front: it serves the module proxy protocol
// (https://go.dev/ref/mod#goproxy-protocol) from a cache it fills from one
// upstream proxy, admitting a .mod or .zip only after the checksum
// database vouches for it, and hiding quarantined versions from listings.
package gomod

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/sync/singleflight"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/gosum"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// Meta is the part of the metadata store the front uses.
type Meta interface {
	Decide(ctx context.Context, a verify.Artifact, d verify.Decision, actor string) (cache.Status, error)
	Status(ctx context.Context, a verify.Artifact) (cache.Status, error)
	Observe(ctx context.Context, key string, fields map[string]string) (cache.Observation, []cache.Change, error)
	Observation(ctx context.Context, key string) (cache.Observation, error)
	Get(ctx context.Context, bucket, key string) ([]byte, error)
	Put(ctx context.Context, bucket, key string, value []byte) error
}

// Verifier checks content against the checksum database.
type Verifier interface {
	Name() string
	Halted() bool
	CheckMod(ctx context.Context, path, version string, gomod []byte) (gosum.Evidence, error)
	CheckZip(ctx context.Context, path, version, zipFile string) (gosum.Evidence, error)
	// Prefetch starts the lookup for a version while its content downloads.
	Prefetch(path, version string)
	// Record looks a version up without content: its record id.
	Record(ctx context.Context, path, version string) (gosum.Evidence, error)
}

// Private is a module path pattern outside the checksum database and the
// verdict for its versions.
type Private struct {
	Pattern string
	Verdict verify.Verdict
}

// Options configure a Handler.
type Options struct {
	Upstream string // base URL of the upstream GOPROXY
	SumDBURL string // base URL of the checksum database, for client passthrough
	Client   *http.Client
	Verifier Verifier
	Meta     Meta
	Blobs    cache.Blobs
	Private  []Private
	MaxZip   int64
	MaxMod   int64
	MaxInfo  int64
	ListTTL  time.Duration
	// ReadAhead is how many go.mod files required by a fetched go.mod
	// may be fetched and verified at once before the client asks for
	// them; 0 disables read-ahead.
	ReadAhead int
	// Checks is the publish-time checks' policy (the cooldown, for Go);
	// the zero value turns them off.
	Checks policy.Policy
	// Malicious returns the known-malicious findings for a version (the
	// OSV feeds); nil means no feed.
	Malicious func(verify.Artifact) []verify.Finding
	// CI compares a version of a namespace the policy declares built by
	// CI with its CI record (digest: the zip's h1: hash); nil when they
	// match. Nil CI means no records: every such version is held.
	// FastTrack returns the advisories that name a version as the fix of
	// a vulnerability; such a version skips the cooldown. Nil: none.
	FastTrack func(verify.Artifact) []string
	CI        func(ctx context.Context, a verify.Artifact, digest string) (*verify.Finding, error)
	Log       *slog.Logger
	Metrics   *metrics.Set
	// Now is the clock of the cooldown; nil is time.Now.
	Now func() time.Time
}

// Handler serves the protocol. Mount it with the prefix stripped, so that
// it sees "github.com/x/y/@v/list".
type Handler struct {
	o       Options
	flight  singleflight.Group
	listsMu sync.Mutex
	lists   map[string]cachedList
	ahead   *readAhead
	samples sampler
}

type cachedList struct {
	versions []string
	fetched  time.Time
}

// actor is how the front signs the decisions it records.
const actor = "airlock/gomod"

// New returns a Handler.
func New(o Options) *Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Minute}
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CI == nil {
		o.CI = policy.NoCIRecords
	}
	if o.Malicious == nil {
		o.Malicious = func(verify.Artifact) []verify.Finding { return nil }
	}
	o.Upstream = strings.TrimSuffix(o.Upstream, "/")
	o.SumDBURL = strings.TrimSuffix(o.SumDBURL, "/")
	h := &Handler{o: o, lists: map[string]cachedList{}}
	h.ahead = &readAhead{h: h, max: o.ReadAhead}
	return h
}

// request is a parsed protocol request.
type request struct {
	path    string // module path, unescaped and checked
	epath   string // escaped, as on the wire
	kind    string // "list", "latest", "info", "mod", "zip"
	version string // unescaped; canonical except for info queries
	ever    string // version escaped, as on the wire
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		textError(w, http.StatusMethodNotAllowed, "airlock: the module proxy is read-only")
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if rest, ok := strings.CutPrefix(p, "sumdb/"); ok {
		h.serveSumDB(w, r, rest)
		return
	}
	req, status, msg := parse(p)
	if status != 0 {
		textError(w, status, msg)
		return
	}
	ctx := r.Context()
	var err error
	switch req.kind {
	case "list":
		err = h.serveList(ctx, w, req)
	case "latest":
		err = h.serveLatest(ctx, w, req)
	case "info":
		err = h.serveInfo(ctx, w, r, req)
	case "mod":
		err = h.serveMod(ctx, w, r, req)
	case "zip":
		err = h.serveZip(ctx, w, r, req)
	}
	if err != nil {
		h.writeError(w, req, err)
	}
}

// parse splits and validates a protocol path. It returns a non-zero status
// and a message for paths that are not the protocol.
func parse(p string) (request, int, string) {
	var req request
	var rest string
	if ep, ok := strings.CutSuffix(p, "/@latest"); ok {
		req.epath, req.kind = ep, "latest"
	} else if ep, file, ok := strings.Cut(p, "/@v/"); ok {
		req.epath, rest = ep, file
	} else {
		return req, http.StatusNotFound, "airlock: not a module proxy path (want <module>/@v/list, @v/<version>.info|.mod|.zip or @latest)"
	}
	path, err := module.UnescapePath(req.epath)
	if err != nil {
		return req, http.StatusBadRequest, "airlock: invalid module path: " + err.Error()
	}
	if err := module.CheckPath(path); err != nil {
		return req, http.StatusBadRequest, "airlock: invalid module path: " + err.Error()
	}
	req.path = path
	if req.kind == "latest" {
		return req, 0, ""
	}
	if rest == "list" {
		req.kind = "list"
		return req, 0, ""
	}
	i := strings.LastIndex(rest, ".")
	if i <= 0 || strings.Contains(rest, "/") {
		return req, http.StatusNotFound, "airlock: unknown file " + rest + " (want list, <version>.info, .mod or .zip)"
	}
	ext := rest[i+1:]
	v, err := module.UnescapeVersion(rest[:i])
	if err != nil {
		return req, http.StatusBadRequest, "airlock: invalid version: " + err.Error()
	}
	req.version, req.ever = v, rest[:i]
	switch ext {
	case "info":
		req.kind = "info"
		// An .info query may name a branch or commit that upstream
		// resolves; only its answer must be canonical.
		if v == "" || len(v) > 256 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return req, http.StatusBadRequest, "airlock: invalid version query"
		}
		return req, 0, ""
	case "mod", "zip":
		req.kind = ext
		if err := verify.CheckGoModule(path, v); err != nil {
			return req, http.StatusBadRequest, "airlock: invalid version: " + err.Error()
		}
		return req, 0, ""
	}
	return req, http.StatusNotFound, "airlock: unknown file extension ." + ext + " (want .info, .mod or .zip)"
}

// artifact names the version for storage, logs and admins.
func (req request) artifact(version string) verify.Artifact {
	return verify.Artifact{Ecosystem: verify.Go, Name: req.path, Version: version}
}

// private returns the rule for a module outside the checksum database.
func (h *Handler) private(path string) (Private, bool) {
	for _, p := range h.o.Private {
		if module.MatchPrefixPatterns(p.Pattern, path) {
			return p, true
		}
	}
	return Private{}, false
}
