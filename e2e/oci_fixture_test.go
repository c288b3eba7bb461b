package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The external clients of the OCI tests: crane and cosign are installed at
// pinned versions into .tools/bin by `make tools` (with the conformance
// suite binaries); skopeo comes from the system's packages.
var toolsOnce sync.Once

// tool returns the path of an external client, looked up in the
// repository's .tools/bin first. A missing tool fails the test: CI must
// not pass by skipping the clients it exists to run.
func tool(t *testing.T, name string) string {
	t.Helper()
	toolsOnce.Do(func() {
		root, err := filepath.Abs("..")
		if err == nil {
			os.Setenv("PATH", filepath.Join(root, ".tools", "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
		}
	})
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v): run make tools (skopeo: apt-get install skopeo)", name, err)
	}
	return p
}

// ociUpstream is a registry on 127.0.0.1 (go-containerregistry's, with
// the referrers API), behind a handler that logs every request and can
// serve wrong bytes for a blob.
type ociUpstream struct {
	reg  http.Handler
	srv  *httptest.Server
	Host string // 127.0.0.1:PORT

	mu       sync.Mutex
	log      []string          // "METHOD /v2/…"
	corrupt  map[string][]byte // blob digest → bytes sent instead
	throttle string            // a path prefix answered 429 TOOMANYREQUESTS
}

func newOCIUpstream(t *testing.T) *ociUpstream {
	t.Helper()
	u := &ociUpstream{
		reg:     registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)),
		corrupt: map[string][]byte{},
	}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.srv.Close)
	u.Host = strings.TrimPrefix(u.srv.URL, "http://")
	return u
}

