package npmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmsig"
)

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url string, header map[string]string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func get(t *testing.T, url string) response { t.Helper(); return do(t, "GET", url, nil, nil) }

// packument is the part of a full packument the tests read.
type packument struct {
	ID       string              `json:"_id"`
	Rev      string              `json:"_rev"`
	Name     string              `json:"name"`
	DistTags map[string]string   `json:"dist-tags"`
	Versions map[string]manifest `json:"versions"`
	Time     map[string]any      `json:"time"`
	Readme   string              `json:"readme"`
}

type manifest struct {
	Name             string                       `json:"name"`
	Version          string                       `json:"version"`
	ID               string                       `json:"_id"`
	Dependencies     map[string]string            `json:"dependencies"`
	Scripts          map[string]string            `json:"scripts"`
	Deprecated       string                       `json:"deprecated"`
	HasInstallScript bool                         `json:"hasInstallScript"`
	NPMUser          struct{ Name, Email string } `json:"_npmUser"`
	Dist             struct {
		Integrity    string             `json:"integrity"`
		Shasum       string             `json:"shasum"`
		Tarball      string             `json:"tarball"`
		FileCount    int                `json:"fileCount"`
		UnpackedSize int                `json:"unpackedSize"`
		Signatures   []npmsig.Signature `json:"signatures"`
		Attestations *struct {
			URL        string `json:"url"`
			Provenance struct {
				PredicateType string `json:"predicateType"`
			} `json:"provenance"`
		} `json:"attestations"`
	} `json:"dist"`
}

func fetchPackument(t *testing.T, reg *Registry, path string) (packument, response) {
	t.Helper()
	resp := get(t, reg.URL+path)
	if resp.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.status, resp.body)
	}
	var p packument
	if err := json.Unmarshal(resp.body, &p); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, resp.body)
	}
	return p, resp
}

// escape spells a package name as npm does in packument URLs.
func escape(name string) string { return strings.Replace(name, "/", "%2f", 1) }

func published(t *testing.T, p packument, version string) time.Time {
	t.Helper()
	s, _ := p.Time[version].(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time[%s] = %q: %v", version, s, err)
	}
	return ts
}

