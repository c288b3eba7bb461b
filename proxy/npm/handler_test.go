package npm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm"
	"github.com/airlock-proxy/airlock/proxy/npm/npmtest"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// fixture is the front on real stores in a temporary directory, in front
// of an npmtest registry, served under /npm like the router does.
type fixture struct {
	reg   *npmtest.Registry
	meta  *cache.Bolt
	blobs *cache.Disk
	h     *npm.Handler
	url   string // the front's base, http://127.0.0.1:port/npm
	now   time.Time
}

func newFixture(t testing.TB, reg *npmtest.Registry, opts ...func(*npm.Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	meta, err := cache.OpenBolt(filepath.Join(dir, "airlock.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	blobs, err := cache.OpenDisk(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := npmsig.ParseKeys(reg.KeysJSON())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{reg: reg, meta: meta, blobs: blobs, now: time.Now()}
	o := npm.Options{
		Upstream: reg.URL, KeyMode: npm.KeysStatic, Keys: keys, KeysJSON: reg.KeysJSON(),
		Meta: meta, Blobs: blobs, MaxAge: time.Minute,
		Now: func() time.Time { return f.now },
	}
	for _, fn := range opts {
		fn(&o)
	}
	f.h = npm.New(o)
	srv := httptest.NewServer(http.StripPrefix("/npm", f.h))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/npm"
	return f
}

// get fetches path below the front, with an optional Accept header.
func (f *fixture) get(t testing.TB, path, accept string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decode(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%v in %.300s", err, body)
	}
	return m
}

// npmError is the message of npm's error document, failing the test when
// the body is not one.
func npmError(t testing.TB, body []byte) string {
	t.Helper()
	m := decode(t, body)
	s, ok := m["error"].(string)
	if !ok || len(m) != 1 {
		t.Fatalf("not an npm error document: %s", body)
	}
	return s
}

func publish(t testing.TB, reg *npmtest.Registry, name string, versions ...string) {
	t.Helper()
	p := npmtest.Package{Name: name}
	for _, v := range versions {
		p.Versions = append(p.Versions, npmtest.Version{Version: v, Published: time.Now().Add(-48 * time.Hour)})
	}
	if err := reg.Add(p); err != nil {
		t.Fatal(err)
	}
}

func TestPackumentRewritesOnlyTarball(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "@acme/widget", "1.0.0", "1.1.0", "2.0.0-beta.1")
	f := newFixture(t, reg)
	resp, _ := http.Get(reg.URL + "/@acme%2fwidget")
	upBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	up := decode(t, upBody)

	for _, path := range []string{"/@acme%2fwidget", "/@acme%2Fwidget", "/@acme/widget"} {
		resp, body := f.get(t, path, "application/json")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s = %d %s: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		got := decode(t, body)
		if !jsonEqual(got["time"], up["time"]) || !jsonEqual(got["dist-tags"], up["dist-tags"]) {
			t.Errorf("%s: time or dist-tags changed", path)
		}
		for v, uv := range up["versions"].(map[string]any) {
			gv := got["versions"].(map[string]any)[v].(map[string]any)
			ud := uv.(map[string]any)["dist"].(map[string]any)
			gd := gv["dist"].(map[string]any)
			want := f.url + "/@acme/widget/-/widget-" + v + ".tgz"
			if gd["tarball"] != want {
				t.Errorf("%s tarball = %v, want %s", v, gd["tarball"], want)
			}
			gd["tarball"] = ud["tarball"]
			if !jsonEqual(gv, uv) {
				t.Errorf("%s: version object changed beyond dist.tarball:\n got %v\nwant %v", v, gv, uv)
			}
		}
	}
	// The abbreviated form for installers.
	resp, body := f.get(t, "/@acme%2fwidget", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.npm.install-v1+json" {
		t.Errorf("abbreviated Content-Type = %q", ct)
	}
	c := decode(t, body)
	if _, ok := c["time"]; ok {
		t.Error("abbreviated packument carries time")
	}
	if v := c["versions"].(map[string]any)["1.1.0"].(map[string]any); v["dist"].(map[string]any)["integrity"] != reg.Integrity("@acme/widget", "1.1.0") {
		t.Errorf("abbreviated 1.1.0 = %v", v)
	}
	// Conditional requests with the answer's ETag.
	req, _ := http.NewRequest(http.MethodGet, f.url+"/@acme%2fwidget", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	req.Header.Set("Accept", "application/vnd.npm.install-v1+json")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag = %d, want 304", r2.StatusCode)
	}
	if n := reg.Requests("/@acme/widget"); n != 2 { // the test's own, and Airlock's one
		t.Errorf("upstream asked %d times for the packument within max_age, want 2", n)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestTarballVerifiedAndCached(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "left-pad", "1.3.0")
	f := newFixture(t, reg)
	for i := range 2 {
		resp, body := f.get(t, "/left-pad/-/left-pad-1.3.0.tgz", "")
		if resp.StatusCode != 200 || string(body) != string(reg.Tarball("left-pad", "1.3.0")) {
			t.Fatalf("fetch %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	if n := reg.Requests("/left-pad/-/left-pad-1.3.0.tgz"); n != 1 {
		t.Errorf("upstream tarball fetched %d times, want 1", n)
	}
	a := verify.Artifact{Ecosystem: verify.NPM, Name: "left-pad", Version: "1.3.0"}
	st, err := f.meta.Status(context.Background(), a)
	if err != nil || st.Decision.Verdict != verify.Allow {
		t.Errorf("status = %+v, %v; want allow", st, err)
	}
	obs, err := f.meta.Observation(context.Background(), a.Key())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(reg.Tarball("left-pad", "1.3.0"))
	for field, want := range map[string]string{
		"tarball_sha256":   "sha256:" + hex.EncodeToString(sum[:]),
		"integrity":        reg.Integrity("left-pad", "1.3.0"),
		"publisher":        "alice",
		"signature_keyids": reg.KeyID(),
		"provenance":       "none",
		"install_scripts":  "",
	} {
		if obs.Fields[field] != want {
			t.Errorf("observed %s = %q, want %q", field, obs.Fields[field], want)
		}
	}
	if obs.Fields["publish_time"] == "" {
		t.Error("publish time not observed")
	}
}

// TestFindingsQuarantine: each way a version can fail holds it, refuses it
// on every route with its reason and the quarantine id, and hides it.
func TestFindingsQuarantine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  func(reg *npmtest.Registry)
		check  string
		reason string
	}{
		{"tampered tarball", func(r *npmtest.Registry) { r.TamperTarball("pkg", "1.1.0") }, "npm-integrity", "differs from dist.integrity"},
		{"missing signature", func(r *npmtest.Registry) { r.DropSignature("pkg", "1.1.0") }, "npm-registry-signature", "no-signature"},
		{"bad signature", func(r *npmtest.Registry) { r.CorruptSignature("pkg", "1.1.0") }, "npm-registry-signature", "bad-signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := npmtest.New(t, npmtest.Options{})
			publish(t, reg, "pkg", "1.0.0", "1.1.0")
			tc.fault(reg)
			f := newFixture(t, reg)
			resp, body := f.get(t, "/pkg/-/pkg-1.1.0.tgz", "")
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("tarball = %d %s, want 403", resp.StatusCode, body)
			}
			msg := npmError(t, body)
			if !strings.Contains(msg, tc.check) || !strings.Contains(msg, "q-000001") {
				t.Errorf("refusal %q does not name %s and q-000001", msg, tc.check)
			}
			q, err := f.meta.Quarantine(context.Background(), "q-000001")
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, fd := range q.Findings {
				if fd.Check == tc.check && (strings.Contains(fd.Message, tc.reason) || fd.Evidence["reason"] == tc.reason) {
					found = true
				}
			}
			if !found {
				t.Errorf("findings %+v lack %s/%s", q.Findings, tc.check, tc.reason)
			}
			obs, _ := f.meta.Observation(context.Background(), "npm:pkg@1.1.0")
			if obs.Fields["tarball_sha256"] != "" {
				t.Error("a held tarball was committed as the version's content")
			}
			// Hidden from the packument, latest moved back, every route refused.
			_, body = f.get(t, "/pkg", "")
			pk := decode(t, body)
			if _, ok := pk["versions"].(map[string]any)["1.1.0"]; ok {
				t.Error("held version still listed")
			}
			if latest := pk["dist-tags"].(map[string]any)["latest"]; latest != "1.0.0" {
				t.Errorf("latest = %v, want 1.0.0", latest)
			}
			if pr, _ := pk["policyRestrictions"].(map[string]any); pr == nil || !strings.Contains(pr["message"].(string), "q-000001") {
				t.Errorf("policyRestrictions = %v", pk["policyRestrictions"])
			}
			for _, path := range []string{"/pkg/1.1.0", "/pkg/-/pkg-1.1.0.tgz", "/-/npm/v1/attestations/pkg@1.1.0"} {
				resp, body := f.get(t, path, "")
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "q-000001") {
					t.Errorf("GET %s = %d %s, want 403 naming q-000001", path, resp.StatusCode, body)
				}
			}
			_, body = f.get(t, "/-/package/pkg/dist-tags", "")
			if tags := decode(t, body); tags["latest"] != "1.0.0" {
				t.Errorf("dist-tags = %v", tags)
			}
			// The good version still installs.
			if resp, _ := f.get(t, "/pkg/-/pkg-1.0.0.tgz", ""); resp.StatusCode != 200 {
				t.Errorf("1.0.0 = %d", resp.StatusCode)
			}
		})
	}
}

