package oci

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

var hexA = strings.Repeat("a", 64)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path            string
		kind, name, ref string
		code            string
	}{
		{"/v2/", kindBase, "", "", ""},
		{"/v2", kindBase, "", "", ""},
		{"/v2/_catalog", kindCatalog, "", "", ""},
		{"/v2/up/library/alpine/manifests/3.20", kindManifest, "up/library/alpine", "3.20", ""},
		{"/v2/alpine/manifests/latest", kindManifest, "alpine", "latest", ""},
		{"/v2/a/manifests/sha256:" + hexA, kindManifest, "a", "sha256:" + hexA, ""},
		{"/v2/a/b/blobs/sha256:" + hexA, kindBlob, "a/b", "sha256:" + hexA, ""},
		{"/v2/a/b/referrers/sha256:" + hexA, kindReferrers, "a/b", "sha256:" + hexA, ""},
		{"/v2/a/b/tags/list", kindTags, "a/b", "", ""},
		{"/v2/a/b/blobs/uploads/", kindUpload, "a/b", "", ""},
		{"/v2/a/b/blobs/uploads/123", kindUpload, "a/b", "123", ""},
		// A repository may contain the API's words.
		{"/v2/manifests/manifests/manifests/x", kindManifest, "manifests/manifests", "x", ""},
		{"/v2/x/blobs/y/tags/list", kindTags, "x/blobs/y", "", ""},
		{"/v2/a__b/c-d/e--f/g.h/manifests/v", kindManifest, "a__b/c-d/e--f/g.h", "v", ""},
		{"/v2/a___b/manifests/v", "", "", "", codeNameInvalid},
		{"/v2/A/manifests/v", "", "", "", codeNameInvalid},
		{"/v2/a/manifests/.v", "", "", "", codeManifestUnknown},
		{"/v2/a/manifests/" + strings.Repeat("v", 128), kindManifest, "a", strings.Repeat("v", 128), ""},
		{"/v2/a/manifests/" + strings.Repeat("v", 129), "", "", "", codeManifestUnknown},
		{"/v2/" + strings.Repeat("a", 256) + "/manifests/v", "", "", "", codeNameInvalid},
		{"/v2/a/manifests/sha256:" + strings.ToUpper(hexA), "", "", "", codeDigestInvalid},
		{"/v2/a/manifests/md5:abc", "", "", "", codeDigestInvalid},
		{"/v2/a/blobs/sha256:" + hexA[:63], "", "", "", codeDigestInvalid},
		{"/v2/a/tags/other", "", "", "", codeUnsupported},
		{"/v2/a/manifests", "", "", "", codeUnsupported},
		{"/v2x/a/manifests/v", "", "", "", codeUnsupported},
		{"/v2/manifests/v", "", "", "", codeUnsupported},
		{"/v3/a/manifests/v", "", "", "", codeUnsupported},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r, err := parsePath(tc.path)
			if tc.code != "" {
				if err == nil || err.code != tc.code {
					t.Fatalf("got %+v %v, want %s", r, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.kind != tc.kind || r.name != tc.name || r.ref != tc.ref {
				t.Fatalf("got %+v, want %s %s %s", r, tc.kind, tc.name, tc.ref)
			}
		})
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2/up/library/alpine/manifests/3.20", "/v2/a/blobs/sha256:" + hexA,
		"/v2/a/b/tags/list", "/v2/a/referrers/sha256:" + hexA, "/v2/a/blobs/uploads/x", "/v2/_catalog",
		"/v2//manifests/x", "/v2/a/manifests/sha256-" + hexA + ".sig",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := parsePath(p)
		if err != nil {
			if err.status < 400 || err.code == "" {
				t.Fatalf("error %+v without status or code", err)
			}
			return
		}
		switch r.kind {
		case kindBase, kindCatalog, kindUpload:
			return
		}
		// What parses is valid by the spec's grammar, and round-trips.
		if !nameRE.MatchString(r.name) || len(r.name) > maxName {
			t.Fatalf("accepted name %q", r.name)
		}
		switch r.kind {
		case kindManifest:
			if !validDigest(r.ref) && !tagRE.MatchString(r.ref) {
				t.Fatalf("accepted reference %q", r.ref)
			}
		case kindBlob, kindReferrers:
			if !validDigest(r.ref) {
				t.Fatalf("accepted digest %q", r.ref)
			}
		}
		var back string
		switch r.kind {
		case kindManifest:
			back = "/v2/" + r.name + "/manifests/" + r.ref
		case kindBlob:
			back = "/v2/" + r.name + "/blobs/" + r.ref
		case kindReferrers:
			back = "/v2/" + r.name + "/referrers/" + r.ref
		case kindTags:
			back = "/v2/" + r.name + "/tags/list"
		}
		if back != p {
			t.Fatalf("%q parsed to %+v, which is %q", p, r, back)
		}
		if strings.ContainsAny(r.name, "\x00\\?#%") || strings.Contains(r.name, "..") {
			t.Fatalf("dangerous name %q", r.name)
		}
	})
}