// sample publishes an unscoped and a scoped package.
func sample(t *testing.T, reg *Registry) {
	t.Helper()
	for _, p := range []Package{
		{Name: "left", Versions: []Version{
			{Version: "1.0.0"},
			{Version: "1.2.0", Scripts: map[string]string{"postinstall": "node setup.js", "test": "true"}},
			{Version: "2.0.0-rc.1", Publisher: "bob"},
		}},
		{Name: "@acme/widget", Versions: []Version{
			{Version: "0.1.0", Dependencies: map[string]string{"left": "^1.0.0"}, Deprecated: "too old"},
			{Version: "0.2.0", Dependencies: map[string]string{"left": "^1.2.0"}, Files: map[string]string{"index.js": "x", "lib/a.js": "yy"}},
		}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSignaturesVerify(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	keys := get(t, reg.URL+"/-/npm/v1/keys")
	if keys.status != 200 || !bytes.Equal(keys.body, reg.KeysJSON()) {
		t.Fatalf("/-/npm/v1/keys: %d %s, want %s", keys.status, keys.body, reg.KeysJSON())
	}
	ks, err := npmsig.ParseKeys(keys.body)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ks.IDs(); len(ids) != 1 || ids[0] != reg.KeyID() {
		t.Fatalf("keyids %v, want [%s]", ids, reg.KeyID())
	}
	k, _ := ks.Lookup(reg.KeyID())
	if npmsig.Fingerprint(k.Public) != reg.KeyID() {
		t.Errorf("keyid %s is not the key's fingerprint", reg.KeyID())
	}
	for _, name := range []string{"left", "@acme/widget"} {
		p, _ := fetchPackument(t, reg, "/"+escape(name))
		if len(p.Versions) == 0 {
			t.Fatalf("%s: no versions", name)
		}
		for v, m := range p.Versions {
			r, err := ks.Verify(name, v, m.Dist.Integrity, m.Dist.Signatures, published(t, p, v), npmsig.Options{UpstreamSigns: true})
			if err != nil || !r.OK() {
				t.Errorf("%s@%s: %+v %v", name, v, r, err)
			}
		}
	}
}

func TestGivenKey(t *testing.T) {
	first := New(t, Options{})
	second := New(t, Options{Key: first.key})
	other := New(t, Options{})
	if first.KeyID() != second.KeyID() || !bytes.Equal(first.KeysJSON(), second.KeysJSON()) {
		t.Errorf("same key, different keyids %s, %s", first.KeyID(), second.KeyID())
	}
	if first.KeyID() == other.KeyID() {
		t.Errorf("two generated keys share keyid %s", first.KeyID())
	}
}

func TestTarball(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	for _, tt := range []struct {
		name, version string
		files         map[string]string // besides package/package.json
	}{
		{"left", "1.2.0", map[string]string{"package/index.js": `module.exports = "left@1.2.0";` + "\n"}},
		{"@acme/widget", "0.2.0", map[string]string{"package/index.js": "x", "package/lib/a.js": "yy"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := fetchPackument(t, reg, "/"+escape(tt.name))
			m := p.Versions[tt.version]
			_, bare := npmsig.SplitScoped(tt.name)
			if want := reg.URL + "/" + tt.name + "/-/" + bare + "-" + tt.version + ".tgz"; m.Dist.Tarball != want {
				t.Errorf("dist.tarball %s, want %s", m.Dist.Tarball, want)
			}
			resp := get(t, m.Dist.Tarball)
			if resp.status != 200 || resp.header.Get("Content-Type") != "application/octet-stream" {
				t.Fatalf("GET %s: %d %s", m.Dist.Tarball, resp.status, resp.header.Get("Content-Type"))
			}
			if !bytes.Equal(resp.body, reg.Tarball(tt.name, tt.version)) {
				t.Errorf("served tarball differs from Tarball()")
			}
			if _, err := npmsig.CheckTarball(bytes.NewReader(resp.body), m.Dist.Integrity, m.Dist.Shasum); err != nil {
				t.Errorf("integrity: %v", err)
			}
			if m.Dist.Integrity != reg.Integrity(tt.name, tt.version) {
				t.Errorf("Integrity() = %s, packument %s", reg.Integrity(tt.name, tt.version), m.Dist.Integrity)
			}
			files := untar(t, resp.body)
			var pj manifest
			if err := json.Unmarshal([]byte(files["package/package.json"]), &pj); err != nil {
				t.Fatalf("package.json: %v", err)
			}
			if pj.Name != m.Name || pj.Version != m.Version || !reflect.DeepEqual(pj.Dependencies, m.Dependencies) || !reflect.DeepEqual(pj.Scripts, m.Scripts) {
				t.Errorf("package.json %+v disagrees with the packument %+v", pj, m)
			}
			size := len(files["package/package.json"])
			delete(files, "package/package.json")
			for _, c := range files {
				size += len(c)
			}
			if !reflect.DeepEqual(files, tt.files) {
				t.Errorf("files %q, want %q", files, tt.files)
			}
			if m.Dist.FileCount != len(files)+1 || m.Dist.UnpackedSize != size {
				t.Errorf("fileCount %d, unpackedSize %d; want %d, %d", m.Dist.FileCount, m.Dist.UnpackedSize, len(files)+1, size)
			}
		})
	}
}

// untar returns a tarball's files, checking that entries look packed by npm.
func untar(t *testing.T, tgz []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && h.Name != "package/package.json" {
			t.Errorf("first entry %s, want package/package.json", h.Name)
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || !h.ModTime.Equal(packTime()) {
			t.Errorf("%s: type %c mode %o mtime %v", h.Name, h.Typeflag, h.Mode, h.ModTime)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = string(b)
	}
	return files
}

func TestPackumentShape(t *testing.T) {
	reg := New(t, Options{})
	day := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)
	if err := reg.Add(Package{Name: "left", Versions: []Version{
		{Version: "1.0.0", Published: day},
		{Version: "1.1.0", Published: day.Add(time.Hour), Scripts: map[string]string{"install": "node-gyp rebuild"}, Deprecated: "use 2", Publisher: "bob"},
	}}); err != nil {
		t.Fatal(err)
	}
	p, resp := fetchPackument(t, reg, "/left")
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %s", ct)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(resp.body, &raw)
	for _, k := range []string{"_id", "_rev", "name", "description", "dist-tags", "versions", "time", "maintainers", "readme", "license"} {
		if raw[k] == nil {
			t.Errorf("packument lacks %s", k)
		}
	}
	if p.ID != "left" || p.Name != "left" || !strings.HasPrefix(p.Rev, "1-") || p.Readme == "" {
		t.Errorf("_id %q name %q _rev %q readme %q", p.ID, p.Name, p.Rev, p.Readme)
	}
	if s := p.Time["1.1.0"]; s != "2024-01-02T04:04:05.678Z" {
		t.Errorf("time[1.1.0] = %v", s)
	}
	if s := p.Time["created"]; s != "2024-01-02T03:04:05.678Z" {
		t.Errorf("time.created = %v", s)
	}
	if m := published(t, p, "modified"); time.Since(m) > time.Minute || time.Since(m) < 0 {
		t.Errorf("time.modified = %v, want the time of Add", m)
	}
	m := p.Versions["1.1.0"]
	if m.ID != "left@1.1.0" || !m.HasInstallScript || m.Deprecated != "use 2" || m.NPMUser.Name != "bob" || m.NPMUser.Email != "bob@example.com" {
		t.Errorf("1.1.0: %+v", m)
	}
	if m := p.Versions["1.0.0"]; m.HasInstallScript || m.Deprecated != "" || m.NPMUser.Name != "alice" || m.Dist.Attestations != nil {
		t.Errorf("1.0.0: %+v", m)
	}
	var vraw map[string]json.RawMessage
	json.Unmarshal(raw["versions"], &vraw)
	var v map[string]json.RawMessage
	json.Unmarshal(vraw["1.0.0"], &v)
	for _, k := range []string{"name", "version", "description", "main", "_id", "_nodeVersion", "_npmVersion", "dist", "_npmUser", "maintainers", "gitHead"} {
		if v[k] == nil {
			t.Errorf("version object lacks %s", k)
		}
	}
	// Versions are listed in publish order, as the registry does, not
	// sorted.
	if i, j := bytes.Index(resp.body, []byte(`"1.0.0":{`)), bytes.Index(resp.body, []byte(`"1.1.0":{`)); i < 0 || j < i {
		t.Errorf("versions out of order")
	}
}

func TestCorgi(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	for _, tt := range []struct {
		accept string
		corgi  bool
	}{
		{"", false},
		{"application/json", false},
		{"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", true},
		{"application/vnd.npm.install-v1+json", true},
		{"application/vnd.npm.install-v1+json;q=0, application/json", false},
	} {
		resp := do(t, "GET", reg.URL+"/left", map[string]string{"Accept": tt.accept}, nil)
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(resp.body, &doc); err != nil {
			t.Fatal(err)
		}
		_, hasTime := doc["time"]
		_, hasModified := doc["modified"]
		ct := resp.header.Get("Content-Type")
		if tt.corgi != (ct == "application/vnd.npm.install-v1+json") || tt.corgi == hasTime || tt.corgi != hasModified {
			t.Errorf("Accept %q: Content-Type %s, time %v, modified %v", tt.accept, ct, hasTime, hasModified)
		}
		if !strings.Contains(resp.header.Get("Vary"), "Accept") {
			t.Errorf("Vary %q", resp.header.Get("Vary"))
		}
		if !tt.corgi {
			continue
		}
		var versions map[string]map[string]json.RawMessage
		json.Unmarshal(doc["versions"], &versions)
		v := versions["1.2.0"]
		for _, k := range []string{"name", "version", "dist", "hasInstallScript"} {
			if v[k] == nil {
				t.Errorf("corgi version lacks %s", k)
			}
		}
		for _, k := range []string{"scripts", "_npmUser", "maintainers", "description", "readme"} {
			if v[k] != nil || doc[k] != nil {
				t.Errorf("corgi has %s", k)
			}
		}
	}
}

func TestFaults(t *testing.T) {
	const name, ver = "@acme/widget", "0.2.0"
	ks := func(reg *Registry) npmsig.Keys {
		k, err := npmsig.ParseKeys(reg.KeysJSON())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for _, tt := range []struct {
		fault           string
		apply           func(*Registry)
		sameTarball     bool
		samePackument   bool
		signatureReason string // "" for verified
	}{
		{"none", func(*Registry) {}, true, true, ""},
		{"tamper", func(r *Registry) { r.TamperTarball(name, ver) }, false, true, ""},
		{"drop", func(r *Registry) { r.DropSignature(name, ver) }, true, false, npmsig.ReasonNoSignature},
		{"corrupt", func(r *Registry) { r.CorruptSignature(name, ver) }, true, false, npmsig.ReasonBadSignature},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			reg := New(t, Options{})
			sample(t, reg)
			_, before := fetchPackument(t, reg, "/"+escape(name))
			tt.apply(reg)
			p, after := fetchPackument(t, reg, "/"+escape(name))
			if same := bytes.Equal(before.body, after.body); same != tt.samePackument {
				t.Errorf("packument unchanged: %v, want %v", same, tt.samePackument)
			}
			if same := before.header.Get("ETag") == after.header.Get("ETag"); same != tt.samePackument {
				t.Errorf("ETag unchanged: %v, want %v", same, tt.samePackument)
			}
			m := p.Versions[ver]
			tgz := get(t, m.Dist.Tarball).body
			if same := bytes.Equal(tgz, reg.Tarball(name, ver)); same != tt.sameTarball {
				t.Errorf("tarball unchanged: %v, want %v", same, tt.sameTarball)
			}
			_, err := npmsig.CheckTarball(bytes.NewReader(tgz), m.Dist.Integrity, m.Dist.Shasum)
			if tt.sameTarball != (err == nil) || (err != nil && !errors.Is(err, npmsig.ErrIntegrityMismatch)) {
				t.Errorf("integrity check: %v", err)
			}
			if !tt.sameTarball {
				if files := untar(t, tgz); files["package/package.json"] == "" {
					t.Errorf("tampered tarball is not a package: %q", files)
				}
			}
			r, err := ks(reg).Verify(name, ver, m.Dist.Integrity, m.Dist.Signatures, published(t, p, ver), npmsig.Options{UpstreamSigns: true})
			switch {
			case tt.signatureReason == "" && (err != nil || !r.OK()):
				t.Errorf("signature: %+v %v", r, err)
			case tt.signatureReason != "" && (len(r.Findings) != 1 || r.Findings[0].Evidence["reason"] != tt.signatureReason):
				t.Errorf("signature: %+v, want reason %s", r, tt.signatureReason)
			}
			if tt.fault == "corrupt" && (len(m.Dist.Signatures) != 1 || m.Dist.Signatures[0].KeyID != reg.KeyID()) {
				t.Errorf("corrupt signature: %+v", m.Dist.Signatures)
			}
			// Faults touch only that version.
			other := p.Versions["0.1.0"]
			if r, err := ks(reg).Verify(name, "0.1.0", other.Dist.Integrity, other.Dist.Signatures, published(t, p, "0.1.0"), npmsig.Options{UpstreamSigns: true}); err != nil || !r.OK() {
				t.Errorf("0.1.0 hit by the fault: %+v %v", r, err)
			}
		})
	}
}

func TestSetDown(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	paths := []string{"/left", "/left/-/left-1.0.0.tgz", "/-/npm/v1/keys", "/-/package/left/dist-tags", "/nope"}
	reg.SetDown(true)
	for _, p := range paths {
		if resp := get(t, reg.URL+p); resp.status != http.StatusServiceUnavailable {
			t.Errorf("down: GET %s: %d", p, resp.status)
		}
	}
	if resp := do(t, "POST", reg.URL+"/-/npm/v1/security/advisories/bulk", nil, strings.NewReader("{}")); resp.status != http.StatusServiceUnavailable {
		t.Errorf("down: POST bulk: %d", resp.status)
	}
	reg.SetDown(false)
	for _, p := range paths[:4] {
		if resp := get(t, reg.URL+p); resp.status != 200 {
			t.Errorf("up: GET %s: %d", p, resp.status)
		}
	}
	if n := reg.Requests("/left"); n != 2 {
		t.Errorf("%d requests for /left, want 2 (down ones count)", n)
	}
	if resp := do(t, "HEAD", reg.URL+"/left/-/left-1.0.0.tgz", nil, nil); resp.status != 200 || len(resp.body) != 0 || resp.header.Get("Content-Length") != fmt.Sprint(len(reg.Tarball("left", "1.0.0"))) {
		t.Errorf("HEAD tarball: %d, Content-Length %s", resp.status, resp.header.Get("Content-Length"))
	}
	reg.Close()
	if resp, err := http.Get(reg.URL + "/left"); err == nil {
		resp.Body.Close()
		t.Errorf("GET after Close: %d", resp.StatusCode)
	}
}

func TestUnpublish(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	before, _ := fetchPackument(t, reg, "/left")
	if before.DistTags["latest"] != "1.2.0" {
		t.Fatalf("latest %s", before.DistTags["latest"])
	}
	reg.Unpublish("left", "1.2.0")
	p, _ := fetchPackument(t, reg, "/left")
	if _, ok := p.Versions["1.2.0"]; ok {
		t.Errorf("1.2.0 still in versions")
	}
	if _, ok := p.Time["1.2.0"]; !ok {
		t.Errorf("1.2.0 gone from time")
	}
	if p.DistTags["latest"] != "1.0.0" {
		t.Errorf("latest %s after unpublishing 1.2.0, want 1.0.0", p.DistTags["latest"])
	}
	if p.Time["modified"] == before.Time["modified"] || p.Rev == before.Rev {
		t.Errorf("modified %v, _rev %s unchanged", p.Time["modified"], p.Rev)
	}
	for _, path := range []string{"/left/-/left-1.2.0.tgz", "/left/1.2.0"} {
		if resp := get(t, reg.URL+path); resp.status != 404 || string(resp.body) != `{"error":"Not found"}` {
			t.Errorf("GET %s: %d %s", path, resp.status, resp.body)
		}
	}
	if err := reg.Add(Package{Name: "left", Versions: []Version{{Version: "1.2.0"}}}); err == nil {
		t.Errorf("republishing an unpublished version succeeded")
	}

	reg.Unpublish("left", "1.0.0")
	reg.Unpublish("left", "2.0.0-rc.1")
	p, _ = fetchPackument(t, reg, "/left")
	if len(p.Versions) != 0 || len(p.DistTags) != 0 || p.Time["unpublished"] == nil {
		t.Errorf("fully unpublished: versions %v dist-tags %v time %v", p.Versions, p.DistTags, p.Time)
	}
}

func TestConditional(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	for _, path := range []string{"/left", "/@acme%2fwidget", "/left/-/left-1.0.0.tgz", "/-/npm/v1/keys"} {
		first := get(t, reg.URL+path)
		etag, lm := first.header.Get("ETag"), first.header.Get("Last-Modified")
		if !strings.HasPrefix(etag, `"`) {
			t.Errorf("%s: ETag %q is not strong", path, etag)
		}
		for _, tt := range []struct {
			header map[string]string
			status int
		}{
			{map[string]string{"If-None-Match": etag}, 304},
			{map[string]string{"If-None-Match": `"other", ` + etag}, 304},
			{map[string]string{"If-None-Match": `"other"`}, 200},
			{map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": lm}, 200}, // If-None-Match wins
		} {
			resp := do(t, "GET", reg.URL+path, tt.header, nil)
			if resp.status != tt.status {
				t.Errorf("%s %v: %d, want %d", path, tt.header, resp.status, tt.status)
			}
			if resp.status == 304 && (len(resp.body) != 0 || resp.header.Get("ETag") != etag) {
				t.Errorf("%s: 304 with body %q, ETag %q", path, resp.body, resp.header.Get("ETag"))
			}
		}
		if lm == "" {
			continue
		}
		if resp := do(t, "GET", reg.URL+path, map[string]string{"If-Modified-Since": lm}, nil); resp.status != 304 {
			t.Errorf("%s If-Modified-Since %s: %d", path, lm, resp.status)
		}
	}

	etag := get(t, reg.URL+"/left").header.Get("ETag")
	corgi := do(t, "GET", reg.URL+"/left", map[string]string{"Accept": "application/vnd.npm.install-v1+json"}, nil).header.Get("ETag")
	if corgi == etag {
		t.Errorf("full and abbreviated packuments share ETag %s", etag)
	}
	if err := reg.Add(Package{Name: "left", Versions: []Version{{Version: "3.0.0"}}}); err != nil {
		t.Fatal(err)
	}
	resp := do(t, "GET", reg.URL+"/left", map[string]string{"If-None-Match": etag}, nil)
	if resp.status != 200 || resp.header.Get("ETag") == etag {
		t.Errorf("after publishing: %d, ETag %s", resp.status, resp.header.Get("ETag"))
	}
}

func TestScopedNames(t *testing.T) {
	reg := New(t, Options{Attest: func(name, version string, sum []byte) ([]byte, error) {
		return []byte(`{"attestations":[]}`), nil
	}})
	if err := reg.Add(Package{Name: "@acme/widget", Versions: []Version{{Version: "1.0.0", Provenance: true}}, DistTags: map[string]string{"beta": "1.0.0"}}); err != nil {
		t.Fatal(err)
	}
	want := get(t, reg.URL+"/@acme%2fwidget").body
	for _, path := range []string{"/@acme%2fwidget", "/@acme%2Fwidget", "/@acme/widget", "/%40acme%2fwidget"} {
		if resp := get(t, reg.URL+path); resp.status != 200 || !bytes.Equal(resp.body, want) {
			t.Errorf("GET %s: %d %.80s", path, resp.status, resp.body)
		}
	}
	for _, path := range []string{"/@acme/widget/-/widget-1.0.0.tgz", "/@acme%2fwidget/-/widget-1.0.0.tgz"} {
		if resp := get(t, reg.URL+path); resp.status != 200 || !bytes.Equal(resp.body, reg.Tarball("@acme/widget", "1.0.0")) {
			t.Errorf("GET %s: %d", path, resp.status)
		}
	}
	for _, path := range []string{"/-/package/@acme%2fwidget/dist-tags", "/-/package/@acme/widget/dist-tags"} {
		resp := get(t, reg.URL+path)
		var tags map[string]string
		json.Unmarshal(resp.body, &tags)
		if resp.status != 200 || tags["latest"] != "1.0.0" || tags["beta"] != "1.0.0" {
			t.Errorf("GET %s: %d %s", path, resp.status, resp.body)
		}
	}
	for _, path := range []string{"/@acme%2fwidget/1.0.0", "/@acme/widget/beta", "/@acme/widget/latest"} {
		var m manifest
		resp := get(t, reg.URL+path)
		if json.Unmarshal(resp.body, &m); resp.status != 200 || m.ID != "@acme/widget@1.0.0" {
			t.Errorf("GET %s: %d %.80s", path, resp.status, resp.body)
		}
	}
	for _, path := range []string{"/@acme", "/@acme/", "/@acme/widget/-/other-1.0.0.tgz", "/@acme/widget/-/widget-9.0.0.tgz", "/@acme/widget/9.0.0", "/@acme/widget/a/b"} {
		if resp := get(t, reg.URL+path); resp.status != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.status)
		}
	}
	p, _ := fetchPackument(t, reg, "/@acme%2fwidget")
	att := p.Versions["1.0.0"].Dist.Attestations
	if att == nil || att.URL != reg.URL+"/-/npm/v1/attestations/@acme%2fwidget@1.0.0" || att.Provenance.PredicateType != "https://slsa.dev/provenance/v1" {
		t.Fatalf("dist.attestations %+v", att)
	}
	for _, url := range []string{att.URL, reg.URL + "/-/npm/v1/attestations/@acme/widget@1.0.0"} {
		if resp := get(t, url); resp.status != 200 || string(resp.body) != `{"attestations":[]}` {
			t.Errorf("GET %s: %d %s", url, resp.status, resp.body)
		}
	}
}

func TestAttest(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]byte{}
	reg := New(t, Options{Attest: func(name, version string, sum []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		calls[name+"@"+version] = sum
		return []byte(`{"attestations":[{"predicateType":"https://slsa.dev/provenance/v1"}]}`), nil
	}})
	if err := reg.Add(Package{Name: "left", Versions: []Version{{Version: "1.0.0", Provenance: true}, {Version: "1.1.0"}}}); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(reg.Tarball("left", "1.0.0"))
	if len(calls) != 1 || !bytes.Equal(calls["left@1.0.0"], sum[:]) {
		t.Errorf("Attest calls %x, want left@1.0.0 with %x", calls, sum)
	}
	for path, status := range map[string]int{
		"/-/npm/v1/attestations/left@1.0.0": 200,
		"/-/npm/v1/attestations/left@1.1.0": 404,
		"/-/npm/v1/attestations/nope@1.0.0": 404,
		"/-/npm/v1/attestations/left":       404,
	} {
		resp := get(t, reg.URL+path)
		if resp.status != status || (status == 404 && string(resp.body) != `{"error":"not found"}`) {
			t.Errorf("GET %s: %d %s, want %d", path, resp.status, resp.body, status)
		}
	}
	failing := New(t, Options{Attest: func(string, string, []byte) ([]byte, error) { return nil, errors.New("no") }})
	if err := failing.Add(Package{Name: "left", Versions: []Version{{Version: "1.0.0", Provenance: true}}}); err == nil {
		t.Errorf("Add succeeded though Attest failed")
	}
}

