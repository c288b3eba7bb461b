package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/oci"
)

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// rawGet reads a response whole, returning the read error instead of
// failing: an aborted transfer is what some tests want.
func rawGet(t *testing.T, url string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestCorruptLayer(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"small: error answer", 2 << 10},
		{"large: aborted transfer", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			img, err := random.Image(tc.size, 1)
			if err != nil {
				t.Fatal(err)
			}
			f.push(t, "test/app:v1", img)
			var layer string
			var content []byte
			for d, b := range layersOf(t, img) {
				layer, content = d, b
			}
			bad := bytes.Clone(content)
			bad[len(bad)/2] ^= 0xff // same length, wrong bytes
			f.faults.set(func(f *faults) { f.corrupt = map[string][]byte{"/blobs/" + layer: bad} })

			_, err = remote.Image(f.ref(t, "up/test/app:v1"))
			if err != nil {
				t.Fatal(err)
			}
			resp, body, err := rawGet(t, f.srv.URL+"/v2/up/test/app/blobs/"+layer)
			switch {
			case tc.size < 64<<10:
				if err != nil || resp.StatusCode != 502 || decodeErr(t, body).Code != "DIGEST_INVALID" {
					t.Fatalf("small corrupt blob: %v %v %s", err, resp, body)
				}
			default:
				if err == nil {
					t.Fatalf("large corrupt blob read without error: %d, %d of %d bytes", resp.StatusCode, len(body), len(content))
				}
				if len(body) >= len(content) {
					t.Fatalf("the client got %d bytes of %d before the abort", len(body), len(content))
				}
			}
			// The real client fails too.
			got, err := remote.Image(f.ref(t, "up/test/app:v1"), remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 1}))
			if err == nil {
				ls, _ := got.Layers()
				rc, err := ls[0].Compressed()
				if err == nil {
					_, err = io.ReadAll(rc)
				}
				if err == nil {
					t.Fatal("client read a corrupt layer without error")
				}
			}
			if has, _ := f.disk.Has(context.Background(), layer); has {
				t.Fatal("corrupt blob was stored")
			}
			// Upstream repaired: the blob is served and stored.
			f.faults.set(func(f *faults) { f.corrupt = nil })
			pullImage(t, f, "up/test/app:v1", img)
			if has, _ := f.disk.Has(context.Background(), layer); !has {
				t.Fatal("good blob not stored")
			}
		})
	}
}

func TestManifestDigestMismatch(t *testing.T) {
	f := newFixture(t)
	img, other := image(t), image(t)
	f.push(t, "test/app:v1", img)
	d := digestOf(t, img)
	raw, _ := other.RawManifest()
	f.faults.set(func(f *faults) { f.corrupt = map[string][]byte{"/manifests/" + d: raw} })
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/"+d)
	wantErr(t, resp, body, 502, "DIGEST_INVALID")
	if _, err := f.meta.Get(context.Background(), "oci-manifest", d); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("mismatching manifest stored: %v", err)
	}
	obs, err := f.meta.Observation(context.Background(), "oci:up/test/app@"+d)
	if err != nil || obs.Fields["digest-mismatch "+digestOf(t, other)] == "" {
		t.Fatalf("mismatch not observed: %v %v", obs.Fields, err)
	}
	f.faults.set(func(f *faults) { f.corrupt = nil })
	pullImage(t, f, "up/test/app@"+d, img)
}

