package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/proxy/npm/npmtest"
)

// npmProject is a directory the real npm client installs into, with its
// own cache and an empty user config so that nothing on the machine leaks
// in.
type npmProject struct {
	dir, cache, registry string
	npm                  string       // the client's path
	tuf                  *npmtest.TUF // stands in for sigstore's TUF repository (npm audit signatures)
}

func newNPMProject(t *testing.T, registry string, deps map[string]string) *npmProject {
	t.Helper()
	p := &npmProject{dir: t.TempDir(), cache: t.TempDir(), registry: registry, npm: tool(t, "npm"), tuf: npmtest.StartTUF(t)}
	pkg, _ := json.Marshal(map[string]any{"name": "e2e-project", "version": "1.0.0", "private": true, "dependencies": deps})
	if err := os.WriteFile(filepath.Join(p.dir, "package.json"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	// npm refuses one file as both user and global config.
	for _, f := range []string{".npmrc-user", ".npmrc-global"} {
		if err := os.WriteFile(filepath.Join(p.dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// run runs npm in the project and returns its combined output.
func (p *npmProject) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return p.runClient(t, p.npm, args...)
}

// runClient runs npm or pnpm (both read npm_config_*) in the project.
func (p *npmProject) runClient(t *testing.T, client string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(client, args...)
	cmd.Dir = p.dir
	p.tuf.Plant(t, p.cache)
	var env []string
	for _, kv := range os.Environ() {
		// Nothing of an outer npm's configuration or proxies leaks in.
		k, _, _ := strings.Cut(kv, "=")
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "npm_config_") || strings.HasSuffix(lk, "_proxy") || lk == "node_extra_ca_certs" {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(append(env, p.tuf.Env()...),
		"npm_config_registry="+p.registry,
		"npm_config_cache="+p.cache,
		"npm_config_userconfig="+filepath.Join(p.dir, ".npmrc-user"),
		"npm_config_globalconfig="+filepath.Join(p.dir, ".npmrc-global"),
		"npm_config_audit=false", "npm_config_fund=false", "npm_config_update_notifier=false",
		"npm_config_fetch_retries=0", "npm_config_ignore_scripts=true", "npm_config_loglevel=warn",
		"npm_config_store_dir="+filepath.Join(p.cache, "pnpm-store"),
	)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("npm %v did not finish: %s", args, out)
	}
	return string(out), err
}

// installed returns the version of a package in node_modules, "" if absent.
func (p *npmProject) installed(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(p.dir, "node_modules", filepath.FromSlash(name), "package.json"))
	if err != nil {
		return ""
	}
	var m struct{ Version string }
	json.Unmarshal(data, &m)
	return m.Version
}

// npmUpstream starts a registry with the packages the tests install and
// an Airlock in front of it whose keys are the registry's.
func npmUpstream(t *testing.T, extra string) (*npmtest.Registry, *instance) {
	t.Helper()
	reg := npmtest.New(t, npmtest.Options{})
	old := time.Now().Add(-72 * time.Hour)
	for _, p := range []npmtest.Package{
		{Name: "left-pad", Versions: []npmtest.Version{{Version: "1.2.0", Published: old}, {Version: "1.3.0", Published: old}}},
		{Name: "@acme/widget", Versions: []npmtest.Version{
			{Version: "1.0.0", Published: old, Dependencies: map[string]string{"left-pad": "^1.2.0"}},
			{Version: "1.1.0", Published: old, Dependencies: map[string]string{"left-pad": "^1.2.0", "@acme/util": "~2.0.0"}},
		}},
		{Name: "@acme/util", Versions: []npmtest.Version{{Version: "2.0.0", Published: old}, {Version: "2.0.1", Published: old}}},
		{Name: "colours", Versions: []npmtest.Version{
			{Version: "1.0.0", Published: old}, {Version: "1.1.0", Published: old}, {Version: "1.2.0", Published: old},
			{Version: "2.0.0-beta.1", Published: old},
		}, DistTags: map[string]string{"next": "2.0.0-beta.1"}},
		{Name: "tampered", Versions: []npmtest.Version{{Version: "1.0.0", Published: old}, {Version: "1.0.1", Published: old}}},
		{Name: "unsigned", Versions: []npmtest.Version{{Version: "1.0.0", Published: old}}},
		{Name: "badsig", Versions: []npmtest.Version{{Version: "1.0.0", Published: old}}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	reg.TamperTarball("tampered", "1.0.1")
	reg.DropSignature("unsigned", "1.0.0")
	reg.CorruptSignature("badsig", "1.0.0")
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, reg.KeysJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := startAirlock(t, fmt.Sprintf("npm:\n  upstream: %s\n  keys: %s\n%s", reg.URL, keys, extra))
	return reg, inst
}

func TestNPMInstallThroughAirlock(t *testing.T) {
	reg, inst := npmUpstream(t, "")
	p := newNPMProject(t, inst.URL+"/npm/", map[string]string{"@acme/widget": "^1.0.0", "colours": "^1.0.0", "left-pad": "1.2.0"})
	out, err := p.run(t, "install")
	if err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"@acme/widget": "1.1.0", "@acme/util": "2.0.1", "colours": "1.2.0", "left-pad": "1.2.0"} {
		if got := p.installed(t, name); got != want {
			t.Errorf("%s installed %q, want %q", name, got, want)
		}
	}
	lock, err := os.ReadFile(filepath.Join(p.dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lock), `"resolved": "`+inst.URL+`/npm/@acme/widget/-/widget-1.1.0.tgz"`) {
		t.Errorf("package-lock.json does not resolve through Airlock:\n%.2000s", lock)
	}
	if strings.Contains(string(lock), reg.URL) {
		t.Error("package-lock.json names the upstream: npm fetched around Airlock")
	}

	// npm's own signature check, with keys served by Airlock.
	out, err = p.run(t, "audit", "signatures")
	if err != nil || !strings.Contains(out, "verified registry signature") {
		t.Errorf("npm audit signatures: %v\n%s", err, out)
	}
	if strings.Contains(out, "invalid") || strings.Contains(out, "missing") {
		t.Errorf("npm audit signatures reports problems:\n%s", out)
	}

	// npm audit goes through Airlock to the upstream's advisory endpoint.
	out, err = p.run(t, "audit", "--audit-level=critical")
	if err != nil || !strings.Contains(out, "found 0 vulnerabilities") {
		t.Errorf("npm audit: %v\n%s", err, out)
	}
	if reg.Requests("/-/npm/v1/security/advisories/bulk") == 0 {
		t.Error("npm audit did not reach the upstream's advisories endpoint through Airlock")
	}

	// A fresh clone with an empty npm cache installs from Airlock's cache.
	before := reg.Requests("/left-pad/-/left-pad-1.2.0.tgz")
	os.RemoveAll(filepath.Join(p.dir, "node_modules"))
	p.cache = t.TempDir()
	if out, err := p.run(t, "ci"); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	if after := reg.Requests("/left-pad/-/left-pad-1.2.0.tgz"); after != before {
		t.Errorf("upstream tarball fetched again (%d → %d): not served from Airlock's cache", before, after)
	}
	if got := p.installed(t, "@acme/widget"); got != "1.1.0" {
		t.Errorf("after npm ci, @acme/widget = %q", got)
	}
}

func TestNPMVerificationFailures(t *testing.T) {
	_, inst := npmUpstream(t, "")
	for _, tc := range []struct {
		spec, check string
	}{
		{"tampered@1.0.1", "npm-integrity"},
		{"unsigned@1.0.0", "npm-registry-signature"},
		{"badsig@1.0.0", "npm-registry-signature"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			p := newNPMProject(t, inst.URL+"/npm/", nil)
			out, err := p.run(t, "install", tc.spec)
			if err == nil {
				t.Fatalf("npm install %s succeeded:\n%s", tc.spec, out)
			}
			if !strings.Contains(out, "403") || !strings.Contains(out, tc.check) || !strings.Contains(out, "airlock quarantine show q-") {
				t.Errorf("npm install %s does not print Airlock's reason (%s):\n%s", tc.spec, tc.check, out)
			}
			name := strings.Split(tc.spec, "@")[0]
			if v := p.installed(t, name); v != "" {
				t.Errorf("%s installed anyway (%s)", name, v)
			}
		})
	}
	// The held version is now hidden: a range quietly takes the good one.
	p := newNPMProject(t, inst.URL+"/npm/", nil)
	if out, err := p.run(t, "install", "tampered@^1.0.0"); err != nil {
		t.Fatalf("npm install tampered@^1.0.0: %v\n%s", err, out)
	}
	if got := p.installed(t, "tampered"); got != "1.0.0" {
		t.Errorf("tampered@^1.0.0 installed %q, want 1.0.0", got)
	}
	out, _ := inst.cli(t, "quarantine", "list")
	for _, want := range []string{"npm:tampered@1.0.1", "npm:unsigned@1.0.0", "npm:badsig@1.0.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("quarantine list lacks %s:\n%s", want, out)
		}
	}
}

func TestNPMBlockAndRelease(t *testing.T) {
	_, inst := npmUpstream(t, "")
	out, err := inst.cli(t, "quarantine", "block", "npm:colours@1.2.0", "--reason", "maintainer account taken over")
	if err != nil {
		t.Fatalf("block: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out[strings.LastIndex(out, " ")+1:])

	p := newNPMProject(t, inst.URL+"/npm/", nil)
	if out, err := p.run(t, "install", "colours@^1"); err != nil {
		t.Fatalf("npm install colours@^1: %v\n%s", err, out)
	}
	if got := p.installed(t, "colours"); got != "1.1.0" {
		t.Errorf("colours@^1 with 1.2.0 blocked installed %q, want 1.1.0", got)
	}
	if code, body := inst.get(t, "/npm/-/package/colours/dist-tags"); code != 200 || !strings.Contains(body, `"latest":"1.1.0"`) || !strings.Contains(body, `"next":"2.0.0-beta.1"`) {
		t.Errorf("dist-tags = %d %s, want latest moved to 1.1.0 and next kept", code, body)
	}
	out, err = p.run(t, "install", "colours@1.2.0")
	if err == nil || !strings.Contains(out, "E403") || !strings.Contains(out, "maintainer account taken over") || !strings.Contains(out, id) {
		t.Errorf("npm install colours@1.2.0 while blocked: %v\n%s", err, out)
	}
	// The full packument (npm view) hides it too.
	out, err = p.run(t, "view", "colours", "versions", "--json")
	if err != nil || strings.Contains(out, "1.2.0") || !strings.Contains(out, "1.1.0") {
		t.Errorf("npm view colours versions: %v\n%s", err, out)
	}

	if out, err := inst.cli(t, "quarantine", "release", id, "--reason", "account recovered, release reviewed"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	p.cache = t.TempDir() // npm caches packuments for a while
	if out, err := p.run(t, "install", "colours@1.2.0"); err != nil {
		t.Fatalf("npm install colours@1.2.0 after release: %v\n%s", err, out)
	}
	if got := p.installed(t, "colours"); got != "1.2.0" {
		t.Errorf("after release installed %q, want 1.2.0", got)
	}
	out, _ = inst.cli(t, "audit")
	if !strings.Contains(out, "block") || !strings.Contains(out, "release") {
		t.Errorf("audit log lacks the block and the release:\n%s", out)
	}
}

func TestNPMUpstreamDown(t *testing.T) {
	reg, inst := npmUpstream(t, "  max_age: 0s\n")
	p := newNPMProject(t, inst.URL+"/npm/", nil)
	if out, err := p.run(t, "install", "left-pad@1.3.0"); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	reg.SetDown(true)
	// Cached: the stale packument and the cached tarball still install.
	os.RemoveAll(filepath.Join(p.dir, "node_modules"))
	p.cache = t.TempDir()
	if out, err := p.run(t, "install", "left-pad@1.3.0"); err != nil {
		t.Errorf("npm install of a cached version with upstream down: %v\n%s", err, out)
	}
	// Not cached: the tarball gets a 502 that says why.
	out, err := p.run(t, "install", "left-pad@1.2.0")
	if err == nil || !strings.Contains(out, "502") {
		t.Errorf("npm install of an uncached tarball with upstream down: %v\n%s", err, out)
	}
	code, body := inst.get(t, "/npm/left-pad/-/left-pad-1.2.0.tgz")
	if code != 502 || !strings.Contains(body, "upstream") {
		t.Errorf("GET uncached tarball = %d %s", code, body)
	}
	// And the outage held nothing.
	if out, _ := inst.cli(t, "quarantine", "list"); strings.Contains(out, "left-pad") {
		t.Errorf("the outage quarantined left-pad:\n%s", out)
	}
}

func TestPNPMInstallThroughAirlock(t *testing.T) {
	reg, inst := npmUpstream(t, "")
	pnpm := tool(t, "pnpm")
	p := newNPMProject(t, inst.URL+"/npm/", map[string]string{"@acme/widget": "^1.0.0", "colours": "^1.0.0"})
	if out, err := inst.cli(t, "quarantine", "block", "npm:colours@1.2.0", "--reason", "bad release"); err != nil {
		t.Fatalf("block: %v\n%s", err, out)
	}
	out, err := p.runClient(t, pnpm, "install", "--registry", inst.URL+"/npm/")
	if err != nil {
		t.Fatalf("pnpm install: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"@acme/widget": "1.1.0", "colours": "1.1.0"} {
		if got := p.installed(t, name); got != want {
			t.Errorf("pnpm installed %s %q, want %q", name, got, want)
		}
	}
	lock, err := os.ReadFile(filepath.Join(p.dir, "pnpm-lock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lock), reg.Integrity("@acme/widget", "1.1.0")) {
		t.Errorf("pnpm-lock.yaml lacks upstream's integrity of @acme/widget@1.1.0:\n%.1500s", lock)
	}
	// A tarball that fails verification fails pnpm with Airlock's reason.
	out, err = p.runClient(t, pnpm, "add", "tampered@1.0.1", "--registry", inst.URL+"/npm/")
	// pnpm prints the status, not npm's error document.
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("pnpm add tampered@1.0.1: %v\n%s", err, out)
	}
}

func TestYarnInstallThroughAirlock(t *testing.T) {
	_, inst := npmUpstream(t, "")
	yarn := tool(t, "yarn")
	p := newNPMProject(t, inst.URL+"/npm/", map[string]string{"@acme/widget": "^1.0.0", "colours": "^1.0.0"})
	if out, err := inst.cli(t, "quarantine", "block", "npm:colours@1.2.0", "--reason", "bad release"); err != nil {
		t.Fatalf("block: %v\n%s", err, out)
	}
	out, err := p.runClient(t, yarn, "install", "--registry", inst.URL+"/npm/", "--cache-folder", filepath.Join(p.cache, "yarn"), "--non-interactive", "--no-progress")
	if err != nil {
		t.Fatalf("yarn install: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"@acme/widget": "1.1.0", "@acme/util": "2.0.1", "colours": "1.1.0"} {
		if got := p.installed(t, name); got != want {
			t.Errorf("yarn installed %s %q, want %q", name, got, want)
		}
	}
	lock, err := os.ReadFile(filepath.Join(p.dir, "yarn.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lock), inst.URL+"/npm/@acme/widget/-/widget-1.1.0.tgz") {
		t.Errorf("yarn.lock does not resolve through Airlock:\n%.1500s", lock)
	}
	out, err = p.runClient(t, yarn, "add", "tampered@1.0.1", "--registry", inst.URL+"/npm/", "--cache-folder", filepath.Join(p.cache, "yarn"), "--non-interactive")
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("yarn add tampered@1.0.1: %v\n%s", err, out)
	}
}