func TestNotFound(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	for _, path := range []string{"/nope", "/@nope/x", "/left/-/left-9.9.9.tgz", "/left/-/right-1.0.0.tgz", "/left/9.9.9", "/-/package/nope/dist-tags", "/-/whatever", "/"} {
		resp := get(t, reg.URL+path)
		if resp.status != 404 || string(resp.body) != `{"error":"Not found"}` || resp.header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s %s", path, resp.status, resp.header.Get("Content-Type"), resp.body)
		}
	}
	if resp := do(t, "PUT", reg.URL+"/left", nil, strings.NewReader("{}")); resp.status != http.StatusMethodNotAllowed {
		t.Errorf("PUT /left: %d", resp.status)
	}
}

func TestAudit(t *testing.T) {
	reg := New(t, Options{})
	gz := func(s string) io.Reader {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return &b
	}
	for _, tt := range []struct {
		path, method string
		header       map[string]string
		body         io.Reader
		status       int
	}{
		{"/-/npm/v1/security/advisories/bulk", "POST", map[string]string{"Content-Encoding": "gzip"}, gz(`{"left":["1.0.0"]}`), 200},
		{"/-/npm/v1/security/advisories/bulk", "POST", nil, strings.NewReader(`{"left":["1.0.0"]}`), 200},
		{"/-/npm/v1/security/audits/quick", "POST", map[string]string{"Content-Encoding": "gzip"}, gz(`{"name":"proj","requires":{}}`), 200},
		{"/-/npm/v1/security/advisories/bulk", "POST", map[string]string{"Content-Encoding": "gzip"}, strings.NewReader(`{}`), 400},
		{"/-/npm/v1/security/advisories/bulk", "POST", nil, strings.NewReader(`{`), 400},
		{"/-/npm/v1/security/advisories/bulk", "GET", nil, nil, 405},
		{"/-/npm/v1/security/other", "POST", nil, strings.NewReader(`{}`), 404},
	} {
		resp := do(t, tt.method, reg.URL+tt.path, tt.header, tt.body)
		if resp.status != tt.status || (tt.status == 200 && string(resp.body) != "{}") {
			t.Errorf("%s %s %v: %d %s, want %d", tt.method, tt.path, tt.header, resp.status, resp.body, tt.status)
		}
	}
	if n := reg.Requests("/-/npm/v1/security/advisories/bulk"); n != 5 {
		t.Errorf("%d bulk requests, want 5", n)
	}
	if n := reg.Requests("/-/npm/v1/security/audits/quick"); n != 1 {
		t.Errorf("%d quick requests, want 1", n)
	}
}

