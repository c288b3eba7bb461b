package oci_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

func TestUnsignedDeniedThenReleased(t *testing.T) {
	f := newFixture(t, requireSig(""))
	img := image(t)
	f.push(t, "test/app:v1", img)
	d := digestOf(t, img)
	a := digestArtifact("up/test/app", d)

	for i := range 2 {
		resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v1")
		e := wantErr(t, resp, body, 403, "DENIED")
		q := f.quarantineOf(t, a)
		for _, want := range []string{q.ID, "signature", "oci:up/test/app@" + d} {
			if !strings.Contains(e.Message, want) {
				t.Errorf("attempt %d: message lacks %q: %s", i, want, e.Message)
			}
		}
		if e.Detail["quarantine_id"] != q.ID {
			t.Errorf("detail %v", e.Detail)
		}
		head, _ := f.do(t, "HEAD", "/v2/up/test/app/manifests/v1")
		if w := head.Header.Get("Warning"); head.StatusCode != 403 || !strings.HasPrefix(w, `299 - "`) || !strings.Contains(w, q.ID) {
			t.Errorf("HEAD: %d, Warning %q", head.StatusCode, w)
		}
	}
	// By digest too, and the client library reports the reason.
	_, err := remote.Image(f.ref(t, "up/test/app@"+d))
	if err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("pull by digest: %v", err)
	}
	// Its layers are not reachable around the held manifest.
	for l := range layersOf(t, img) {
		resp, body := f.do(t, "GET", "/v2/up/test/app/blobs/"+l)
		wantErr(t, resp, body, 404, "BLOB_UNKNOWN")
	}
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times; a held digest is refused from the record", n)
	}
	q := f.quarantineOf(t, a)
	if q.State != cache.Held || q.Findings[0].Evidence["tried"] != "test-key" {
		t.Errorf("record %+v", q)
	}
	f.release(t, a)
	pullImage(t, f, "up/test/app:v1", img)
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times after release", n)
	}
}

func TestSignedAllowedOnce(t *testing.T) {
	f := newFixture(t, requireSig(""))
	img := image(t)
	f.push(t, "test/app:v1", img)
	f.ver.permit(digestOf(t, img))
	for range 3 {
		pullImage(t, f, "up/test/app:v1", img)
	}
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times; the verdict is cached", n)
	}
	st, err := f.meta.Status(context.Background(), digestArtifact("up/test/app", digestOf(t, img)))
	if err != nil || st.Decision.Verdict != verify.Allow || st.Quarantine != nil {
		t.Fatalf("status %+v, %v", st, err)
	}
	if !strings.Contains(st.Decision.Summary(), "signature verified") {
		t.Errorf("allow decision says %q", st.Decision.Summary())
	}
}

func TestVerifierUnavailable(t *testing.T) {
	f := newFixture(t, requireSig(""))
	img := image(t)
	f.push(t, "test/app:v1", img)
	f.ver.err = errors.New("rekor unreachable")
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v1")
	e := wantErr(t, resp, body, 503, "UNAVAILABLE")
	if !strings.Contains(e.Message, "rekor unreachable") {
		t.Errorf("message %s", e.Message)
	}
	if _, err := f.meta.Status(context.Background(), digestArtifact("up/test/app", digestOf(t, img))); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("a verifier failure left a record: %v", err)
	}
	f.ver.err = nil
	f.ver.permit(digestOf(t, img))
	pullImage(t, f, "up/test/app:v1", img)
}

func TestBlockedTagAndDigest(t *testing.T) {
	f := newFixture(t)
	img := image(t)
	f.push(t, "test/app:v1", img)
	pullImage(t, f, "up/test/app:v1", img)
	ctx := context.Background()
	tag := verify.Artifact{Ecosystem: verify.OCI, Name: "up/test/app", Version: "v1"}
	if _, err := f.meta.Block(ctx, tag, "admin", "bad tag"); err != nil {
		t.Fatal(err)
	}
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/v1")
	wantErr(t, resp, body, 403, "DENIED")
	// The digest itself is not blocked.
	pullImage(t, f, "up/test/app@"+digestOf(t, img), img)
	if _, err := f.meta.Block(ctx, digestArtifact("up/test/app", digestOf(t, img)), "admin", "bad image"); err != nil {
		t.Fatal(err)
	}
	resp, body = f.do(t, "GET", "/v2/up/test/app/manifests/"+digestOf(t, img))
	if e := wantErr(t, resp, body, 403, "DENIED"); !strings.Contains(e.Message, "blocked by an admin") {
		t.Errorf("message %s", e.Message)
	}
	for l := range layersOf(t, img) {
		resp, body := f.do(t, "GET", "/v2/up/test/app/blobs/"+l)
		wantErr(t, resp, body, 404, "BLOB_UNKNOWN")
	}
}

