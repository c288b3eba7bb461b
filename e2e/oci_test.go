package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// customPredicate is an attestation type that is not cosign's signature
// predicate (https://sigstore.dev/cosign/sign/v1).
const customPredicate = "https://example.com/attestation/not-a-signature/v1"

// signaturePolicy is an oci.policies list requiring a signature by key in
// up/signed/** and nothing in up/open/**.
func signaturePolicy(pub string) string {
	return fmt.Sprintf(`    - {match: "up/signed/**", require: signature, keys: [%q], ignore_tlog: true}
    - {match: "up/open/**", require: none}
`, pub)
}

// TestOCIClientsThroughAirlock pulls with skopeo, crane and cosign through
// one Airlock from one upstream seeded with every case: images signed by
// the trusted key (legacy .sig and bundle), unsigned, signed by another
// key, carrying only an attestation of another type (.att and bundle), a
// signed two-platform index, and an open namespace.
func TestOCIClientsThroughAirlock(t *testing.T) {
	up := newOCIUpstream(t)
	trusted, other := newCosign(t), newCosign(t)
	imgs := map[string]v1.Image{}
	for _, repo := range []string{"signed/app", "signed/unsigned", "signed/untrusted", "signed/attested", "signed/attested-bundle", "signed/bundle", "open/app"} {
		imgs[repo] = randomImage(t, 4096, "amd64")
		up.push(t, repo+":v1", imgs[repo])
	}
	idx, children := platformIndex(t)
	up.push(t, "signed/multi:v1", idx)
	at := func(repo string) string { return up.Host + "/" + repo + "@" + digestOf(t, imgs[repo]) }
	trusted.sign(t, at("signed/app"), false)
	trusted.sign(t, at("signed/bundle"), true)
	trusted.sign(t, up.Host+"/signed/multi@"+digestOf(t, idx), false)
	other.sign(t, at("signed/untrusted"), false)
	other.sign(t, at("signed/untrusted"), true)
	trusted.attest(t, at("signed/attested"), customPredicate, false)
	trusted.attest(t, at("signed/attested-bundle"), customPredicate, true)

	inst := ociAirlock(t, up, signaturePolicy(trusted.Pub))
	via := func(repo string) string { return inst.host() + "/up/" + repo + ":v1" }
	artifact := func(repo string) string { return "oci:up/" + repo + "@" + digestOf(t, imgs[repo]) }

	t.Run("signed image pulls bit-identical", func(t *testing.T) {
		img, want := imgs["signed/app"], digestOf(t, imgs["signed/app"])
		dir, out, err := skopeoCopy(t, via("signed/app"))
		if err != nil {
			t.Fatalf("skopeo copy of a signed image through Airlock: %v\n%s", err, out)
		}
		sameLayers(t, "skopeo", up, "signed/app", img, dir)

		dir, out, err = cranePull(t, via("signed/app"))
		if err != nil {
			t.Fatalf("crane pull of a signed image through Airlock: %v\n%s", err, out)
		}
		sameLayers(t, "crane", up, "signed/app", img, dir)
		if got := layoutManifests(t, dir); len(got) != 1 || got[0] != want {
			t.Errorf("crane pulled manifests %v, want %s", got, want)
		}
		if got := layoutBlob(t, dir, want); !bytes.Equal(got, rawManifest(t, img)) {
			t.Errorf("manifest bytes differ from upstream's:\n%s\nwant\n%s", got, rawManifest(t, img))
		}
		if got := layoutBlob(t, dir, configDigest(t, img)); !bytes.Equal(got, up.blob(t, "signed/app", configDigest(t, img))) {
			t.Errorf("config blob differs from upstream's")
		}
		if d, err := craneDigest(t, via("signed/app")); err != nil || d != want {
			t.Errorf("crane digest = %q (%v), want %s", d, err, want)
		}
	})

	t.Run("unsigned image is denied", func(t *testing.T) {
		_, out, err := skopeoCopy(t, via("signed/unsigned"))
		id := wantDenied(t, "skopeo copy", out, err, artifact("signed/unsigned"))
		_, out, err = cranePull(t, via("signed/unsigned"))
		if id2 := wantDenied(t, "crane pull", out, err, artifact("signed/unsigned")); id2 != id {
			t.Errorf("crane was told quarantine id %q, skopeo %q", id2, id)
		}
		q := recordFor(t, inst, "up/signed/unsigned", digestOf(t, imgs["signed/unsigned"]))
		if q.ID != id || q.State != "held" || !hasFinding(q, "signature") {
			t.Errorf("quarantine record %+v, want %s held with a signature finding", q, id)
		}
		// Its layers cannot be fetched around the refusal by digest.
		l := layerDigests(t, imgs["signed/unsigned"])[0]
		if resp, body := inst.do(t, http.MethodGet, "/v2/up/signed/unsigned/blobs/"+l); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "BLOB_UNKNOWN") {
			t.Errorf("layer of the held image by digest: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("untrusted key is denied", func(t *testing.T) {
		_, out, err := cranePull(t, via("signed/untrusted"))
		id := wantDenied(t, "crane pull", out, err, artifact("signed/untrusted"))
		_, out, err = skopeoCopy(t, via("signed/untrusted"))
		wantDenied(t, "skopeo copy", out, err, artifact("signed/untrusted"))
		q := recordFor(t, inst, "up/signed/untrusted", digestOf(t, imgs["signed/untrusted"]))
		if q.ID != id || q.State != "held" || !hasFinding(q, "signature") {
			t.Errorf("quarantine record %+v, want %s held with a signature finding", q, id)
		}
	})

	t.Run("attestation of another type is not a signature", func(t *testing.T) {
		// The legacy .att tag must not be read as a .sig; a bundle must
		// carry cosign's signature predicate, not just any signed one.
		for _, repo := range []string{"signed/attested", "signed/attested-bundle"} {
			_, out, err := cranePull(t, via(repo))
			id := wantDenied(t, "crane pull of "+repo, out, err, artifact(repo))
			q := recordFor(t, inst, "up/"+repo, digestOf(t, imgs[repo]))
			if q.ID != id || q.State != "held" {
				t.Errorf("%s: quarantine record %+v, want %s held", repo, q, id)
			}
		}
		// The bundle verifies under the trusted key; the evidence says why
		// it still does not count: its predicate type.
		q := recordFor(t, inst, "up/signed/attested-bundle", digestOf(t, imgs["signed/attested-bundle"]))
		if !strings.Contains(fmt.Sprint(q.Findings), customPredicate) {
			t.Errorf("the evidence does not name the attestation's predicate type %s: %+v", customPredicate, q.Findings)
		}
	})

	t.Run("bundle signature pulls", func(t *testing.T) {
		dir, out, err := cranePull(t, via("signed/bundle"))
		if err != nil {
			t.Fatalf("crane pull of a bundle-signed image: %v\n%s", err, out)
		}
		sameLayers(t, "crane", up, "signed/bundle", imgs["signed/bundle"], dir)
		dir, out, err = skopeoCopy(t, via("signed/bundle"))
		if err != nil {
			t.Fatalf("skopeo copy of a bundle-signed image: %v\n%s", err, out)
		}
		sameLayers(t, "skopeo", up, "signed/bundle", imgs["signed/bundle"], dir)
	})

	t.Run("HEAD and Range", func(t *testing.T) {
		img := imgs["signed/app"]
		d, raw := digestOf(t, img), rawManifest(t, img)
		for _, ref := range []string{"v1", d} {
			resp, body := inst.do(t, http.MethodHead, "/v2/up/signed/app/manifests/"+ref, "Accept", manifestAccept)
			if resp.StatusCode != http.StatusOK || len(body) != 0 {
				t.Fatalf("HEAD manifest %s: %d %q", ref, resp.StatusCode, body)
			}
			h := resp.Header
			if h.Get("Docker-Content-Digest") != d || h.Get("Content-Length") != strconv.Itoa(len(raw)) ||
				h.Get("Content-Type") != string(types.DockerManifestSchema2) || h.Get("ETag") == "" {
				t.Errorf("HEAD manifest %s: headers %v, want digest %s, length %d, type %s", ref, h, d, len(raw), types.DockerManifestSchema2)
			}
		}

		l := layerDigests(t, img)[0]
		want := up.blob(t, "signed/app", l)
		path := "/v2/up/signed/app/blobs/" + l
		if resp, body := inst.do(t, http.MethodGet, path); resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("GET blob: %d, %d bytes (want %d, identical)", resp.StatusCode, len(body), len(want))
		}
		resp, body := inst.do(t, http.MethodHead, path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.Itoa(len(want)) || resp.Header.Get("Docker-Content-Digest") != l {
			t.Errorf("HEAD blob: %d %v", resp.StatusCode, resp.Header)
		}
		resp, body = inst.do(t, http.MethodGet, path, "Range", "bytes=100-1099")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[100:1100]) {
			t.Errorf("Range bytes=100-1099 of a cached blob: %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal(body, want[100:1100]))
		}
		if cr, wantCR := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes 100-1099/%d", len(want)); cr != wantCR {
			t.Errorf("Content-Range %q, want %q", cr, wantCR)
		}
		resp, body = inst.do(t, http.MethodGet, path, "Range", fmt.Sprintf("bytes=%d-", len(want)-10))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[len(want)-10:]) {
			t.Errorf("Range of the last 10 bytes: %d, %d bytes", resp.StatusCode, len(body))
		}

		// Two platforms of a signed index: each resolves to its own child,
		// allowed through the signed parent.
		for _, arch := range []string{"amd64", "arm64"} {
			child, platform := digestOf(t, children[arch]), "linux/"+arch
			if d, err := craneDigest(t, via("signed/multi"), "--platform", platform); err != nil || d != child {
				t.Errorf("crane digest --platform %s = %q (%v), want %s", platform, d, err, child)
			}
			dir, out, err := cranePull(t, via("signed/multi"), "--platform", platform)
			if err != nil {
				t.Fatalf("crane pull --platform %s: %v\n%s", platform, err, out)
			}
			if got := layoutManifests(t, dir); len(got) != 1 || got[0] != child {
				t.Errorf("crane pull --platform %s got %v, want %s", platform, got, child)
			}
			sameLayers(t, "crane "+platform, up, "signed/multi", children[arch], dir)
		}
		dir, out, err := skopeoCopy(t, via("signed/multi"), "--override-os", "linux", "--override-arch", "arm64")
		if err != nil {
			t.Fatalf("skopeo copy --override-arch arm64: %v\n%s", err, out)
		}
		sameLayers(t, "skopeo arm64", up, "signed/multi", children["arm64"], dir)
	})

	t.Run("cosign verify through Airlock", func(t *testing.T) {
		for repo, d := range map[string]string{
			"signed/app":    digestOf(t, imgs["signed/app"]),
			"signed/bundle": digestOf(t, imgs["signed/bundle"]),
			"signed/multi":  digestOf(t, idx),
		} {
			out, err := trusted.verify(via(repo))
			if err != nil {
				t.Errorf("cosign verify --key of %s through Airlock: %v\n%s", repo, err, out)
			} else if !strings.Contains(out, d) {
				t.Errorf("cosign verify of %s does not name its digest %s:\n%s", repo, d, out)
			}
		}
		// What cosign read came from Airlock: the legacy signature tag, and
		// the bundle in the referrers list, filtered by artifact type.
		d := digestOf(t, imgs["signed/app"])
		if resp, body := inst.do(t, http.MethodGet, "/v2/up/signed/app/manifests/"+strings.Replace(d, ":", "-", 1)+".sig", "Accept", manifestAccept); resp.StatusCode != http.StatusOK {
			t.Errorf("signature tag through Airlock: %d %s", resp.StatusCode, body)
		}
		d = digestOf(t, imgs["signed/bundle"])
		upRefs := up.referrers(t, "signed/bundle", d)
		if len(upRefs.Manifests) != 1 {
			t.Fatalf("upstream referrers of the bundle-signed image: %+v", upRefs)
		}
		resp, body := inst.do(t, http.MethodGet, "/v2/up/signed/bundle/referrers/"+d+"?artifactType="+url.QueryEscape(upRefs.Manifests[0].ArtifactType))
		var refs v1.IndexManifest
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &refs) != nil || len(refs.Manifests) != 1 ||
			refs.Manifests[0].Digest != upRefs.Manifests[0].Digest ||
			refs.Manifests[0].Annotations["dev.sigstore.bundle.predicateType"] != "https://sigstore.dev/cosign/sign/v1" ||
			resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
			t.Errorf("referrers of the bundle-signed image through Airlock: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		for _, repo := range []string{"signed/unsigned", "signed/untrusted"} {
			if out, err := trusted.verify(via(repo)); err == nil {
				t.Errorf("cosign verify of %s through Airlock succeeded:\n%s", repo, out)
			}
		}
	})

	t.Run("open namespace needs no signature", func(t *testing.T) {
		dir, out, err := cranePull(t, via("open/app"))
		if err != nil {
			t.Fatalf("crane pull under require: none: %v\n%s", err, out)
		}
		sameLayers(t, "crane", up, "open/app", imgs["open/app"], dir)
		if _, out, err := skopeoCopy(t, via("open/app")); err != nil {
			t.Fatalf("skopeo copy under require: none: %v\n%s", err, out)
		}
		for _, q := range quarantines(t, inst) {
			if strings.HasPrefix(q.Artifact.Name, "up/open/") {
				t.Errorf("open namespace has a quarantine record: %+v", q)
			}
		}
	})
}