func (u *ociUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.log = append(u.log, r.Method+" "+r.URL.Path)
	var body []byte
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		body = u.corrupt[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]
	}
	throttled := u.throttle != "" && strings.HasPrefix(r.URL.Path, u.throttle)
	u.mu.Unlock()
	if throttled {
		// Docker Hub's answer when the pull quota is spent.
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`)
		return
	}
	if body == nil {
		u.reg.ServeHTTP(w, r)
		return
	}
	// The registry's headers (length, digest) with other bytes.
	rec := httptest.NewRecorder()
	u.reg.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// corruptBlob makes every GET of blob d answer its real headers and body
// with the last byte flipped: same length, wrong digest, detectable only
// once every byte has passed.
func (u *ociUpstream) corruptBlob(t *testing.T, repo, d string) {
	t.Helper()
	b := bytes.Clone(u.blob(t, repo, d))
	b[len(b)-1] ^= 0xff
	u.mu.Lock()
	defer u.mu.Unlock()
	u.corrupt[d] = b
}

func (u *ociUpstream) heal(d string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.corrupt, d)
}

// requests counts the requests of method (any when "") whose path
// contains s.
func (u *ociUpstream) requests(method, s string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, l := range u.log {
		if (method == "" || strings.HasPrefix(l, method+" ")) && strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// blob reads a blob straight from the registry, unlogged and uncorrupted:
// the bytes clients must receive.
func (u *ociUpstream) blob(t *testing.T, repo, d string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	u.reg.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("upstream blob %s@%s: %d %s", repo, d, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// referrers reads the upstream's referrers list of subject d, unlogged.
func (u *ociUpstream) referrers(t *testing.T, repo, d string) v1.IndexManifest {
	t.Helper()
	rec := httptest.NewRecorder()
	u.reg.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/referrers/"+d, nil))
	var idx v1.IndexManifest
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &idx) != nil {
		t.Fatalf("upstream referrers of %s@%s: %d %s", repo, d, rec.Code, rec.Body)
	}
	return idx
}

func (u *ociUpstream) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(u.Host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// push writes an image or index upstream at repo:tag.
func (u *ociUpstream) push(t *testing.T, ref string, x remote.Taggable) {
	t.Helper()
	var err error
	switch v := x.(type) {
	case v1.Image:
		err = remote.Write(u.ref(t, ref), v)
	case v1.ImageIndex:
		err = remote.WriteIndex(u.ref(t, ref), v)
	default:
		t.Fatalf("push %s: %T", ref, x)
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// randomImage is a Docker schema 2 image (what most registries serve) of
// two random layers with the given platform in its config.
func randomImage(t *testing.T, layerSize int64, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(layerSize, 2)
	if err != nil {
		t.Fatal(err)
	}
	return withPlatform(t, img, arch)
}

func withPlatform(t *testing.T, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ociImage is an image in OCI media types only (manifest, config,
// layers), as the conformance suite wants its seed.
func ociImage(t *testing.T) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var adds []mutate.Addendum
	for range 2 {
		l, err := random.Layer(4096, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	return withPlatform(t, img, "amd64")
}

// platformIndex is an OCI index of two images, linux/amd64 and
// linux/arm64.
func platformIndex(t *testing.T) (v1.ImageIndex, map[string]v1.Image) {
	t.Helper()
	imgs := map[string]v1.Image{}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		imgs[arch] = randomImage(t, 1024, arch)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        imgs[arch],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx, imgs
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// layerDigests lists an image's layer digests, in order.
func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range m.Layers {
		ds = append(ds, l.Digest.String())
	}
	return ds
}

func configDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Config.Digest.String()
}

func rawManifest(t *testing.T, x interface{ RawManifest() ([]byte, error) }) []byte {
	t.Helper()
	b, err := x.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cosignCLI runs the real cosign with a key pair of its own, isolated from
// the network: its HOME, TUF root and Docker config are temporary, and any
// request not to loopback goes to a proxy that refuses it, so nothing
// reaches the public Sigstore infrastructure (no TUF update, no Rekor).
type cosignCLI struct {
	bin string
	dir string
	env []string
	// Key and Pub are the key pair's files; TrustedRoot an empty
	// trusted_root.json, which is what cosign verify needs to check a
	// bundle against a key offline.
	Key, Pub, TrustedRoot string
}

func newCosign(t *testing.T) *cosignCLI {
	t.Helper()
	dir := t.TempDir()
	c := &cosignCLI{bin: tool(t, "cosign"), dir: dir,
		Key: filepath.Join(dir, "cosign.key"), Pub: filepath.Join(dir, "cosign.pub"),
		TrustedRoot: filepath.Join(dir, "trusted_root.json"),
	}
	for _, d := range []string{"home", "tuf", "docker"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c.env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"),
		"TUF_ROOT="+filepath.Join(dir, "tuf"),
		"DOCKER_CONFIG="+filepath.Join(dir, "docker"),
		"COSIGN_PASSWORD=",
		"COSIGN_YES=true",
		"HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1",
		"https_proxy=http://127.0.0.1:1", "http_proxy=http://127.0.0.1:1",
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	)
	if out, err := c.run("generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	if err := os.WriteFile(c.TrustedRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

var registryFlags = []string{"--allow-insecure-registry", "--allow-http-registry"}

func (c *cosignCLI) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sign signs ref (repo@digest in some registry) with the key, without a
// transparency-log upload: the legacy sha256-<hex>.sig tag, or with
// bundle a sigstore bundle attached as an OCI 1.1 referrer.
func (c *cosignCLI) sign(t *testing.T, ref string, bundle bool) {
	t.Helper()
	args := append([]string{"sign", "--key", c.Key, "--tlog-upload=false", "--yes"}, registryFlags...)
	if bundle {
		args = append(args, "--new-bundle-format")
	}
	if out, err := c.run(append(args, ref)...); err != nil {
		t.Fatalf("cosign sign %s (bundle %v): %v\n%s", ref, bundle, err, out)
	}
}

// attest attaches an in-toto attestation of predicateType signed by the
// key: the legacy .att tag, or a bundle referrer.
func (c *cosignCLI) attest(t *testing.T, ref, predicateType string, bundle bool) {
	t.Helper()
	pred := filepath.Join(c.dir, "predicate.json")
	if err := os.WriteFile(pred, []byte(`{"builder":"not a signature","note":"an attestation of another type"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"attest", "--key", c.Key, "--type", predicateType, "--predicate", pred, "--tlog-upload=false", "--yes"}, registryFlags...)
	if bundle {
		args = append(args, "--new-bundle-format")
	}
	if out, err := c.run(append(args, ref)...); err != nil {
		t.Fatalf("cosign attest %s (bundle %v): %v\n%s", ref, bundle, err, out)
	}
}

// verify runs cosign verify of ref with the key, offline.
func (c *cosignCLI) verify(ref string) (string, error) {
	args := append([]string{"verify", "--key", c.Pub, "--insecure-ignore-tlog=true", "--trusted-root", c.TrustedRoot}, registryFlags...)
	return c.run(append(args, ref)...)
}

