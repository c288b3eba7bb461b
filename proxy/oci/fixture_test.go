package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/proxy/oci"
	"github.com/airlock-proxy/airlock/verify"
)

// faults wraps the upstream registry: it records requests and can fail
// them, rate-limit them or corrupt what it sends.
type faults struct {
	next http.Handler

	mu         sync.Mutex
	log        []string          // "METHOD path"
	down       bool              // every request gets 503
	hang       bool              // every request waits for the client to give up
	limit      string            // non-empty: every request gets 429 with this Retry-After
	corrupt    map[string][]byte // path suffix → body sent instead
	truncateAt int               // >0: corrupt bodies are cut after this many bytes
}

func (f *faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, r.Method+" "+r.URL.Path)
	down, limit, next, hang := f.down, f.limit, f.next, f.hang
	var body []byte
	for suffix, b := range f.corrupt {
		if strings.HasSuffix(r.URL.Path, suffix) {
			body = b
		}
	}
	f.mu.Unlock()
	switch {
	case hang:
		<-r.Context().Done()
	case down:
		http.Error(w, "upstream is down", http.StatusServiceUnavailable)
	case limit != "":
		w.Header().Set("Retry-After", limit)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
	case body != nil && r.URL.Path != "/v2/":
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	default:
		next.ServeHTTP(w, r)
	}
}

func (f *faults) set(fn func(f *faults)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// count returns how many requests had a path containing s.
func (f *faults) count(method, s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.log {
		if (method == "" || strings.HasPrefix(l, method+" ")) && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// fakeVerifier verifies the digests in its allow set.
type fakeVerifier struct {
	mu    sync.Mutex
	allow map[string]bool
	calls []string // repository@digest asked
	err   error
	// signedAt is the transparency-log time of the signatures that verify.
	signedAt time.Time
	// signers, when set for a digest, are its signers ("test-key" if not).
	signers map[string][]string
}

func (v *fakeVerifier) Verify(_ context.Context, ref name.Digest, p oci.SignaturePolicy, _ ...remote.Option) (oci.VerifyResult, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, ref.Context().RepositoryStr()+"@"+ref.DigestStr())
	if v.err != nil {
		return oci.VerifyResult{}, v.err
	}
	if v.allow[ref.DigestStr()] {
		signers := v.signers[ref.DigestStr()]
		if signers == nil {
			signers = []string{"test-key"}
		}
		return oci.VerifyResult{Verified: true, Signers: signers, SignedAt: v.signedAt}, nil
	}
	return oci.VerifyResult{Findings: []verify.Finding{{
		Check: "signature", Message: "no signature by test-key under " + p.ID(),
		Evidence: map[string]string{"tried": "test-key", "found": "0"},
	}}}, nil
}

func (v *fakeVerifier) permit(d ...string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, x := range d {
		v.allow[x] = true
	}
}

func (v *fakeVerifier) ncalls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.calls)
}

type keyPolicy string

func (k keyPolicy) ID() string { return string(k) }

// diskSource is a BlobSource over the disk store without the concurrency
// of cache/fill: a miss is fetched by the reader that asked, hashed as it
// is read, and committed at EOF; a mismatch is an error instead of EOF.
type diskSource struct{ disk *cache.Disk }

func (s diskSource) Open(ctx context.Context, d string, fetch func(context.Context) (io.ReadCloser, int64, error)) (oci.BlobReader, error) {
	f, n, err := s.disk.Open(ctx, d)
	if err == nil {
		return &storedBlob{f, n}, nil
	}
	if !errors.Is(err, cache.ErrNotFound) {
		return nil, err
	}
	body, size, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.disk.Stage(ctx)
	if err != nil {
		body.Close()
		return nil, err
	}
	return &fillingBlob{ctx: ctx, body: body, st: st, size: size, want: d}, nil
}

type storedBlob struct {
	io.ReadSeekCloser
	size int64
}

func (b *storedBlob) Size() int64                 { return b.size }
func (b *storedBlob) Cached() bool                { return true }
func (b *storedBlob) File() (io.ReadSeeker, bool) { return b.ReadSeekCloser, true }

type fillingBlob struct {
	ctx  context.Context
	body io.ReadCloser
	st   cache.Staged
	size int64
	want string
	err  error
}

// Read delivers every byte before it reports how the fill ended, the
// hardest case for a handler: the last bytes look as good as the first.
func (b *fillingBlob) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	b.st.Write(p[:n])
	if err == io.EOF && n > 0 {
		return n, nil
	}
	if err == io.EOF {
		if cerr := b.st.Commit(b.ctx, b.want); cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *fillingBlob) Close() error                { b.st.Discard(); return b.body.Close() }
func (b *fillingBlob) Size() int64                 { return b.size }
func (b *fillingBlob) Cached() bool                { return false }
func (b *fillingBlob) File() (io.ReadSeeker, bool) { return nil, false }

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is Airlock (behind an httptest.Server) in front of an
// in-process registry, on real bbolt metadata and a real disk store.
type fixture struct {
	upstream *httptest.Server
	upHost   string
	faults   *faults
	meta     *cache.Bolt
	disk     *cache.Disk
	ver      *fakeVerifier
	clock    *clock
	metrics  *metrics.Set
	h        *oci.Handler
	srv      *httptest.Server
	host     string // Airlock's host:port
}

// fixtureOpts adjust the Options before New.
type fixtureOpt func(*oci.Options)