// TestOCITagDriftHoldsUnsignedDigest re-points a tag upstream from a signed
// digest to an unsigned one: Airlock keeps serving the signed digest,
// records the move, and follows once an admin releases the new digest.
func TestOCITagDriftHoldsUnsignedDigest(t *testing.T) {
	up := newOCIUpstream(t)
	key := newCosign(t)
	a, b := randomImage(t, 2048, "amd64"), randomImage(t, 2048, "amd64")
	da, db := digestOf(t, a), digestOf(t, b)
	up.push(t, "signed/drift:v1", a)
	key.sign(t, up.Host+"/signed/drift@"+da, false)
	inst := ociAirlock(t, up, signaturePolicy(key.Pub))
	ref := inst.host() + "/up/signed/drift:v1"

	if d, err := craneDigest(t, ref); err != nil || d != da {
		t.Fatalf("before the move: crane digest = %q (%v), want %s", d, err, da)
	}
	if _, out, err := cranePull(t, ref); err != nil {
		t.Fatalf("before the move: crane pull: %v\n%s", err, out)
	}

	up.push(t, "signed/drift:v1", b) // re-pointed upstream, unsigned
	if d, err := craneDigest(t, up.Host+"/signed/drift:v1"); err != nil || d != db {
		t.Fatalf("upstream tag = %q (%v), want %s", d, err, db)
	}
	if d, err := craneDigest(t, ref); err != nil || d != da {
		t.Errorf("after the move: crane digest through Airlock = %q (%v), want the signed %s", d, err, da)
	}
	dir, out, err := cranePull(t, ref)
	if err != nil {
		t.Fatalf("after the move: crane pull: %v\n%s", err, out)
	}
	if got := layoutManifests(t, dir); len(got) != 1 || got[0] != da {
		t.Errorf("after the move: pulled %v, want %s", got, da)
	}
	sameLayers(t, "crane", up, "signed/drift", a, dir)

	q := recordFor(t, inst, "up/signed/drift", db)
	if q.State != "held" || !hasFinding(q, "tag-moved") {
		t.Fatalf("record of the new digest: %+v, want held with a tag-moved finding", q)
	}
	for _, f := range q.Findings {
		if f.Check == "tag-moved" && (f.Evidence["old"] != da || f.Evidence["new"] != db || f.Evidence["tag"] != "v1") {
			t.Errorf("tag-moved evidence %v, want tag v1, old %s, new %s", f.Evidence, da, db)
		}
	}
	var st struct {
		Quarantine *struct{ ID, State string }
	}
	if code := inst.adminGet(t, "/admin/api/v1/artifacts/oci:up/signed/drift@"+db, &st); code != http.StatusOK || st.Quarantine == nil || st.Quarantine.ID != q.ID || st.Quarantine.State != "held" {
		t.Errorf("artifact status of the new digest: %d %+v, want %s held", code, st.Quarantine, q.ID)
	}
	if resp, body := inst.do(t, http.MethodGet, "/v2/up/signed/drift/manifests/"+db, "Accept", manifestAccept); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(string(body), "DENIED") || !strings.Contains(string(body), q.ID) {
		t.Errorf("new digest by digest before release: %d %s", resp.StatusCode, body)
	}

	if out, err := inst.cli(t, "quarantine", "release", q.ID, "--reason", "reviewed: b is the new v1"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	if d, err := craneDigest(t, ref); err != nil || d != db {
		t.Errorf("after release: crane digest = %q (%v), want %s", d, err, db)
	}
	dir, out, err = cranePull(t, ref)
	if err != nil {
		t.Fatalf("after release: crane pull: %v\n%s", err, out)
	}
	if got := layoutManifests(t, dir); len(got) != 1 || got[0] != db {
		t.Errorf("after release: pulled %v, want %s", got, db)
	}
	sameLayers(t, "crane", up, "signed/drift", b, dir)
}

// TestOCICorruptLayerIsNotCached has upstream send a layer whose last byte
// is wrong: clients fail, Airlock never hands out the whole wrong blob as a
// clean answer and stores nothing, so the pull works once upstream is
// fixed, with a fresh upstream fetch.
func TestOCICorruptLayerIsNotCached(t *testing.T) {
	up := newOCIUpstream(t)
	// Layers larger than one 64 KiB chunk: Airlock has sent its headers by
	// the time the digest turns out wrong.
	img := randomImage(t, 300<<10, "amd64")
	up.push(t, "open/corrupt:v1", img)
	bad := layerDigests(t, img)[0]
	up.corruptBlob(t, "open/corrupt", bad)
	inst := ociAirlock(t, up, `    - {match: "up/**", require: none}
`)
	ref := inst.host() + "/up/open/corrupt:v1"

	if _, out, err := cranePull(t, ref); err == nil {
		t.Errorf("crane pull of an image with a corrupt layer succeeded:\n%s", out)
	}
	if _, out, err := skopeoCopy(t, ref); err == nil {
		t.Errorf("skopeo copy of an image with a corrupt layer succeeded:\n%s", out)
	}
	// The raw answer: an error status, or a body cut short.
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, inst.URL+"/v2/up/open/corrupt/blobs/"+bad, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && err == nil {
			t.Errorf("Airlock answered 200 with a complete body of %d bytes for a blob whose bytes are wrong", len(body))
		}
	}()

	hex := strings.TrimPrefix(bad, "sha256:")
	filepath.WalkDir(inst.Data, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.Contains(e.Name(), hex) {
			t.Errorf("the corrupt blob was stored: %s", p)
		}
		return nil
	})

	fetches := up.requests(http.MethodGet, "/blobs/"+bad)
	if fetches == 0 {
		t.Fatalf("upstream never saw a request for %s", bad)
	}
	up.heal(bad)
	dir, out, err := cranePull(t, ref)
	if err != nil {
		t.Fatalf("crane pull once upstream is fixed: %v\n%s", err, out)
	}
	sameLayers(t, "crane", up, "open/corrupt", img, dir)
	if n := up.requests(http.MethodGet, "/blobs/"+bad); n <= fetches {
		t.Errorf("upstream saw no new request for the layer after the fix (%d, before %d): a corrupt copy was cached", n, fetches)
	}
	// Now cached: a second pull makes no upstream blob request.
	fetches = up.requests(http.MethodGet, "/blobs/"+bad)
	if _, out, err := skopeoCopy(t, ref); err != nil {
		t.Fatalf("skopeo copy after the fix: %v\n%s", err, out)
	}
	if n := up.requests(http.MethodGet, "/blobs/"+bad); n != fetches {
		t.Errorf("a cached layer was fetched upstream again (%d requests, before %d)", n, fetches)
	}
}