// client runs skopeo or crane with a temporary HOME (no credentials, no
// state carried between tests).
func client(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+home, "XDG_RUNTIME_DIR="+home, "REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// skopeoCopy copies docker://ref (through Airlock, plain http) into an
// OCI layout and returns its directory.
func skopeoCopy(t *testing.T, ref string, extra ...string) (string, string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	args := append([]string{"--insecure-policy"}, extra...)
	args = append(args, "copy", "--retry-times=0", "--src-tls-verify=false", "docker://"+ref, "oci:"+dir)
	out, err := client(t, tool(t, "skopeo"), args...)
	return dir, out, err
}

// cranePull pulls ref into an OCI layout and returns its directory.
func cranePull(t *testing.T, ref string, extra ...string) (string, string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	args := append([]string{"pull", "--insecure", "--format", "oci"}, extra...)
	out, err := client(t, tool(t, "crane"), append(args, ref, dir)...)
	return dir, out, err
}

func craneDigest(t *testing.T, ref string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"digest", "--insecure"}, extra...)
	out, err := client(t, tool(t, "crane"), append(args, ref)...)
	return strings.TrimSpace(out), err
}

// layoutBlob reads a blob from an OCI layout.
func layoutBlob(t *testing.T, dir, d string) []byte {
	t.Helper()
	alg, hex, _ := strings.Cut(d, ":")
	b, err := os.ReadFile(filepath.Join(dir, "blobs", alg, hex))
	if err != nil {
		t.Fatalf("layout %s lacks blob %s: %v", dir, d, err)
	}
	return b
}

// layoutManifests returns the digests index.json of an OCI layout lists.
func layoutManifests(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("index.json: %v\n%s", err, b)
	}
	var ds []string
	for _, m := range idx.Manifests {
		ds = append(ds, m.Digest.String())
	}
	return ds
}

// sameLayers checks that a layout holds every layer of an upstream image,
// bit for bit.
func sameLayers(t *testing.T, who string, up *ociUpstream, repo string, img v1.Image, dir string) {
	t.Helper()
	for _, d := range layerDigests(t, img) {
		if got, want := layoutBlob(t, dir, d), up.blob(t, repo, d); !bytes.Equal(got, want) {
			t.Errorf("%s: layer %s differs from upstream's (%d bytes, want %d)", who, d, len(got), len(want))
		}
	}
}

// ociAirlock starts Airlock with upstream "up" and the given policies (YAML
// list items, indented for oci.policies).
func ociAirlock(t *testing.T, up *ociUpstream, policies string) *instance {
	t.Helper()
	return startAirlock(t, fmt.Sprintf(`
oci:
  upstreams: [{name: up, url: "http://%s"}]
  tag_ttl: 0s
  timeout: 30s
  policies:
%s`, up.Host, policies))
}

// host is the instance's host:port, as image references spell it.
func (inst *instance) host() string { return strings.TrimPrefix(inst.URL, "http://") }

// recordFor returns the quarantine record of repository name at version
// (a digest), failing when there is none.
func recordFor(t *testing.T, inst *instance, name, version string) quarantineRecord {
	t.Helper()
	recs := quarantines(t, inst)
	for _, q := range recs {
		if q.Artifact.Name == name && q.Artifact.Version == version {
			return q
		}
	}
	t.Fatalf("no quarantine record for %s@%s among %+v", name, version, recs)
	return quarantineRecord{}
}

// hasFinding reports whether a record has a finding of check.
func hasFinding(q quarantineRecord, check string) bool {
	for _, f := range q.Findings {
		if f.Check == check {
			return true
		}
	}
	return false
}

var quarantineIDRE = regexp.MustCompile(`q-[0-9]{6}`)

// wantDenied checks a client's failure output for Airlock's refusal:
// DENIED, the artifact, that it is quarantined for its signature (the
// finding), and the quarantine id, which it returns.
func wantDenied(t *testing.T, who, out string, err error, artifact string) string {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded; want Airlock's DENIED:\n%s", who, out)
		return ""
	}
	low := strings.ToLower(out)
	if !strings.Contains(low, "denied") || !strings.Contains(out, artifact+" is quarantined") || !strings.Contains(out, "signature: ") {
		t.Errorf("%s output lacks Airlock's DENIED reason for %s:\n%s", who, artifact, out)
	}
	id := quarantineIDRE.FindString(out)
	if id == "" {
		t.Errorf("%s output lacks the quarantine id:\n%s", who, out)
	}
	return id
}

// do sends a request to Airlock and returns the answer with its body.
func (inst *instance) do(t *testing.T, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, inst.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

// manifestAccept is every manifest type a pulling client accepts.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ", ")
