package gomodtest

import (
	"archive/zip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get fetches u.URL+path, failing the test only on transport errors.
func get(t *testing.T, u *Upstream, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(u.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func TestProtocol(t *testing.T) {
	when := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	u := New(t,
		Module{Path: "example.com/Upper", Version: "v1.2.0", Time: when, Files: map[string]string{
			"go.mod": "module example.com/Upper\n", "x.go": "package x\n", "sub/y.go": "package sub\n",
		}},
		lib("example.com/Upper", "v1.10.0", ""),
		lib("example.com/Upper", "v2.0.0-rc.1+incompatible", ""),
		lib("example.com/Upper", "v0.0.0-20200101000000-abcdefabcdef", ""),
		lib("example.com/pre", "v0.1.0-alpha", ""),
	)
	for _, tt := range []struct {
		path string
		code int
		body string // exact, unless empty
	}{
		{"/example.com/!upper/@v/list", 200, "v1.2.0\nv1.10.0\nv2.0.0-rc.1+incompatible\n"},
		{"/example.com/!upper/@v/v1.2.0.info", 200, `{"Version":"v1.2.0","Time":"2023-05-06T07:08:09Z"}`},
		{"/example.com/!upper/@v/v1.2.0.mod", 200, "module example.com/Upper\n"},
		{"/example.com/!upper/@latest", 200, `{"Version":"v1.10.0","Time":"2020-01-01T00:00:00Z"}`},
		{"/example.com/pre/@latest", 200, `{"Version":"v0.1.0-alpha","Time":"2020-01-01T00:00:00Z"}`},
		{"/example.com/!upper/@v/v0.0.0-20200101000000-abcdefabcdef.info", 200, ""},
		{"/example.com/Upper/@v/list", 400, ""}, // unescaped upper case
		{"/example.com/!upper/@v/v9.9.9.zip", 404, ""},
		{"/example.com/!upper/@v/v1.2.0.exe", 404, ""},
		{"/example.com/nosuch/@v/list", 404, ""},
		{"/example.com/nosuch/@latest", 404, ""},
		{"/sumdb/" + u.SumDBName + "/supported", 200, ""},
		{"/sumdb/other.example/supported", 404, ""},
		{"/sumdb/" + u.SumDBName + "/lookup/example.com/nosuch@v1.0.0", 404, ""},
	} {
		code, body := get(t, u, tt.path)
		if code != tt.code || tt.body != "" && body != tt.body {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, code, body, tt.code, tt.body)
		}
	}

	// The zip is a module zip: files under path@version/, unescaped.
	code, body := get(t, u, "/example.com/!upper/@v/v1.2.0.zip")
	if code != 200 {
		t.Fatalf("zip: %d %s", code, body)
	}
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if got, want := strings.Join(names, " "), "example.com/Upper@v1.2.0/go.mod example.com/Upper@v1.2.0/sub/y.go example.com/Upper@v1.2.0/x.go"; got != want {
		t.Errorf("zip holds %s, want %s", got, want)
	}

	// The sumdb answers a signed record with the hashes GoSum reports.
	code, body = get(t, u, "/sumdb/"+u.SumDBName+"/lookup/example.com/!upper@v1.2.0")
	if code != 200 || !strings.Contains(body, u.GoSum("example.com/Upper", "v1.2.0")) || !strings.Contains(body, "— "+u.SumDBName+" ") {
		t.Errorf("lookup = %d %q, want a signed record of\n%s", code, body, u.GoSum("example.com/Upper", "v1.2.0"))
	}

	if n := u.Requests("/@v/v1.2.0.zip"); n != 1 {
		t.Errorf("Requests counted %d zip downloads, want 1", n)
	}

	// Versions added later are listed at once.
	u.Add(lib("example.com/Upper", "v1.11.0", ""))
	if _, body := get(t, u, "/example.com/!upper/@v/list"); !strings.Contains(body, "v1.11.0\n") {
		t.Errorf("list after Add = %q", body)
	}
}

func TestMisbehavior(t *testing.T) {
	u := New(t, graph()...)
	_, orig := get(t, u, "/example.com/b/@v/v1.0.0.zip")

	u.SetNotFoundStatus(http.StatusForbidden)
	if code, _ := get(t, u, "/example.com/nosuch/@v/list"); code != http.StatusForbidden {
		t.Errorf("unknown module with SetNotFoundStatus(403) = %d", code)
	}

	u.SetDown(true)
	for _, p := range []string{"/example.com/b/@v/list", "/sumdb/" + u.SumDBName + "/latest"} {
		if code, _ := get(t, u, p); code != http.StatusServiceUnavailable {
			t.Errorf("GET %s while down = %d, want 503", p, code)
		}
	}
	u.SetDown(false)

	u.SetDelay(200 * time.Millisecond)
	start := time.Now()
	if code, _ := get(t, u, "/example.com/b/@v/v1.0.0.zip"); code != 200 {
		t.Errorf("delayed zip = %d", code)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("zip answered after %v, want at least the 200ms delay", d)
	}
	u.SetDelay(0)

	u.TamperZip("example.com/b", "v1.0.0", map[string]string{"go.mod": "module example.com/b\n", "evil.go": "package b\n"})
	u.TamperMod("example.com/b", "v1.0.0", "module example.com/b\n// tampered\n")
	if _, body := get(t, u, "/example.com/b/@v/v1.0.0.zip"); body == orig || !strings.Contains(body, "evil.go") {
		t.Errorf("TamperZip did not change the zip served")
	}
	if _, body := get(t, u, "/example.com/b/@v/v1.0.0.mod"); !strings.Contains(body, "tampered") {
		t.Errorf(".mod after TamperMod = %q", body)
	}
	if _, body := get(t, u, "/sumdb/"+u.SumDBName+"/lookup/example.com/b@v1.0.0"); !strings.Contains(body, u.GoSum("example.com/b", "v1.0.0")) {
		t.Errorf("sumdb does not keep the original hashes after tampering:\n%s", body)
	}

	u.TruncateZip("example.com/c", "v1.0.0")
	resp, err := http.Get(u.URL + "/example.com/c/@v/v1.0.0.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != io.ErrUnexpectedEOF {
		t.Errorf("reading a truncated zip: err = %v, want unexpected EOF", err)
	}
}

func TestForkSumDBChangesTheRecord(t *testing.T) {
	u := New(t, graph()...)
	lookup := "/sumdb/" + u.SumDBName + "/lookup/example.com/b@v1.0.0"
	_, before := get(t, u, lookup)
	get(t, u, "/sumdb/"+u.SumDBName+"/lookup/example.com/c@v1.0.0")
	u.ForkSumDB("example.com/b", "v1.0.0", map[string]string{"go.mod": "module example.com/b\n", "evil.go": "package b\n"})

	_, after := get(t, u, lookup)
	if !strings.HasPrefix(before, "0\n") || !strings.HasPrefix(after, "0\n") {
		t.Errorf("b is no longer record 0 in the fork:\n%s\n%s", before, after)
	}
	if before == after || strings.Contains(after, u.GoSum("example.com/b", "v1.0.0")) {
		t.Errorf("the fork still records b's original hashes:\n%s", after)
	}
	// Same size as before: the fork replayed c too.
	_, latest := get(t, u, "/sumdb/"+u.SumDBName+"/latest")
	if lines := strings.Split(latest, "\n"); len(lines) < 2 || lines[1] != "2" {
		t.Errorf("forked tree = %q, want size 2", latest)
	}
}