func TestBlockedIndexHidesChildren(t *testing.T) {
	f := newFixture(t, requireSig(""))
	idx, imgs := multiArch(t)
	f.push(t, "test/multi:v1", idx)
	f.ver.permit(digestOf(t, idx))
	if _, err := remote.Index(f.ref(t, "up/test/multi:v1")); err != nil {
		t.Fatal(err)
	}
	child := digestOf(t, imgs["arm64"])
	if resp, body := f.do(t, "GET", "/v2/up/test/multi/manifests/"+child); resp.StatusCode != 200 {
		t.Fatalf("child through its allowed index: %d %s", resp.StatusCode, body)
	}
	other := digestOf(t, imgs["amd64"])
	if _, err := f.meta.Block(context.Background(), digestArtifact("up/test/multi", digestOf(t, idx)), "admin", "no"); err != nil {
		t.Fatal(err)
	}
	// A child not admitted before now needs its own signature.
	resp, body := f.do(t, "GET", "/v2/up/test/multi/manifests/"+other)
	wantErr(t, resp, body, 403, "DENIED")
	if n := f.ver.ncalls(); n != 2 {
		t.Errorf("verifier asked %d times, want 2 (index, then the orphaned child)", n)
	}
}

func TestSignatureTagIsMaterial(t *testing.T) {
	f := newFixture(t, requireSig(""))
	img := image(t)
	f.push(t, "test/app:v1", img)
	d := digestOf(t, img)
	f.ver.permit(d)
	sigTag := strings.Replace(d, ":", "-", 1) + ".sig"
	sig := artifact(t, string(types.OCIConfigJSON), "application/vnd.dev.cosign.simplesigning.v1+json", nil)
	f.push(t, "test/app:"+sigTag, sig)

	pullImage(t, f, "up/test/app:v1", img)
	got, err := remote.Image(f.ref(t, "up/test/app:"+sigTag))
	if err != nil {
		t.Fatalf("signature tag: %v", err)
	}
	if digestOf(t, got) != digestOf(t, sig) {
		t.Fatal("signature manifest differs")
	}
	for l, b := range layersOf(t, got) {
		if string(b) != string(layersOf(t, sig)[l]) {
			t.Fatalf("signature payload %s differs", l)
		}
	}
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times: material needs no signature of its own", n)
	}

	// A container image parked under a signature tag is no material.
	img2 := image(t)
	f.push(t, "test/app:v2", img2)
	f.ver.permit(digestOf(t, img2))
	pullImage(t, f, "up/test/app:v2", img2)
	fake := strings.Replace(digestOf(t, img2), ":", "-", 1) + ".att"
	f.push(t, "test/app:"+fake, image(t))
	resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/"+fake)
	wantErr(t, resp, body, 403, "DENIED")

	// A signature tag of a subject upstream does not have.
	unknown := "sha256-" + strings.Repeat("cd", 32) + ".sig"
	resp, body = f.do(t, "GET", "/v2/up/test/app/manifests/"+unknown)
	wantErr(t, resp, body, 404, "MANIFEST_UNKNOWN")
}