const (
	imageManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + "1111111111111111111111111111111111111111111111111111111111111111" + `","size":10},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + "2222222222222222222222222222222222222222222222222222222222222222" + `","size":20}]}`
	indexManifest = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
 "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:` + "3333333333333333333333333333333333333333333333333333333333333333" + `","size":30,"platform":{"os":"linux","architecture":"amd64"}}]}`
	sigManifest = `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + "1111111111111111111111111111111111111111111111111111111111111111" + `","size":10},
 "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:` + "4444444444444444444444444444444444444444444444444444444444444444" + `","size":5}],
 "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + "5555555555555555555555555555555555555555555555555555555555555555" + `","size":1}}`
)

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		name, body, ctype string
		mt                string
		blobs, children   int
		subject           bool
		runnable          bool
		err               string
	}{
		{name: "image", body: imageManifest, mt: mtOCIManifest, blobs: 2, runnable: true},
		{name: "image with content type", body: imageManifest, ctype: mtOCIManifest + "; charset=utf-8", mt: mtOCIManifest, blobs: 2, runnable: true},
		{name: "list", body: indexManifest, mt: mtDockerList, children: 1},
		{name: "signature, type from header", body: sigManifest, ctype: mtOCIManifest, mt: mtOCIManifest, blobs: 2, subject: true},
		{name: "no type at all", body: sigManifest, err: "no mediaType"},
		{name: "type disagrees with header", body: imageManifest, ctype: mtDockerSchema, err: "Content-Type"},
		{name: "schema 1", body: `{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}`, err: "not served"},
		{name: "image posing as index", body: strings.Replace(indexManifest, "manifest.list.v2", "manifest.v2", 1), err: "carries manifests"},
		{name: "index with layers", body: `{"schemaVersion":2,"mediaType":"` + mtOCIIndex + `","manifests":[],"layers":[]}`, err: "carries config or layers"},
		{name: "no config", body: `{"schemaVersion":2,"mediaType":"` + mtOCIManifest + `","layers":[]}`, err: "no config"},
		{name: "sha512 layer", body: strings.Replace(imageManifest, "sha256:2222", "sha512:2222", 1), err: "sha256 digests only"},
		{name: "negative size", body: strings.Replace(imageManifest, `"size":20`, `"size":-1`, 1), err: "negative size"},
		{name: "bad subject", body: strings.Replace(sigManifest, "sha256:5555", "sha256:zz55", 1), ctype: mtOCIManifest, err: "subject"},
		{name: "not JSON", body: "<html>", err: "not a JSON"},
		{name: "schemaVersion 3", body: strings.Replace(imageManifest, `"schemaVersion":2`, `"schemaVersion":3`, 1), err: "schemaVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := parseManifest([]byte(tc.body), tc.ctype)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.mediaType != tc.mt || len(info.blobs) != tc.blobs || len(info.children) != tc.children ||
				(info.subject != "") != tc.subject || info.runnable != tc.runnable {
				t.Fatalf("got %+v", info)
			}
		})
	}
}

func FuzzManifestRefs(f *testing.F) {
	for _, s := range []string{imageManifest, indexManifest, sigManifest, `{}`, `{"schemaVersion":2}`} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), mtOCIManifest)
	}
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		info, err := parseManifest(body, ctype)
		if err != nil {
			return
		}
		// Everything admitted names only digests the store accepts, and
		// the type decides which kind of references there are.
		for _, d := range append(append([]descriptor{}, info.blobs...), info.children...) {
			if !validDigest(d.Digest) || d.Size < 0 {
				t.Fatalf("reference %+v admitted", d)
			}
		}
		if info.subject != "" && !validDigest(info.subject) {
			t.Fatalf("subject %q admitted", info.subject)
		}
		if isIndexType(info.mediaType) {
			if len(info.blobs) != 0 || info.runnable {
				t.Fatalf("index with blobs: %+v", info)
			}
		} else if len(info.children) != 0 || len(info.blobs) == 0 {
			t.Fatalf("image with children or without config: %+v", info)
		}
		again, err := parseManifest(body, ctype)
		if err != nil || again.mediaType != info.mediaType || len(again.blobs) != len(info.blobs) {
			t.Fatalf("not deterministic: %v", err)
		}
	})
}

func TestAccepts(t *testing.T) {
	for _, tc := range []struct {
		hdr  []string
		mt   string
		want bool
	}{
		{nil, mtOCIIndex, true},
		{[]string{""}, mtOCIIndex, true},
		{[]string{"*/*"}, mtOCIIndex, true},
		{[]string{mtDockerSchema + ", " + mtOCIIndex}, mtOCIIndex, true},
		{[]string{mtDockerSchema, mtOCIIndex + ";q=0.9"}, mtOCIIndex, true},
		{[]string{mtDockerSchema}, mtOCIIndex, false},
		{[]string{mtOCIIndex + "x"}, mtOCIIndex, false},
	} {
		if got := accepts(tc.hdr, tc.mt); got != tc.want {
			t.Errorf("accepts(%q, %s) = %v", tc.hdr, tc.mt, got)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"30", 30 * time.Second},
		{"0", time.Second},
		{"", defaultBackoff},
		{"soon", defaultBackoff},
		{"99999", maxBackoff},
		{now.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.v, got, tc.want)
		}
	}
}
