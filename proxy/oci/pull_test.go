package oci_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-proxy/airlock/proxy/oci"
)

// pullImage pulls ref through Airlock with go-containerregistry's client
// and checks manifest and layers against the upstream image.
func pullImage(t *testing.T, f *fixture, ref string, want v1.Image, opts ...remote.Option) {
	t.Helper()
	got, err := remote.Image(f.ref(t, ref), opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	wantRaw, _ := want.RawManifest()
	gotRaw, err := got.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotRaw, wantRaw) {
		t.Fatalf("manifest bytes differ from upstream's")
	}
	if g, w := digestOf(t, got), digestOf(t, want); g != w {
		t.Fatalf("digest %s, want %s", g, w)
	}
	wantCfg, _ := want.RawConfigFile()
	gotCfg, err := got.RawConfigFile()
	if err != nil || !bytes.Equal(gotCfg, wantCfg) {
		t.Fatalf("config differs (%v)", err)
	}
	wl, gl := layersOf(t, want), layersOf(t, got)
	if len(wl) != len(gl) || len(wl) == 0 {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for d, b := range wl {
		if !bytes.Equal(gl[d], b) {
			t.Fatalf("layer %s differs from upstream's", d)
		}
	}
}

func TestPullSingleArch(t *testing.T) {
	f := newFixture(t)
	img := image(t)
	f.push(t, "test/app:v1", img)
	pullImage(t, f, "up/test/app:v1", img)
	if n := counter(t, f.metrics.CacheMisses.WithLabelValues("oci", "blob")); n != 3 {
		t.Errorf("blob misses %v, want 3 (config and two layers)", n)
	}
	// Second pull: from the cache, no upstream blob or manifest GET.
	blobs, manifests := f.faults.count("GET", "/blobs/"), f.faults.count("GET", "/manifests/")
	pullImage(t, f, "up/test/app:v1", img)
	pullImage(t, f, "up/test/app@"+digestOf(t, img), img)
	if b, m := f.faults.count("GET", "/blobs/"), f.faults.count("GET", "/manifests/"); b != blobs || m != manifests {
		t.Errorf("cached pulls went upstream: blob GETs %d→%d, manifest GETs %d→%d", blobs, b, manifests, m)
	}
	if n := counter(t, f.metrics.CacheHits.WithLabelValues("oci", "blob")); n != 6 {
		t.Errorf("blob hits %v, want 6", n)
	}
	// The tag was resolved upstream with HEAD only.
	if n := f.faults.count("GET", "/manifests/v1"); n != 0 {
		t.Errorf("%d GETs of the tag upstream; tags resolve with HEAD", n)
	}
}

func TestPullMultiArch(t *testing.T) {
	f := newFixture(t, requireSig(""))
	idx, imgs := multiArch(t)
	f.push(t, "test/multi:latest", idx)
	// Only the index is signed: its children are allowed through it.
	f.ver.permit(digestOf(t, idx))
	got, err := remote.Index(f.ref(t, "up/test/multi:latest"))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := digestOf(t, got), digestOf(t, idx); g != w {
		t.Fatalf("index digest %s, want %s", g, w)
	}
	for arch, img := range imgs {
		pullImage(t, f, "up/test/multi:latest", img, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
	}
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times (%v), want once for the index", n, f.ver.calls)
	}
	if c := f.ver.calls[0]; c != "test/multi@"+digestOf(t, idx) {
		t.Errorf("verifier asked about %s", c)
	}
}

func TestManifestHeaders(t *testing.T) {
	f := newFixture(t)
	img := image(t)
	f.push(t, "test/app:v1", img)
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	d := digestOf(t, img)
	for _, tc := range []struct{ method, ref string }{
		{"HEAD", "v1"}, {"GET", "v1"}, {"HEAD", d}, {"GET", d},
	} {
		t.Run(tc.method+" "+tc.ref, func(t *testing.T) {
			resp, body := f.do(t, tc.method, "/v2/up/test/app/manifests/"+tc.ref)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			for k, want := range map[string]string{
				"Content-Type": string(mt), "Docker-Content-Digest": d, "ETag": `"` + d + `"`,
				"Content-Length": strconv.Itoa(len(raw)), "Docker-Distribution-API-Version": "registry/2.0",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			wantBody := raw
			if tc.method == "HEAD" {
				wantBody = nil
			}
			if !bytes.Equal(body, wantBody) {
				t.Errorf("body %d bytes, want %d", len(body), len(wantBody))
			}
		})
	}
}

func TestBlobHeadAndRange(t *testing.T) {
	f := newFixture(t)
	img := image(t)
	f.push(t, "test/app:v1", img)
	if _, err := remote.Head(f.ref(t, "up/test/app:v1")); err != nil {
		t.Fatal(err)
	}
	var layer string
	var content []byte
	for d, b := range layersOf(t, img) {
		layer, content = d, b
	}
	path := "/v2/up/test/app/blobs/" + layer
	// HEAD before anything is cached: answered from the manifest, without
	// fetching the blob.
	resp, body := f.do(t, "HEAD", path)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(content)) || resp.Header.Get("Docker-Content-Digest") != layer || len(body) != 0 {
		t.Fatalf("HEAD: %d, length %s, digest %s", resp.StatusCode, resp.Header.Get("Content-Length"), resp.Header.Get("Docker-Content-Digest"))
	}
	if n := f.faults.count("GET", "/blobs/"); n != 0 {
		t.Fatalf("HEAD fetched the blob upstream (%d GETs)", n)
	}
	// A range on a miss gets the whole blob.
	resp, body = f.do(t, "GET", path, "Range", "bytes=10-19")
	if resp.StatusCode != 200 || !bytes.Equal(body, content) {
		t.Fatalf("ranged GET of a miss: %d, %d bytes", resp.StatusCode, len(body))
	}
	for _, tc := range []struct {
		rng    string
		status int
		want   []byte
	}{
		{"bytes=10-19", 206, content[10:20]},
		{fmt.Sprintf("bytes=%d-", len(content)-5), 206, content[len(content)-5:]},
		{"", 200, content},
		{fmt.Sprintf("bytes=%d-", len(content)+10), 416, nil},
	} {
		var hdr []string
		if tc.rng != "" {
			hdr = []string{"Range", tc.rng}
		}
		resp, body := f.do(t, "GET", path, hdr...)
		if resp.StatusCode != tc.status {
			t.Errorf("Range %q: status %d, want %d", tc.rng, resp.StatusCode, tc.status)
			continue
		}
		if tc.want != nil && !bytes.Equal(body, tc.want) {
			t.Errorf("Range %q: body %q, want %q", tc.rng, body, tc.want)
		}
	}
	if n := f.faults.count("GET", "/blobs/"); n != 1 {
		t.Errorf("%d upstream blob GETs, want 1", n)
	}
}

func TestBlobUnknown(t *testing.T) {
	f := newFixture(t)
	img, other := image(t), image(t)
	f.push(t, "test/app:v1", img)
	f.push(t, "test/other:v1", other)
	if _, err := remote.Head(f.ref(t, "up/test/app:v1")); err != nil {
		t.Fatal(err)
	}
	var layer string
	for d := range layersOf(t, img) {
		layer = d
	}
	for _, tc := range []struct{ name, path string }{
		{"other repository", "/v2/up/test/other/blobs/" + layer},
		{"other upstream", "/v2/hub/test/app/blobs/" + layer},
		{"unknown digest", "/v2/up/test/app/blobs/sha256:" + strings.Repeat("ab", 32)},
		{"manifest digest as blob", "/v2/up/test/app/blobs/" + digestOf(t, img)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{"GET", "HEAD"} {
				resp, body := f.do(t, m, tc.path)
				wantErr(t, resp, body, 404, "BLOB_UNKNOWN")
			}
		})
	}
	if resp, body := f.do(t, "GET", "/v2/up/test/app/blobs/"+layer); resp.StatusCode != 200 {
		t.Fatalf("the referenced blob: %d %s", resp.StatusCode, body)
	}
}