func TestReleaseServesAgain(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0", "1.1.0")
	reg.DropSignature("pkg", "1.1.0")
	f := newFixture(t, reg)
	if resp, _ := f.get(t, "/pkg/-/pkg-1.1.0.tgz", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned version = %d, want 403", resp.StatusCode)
	}
	if _, err := f.meta.Release(ctx, "q-000001", "alice", "the mirror strips signatures"); err != nil {
		t.Fatal(err)
	}
	resp, body := f.get(t, "/pkg/-/pkg-1.1.0.tgz", "")
	if resp.StatusCode != 200 || string(body) != string(reg.Tarball("pkg", "1.1.0")) {
		t.Fatalf("released version = %d", resp.StatusCode)
	}
	_, body = f.get(t, "/pkg", "")
	if decode(t, body)["dist-tags"].(map[string]any)["latest"] != "1.1.0" {
		t.Error("latest did not come back after the release")
	}

	// A tampered tarball stays refused even after a release: its bytes are
	// not what was published.
	reg2 := npmtest.New(t, npmtest.Options{})
	publish(t, reg2, "pkg", "1.0.0")
	reg2.TamperTarball("pkg", "1.0.0")
	f2 := newFixture(t, reg2)
	f2.get(t, "/pkg/-/pkg-1.0.0.tgz", "")
	if _, err := f2.meta.Release(ctx, "q-000001", "alice", "let me"); err != nil {
		t.Fatal(err)
	}
	resp, body = f2.get(t, "/pkg/-/pkg-1.0.0.tgz", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "after its release") {
		t.Errorf("tampered tarball after release = %d %s, want 403", resp.StatusCode, body)
	}
}