func TestReferrers(t *testing.T) {
	f := newFixture(t, requireSig(""))
	img := image(t)
	f.push(t, "test/app:v1", img)
	d := digestOf(t, img)
	f.ver.permit(d)
	subj := descriptorOf(t, img)
	sbom := artifact(t, "application/vnd.example.sbom", "text/spdx+json", subj)
	bundle := artifact(t, "application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle.v0.3+json", subj)
	f.push(t, "test/app@"+digestOf(t, sbom), sbom)
	f.push(t, "test/app@"+digestOf(t, bundle), bundle)

	t.Run("unknown subject", func(t *testing.T) {
		for _, path := range []string{
			"/v2/up/test/app/referrers/sha256:" + strings.Repeat("ef", 32),
			"/v2/up/test/nothing/referrers/sha256:" + strings.Repeat("ef", 32),
		} {
			resp, body := f.do(t, "GET", path)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
			}
			idx := decodeIndex(t, body)
			if idx.SchemaVersion != 2 || idx.MediaType != types.OCIImageIndex || idx.Manifests == nil || len(idx.Manifests) != 0 {
				t.Fatalf("not an empty index: %s", body)
			}
		}
	})
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"", []string{digestOf(t, sbom), digestOf(t, bundle)}},
		{"application/vnd.example.sbom", []string{digestOf(t, sbom)}},
		{"application/vnd.example.none", nil},
	} {
		t.Run("filter="+tc.filter, func(t *testing.T) {
			path := "/v2/up/test/app/referrers/" + d
			if tc.filter != "" {
				path += "?artifactType=" + tc.filter
			}
			resp, body := f.do(t, "GET", path)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if got, want := resp.Header.Get("OCI-Filters-Applied"), map[bool]string{true: "artifactType"}[tc.filter != ""]; got != want {
				t.Errorf("OCI-Filters-Applied %q, want %q", got, want)
			}
			idx := decodeIndex(t, body)
			var got []string
			for _, m := range idx.Manifests {
				got = append(got, m.Digest.String())
				if tc.filter != "" && m.ArtifactType != tc.filter {
					t.Errorf("listed %s of type %s", m.Digest, m.ArtifactType)
				}
			}
			if strings.Join(sorted(got), ",") != strings.Join(sorted(tc.want), ",") {
				t.Errorf("listed %v, want %v", got, tc.want)
			}
		})
	}
	// go-containerregistry's client reads the same list.
	ref, err := name.NewDigest(f.host + "/up/test/app@" + d)
	if err != nil {
		t.Fatal(err)
	}
	for filter, want := range map[string]int{"": 2, "application/vnd.example.sbom": 1} {
		var opts []remote.Option
		if filter != "" {
			opts = append(opts, remote.WithFilter("artifactType", filter))
		}
		ridx, err := remote.Referrers(ref, opts...)
		if err != nil {
			t.Fatal(err)
		}
		im, err := ridx.IndexManifest()
		if err != nil || len(im.Manifests) != want {
			t.Fatalf("client referrers (filter %q): %v, %d manifests, want %d", filter, err, len(im.Manifests), want)
		}
	}
	// What was listed is material: servable without a signature.
	got, err := remote.Image(f.ref(t, "up/test/app@"+digestOf(t, sbom)))
	if err != nil {
		t.Fatalf("referrer by digest: %v", err)
	}
	if len(layersOf(t, got)) != 1 {
		t.Fatal("referrer layer")
	}
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times", n)
	}
}

func decodeIndex(t *testing.T, body []byte) v1.IndexManifest {
	t.Helper()
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return idx
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestReferrersTagFallback: an upstream without the referrers API keeps
// referrers in the sha256-<hex> tag index, which Airlock reads instead.
func TestReferrersTagFallback(t *testing.T) {
	f := newFixture(t, requireSig(""))
	f.faults.set(func(f *faults) { f.next = registry.New(registry.Logger(log.New(io.Discard, "", 0))) })
	img := image(t)
	f.push(t, "test/app:v1", img)
	d := digestOf(t, img)
	f.ver.permit(d)
	att := artifact(t, "application/vnd.dsse.envelope.v1+json", "application/vnd.dsse.envelope.v1+json", descriptorOf(t, img))
	f.push(t, "test/app@"+digestOf(t, att), att)
	if f.faults.count("PUT", "/manifests/sha256-"+strings.TrimPrefix(d, "sha256:")) != 1 {
		t.Fatal("the client did not write the fallback tag; the test proves nothing")
	}
	resp, body := f.do(t, "GET", "/v2/up/test/app/referrers/"+d)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	idx := decodeIndex(t, body)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest.String() != digestOf(t, att) {
		t.Fatalf("listed %+v", idx.Manifests)
	}
	if _, err := remote.Image(f.ref(t, "up/test/app@"+digestOf(t, att))); err != nil {
		t.Fatalf("listed attestation: %v", err)
	}
	// The fallback tag itself is material too (cosign reads it directly).
	if resp, body := f.do(t, "GET", "/v2/up/test/app/manifests/sha256-"+strings.TrimPrefix(d, "sha256:")); resp.StatusCode != 200 {
		t.Fatalf("fallback tag: %d %s", resp.StatusCode, body)
	}
	if n := f.ver.ncalls(); n != 1 {
		t.Errorf("verifier asked %d times", n)
	}
}
