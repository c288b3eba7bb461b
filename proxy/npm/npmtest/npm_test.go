package npmtest

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// npmEnv is an environment in which the npm client reaches only reg and
// shares no configuration or cache with the user's.
type npmEnv struct {
	t     *testing.T
	env   []string
	cache string
	tuf   *TUF
}

func newNPMEnv(t *testing.T) *npmEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the npm client")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("no npm client on PATH:", err)
	}
	home := t.TempDir()
	// npm refuses to load one file as both user and global config.
	userrc, globalrc := filepath.Join(home, "user-npmrc"), filepath.Join(home, "global-npmrc")
	for _, f := range []string{userrc, globalrc} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tuf := StartTUF(t)
	cache := filepath.Join(home, "cache")
	tuf.Plant(t, cache)
	var env []string
	for _, kv := range os.Environ() {
		// Drop configuration an outer npm (npm test, a CI step) exports,
		// and proxies, which npm honours in any case.
		k, _, _ := strings.Cut(kv, "=")
		switch lk := strings.ToLower(k); {
		case strings.HasPrefix(lk, "npm_config_"), lk == "home", lk == "node_options", lk == "node_extra_ca_certs",
			lk == "http_proxy", lk == "https_proxy", lk == "proxy", lk == "no_proxy":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+home,
		"npm_config_userconfig="+userrc,
		"npm_config_globalconfig="+globalrc,
		"npm_config_cache="+cache,
		"npm_config_update_notifier=false",
		"npm_config_fund=false",
		"npm_config_audit=false",
		"npm_config_fetch_retries=0",
		"npm_config_fetch_timeout=10000",
		"npm_config_loglevel=warn",
		"npm_config_progress=false",
		// Everything but the registry goes to the fake TUF repository's
		// proxy, which refuses all else: nothing reaches the network.
	)
	env = append(env, tuf.Env()...)
	return &npmEnv{t: t, env: env, cache: cache, tuf: tuf}
}