func TestAcceptNegotiation(t *testing.T) {
	f := newFixture(t)
	idx, _ := multiArch(t)
	f.push(t, "test/multi:v1", idx)
	for _, tc := range []struct {
		accept []string
		ok     bool
	}{
		{nil, true},
		{[]string{"*/*"}, true},
		{[]string{"application/vnd.oci.image.index.v1+json"}, true},
		{[]string{"application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json;q=0.5"}, true},
		{[]string{"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"}, false},
		{[]string{"application/vnd.docker.distribution.manifest.list.v2+json"}, false},
	} {
		t.Run(strings.Join(tc.accept, "|"), func(t *testing.T) {
			var hdr []string
			for _, a := range tc.accept {
				hdr = append(hdr, "Accept", a)
			}
			resp, body := f.do(t, "GET", "/v2/up/test/multi/manifests/v1", hdr...)
			if tc.ok {
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				return
			}
			e := wantErr(t, resp, body, 404, "MANIFEST_UNKNOWN")
			if !strings.Contains(e.Message, "does not accept") {
				t.Errorf("message does not say why: %s", e.Message)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v2/up/test/app/blobs/uploads/"},
		{"PATCH", "/v2/up/test/app/blobs/uploads/abc"},
		{"PUT", "/v2/up/test/app/blobs/uploads/abc?digest=sha256:" + strings.Repeat("0", 64)},
		{"PUT", "/v2/up/test/app/manifests/v1"},
		{"DELETE", "/v2/up/test/app/manifests/v1"},
		{"DELETE", "/v2/up/test/app/blobs/sha256:" + strings.Repeat("0", 64)},
		{"GET", "/v2/up/test/app/blobs/uploads/abc"},
	} {
		resp, body := f.do(t, tc.method, tc.path)
		wantErr(t, resp, body, 405, "UNSUPPORTED")
	}
	// And a real client's push.
	err := remote.Write(f.ref(t, "up/test/app:pushed"), image(t))
	if err == nil {
		t.Fatal("push through Airlock succeeded")
	}
}

func TestPathErrors(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("a", 250) + "/" + strings.Repeat("b", 10)
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v2/up/Test/app/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/up/test//app/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/up/test/app-/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/up/te..st/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/up/" + long + "/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/up/test/app/manifests/-v1", 404, "MANIFEST_UNKNOWN"},
		{"/v2/up/test/app/manifests/" + strings.Repeat("x", 129), 404, "MANIFEST_UNKNOWN"},
		{"/v2/up/test/app/manifests/sha256:abc", 400, "DIGEST_INVALID"},
		{"/v2/up/test/app/manifests/sha512:" + strings.Repeat("a", 128), 400, "DIGEST_INVALID"},
		{"/v2/up/test/app/blobs/latest", 400, "DIGEST_INVALID"},
		{"/v2/up/test/app/referrers/v1", 400, "DIGEST_INVALID"},
		{"/v2/up/test/app/unknown/x", 404, "UNSUPPORTED"},
		{"/v2/_catalog", 404, "UNSUPPORTED"},
		{"/v2/up/test/app/manifests/v1?ns=quay.io", 404, "NAME_UNKNOWN"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := f.do(t, "GET", tc.path)
			wantErr(t, resp, body, tc.status, tc.code)
		})
	}
	resp, body := f.do(t, "GET", "/v2/")
	if resp.StatusCode != 200 || string(body) != "{}" || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("/v2/: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestNoMirrorUnknownUpstream(t *testing.T) {
	f := newFixture(t, func(o *oci.Options) { o.Upstreams = o.Upstreams[:1] })
	resp, body := f.do(t, "GET", "/v2/library/alpine/manifests/3")
	wantErr(t, resp, body, 404, "NAME_UNKNOWN")
}

func TestMirrorAndNS(t *testing.T) {
	f := newFixture(t)
	img := image(t)
	f.push(t, "library/alpine:3", img)
	d := digestOf(t, img)
	for _, path := range []string{
		"/v2/alpine/manifests/3",                                  // mirror, library/ added
		"/v2/library/alpine/manifests/3",                          // mirror, as dockerd sends it
		"/v2/hub/alpine/manifests/3",                              // prefixed
		"/v2/library/alpine/manifests/3?ns=docker.io",             // containerd, by configured host
		"/v2/alpine/manifests/3?ns=docker.io",                     // containerd, single name
		"/v2/library/alpine/manifests/3?ns=" + "UP-HOST",          // containerd, by the URL's host
		"/v2/hub/library/alpine/manifests/3?ns=" + "AIRLOCK-HOST", // ns naming Airlock itself is ignored
	} {
		path = strings.NewReplacer("UP-HOST", f.upHost, "AIRLOCK-HOST", f.host).Replace(path)
		t.Run(path, func(t *testing.T) {
			resp, body := f.do(t, "GET", path)
			if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != d {
				t.Fatalf("status %d digest %s: %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), body)
			}
		})
	}
	// The mirror pull works end to end with a client that knows nothing.
	pullImage(t, f, "alpine:3", img)
	// The ns= upstream is found by host; here both upstreams share one
	// registry, so ns=<its host> picks the first ("up") and its key.
	if _, err := f.meta.Status(context.Background(), digestArtifact("hub/library/alpine", d)); err != nil {
		t.Errorf("no decision under hub/library/alpine: %v", err)
	}
	if _, err := f.meta.Status(context.Background(), digestArtifact("up/library/alpine", d)); err != nil {
		t.Errorf("no decision under up/library/alpine (ns=<upstream host>): %v", err)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
