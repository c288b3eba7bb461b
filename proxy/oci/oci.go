// Package oci is the container registry front: the pull side of the OCI
// distribution API (https://github.com/opencontainers/distribution-spec),
// served from a cache that it fills from configured upstream registries.
//
// A manifest is admitted for a repository only when the repository's
// policy allows it (a verified signature, an admin's release, an allowed
// parent index, or no requirement at all); a blob only when an admitted
// manifest of that repository references it, so that nobody can fetch
// around a quarantined manifest by digest. Tags are resolved with HEAD,
// remembered for a TTL, and every tag → digest observation is recorded: a
// tag that moves is a finding, and the repository's tag policy decides
// whether the tag follows.
//
// Manifests are kept as the exact upstream bytes, keyed by their sha256,
// with their media type, in the metadata store; blobs go through a
// BlobSource that fetches each digest once and checks it as it streams.
package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/verify"
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
	Update(ctx context.Context, bucket string, keys []string, fn func(key string, old []byte) ([]byte, bool, error)) error
	Release(ctx context.Context, id, actor, reason string) (cache.Quarantine, error)
}

// BlobSource opens a blob by digest: from the store when it holds it,
// otherwise by calling fetch once for all concurrent readers and checking
// the digest as the bytes pass (cache/fill.Group, adapted).
type BlobSource interface {
	Open(ctx context.Context, digest string, fetch func(ctx context.Context) (io.ReadCloser, int64, error)) (BlobReader, error)
}

// BlobReader reads one blob. Read returns an error rather than io.EOF when
// the bytes turn out wrong or short.
type BlobReader interface {
	io.ReadCloser
	// Size is the blob's size, or -1 while unknown.
	Size() int64
	// Cached reports whether the blob came from the store.
	Cached() bool
	// File is the stored blob, for http.ServeContent (ranges, sendfile).
	File() (io.ReadSeeker, bool)
}

// SignaturePolicy is the trust a repository requires (*cosign.Policy).
// Its ID changes whenever its trust roots do, so cached verdicts are
// re-evaluated under a new key.
type SignaturePolicy interface{ ID() string }

// Tag policies: what happens when a tag moves upstream.
const (
	TagsPin          = "pin"
	TagsFollowSigned = "follow-signed"
	TagsFollow       = "follow"
)

// Policy is what one repository ("<upstream>/<repository>") requires.
type Policy struct {
	// Require a valid signature under Signature for every manifest.
	Require bool
	// Tags is TagsPin, TagsFollowSigned (also when empty) or TagsFollow.
	Tags      string
	Signature SignaturePolicy
}

// VerifyResult is a signature verifier's answer for one digest.
type VerifyResult struct {
	Verified bool
	Findings []verify.Finding
	Signers  []string
	// SignedAt is the earliest transparency-log time of a signature that
	// verified; zero when none had a log entry.
	SignedAt time.Time
}

// Verifier checks the signatures of ref (in the upstream registry) under
// p. An error means it could not decide: the front fails closed (503)
// without quarantining anything.
type Verifier interface {
	Verify(ctx context.Context, ref name.Digest, p SignaturePolicy, opts ...remote.Option) (VerifyResult, error)
}

// Upstream is one registry pulled from.
type Upstream struct {
	// Name is the first path segment that selects it ("dockerhub").
	Name string
	// URL is the registry root, https://registry-1.docker.io.
	URL string
	// Hosts are the names containerd sends in ?ns= (URL's host always is
	// one).
	Hosts []string
	// Mirror makes it answer unprefixed names (dockerd's
	// registry-mirrors); single-segment names get library/.
	Mirror bool
	// Auth authenticates to the upstream; nil is anonymous (the bearer
	// token flow still runs).
	Auth authn.Authenticator
}