func TestAdminBlockHidesVersion(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0", "1.1.0", "2.0.0")
	f := newFixture(t, reg)
	a := verify.Artifact{Ecosystem: verify.NPM, Name: "pkg", Version: "2.0.0"}
	q, err := f.meta.Block(ctx, a, "alice", "under review")
	if err != nil {
		t.Fatal(err)
	}
	_, body := f.get(t, "/pkg", "application/vnd.npm.install-v1+json")
	pk := decode(t, body)
	if _, ok := pk["versions"].(map[string]any)["2.0.0"]; ok {
		t.Error("blocked version listed")
	}
	// 2.0.0 was the only 2.x: latest may not cross to another major line.
	if latest, ok := pk["dist-tags"].(map[string]any)["latest"]; ok {
		t.Errorf("latest = %v, want it dropped (no other 2.x)", latest)
	}
	msg := pk["policyRestrictions"].(map[string]any)["message"].(string)
	if !strings.Contains(msg, "pkg@2.0.0: blocked by an admin: under review ("+q.ID+")") {
		t.Errorf("restriction message = %q", msg)
	}
	if resp, body := f.get(t, "/pkg/latest", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/pkg/latest = %d %s", resp.StatusCode, body)
	}
	if _, err := f.meta.Release(ctx, q.ID, "alice", "fine"); err != nil {
		t.Fatal(err)
	}
	_, body = f.get(t, "/pkg", "application/vnd.npm.install-v1+json")
	if pk := decode(t, body); pk["dist-tags"].(map[string]any)["latest"] != "2.0.0" || pk["policyRestrictions"] != nil {
		t.Errorf("after release: %v", pk["dist-tags"])
	}
	resp, body := f.get(t, "/pkg/latest", "")
	if resp.StatusCode != 200 || decode(t, body)["version"] != "2.0.0" {
		t.Errorf("/pkg/latest after release = %d %s", resp.StatusCode, body)
	}
}