func (e *npmEnv) run(dir string, args ...string) (string, error) {
	cmd := exec.Command("npm", args...)
	cmd.Dir, cmd.Env = dir, e.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// project writes a package.json depending on deps.
func project(t *testing.T, deps map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.MarshalIndent(map[string]any{"name": "proj", "version": "1.0.0", "private": true, "dependencies": deps}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// installed returns the version in node_modules/<name>/package.json.
func installed(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json"))
	if err != nil {
		t.Errorf("%s not installed: %v", name, err)
		return ""
	}
	var m struct{ Name, Version string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("%s: package.json: %v", name, err)
	}
	if m.Name != name {
		t.Errorf("node_modules/%s/package.json names %q", name, m.Name)
	}
	return m.Version
}

// graph is the packages the npm tests install: an unscoped leaf, a scoped
// package depending on it whose next tag is a prerelease with an install
// script, and a deprecated leaf.
func graph(t *testing.T, reg *Registry) {
	t.Helper()
	day := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)
	for _, p := range []Package{
		{Name: "tiny-dep", Versions: []Version{
			{Version: "1.0.0", Published: day},
			{Version: "1.1.0", Published: day.Add(time.Hour), Files: map[string]string{"index.js": "module.exports = 'tiny 1.1';\n", "lib/util.js": "exports.x = 1;\n"}},
		}},
		{Name: "@airlock/app", Versions: []Version{
			{Version: "1.0.0", Published: day, Dependencies: map[string]string{"tiny-dep": "^1.0.0"}},
			{Version: "2.0.0-beta.1", Published: day.Add(2 * time.Hour), Publisher: "bob",
				Dependencies: map[string]string{"tiny-dep": "~1.1.0"},
				Scripts:      map[string]string{"postinstall": "node -e \"require('fs').writeFileSync('pwned','')\""}},
		}, DistTags: map[string]string{"next": "2.0.0-beta.1"}},
		{Name: "solo", Versions: []Version{{Version: "3.0.0", Deprecated: "use something else"}}},
	} {
		if err := reg.Add(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNPMInstall(t *testing.T) {
	e := newNPMEnv(t)
	reg := New(t, Options{})
	graph(t, reg)
	var mu sync.Mutex
	var seen []string
	reg.mu.Lock()
	reg.trace = func(req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, req.Method+" "+req.URL.RequestURI()+" accept="+req.Header.Get("Accept")+" npm-command="+req.Header.Get("Npm-Command"))
	}
	reg.mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		t.Logf("npm requests:\n%s\nvia the proxy:\n%s", strings.Join(seen, "\n"), strings.Join(e.tuf.Requests(), "\n"))
	})

	dir := project(t, map[string]string{"@airlock/app": "next", "solo": "^3.0.0"})
	start := time.Now()
	out, err := e.run(dir, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--registry", reg.URL+"/")
	t.Logf("npm install took %v", time.Since(start))
	if err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"@airlock/app": "2.0.0-beta.1", "tiny-dep": "1.1.0", "solo": "3.0.0"} {
		if got := installed(t, dir, name); got != want {
			t.Errorf("installed %s@%s, want %s", name, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "node_modules", "tiny-dep", "lib", "util.js")); err != nil || string(b) != "exports.x = 1;\n" {
		t.Errorf("tiny-dep/lib/util.js = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@airlock", "app", "pwned")); err == nil {
		t.Errorf("postinstall ran despite --ignore-scripts")
	}
	if !strings.Contains(out, "solo@3.0.0: use something else") {
		t.Errorf("npm did not warn of the deprecation:\n%s", out)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{reg.Integrity("tiny-dep", "1.1.0"), reg.TarballURL("@airlock/app", "2.0.0-beta.1"), `"hasInstallScript": true`} {
		if !strings.Contains(string(lock), want) {
			t.Errorf("package-lock.json lacks %s:\n%s", want, lock)
		}
	}
	for _, p := range []string{"/@airlock/app", "/tiny-dep", "/solo", "/tiny-dep/-/tiny-dep-1.1.0.tgz", "/@airlock/app/-/app-2.0.0-beta.1.tgz"} {
		if n := reg.Requests(p); n != 1 {
			t.Errorf("%d requests for %s, want 1", n, p)
		}
	}

	start = time.Now()
	out, err = e.run(dir, "audit", "signatures", "--registry", reg.URL+"/")
	t.Logf("npm audit signatures took %v", time.Since(start))
	if err != nil {
		t.Fatalf("npm audit signatures: %v\n%s", err, out)
	}
	if !strings.Contains(out, "audited 3 packages") || !strings.Contains(out, "3 packages have verified registry signatures") {
		t.Errorf("npm audit signatures did not verify all three:\n%s", out)
	}
	if n := reg.Requests("/-/npm/v1/keys"); n != 1 {
		t.Errorf("%d requests for the keys, want 1", n)
	}
}

// The faults are what the real client notices: a tampered tarball fails
// the install, a dropped or corrupt signature fails audit signatures.
func TestNPMNoticesFaults(t *testing.T) {
	for _, tt := range []struct {
		fault   string
		apply   func(*Registry)
		install string // npm install output wanted; "" for success
		audit   string // npm audit signatures output wanted
	}{
		{"tamper", func(r *Registry) { r.TamperTarball("tiny-dep", "1.1.0") }, "EINTEGRITY", ""},
		{"drop", func(r *Registry) { r.DropSignature("tiny-dep", "1.1.0") }, "", "1 package has a missing registry signature"},
		{"corrupt", func(r *Registry) { r.CorruptSignature("tiny-dep", "1.1.0") }, "", "1 package has an invalid registry signature"},
	} {
		t.Run(tt.fault, func(t *testing.T) {
			e := newNPMEnv(t)
			reg := New(t, Options{})
			graph(t, reg)
			tt.apply(reg)
			dir := project(t, map[string]string{"@airlock/app": "next", "solo": "^3.0.0"})
			out, err := e.run(dir, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--registry", reg.URL+"/")
			if tt.install != "" {
				if err == nil || !strings.Contains(out, tt.install) {
					t.Errorf("npm install: %v, want %s:\n%s", err, tt.install, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("npm install: %v\n%s", err, out)
			}
			out, err = e.run(dir, "audit", "signatures", "--registry", reg.URL+"/")
			if err == nil || !strings.Contains(out, tt.audit) || !strings.Contains(out, "tiny-dep@1.1.0") {
				t.Errorf("npm audit signatures: %v, want %q about tiny-dep@1.1.0:\n%s", err, tt.audit, out)
			}
			t.Logf("npm audit signatures:\n%s", out)
		})
	}
}
