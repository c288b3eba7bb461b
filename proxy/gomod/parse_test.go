package gomod

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in                  string
		status              int
		path, kind, version string
	}{
		{"github.com/!azure/sdk/@v/list", 0, "github.com/Azure/sdk", "list", ""},
		{"github.com/x/y/@latest", 0, "github.com/x/y", "latest", ""},
		{"github.com/x/y/@v/v1.2.3.info", 0, "github.com/x/y", "info", "v1.2.3"},
		{"github.com/x/y/@v/master.info", 0, "github.com/x/y", "info", "master"},
		{"github.com/x/y/@v/v1.2.3.mod", 0, "github.com/x/y", "mod", "v1.2.3"},
		{"github.com/x/y/v2/@v/v2.0.0.zip", 0, "github.com/x/y/v2", "zip", "v2.0.0"},
		{"github.com/x/y/@v/v1.0.0-20200101000000-abcdefabcdef.zip", 0, "github.com/x/y", "zip", "v1.0.0-20200101000000-abcdefabcdef"},
		{"github.com/x/y/@v/v2.0.0+incompatible.zip", 0, "github.com/x/y", "zip", "v2.0.0+incompatible"},
		{"github.com/x/y/@v/v1.0.0-!r!c1.zip", 0, "github.com/x/y", "zip", "v1.0.0-RC1"},
		{"github.com/X/y/@v/list", http.StatusBadRequest, "", "", ""},
		{"github.com/x/y/@v/v1.2.zip", http.StatusBadRequest, "", "", ""},
		{"github.com/x/y/v2/@v/v1.0.0.zip", http.StatusBadRequest, "", "", ""},
		{"github.com/x/y/@v/v1.2.3.tar", http.StatusNotFound, "", "", ""},
		{"github.com/x/y/@v/a/b.zip", http.StatusNotFound, "", "", ""},
		{"github.com/x/y/@v/.zip", http.StatusNotFound, "", "", ""},
		{"github.com/x/y", http.StatusNotFound, "", "", ""},
		{"../etc/@v/list", http.StatusBadRequest, "", "", ""},
		{"/abs/@v/list", http.StatusBadRequest, "", "", ""},
		{"github.com/x/y/@v/ma ster.info", http.StatusBadRequest, "", "", ""},
	}
	for _, tt := range tests {
		req, status, msg := parse(tt.in)
		if status != tt.status {
			t.Errorf("parse(%q) status = %d (%s), want %d", tt.in, status, msg, tt.status)
			continue
		}
		if status != 0 {
			if !strings.HasPrefix(msg, "airlock: ") {
				t.Errorf("parse(%q) message %q lacks the airlock: prefix", tt.in, msg)
			}
			continue
		}
		if req.path != tt.path || req.kind != tt.kind || req.version != tt.version {
			t.Errorf("parse(%q) = %+v, want %s %s %s", tt.in, req, tt.path, tt.kind, tt.version)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"github.com/x/y/@v/list", "github.com/!x/y/@v/v1.0.0-!r!c1.zip", "a/@latest", "x/@v/v1.0.0.info", "sumdb/x", "../@v/v1.0.0.mod"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req, status, _ := parse(p)
		if status != 0 {
			return
		}
		// Whatever parses is a valid module path, and content requests
		// name a canonical version: safe to use as a storage key.
		if err := module.CheckPath(req.path); err != nil {
			t.Fatalf("parse(%q) accepted invalid path %q: %v", p, req.path, err)
		}
		if (req.kind == "mod" || req.kind == "zip") && module.CanonicalVersion(req.version) != req.version {
			t.Fatalf("parse(%q) accepted non-canonical %q", p, req.version)
		}
		// No element walks out of a directory ("a..b" is a name like any
		// other, and valid for module.CheckPath).
		if strings.HasPrefix(req.path, "/") || slices.ContainsFunc(strings.Split(req.path, "/"), func(e string) bool { return e == "." || e == ".." || e == "" }) {
			t.Fatalf("parse(%q) accepted %q", p, req.path)
		}
	})
}

func TestNewest(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"v1.0.0", "v1.2.0", "v1.10.0", "v2.0.0-rc1"}, "v1.10.0"},
		{[]string{"v2.0.0-rc1", "v2.0.0-beta"}, "v2.0.0-rc1"},
		{[]string{"v0.1.0"}, "v0.1.0"},
	}
	for _, tt := range tests {
		if got := newest(tt.in); got != tt.want {
			t.Errorf("newest(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