func TestStaleIfError(t *testing.T) {
	f := newFixture(t, requireSig(""))
	img := image(t)
	f.push(t, "test/app:v1", img)
	f.push(t, "test/app:v2", image(t))
	f.ver.permit(digestOf(t, img))
	pullImage(t, f, "up/test/app:v1", img)

	f.faults.set(func(f *faults) { f.down = true })
	f.clock.Add(ttl + time.Second)
	heads := f.faults.count("HEAD", "/manifests/v1")
	pullImage(t, f, "up/test/app:v1", img)
	if n := f.faults.count("HEAD", "/manifests/v1"); n != heads+1 {
		t.Errorf("%d HEADs while down; the failed check counts for the TTL", n-heads)
	}
	// Unreachable rather than failing: the same.
	f.upstream.Close()
	f.clock.Add(ttl + time.Second)
	pullImage(t, f, "up/test/app:v1", img)
	// Nothing known: nothing to serve.
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v2")
	wantErr(t, resp, body, 502, "UNKNOWN")
	resp, body = f.do(t, "GET", "/v2/up/test/app/manifests/sha256:"+strings.Repeat("12", 32))
	wantErr(t, resp, body, 502, "UNKNOWN")
}

func TestUpstreamNotFoundIsNotStale(t *testing.T) {
	f := newFixture(t)
	img := image(t)
	f.push(t, "test/app:v1", img)
	pullImage(t, f, "up/test/app:v1", img)
	if err := remote.Delete(f.upRef(t, "test/app:v1")); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the known digest is served without asking.
	if d, _ := f.tagDigest(t, "up/test/app:v1"); d != digestOf(t, img) {
		t.Fatalf("within the TTL: %s", d)
	}
	f.clock.Add(ttl + time.Second)
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v1")
	wantErr(t, resp, body, 404, "MANIFEST_UNKNOWN")
	resp, body = f.do(t, "GET", "/v2/up/test/app/manifests/v9")
	wantErr(t, resp, body, 404, "MANIFEST_UNKNOWN")
	// The digest itself is still served from the cache.
	pullImage(t, f, "up/test/app@"+digestOf(t, img), img)
}

func TestRateLimited(t *testing.T) {
	f := newFixture(t)
	img := image(t)
	f.push(t, "test/app:v1", img)
	f.push(t, "test/app:v2", image(t))
	pullImage(t, f, "up/test/app:v1", img)

	f.faults.set(func(f *faults) { f.limit = "300" })
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v2")
	wantErr(t, resp, body, 429, "TOOMANYREQUESTS")
	if ra := resp.Header.Get("Retry-After"); ra != "300" {
		t.Fatalf("Retry-After %q, want 300", ra)
	}
	asked := f.faults.count("", "")
	f.faults.set(func(f *faults) { f.limit = "" })
	f.clock.Add(10 * time.Second)
	resp, body = f.do(t, "GET", "/v2/up/test/app/manifests/v2")
	wantErr(t, resp, body, 429, "TOOMANYREQUESTS")
	if ra := resp.Header.Get("Retry-After"); ra != "290" {
		t.Errorf("Retry-After %q after 10s, want 290", ra)
	}
	// A tag known before is served stale meanwhile.
	f.clock.Add(ttl)
	if d, code := f.tagDigest(t, "up/test/app:v1"); d != digestOf(t, img) {
		t.Fatalf("known tag while rate limited: %s %s", d, code)
	}
	if n := f.faults.count("", ""); n != asked {
		t.Fatalf("upstream asked %d times before Retry-After passed", n-asked)
	}
	f.clock.Add(300 * time.Second)
	resp, body = f.do(t, "GET", "/v2/up/test/app/manifests/v2")
	if resp.StatusCode != 200 {
		t.Fatalf("after Retry-After: %d %s", resp.StatusCode, body)
	}
}

func TestStaleIfHanging(t *testing.T) {
	f := newFixture(t, func(o *oci.Options) { o.Timeout = 300 * time.Millisecond })
	img := image(t)
	f.push(t, "test/app:v1", img)
	pullImage(t, f, "up/test/app:v1", img)
	f.faults.set(func(f *faults) { f.hang = true })
	f.clock.Add(ttl + time.Second)
	start := time.Now()
	if d, code := f.tagDigest(t, "up/test/app:v1"); d != digestOf(t, img) {
		t.Fatalf("hanging upstream: %s %s", d, code)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s", el)
	}
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v2")
	wantErr(t, resp, body, 504, "UNAVAILABLE")
	f.faults.set(func(f *faults) { f.hang = false })
}