func TestUpstreamDown(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0", "1.1.0")
	f := newFixture(t, reg)
	if resp, _ := f.get(t, "/pkg", ""); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	reg.SetDown(true)
	f.now = f.now.Add(time.Hour) // past max_age: upstream is asked and fails
	resp, body := f.get(t, "/pkg", "")
	if resp.StatusCode != 200 || decode(t, body)["name"] != "pkg" {
		t.Errorf("stale packument = %d %s", resp.StatusCode, body)
	}
	// Upstream is left alone for a while after it failed: the stale copy is
	// served at once rather than after another failed attempt.
	asked := reg.Requests("/pkg")
	f.get(t, "/pkg", "")
	if got := reg.Requests("/pkg"); got != asked {
		t.Errorf("upstream asked again right after failing (%d → %d)", asked, got)
	}
	f.now = f.now.Add(time.Minute)
	f.get(t, "/pkg", "")
	if got := reg.Requests("/pkg"); got != asked+1 {
		t.Errorf("upstream not asked again after the quiet period (%d → %d)", asked, got)
	}
	resp, body = f.get(t, "/pkg/-/pkg-1.1.0.tgz", "")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(npmError(t, body), "503") {
		t.Errorf("uncached tarball with upstream down = %d %s, want 502", resp.StatusCode, body)
	}
	if resp, body := f.get(t, "/never-seen", ""); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("uncached packument with upstream down = %d %s, want 502", resp.StatusCode, body)
	}
	// Nothing was held for the outage.
	if qs, _ := f.meta.Quarantines(context.Background(), cache.QuarantineFilter{}); len(qs) != 0 {
		t.Errorf("outage quarantined %v", qs)
	}
}