func TestRequests(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	for _, p := range []string{"/@acme%2fwidget", "/@acme%2fwidget", "/@acme%2Fwidget", "/@acme/widget", "/left", "/left/-/left-1.0.0.tgz", "/nope"} {
		get(t, reg.URL+p)
	}
	for path, want := range map[string]int{
		"/@acme/widget":          4,
		"/@acme%2fwidget":        2,
		"/@acme%2Fwidget":        1,
		"/left":                  1,
		"/left/-/left-1.0.0.tgz": 1,
		"/nope":                  1,
		"/left/-/left-1.2.0.tgz": 0,
	} {
		if got := reg.Requests(path); got != want {
			t.Errorf("Requests(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestDistTags(t *testing.T) {
	for _, tt := range []struct {
		name  string
		adds  []Package
		want  map[string]string
		fails bool
	}{
		{"highest release", []Package{{Versions: []Version{{Version: "1.10.0"}, {Version: "1.9.0"}, {Version: "2.0.0-beta.1"}}}},
			map[string]string{"latest": "1.10.0"}, false},
		{"only prereleases", []Package{{Versions: []Version{{Version: "1.0.0-alpha.2"}, {Version: "1.0.0-alpha.10"}, {Version: "1.0.0-alpha.beta"}}}},
			map[string]string{"latest": "1.0.0-alpha.beta"}, false},
		{"explicit", []Package{{Versions: []Version{{Version: "1.0.0"}, {Version: "2.0.0"}}, DistTags: map[string]string{"latest": "1.0.0", "next": "2.0.0"}}},
			map[string]string{"latest": "1.0.0", "next": "2.0.0"}, false},
		{"merged", []Package{
			{Versions: []Version{{Version: "1.0.0"}}, DistTags: map[string]string{"next": "1.0.0"}},
			{Versions: []Version{{Version: "1.1.0"}, {Version: "2.0.0-rc.0"}}, DistTags: map[string]string{"next": "2.0.0-rc.0"}},
		}, map[string]string{"latest": "1.1.0", "next": "2.0.0-rc.0"}, false},
		{"unknown version", []Package{{Versions: []Version{{Version: "1.0.0"}}, DistTags: map[string]string{"next": "2.0.0"}}}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := New(t, Options{})
			var err error
			for _, p := range tt.adds {
				p.Name = "pkg"
				if err = reg.Add(p); err != nil {
					break
				}
			}
			if (err != nil) != tt.fails {
				t.Fatalf("Add: %v", err)
			}
			if tt.fails {
				return
			}
			resp := get(t, reg.URL+"/-/package/pkg/dist-tags")
			var tags map[string]string
			if err := json.Unmarshal(resp.body, &tags); err != nil || !reflect.DeepEqual(tags, tt.want) {
				t.Errorf("dist-tags %s, want %v", resp.body, tt.want)
			}
			if p, _ := fetchPackument(t, reg, "/pkg"); !reflect.DeepEqual(p.DistTags, tt.want) {
				t.Errorf("packument dist-tags %v, want %v", p.DistTags, tt.want)
			}
		})
	}
}

func TestAddErrors(t *testing.T) {
	reg := New(t, Options{})
	if err := reg.Add(Package{Name: "ok", Versions: []Version{{Version: "1.0.0"}}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		p    Package
	}{
		{"bad name", Package{Name: "Bad Name", Versions: []Version{{Version: "1.0.0"}}}},
		{"bad version", Package{Name: "x", Versions: []Version{{Version: "v1"}}}},
		{"no versions", Package{Name: "x"}},
		{"twice in one Add", Package{Name: "x", Versions: []Version{{Version: "1.0.0"}, {Version: "1.0.0"}}}},
		{"republish", Package{Name: "ok", Versions: []Version{{Version: "1.0.0"}}}},
		{"provenance without Attest", Package{Name: "x", Versions: []Version{{Version: "1.0.0", Provenance: true}}}},
		{"unclean file", Package{Name: "x", Versions: []Version{{Version: "1.0.0", Files: map[string]string{"../evil": ""}}}}},
	} {
		if err := reg.Add(tt.p); err == nil {
			t.Errorf("%s: Add succeeded", tt.name)
		}
	}
	// A failed Add publishes nothing.
	if resp := get(t, reg.URL+"/x"); resp.status != 404 {
		t.Errorf("/x: %d after failed Adds", resp.status)
	}
}

// A package.json given in Files is packed verbatim: tests of manifest
// confusion need a tarball that disagrees with the packument.
func TestManifestOverride(t *testing.T) {
	reg := New(t, Options{})
	pj := `{"name":"left","version":"1.0.0","scripts":{"postinstall":"evil"}}`
	if err := reg.Add(Package{Name: "left", Versions: []Version{{Version: "1.0.0", Files: map[string]string{"package.json": pj}}}}); err != nil {
		t.Fatal(err)
	}
	files := untar(t, reg.Tarball("left", "1.0.0"))
	if files["package/package.json"] != pj || len(files) != 1 {
		t.Errorf("files %q", files)
	}
	if p, _ := fetchPackument(t, reg, "/left"); p.Versions["1.0.0"].Scripts != nil {
		t.Errorf("packument scripts %v", p.Versions["1.0.0"].Scripts)
	}
}

func TestCompareSemver(t *testing.T) {
	ordered := []string{"0.0.1", "0.1.0", "1.0.0-0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := sign(compareSemver(a, b)); got != want {
				t.Errorf("compareSemver(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	if compareSemver("1.0.0+a", "1.0.0+b") != 0 || isPrerelease("1.0.0+build-1") || !isPrerelease("1.0.0-rc+b") {
		t.Errorf("build metadata mishandled")
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// Faults and publishing race with serving; run with -race.
func TestConcurrent(t *testing.T) {
	reg := New(t, Options{})
	sample(t, reg)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				for _, p := range []string{"/left", "/@acme%2fwidget", "/left/-/left-1.0.0.tgz", "/-/package/left/dist-tags"} {
					resp, err := http.Get(reg.URL + p)
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	for j := 0; j < 20; j++ {
		reg.TamperTarball("left", "1.0.0")
		reg.CorruptSignature("left", "1.2.0")
		reg.DropSignature("@acme/widget", "0.1.0")
		reg.SetDown(j%2 == 0)
		if err := reg.Add(Package{Name: "left", Versions: []Version{{Version: fmt.Sprintf("5.0.%d", j)}}}); err != nil {
			t.Error(err)
		}
		reg.Requests("/left")
	}
	reg.SetDown(false)
	wg.Wait()
}
