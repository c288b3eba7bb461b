package gomodtest

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lib is a one-package module whose package is named after the last path
// element, requiring the given "path version" pairs.
func lib(path, version, body string, requires ...string) Module {
	pkg := path[strings.LastIndex(path, "/")+1:]
	gomod := "module " + path + "\n\ngo 1.21\n"
	for _, r := range requires {
		gomod += "\nrequire " + r + "\n"
	}
	return Module{Path: path, Version: version, Files: map[string]string{
		"go.mod":    gomod,
		pkg + ".go": "package " + pkg + "\n\n" + body,
		"LICENSE":   "MIT\n",
	}}
}

// graph is two modules, a importing b, plus an unrelated c.
func graph() []Module {
	return []Module{
		lib("example.com/b", "v1.0.0", "func Name() string { return \"b\" }\n"),
		lib("example.com/a", "v1.0.0", "import \"example.com/b\"\n\nfunc Name() string { return \"a+\" + b.Name() }\n", "example.com/b v1.0.0"),
		lib("example.com/c", "v1.0.0", "func V() int { return 1 }\n"),
	}
}

// goEnv is an environment in which the go command reaches only u, checks
// everything against u's checksum database, and shares no module or sumdb
// cache with anything else. gosumdb is the GOSUMDB value under test.
type goEnv struct {
	t        *testing.T
	env      []string
	modcache string
}

func newGoEnv(t *testing.T, u *Upstream, gosumdb string) *goEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go command")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	// Keep the ambient build cache: it is content-addressed, and a cold
	// one would make every test compile the runtime.
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	home := t.TempDir()
	g := &goEnv{t: t, modcache: filepath.Join(home, "modcache")}
	g.env = append(os.Environ(),
		"GOPROXY="+u.URL,
		"GOSUMDB="+gosumdb,
		"GOFLAGS=-mod=mod",
		"GOMODCACHE="+g.modcache,
		"GOPATH="+filepath.Join(home, "gopath"), // holds the sumdb's cached tree
		"GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOTOOLCHAIN=local", "GOWORK=off", "GOENV=off",
		"HOME="+home,
		"GOCACHE="+strings.TrimSpace(string(gocache)),
	)
	t.Cleanup(func() {
		// The module cache is read-only; make it removable by t.TempDir.
		filepath.WalkDir(g.modcache, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return g
}

func (g *goEnv) run(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, g.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mainModule writes a main module requiring one module and importing its
// package.
func mainModule(t *testing.T, path, version string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/main\n\ngo 1.21\n\nrequire " + path + " " + version + "\n",
		"main.go": "package main\n\nimport _ \"" + path + "\"\n\nfunc main() {}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestGoBuild(t *testing.T) {
	for _, tt := range []struct {
		name     string
		gosumdb  func(*Upstream) string
		viaProxy bool // whether the go command asks GOPROXY/sumdb/<name>/supported
	}{
		{"key only, through GOPROXY", func(u *Upstream) string { return u.VerifierKey }, true},
		{"key and URL", func(u *Upstream) string { return u.VerifierKey + " " + u.SumDBURL }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := New(t, graph()...)
			g := newGoEnv(t, u, tt.gosumdb(u))
			dir := mainModule(t, "example.com/a", "v1.0.0")
			if out, err := g.run(dir, "build", "./..."); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"example.com/a", "example.com/b"} {
				if want := u.GoSum(m, "v1.0.0"); !strings.Contains(string(sum), want) {
					t.Errorf("go.sum lacks\n%s\ngot\n%s", want, sum)
				}
			}
			if n := u.Requests("/sumdb/" + u.SumDBName + "/supported"); (n > 0) != tt.viaProxy {
				t.Errorf("%d requests for sumdb/supported, want them iff through GOPROXY", n)
			}
			if n := u.Requests("/lookup/example.com/b@v1.0.0"); n != 1 {
				t.Errorf("%d sumdb lookups of b, want 1", n)
			}
			if n := u.Requests("/example.com/b/@v/v1.0.0.zip"); n != 1 {
				t.Errorf("%d downloads of b's zip, want 1", n)
			}
		})
	}
}

func TestGoTampered(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tamper func(*Upstream)
		want   string
		line   int // line of GoSum holding the hash the sumdb must report
	}{
		{"zip", func(u *Upstream) {
			u.TamperZip("example.com/b", "v1.0.0", map[string]string{
				"go.mod": "module example.com/b\n\ngo 1.21\n",
				"b.go":   "package b\n\nfunc Name() string { return \"evil\" }\n",
			})
		}, "example.com/b@v1.0.0: verifying module: checksum mismatch", 0},
		{"mod", func(u *Upstream) {
			u.TamperMod("example.com/b", "v1.0.0", "module example.com/b\n\ngo 1.22\n")
		}, "example.com/b@v1.0.0: verifying go.mod: checksum mismatch", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := New(t, graph()...)
			tt.tamper(u)
			g := newGoEnv(t, u, u.VerifierKey)
			out, err := g.run(mainModule(t, "example.com/a", "v1.0.0"), "build", "./...")
			if err == nil {
				t.Fatalf("go build of a tampered module succeeded:\n%s", out)
			}
			recorded := strings.Fields(strings.Split(u.GoSum("example.com/b", "v1.0.0"), "\n")[tt.line])[2]
			for _, want := range []string{tt.want, u.SumDBName + ": " + recorded, "SECURITY ERROR"} {
				if !strings.Contains(out, want) {
					t.Errorf("go output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestGoDetectsForkedSumDB(t *testing.T) {
	u := New(t, graph()...)
	g := newGoEnv(t, u, u.VerifierKey)
	if out, err := g.run(mainModule(t, "example.com/a", "v1.0.0"), "build", "./..."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The go command cached the signed tree holding a and b. Rewrite b's
	// record; the next lookup (of c) shows a tree that does not extend it.
	u.ForkSumDB("example.com/b", "v1.0.0", map[string]string{
		"go.mod": "module example.com/b\n\ngo 1.21\n",
		"b.go":   "package b\n\nfunc Name() string { return \"evil\" }\n",
	})
	out, err := g.run(mainModule(t, "example.com/c", "v1.0.0"), "build", "./...")
	if err == nil {
		t.Fatalf("go build against a forked sumdb succeeded:\n%s", out)
	}
	if !strings.Contains(out, "SECURITY ERROR") || !strings.Contains(out, "misbehavior") {
		t.Errorf("go output does not report the fork:\n%s", out)
	}

	// A client that never saw the original log is fooled: that is what
	// makes the fork an attack worth detecting.
	fresh := newGoEnv(t, u, u.VerifierKey)
	if out, err := fresh.run(mainModule(t, "example.com/c", "v1.0.0"), "build", "./..."); err != nil {
		t.Errorf("fresh client against the fork: %v\n%s", err, out)
	}
}