func TestKeyModes(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0")
	reg.DropSignature("pkg", "1.0.0")

	// An upstream that does not sign: nothing to check.
	f := newFixture(t, reg, func(o *npm.Options) { o.KeyMode = npm.KeysNone })
	if resp, body := f.get(t, "/pkg/-/pkg-1.0.0.tgz", ""); resp.StatusCode != 200 {
		t.Errorf("keys none, unsigned version = %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.get(t, "/-/npm/v1/keys", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("keys none: /-/npm/v1/keys = %d, want 404", resp.StatusCode)
	}

	// Keys pinned from upstream on first use, and served to clients.
	publish(t, reg, "signed", "1.0.0")
	f = newFixture(t, reg, func(o *npm.Options) { o.KeyMode = npm.KeysUpstream; o.Keys = npmsig.Keys{} })
	if resp, body := f.get(t, "/signed/-/signed-1.0.0.tgz", ""); resp.StatusCode != 200 {
		t.Errorf("pinned keys, signed version = %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.get(t, "/pkg/-/pkg-1.0.0.tgz", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("pinned keys, unsigned version = %d, want 403", resp.StatusCode)
	}
	_, body := f.get(t, "/-/npm/v1/keys", "")
	if string(body) != string(reg.KeysJSON()) {
		t.Errorf("served keys = %s, want upstream's", body)
	}
	if n := reg.Requests("/-/npm/v1/keys"); n != 1 {
		t.Errorf("upstream keys fetched %d times, want 1 (pinned)", n)
	}
}

func TestErrors(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0")
	f := newFixture(t, reg)
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"GET", "/nope", 404, "not found"},
		{"GET", "/pkg/9.9.9", 404, "version not found"},
		{"GET", "/pkg/-/pkg-9.9.9.tgz", 404, "version not found"},
		{"GET", "/pkg/beta", 404, "no dist-tag"},
		{"GET", "/..%2f..%2fetc%2fpasswd", 400, "invalid"},
		{"PUT", "/pkg", 405, "read-only"},
		{"DELETE", "/pkg/-rev/1", 405, "read-only"},
		{"PUT", "/-/user/org.couchdb.user:bob", 405, "read-only"},
		{"PUT", "/-/package/pkg/dist-tags/next", 405, "read-only"},
	} {
		req, _ := http.NewRequest(tc.method, f.url+tc.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(npmError(t, body), tc.says) {
			t.Errorf("%s %s = %d %s, want %d saying %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.says)
		}
	}
}

func TestAuditPassthrough(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	f := newFixture(t, reg)
	for _, p := range []string{"/-/npm/v1/security/advisories/bulk", "/-/npm/v1/security/audits/quick"} {
		resp, err := http.Post(f.url+p, "application/json", strings.NewReader(`{"pkg":["1.0.0"]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "{}" {
			t.Errorf("POST %s = %d %s", p, resp.StatusCode, body)
		}
		if reg.Requests(p) != 1 {
			t.Errorf("%s reached upstream %d times", p, reg.Requests(p))
		}
	}
}

func TestRevalidation(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0")
	f := newFixture(t, reg)
	f.get(t, "/pkg", "")
	f.now = f.now.Add(2 * time.Minute)
	if resp, _ := f.get(t, "/pkg", ""); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if n := reg.Requests("/pkg"); n != 2 {
		t.Errorf("upstream asked %d times, want 2 (one revalidation)", n)
	}
	// A version published since is found when asked for, within max_age.
	publish(t, reg, "pkg", "1.1.0")
	f.now = f.now.Add(10 * time.Second)
	resp, body := f.get(t, "/pkg/-/pkg-1.1.0.tgz", "")
	if resp.StatusCode != 200 || string(body) != string(reg.Tarball("pkg", "1.1.0")) {
		t.Errorf("new version = %d %s", resp.StatusCode, body)
	}
	_, body = f.get(t, "/pkg", "")
	if _, ok := decode(t, body)["versions"].(map[string]any)["1.1.0"]; !ok {
		t.Error("packument not refreshed with the new version")
	}
	// Taken down upstream: 404 that says so.
	reg.Unpublish("pkg", "1.0.0")
	f.now = f.now.Add(10 * time.Second)
	f2 := newFixture(t, reg)
	resp, body = f2.get(t, "/pkg/-/pkg-1.0.0.tgz", "")
	if resp.StatusCode != 404 || !strings.Contains(npmError(t, body), "removed upstream") {
		t.Errorf("unpublished version = %d %s", resp.StatusCode, body)
	}
}

func TestConcurrentMissesFetchOnce(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0")
	f := newFixture(t, reg)
	const n = 16
	errs := make(chan string, n)
	for range n {
		go func() {
			resp, err := http.Get(f.url + "/pkg/-/pkg-1.0.0.tgz")
			if err != nil {
				errs <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != string(reg.Tarball("pkg", "1.0.0")) {
				errs <- resp.Status
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
	if got := reg.Requests("/pkg/-/pkg-1.0.0.tgz"); got != 1 {
		t.Errorf("%d upstream tarball fetches for %d concurrent misses, want 1", got, n)
	}
	if got := reg.Requests("/pkg"); got != 1 {
		t.Errorf("%d upstream packument fetches, want 1", got)
	}
}

// TestMissingPublishTime: a version the packument gives no time for cannot
// be judged (key expiry, cooldown), so it is held.
func TestMissingPublishTime(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0", "1.1.0")
	// An upstream that drops time["1.1.0"] from the packument.
	strip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(reg.URL + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if r.URL.Path == "/pkg" {
			var m map[string]any
			json.Unmarshal(body, &m)
			delete(m["time"].(map[string]any), "1.1.0")
			body, _ = json.Marshal(m)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(strip.Close)
	f := newFixture(t, reg, func(o *npm.Options) { o.Upstream = strip.URL })
	if resp, body := f.get(t, "/pkg/-/pkg-1.0.0.tgz", ""); resp.StatusCode != 200 {
		t.Fatalf("1.0.0 = %d %s", resp.StatusCode, body)
	}
	resp, body := f.get(t, "/pkg/-/pkg-1.1.0.tgz", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(npmError(t, body), "npm-publish-time") {
		t.Errorf("version without a publish time = %d %s, want 403 npm-publish-time", resp.StatusCode, body)
	}
}

func TestSizeBounds(t *testing.T) {
	reg := npmtest.New(t, npmtest.Options{})
	publish(t, reg, "pkg", "1.0.0")
	f := newFixture(t, reg, func(o *npm.Options) { o.MaxPackument = 200 })
	if resp, body := f.get(t, "/pkg", ""); resp.StatusCode != http.StatusBadGateway || !strings.Contains(npmError(t, body), "limit") {
		t.Errorf("oversize packument = %d %s, want 502 naming the limit", resp.StatusCode, body)
	}
	f = newFixture(t, reg, func(o *npm.Options) { o.MaxTarball = 10 })
	if resp, body := f.get(t, "/pkg/-/pkg-1.0.0.tgz", ""); resp.StatusCode != http.StatusBadGateway || !strings.Contains(npmError(t, body), "limit") {
		t.Errorf("oversize tarball = %d %s, want 502 naming the limit", resp.StatusCode, body)
	}
	if qs, _ := f.meta.Quarantines(context.Background(), cache.QuarantineFilter{}); len(qs) != 0 {
		t.Errorf("an oversize tarball was quarantined: %v", qs)
	}
}