// requireSig makes every repository require a signature with tag mode.
func requireSig(tags string) fixtureOpt {
	return func(o *oci.Options) {
		o.Policy = func(string) oci.Policy {
			return oci.Policy{Require: true, Tags: tags, Signature: keyPolicy("key-1")}
		}
	}
}

func tagMode(tags string) fixtureOpt {
	return func(o *oci.Options) {
		o.Policy = func(string) oci.Policy { return oci.Policy{Tags: tags} }
	}
}

const ttl = time.Minute

func newFixture(t *testing.T, opts ...fixtureOpt) *fixture {
	t.Helper()
	f := &fixture{
		faults: &faults{next: registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))},
		ver:    &fakeVerifier{allow: map[string]bool{}},
		clock:  &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	f.upstream = httptest.NewServer(f.faults)
	t.Cleanup(f.upstream.Close)
	f.upHost = strings.TrimPrefix(f.upstream.URL, "http://")
	dir := t.TempDir()
	var err error
	if f.meta, err = cache.OpenBolt(filepath.Join(dir, "db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.meta.Close() })
	if f.disk, err = cache.OpenDisk(filepath.Join(dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	f.metrics = metrics.New()
	o := oci.Options{
		Upstreams: []oci.Upstream{
			{Name: "up", URL: f.upstream.URL},
			{Name: "hub", URL: f.upstream.URL, Hosts: []string{"docker.io"}, Mirror: true},
		},
		Verifier: f.ver, Meta: f.meta, Blobs: diskSource{f.disk},
		TagTTL: ttl, Timeout: 30 * time.Second,
		Transport: http.DefaultTransport, Metrics: f.metrics, Now: f.clock.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if f.h, err = oci.New(o); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	f.host = strings.TrimPrefix(f.srv.URL, "http://")
	return f
}

// upRef names repo:tag (or @digest) in the upstream registry.
func (f *fixture) upRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(f.upHost + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ref names a reference through Airlock.
func (f *fixture) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(f.host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// push writes an image or index upstream at repo:tag (or repo@digest).
func (f *fixture) push(t *testing.T, ref string, x remote.Taggable) {
	t.Helper()
	var err error
	switch v := x.(type) {
	case v1.Image:
		err = remote.Write(f.upRef(t, ref), v)
	case v1.ImageIndex:
		err = remote.WriteIndex(f.upRef(t, ref), v)
	default:
		err = remote.Put(f.upRef(t, ref), v)
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// image returns a random image of two layers.
func image(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// multiArch returns an index of two images, linux/amd64 and linux/arm64.
func multiArch(t *testing.T) (v1.ImageIndex, map[string]v1.Image) {
	t.Helper()
	imgs := map[string]v1.Image{"amd64": image(t), "arm64": image(t)}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        imgs[arch],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx, imgs
}

// artifact returns a manifest whose only layer has media type layerType
// and whose config has media type artifactType (the registry reports it
// as the artifact type), optionally referring to subject.
func artifact(t *testing.T, artifactType, layerType string, subject *v1.Descriptor) v1.Image {
	t.Helper()
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		mutate.Addendum{Layer: static.NewLayer([]byte("payload for "+artifactType+" "+time.Now().String()), types.MediaType(layerType))})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, types.MediaType(artifactType))
	if subject != nil {
		img = mutate.Subject(img, *subject).(v1.Image)
	}
	return img
}

func descriptorOf(t *testing.T, img v1.Image) *v1.Descriptor {
	t.Helper()
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	return &v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}
}

// do sends a raw request to Airlock.
func (f *fixture) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

// regErr is the first error of a distribution-spec error body.
type regErr struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail"`
}

func decodeErr(t *testing.T, body []byte) regErr {
	t.Helper()
	var doc struct {
		Errors []regErr `json:"errors"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Errors) != 1 {
		t.Fatalf("not a registry error document (%v): %s", err, body)
	}
	return doc.Errors[0]
}

// wantErr checks status and code of a raw answer.
func wantErr(t *testing.T, resp *http.Response, body []byte, status int, code string) regErr {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if resp.Request.Method == http.MethodHead {
		return regErr{}
	}
	e := decodeErr(t, body)
	if e.Code != code {
		t.Fatalf("code %s, want %s: %s", e.Code, code, e.Message)
	}
	return e
}

// quarantineOf returns the quarantine record of a.
func (f *fixture) quarantineOf(t *testing.T, a verify.Artifact) *cache.Quarantine {
	t.Helper()
	st, err := f.meta.Status(context.Background(), a)
	if err != nil {
		t.Fatalf("status of %s: %v", a, err)
	}
	if st.Quarantine == nil {
		t.Fatalf("%s has no quarantine record (decision %+v)", a, st.Decision)
	}
	return st.Quarantine
}

func (f *fixture) release(t *testing.T, a verify.Artifact) {
	t.Helper()
	q := f.quarantineOf(t, a)
	if _, err := f.meta.Release(context.Background(), q.ID, "admin", "reviewed"); err != nil {
		t.Fatal(err)
	}
}

func digestArtifact(repo, d string) verify.Artifact {
	return verify.Artifact{Ecosystem: verify.OCI, Name: repo, Version: d, Digest: d}
}

// layersOf returns each layer's compressed bytes by digest.
func layersOf(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer %s: %v", d, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %s: %v", d, err)
		}
		out[d.String()] = b
	}
	return out
}