// Options configure a Handler.
type Options struct {
	Upstreams []Upstream
	// Policy returns the policy of "<upstream>/<repository>"; nil means
	// no signature required and tags follow-signed.
	Policy   func(repo string) Policy
	Verifier Verifier
	Meta     Meta
	Blobs    BlobSource
	// MaxManifest bounds a manifest, tag list page or referrers list read
	// from upstream; at most 4 MiB (a metadata record), the default.
	MaxManifest int64
	// TagTTL is how long a tag's digest is served before upstream is asked
	// again (with HEAD). Zero asks every time.
	TagTTL time.Duration
	// Timeout bounds one upstream blob fetch, body included, and the
	// signature verification of one digest; token, manifest, tag and
	// referrers requests get at most 30 seconds of it. Default 10 minutes.
	Timeout time.Duration
	// Transport is the base transport to the upstreams (and the
	// verifier's requests to them); nil is http.DefaultTransport.
	Transport http.RoundTripper
	Log       *slog.Logger
	Metrics   *metrics.Set
	Now       func() time.Time
	// Checks is the publish-time checks' policy: for images, the cooldown
	// of a tag's move to a new digest. The zero value turns it off.
	Checks policy.Policy
	// CI compares a tag of a namespace the policy declares built by CI
	// with its CI record (digest: the manifest's); nil when they match.
	// Nil CI means no records: every such tag is held.
	CI func(ctx context.Context, a verify.Artifact, digest string) (*verify.Finding, error)
}

// Handler serves the registry API; it sees full /v2/... paths.
type Handler struct {
	o         Options
	upstreams []*upstream
	mirror    *upstream
	now       func() time.Time
	flight    singleflight.Group

	listsMu sync.Mutex
	lists   map[string]cachedTags // upstream tag lists by repository key
}

// actor is how the front signs the decisions it records.
const actor = "airlock/oci"

// maxRecord is the metadata store's record limit; a manifest is one record.
const maxRecord = 4 << 20

var upstreamName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// New checks o and returns a Handler.
func New(o Options) (*Handler, error) {
	if o.Meta == nil || o.Blobs == nil {
		return nil, errors.New("oci: Meta and Blobs are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
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
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.MaxManifest <= 0 || o.MaxManifest > maxRecord-1024 {
		o.MaxManifest = maxRecord - 1024 // room for the media type line
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Policy == nil {
		o.Policy = func(string) Policy { return Policy{Tags: TagsFollowSigned} }
	}
	h := &Handler{o: o, now: o.Now, lists: map[string]cachedTags{}}
	seen := map[string]bool{}
	for i, u := range o.Upstreams {
		if !upstreamName.MatchString(u.Name) {
			return nil, fmt.Errorf("oci: upstream %d: name %q must be lowercase letters, digits and . _ -", i, u.Name)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("oci: upstream %q configured twice", u.Name)
		}
		seen[u.Name] = true
		up, err := newUpstream(u, h)
		if err != nil {
			return nil, err
		}
		if u.Mirror {
			if h.mirror != nil {
				return nil, fmt.Errorf("oci: upstreams %q and %q are both the mirror", h.mirror.Name, u.Name)
			}
			h.mirror = up
		}
		h.upstreams = append(h.upstreams, up)
	}
	return h, nil
}

// target is one repository of one upstream, as a request names it.
type target struct {
	up   *upstream
	repo string // the upstream's repository, "library/alpine"
	key  string // "<upstream>/<repository>": policy, artifacts, metadata
	name string // the name as the client wrote it, for tag lists
	pol  Policy
}

// digestArtifact names a manifest of a repository.
func (t target) digestArtifact(d string) verify.Artifact {
	return verify.Artifact{Ecosystem: verify.OCI, Name: t.key, Version: d, Digest: d}
}

// tagArtifact names a tag, which an admin may block as a whole.
func (t target) tagArtifact(tag string) verify.Artifact {
	return verify.Artifact{Ecosystem: verify.OCI, Name: t.key, Version: tag}
}

// moveArtifact names one move of a tag to digest d: held under the pin
// policy until an admin releases it. The digest is part of the version (it
// renders as oci:<repo>:<tag>@<digest>) so that each move has a record of
// its own: a released move must not let a later one through.
func (t target) moveArtifact(tag, d string) verify.Artifact {
	return verify.Artifact{Ecosystem: verify.OCI, Name: t.key, Version: tag + "@" + d, Digest: d}
}

func hostOf(raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", "", fmt.Errorf("%q must be http(s)://host[:port] with no path", raw)
	}
	return u.Scheme, u.Host, nil
}
