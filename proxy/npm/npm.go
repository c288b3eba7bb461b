// Package npm is the npm registry front: it serves packuments, version
// manifests and tarballs from a cache it fills from one upstream
// registry. Before a tarball is served its bytes must match dist.integrity,
// its registry signatures must verify and its provenance, where present
// or required, must verify; a version that fails is quarantined, and a
// quarantined version is hidden from packuments and refused by every route.
package npm

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"golang.org/x/sync/singleflight"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/npmsig"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// Meta is the part of the metadata store the front uses.
type Meta interface {
	Decide(ctx context.Context, a verify.Artifact, d verify.Decision, actor string) (cache.Status, error)
	Status(ctx context.Context, a verify.Artifact) (cache.Status, error)
	Quarantines(ctx context.Context, f cache.QuarantineFilter) ([]cache.Quarantine, error)
	Release(ctx context.Context, id, actor, reason string) (cache.Quarantine, error)
	Observe(ctx context.Context, key string, fields map[string]string) (cache.Observation, []cache.Change, error)
	Observation(ctx context.Context, key string) (cache.Observation, error)
	ObservedKeys(ctx context.Context, prefix string) ([]string, error)
	Get(ctx context.Context, bucket, key string) ([]byte, error)
	Put(ctx context.Context, bucket, key string, value []byte) error
	CompareAndSwap(ctx context.Context, bucket, key string, old, new []byte) error
	Update(ctx context.Context, bucket string, keys []string, fn func(key string, old []byte) ([]byte, bool, error)) error
}

// Policy is what one package's versions must satisfy beyond integrity and
// registry signatures.
type Policy struct {
	// RequireProvenance holds a version without verified provenance.
	RequireProvenance bool
	// SourceRepository, when set, is a glob the provenance's source
	// repository ("github.com/owner/repo") must match.
	SourceRepository string
}

// KeyMode says where registry signing keys come from.
type KeyMode int

// The key modes. KeysStatic verifies with Options.Keys; KeysUpstream pins
// the upstream's /-/npm/v1/keys the first time it is needed; KeysNone
// treats the upstream as one that does not sign.
const (
	KeysStatic KeyMode = iota
	KeysUpstream
	KeysNone
)

// Options configure a Handler.
type Options struct {
	// Upstream is the registry's base URL, e.g. https://registry.npmjs.org.
	Upstream string
	// URL is the front's public base URL written into dist.tarball;
	// empty derives it from each request's Host and Prefix.
	URL string
	// Prefix is the path the front is mounted under, "/npm".
	Prefix string
	Client *http.Client

	KeyMode KeyMode
	// Keys and KeysJSON (the document served at /-/npm/v1/keys) are the
	// signing keys of KeysStatic.
	Keys     npmsig.Keys
	KeysJSON []byte

	// TrustedRoot is the sigstore root provenance is verified against.
	TrustedRoot root.TrustedMaterial
	// Policy returns the rules for a package; nil means none.
	Policy func(name string) Policy
	// Checks is the publish-time checks' policy (cooldown, install
	// scripts, provenance regression, publisher…); the zero value turns
	// them off.
	Checks policy.Policy
	// Malicious returns the known-malicious findings for a version (the
	// OSV feeds); nil means no feed.
	Malicious func(verify.Artifact) []verify.Finding
	// CI compares a version of a namespace the policy declares built by
	// CI with its CI record (digest in dist.integrity's sha512 form): nil
	// when they match. Nil CI means no records: every such version is
	// held.
	// FastTrack returns the advisories that name a version as the fix of
	// a vulnerability; such a version skips the cooldown. Nil: none.
	FastTrack func(verify.Artifact) []string
	CI        func(ctx context.Context, a verify.Artifact, digest string) (*verify.Finding, error)

	Meta         Meta
	Blobs        cache.Blobs
	MaxAge       time.Duration
	MaxPackument int64
	MaxTarball   int64
	// Memory bounds the decoded packuments kept in memory, in bytes of
	// their upstream documents.
	Memory  int64
	Log     *slog.Logger
	Metrics *metrics.Set
	// Now is the clock for packument freshness; nil is time.Now.
	Now func() time.Time
}

// Handler serves the registry API. Mount it with Prefix stripped.
type Handler struct {
	o      Options
	flight singleflight.Group
	known  knownNames
	docs   *docCache

	keysMu sync.Mutex
	keys   *pinnedKeys // KeysUpstream: what was pinned, once known
}

// actor is how the front signs the decisions it records.
const actor = "airlock/npm"

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
	if o.Policy == nil {
		o.Policy = func(string) Policy { return Policy{} }
	}
	if o.Prefix == "" {
		o.Prefix = "/npm"
	}
	if o.MaxPackument <= 0 {
		o.MaxPackument = 128 << 20
	}
	if o.MaxTarball <= 0 {
		o.MaxTarball = 1 << 30
	}
	if o.Memory <= 0 {
		o.Memory = 256 << 20
	}
	o.Upstream = strings.TrimSuffix(o.Upstream, "/")
	o.URL = strings.TrimSuffix(o.URL, "/")
	return &Handler{o: o, docs: newDocCache(o.Memory)}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, status, msg := parse(r.Method, r.URL.EscapedPath())
	if status != 0 {
		writeJSONError(w, status, msg)
		return
	}
	ctx := r.Context()
	var err error
	switch req.kind {
	case kindPing:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}\n"))
	case kindPackument:
		err = h.servePackument(ctx, w, r, req)
	case kindVersion:
		err = h.serveVersion(ctx, w, r, req)
	case kindDistTags:
		err = h.serveDistTags(ctx, w, r, req)
	case kindTarball:
		err = h.serveTarball(ctx, w, r, req)
	case kindKeys:
		err = h.serveKeys(ctx, w, r)
	case kindAttestations:
		err = h.serveAttestations(ctx, w, r, req)
	case kindAudit:
		err = h.serveAudit(ctx, w, r, req)
	}
	if err != nil {
		h.writeError(w, req, err)
	}
}

func artifact(name, version string) verify.Artifact {
	return verify.Artifact{Ecosystem: verify.NPM, Name: name, Version: version}
}
