package airlock_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The layers, kept honest: storage and evidence never depend on HTTP, the
// ecosystem fronts never depend on each other, and nothing below cmd
// depends on cmd.
func TestDependencyLayers(t *testing.T) {
	const mod = "github.com/airlock-proxy/airlock/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	fronts := []string{"proxy/gomod", "proxy/npm", "proxy/oci"}
	rules := []struct {
		pkg    string   // package prefix the rule applies to
		forbid []string // import prefixes it must not have
	}{
		{"verify", []string{"proxy", "cache", "cmd", "config"}},
		{"cache", []string{"proxy", "cmd", "config"}},
		{"config", []string{"proxy", "cache", "verify", "cmd"}},
		{"proxy", []string{"cmd"}},
		{"proxy/metrics", []string{"proxy/gomod", "proxy/npm", "proxy/oci", "proxy/admin", "cache", "verify"}},
	}
	for _, f := range fronts {
		var others []string
		for _, o := range fronts {
			if o != f {
				others = append(others, o)
			}
		}
		rules = append(rules, struct {
			pkg    string
			forbid []string
		}{f, append(others, "proxy/admin")})
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, r := range rules {
			if pkg != r.pkg && !strings.HasPrefix(pkg, r.pkg+"/") {
				continue
			}
			checked++
			for _, imp := range fields[1:] {
				rel, ok := strings.CutPrefix(imp, mod)
				if !ok {
					continue
				}
				for _, bad := range r.forbid {
					if rel == bad || strings.HasPrefix(rel, bad+"/") {
						// A subpackage of the package itself is fine.
						if strings.HasPrefix(rel, r.pkg+"/") {
							continue
						}
						t.Errorf("%s imports %s: forbidden by the layering", pkg, rel)
					}
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages checked; the rules no longer match the tree", checked)
	}
}
