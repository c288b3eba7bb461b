package osv

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify"
)

// rec builds a record file. affected is the JSON of the affected array.
func rec(id, modified, affected string, extra ...string) string {
	s := fmt.Sprintf(`{"id":%q,"modified":%q,"summary":"test %s","affected":%s`, id, modified, id, affected)
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

func npmAff(name, body string) string {
	return fmt.Sprintf(`[{"package":{"ecosystem":"npm","name":%q},%s}]`, name, body)
}

func goAff(name, body string) string {
	return fmt.Sprintf(`[{"package":{"ecosystem":"Go","name":%q},%s}]`, name, body)
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, path string) *Feed {
	t.Helper()
	f, err := Load(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return f
}

func ids(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestMatch(t *testing.T) {
	const mod = "2025-01-01T00:00:00Z"
	files := map[string]string{
		"exact.json":  rec("MAL-1", mod, npmAff("exact", `"versions":["1.0.0","2.0.0-beta.1"]`)),
		"all.json":    rec("MAL-2", mod, npmAff("all", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`)),
		"fixed.json":  rec("MAL-3", mod, npmAff("fixed", `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.2.0"},{"fixed":"1.4.0"}]}]`)),
		"pre.json":    rec("MAL-4", mod, npmAff("pre", `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0.0-rc.1"},{"fixed":"2.0.0"}]}]`)),
		"last.json":   rec("MAL-5", mod, npmAff("last", `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"last_affected":"1.3.0"}]}]`)),
		"limit.json":  rec("MAL-6", mod, npmAff("limit", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"3.0.0"}]}]`)),
		"multi.json":  rec("MAL-7", mod, npmAff("multi", `"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0"},{"fixed":"1.1.0"},{"introduced":"2.0.0"},{"fixed":"2.1.0"}]}]`)),
		"unsort.json": rec("MAL-8", mod, npmAff("unsorted", `"ranges":[{"type":"SEMVER","events":[{"fixed":"1.1.0"},{"introduced":"1.0.0"}]}]`)),
		"git.json":    rec("MAL-9", mod, npmAff("git", `"ranges":[{"type":"GIT","repo":"https://example.com/x","events":[{"introduced":"0"}]}]`)),
		"case.json":   rec("MAL-10", mod, npmAff("JSONStream", `"versions":["1.0.0"]`)),
		"scoped.json": rec("MAL-11", mod, npmAff("@scope/pkg", `"versions":["1.0.0"]`)),
		"gonov.json":  rec("MAL-20", mod, goAff("example.com/nov", `"versions":["1.2.3"],"ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0"},{"fixed":"2.1.0"}]}]`)),
		"gov.json":    rec("MAL-21", mod, goAff("example.com/v", `"versions":["v1.2.3"],"ranges":[{"type":"SEMVER","events":[{"introduced":"v2.0.0"},{"fixed":"v2.1.0"}]}]`)),
		"goall.json":  rec("MAL-22", mod, goAff("example.com/all", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]`)),
		"gopseudo.json": rec("MAL-23", mod, goAff("example.com/pseudo",
			`"ranges":[{"type":"SEMVER","events":[{"introduced":"0.0.0-20240101000000-abcdefabcdef"},{"fixed":"0.1.0"}]}]`)),
		"other.json": rec("MAL-30", mod, `[{"package":{"ecosystem":"PyPI","name":"exact"},"versions":["1.0.0"]}]`),
	}
	f := load(t, writeTree(t, files))
	if f.Skipped() != 0 {
		t.Fatalf("Skipped = %d, want 0", f.Skipped())
	}
	tests := []struct {
		eco     verify.Ecosystem
		name    string
		version string
		want    []string
	}{
		{verify.NPM, "exact", "1.0.0", []string{"MAL-1"}},
		{verify.NPM, "exact", "2.0.0-beta.1", []string{"MAL-1"}},
		{verify.NPM, "exact", "1.0.1", nil},
		{verify.NPM, "exact", "2.0.0", nil},
		{verify.NPM, "exact", "1.0.0+build", nil}, // versions[] is exact
		{verify.NPM, "all", "0.0.1", []string{"MAL-2"}},
		{verify.NPM, "all", "99.0.0-alpha", []string{"MAL-2"}},
		{verify.NPM, "all", "not-a-version", []string{"MAL-2"}}, // "0" with nothing closing covers it
		{verify.NPM, "fixed", "1.1.9", nil},
		{verify.NPM, "fixed", "1.2.0-rc.1", nil}, // a prerelease of the introduced version precedes it
		{verify.NPM, "fixed", "1.2.0", []string{"MAL-3"}},
		{verify.NPM, "fixed", "1.3.9", []string{"MAL-3"}},
		{verify.NPM, "fixed", "1.4.0-beta", []string{"MAL-3"}}, // a prerelease of fixed is still before it
		{verify.NPM, "fixed", "1.4.0", nil},
		{verify.NPM, "fixed", "1.10.0", nil}, // numeric, not lexical
		{verify.NPM, "fixed", "garbage", nil},
		{verify.NPM, "pre", "2.0.0-beta.9", nil},
		{verify.NPM, "pre", "2.0.0-rc.1", []string{"MAL-4"}},
		{verify.NPM, "pre", "2.0.0-rc.10", []string{"MAL-4"}}, // numeric identifiers compare numerically
		{verify.NPM, "pre", "2.0.0-rc.2", []string{"MAL-4"}},
		{verify.NPM, "pre", "2.0.0", nil},
		{verify.NPM, "last", "1.3.0", []string{"MAL-5"}},
		{verify.NPM, "last", "1.3.0+meta", []string{"MAL-5"}}, // build metadata has no precedence
		{verify.NPM, "last", "1.3.1-alpha", nil},
		{verify.NPM, "last", "0.9.0", nil},
		{verify.NPM, "limit", "2.9.9", []string{"MAL-6"}},
		{verify.NPM, "limit", "3.0.0", nil},
		{verify.NPM, "limit", "3.0.0-alpha", []string{"MAL-6"}},
		{verify.NPM, "multi", "1.0.5", []string{"MAL-7"}},
		{verify.NPM, "multi", "1.5.0", nil},
		{verify.NPM, "multi", "2.0.0", []string{"MAL-7"}},
		{verify.NPM, "multi", "2.1.0", nil},
		{verify.NPM, "unsorted", "1.0.0", []string{"MAL-8"}},
		{verify.NPM, "unsorted", "1.1.0", nil},
		{verify.NPM, "git", "1.0.0", nil}, // GIT ranges name commits
		{verify.NPM, "JSONStream", "1.0.0", []string{"MAL-10"}},
		{verify.NPM, "jsonstream", "1.0.0", nil}, // npm names are case-sensitive
		{verify.NPM, "@scope/pkg", "1.0.0", []string{"MAL-11"}},
		{verify.NPM, "pkg", "1.0.0", nil},
		{verify.Go, "example.com/nov", "v1.2.3", []string{"MAL-20"}},
		{verify.Go, "example.com/nov", "1.2.3", []string{"MAL-20"}},
		{verify.Go, "example.com/nov", "v1.2.4", nil},
		{verify.Go, "example.com/nov", "v2.0.5", []string{"MAL-20"}},
		{verify.Go, "example.com/nov", "v2.1.0", nil},
		{verify.Go, "example.com/v", "v1.2.3", []string{"MAL-21"}},
		{verify.Go, "example.com/v", "v2.0.0", []string{"MAL-21"}},
		{verify.Go, "example.com/v", "v2.1.0", nil},
		{verify.Go, "example.com/all", "v0.0.0-20200101000000-000000000000", []string{"MAL-22"}},
		{verify.Go, "example.com/all", "v3.0.0+incompatible", []string{"MAL-22"}},
		{verify.Go, "example.com/All", "v1.0.0", nil}, // module paths compare exactly
		{verify.Go, "example.com/pseudo", "v0.0.0-20240202000000-abcdefabcdef", []string{"MAL-23"}},
		{verify.Go, "example.com/pseudo", "v0.0.0-20231231000000-abcdefabcdef", nil},
		{verify.Go, "example.com/pseudo", "v0.1.0", nil},
		{verify.NPM, "example.com/all", "1.0.0", nil}, // ecosystems do not mix
		{verify.OCI, "exact", "1.0.0", nil},
	}
	for _, tt := range tests {
		a := verify.Artifact{Ecosystem: tt.eco, Name: tt.name, Version: tt.version}
		if got := ids(f.Match(a)); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s) = %v, want %v", a, got, tt.want)
		}
	}
}

func TestWithdrawnAndDuplicates(t *testing.T) {
	aff := npmAff("pkg", `"versions":["1.0.0"]`)
	files := map[string]string{
		// A withdrawn field suppresses the record wherever it lies.
		"osv/malicious/npm/w/MAL-1.json": rec("MAL-1", "2025-01-01T00:00:00Z", npmAff("w", `"versions":["1.0.0"]`), `"withdrawn":"2025-01-02T00:00:00Z"`),
		// The withdrawn tree suppresses it even without the field.
		"osv/withdrawn/npm/@s/t/MAL-2.json": rec("MAL-2", "2025-01-01T00:00:00Z", npmAff("@s/t", `"versions":["1.0.0"]`)),
		// A package that is merely called "withdrawn" is not withdrawn.
		"osv/malicious/npm/withdrawn/MAL-3.json":                rec("MAL-3", "2025-01-01T00:00:00Z", npmAff("withdrawn", `"versions":["1.0.0"]`)),
		"osv/malicious/go/example.com/withdrawn/npm/MAL-4.json": rec("MAL-4", "2025-01-01T00:00:00Z", goAff("example.com/withdrawn/npm", `"versions":["v1.0.0"]`)),
		// Same id twice: the later modified wins, wherever it is walked.
		"a/MAL-5.json": rec("MAL-5", "2025-03-01T00:00:00Z", npmAff("dup", `"versions":["2.0.0"]`)),
		"b/MAL-5.json": rec("MAL-5", "2025-02-01T00:00:00Z", npmAff("dup", `"versions":["1.0.0"]`)),
		// A newer withdrawn copy beats an older live one…
		"osv/malicious/npm/pkg/MAL-6.json": rec("MAL-6", "2025-01-01T00:00:00Z", aff),
		"osv/withdrawn/npm/pkg/MAL-6.json": rec("MAL-6", "2025-01-05T00:00:00Z", aff, `"withdrawn":"2025-01-05T00:00:00Z"`),
		// …an older withdrawn copy does not beat a newer live one (unwithdrawn)…
		"osv/malicious/npm/pkg/MAL-7.json": rec("MAL-7", "2025-02-01T00:00:00Z", aff),
		"x/withdrawn/npm/pkg/MAL-7.json":   rec("MAL-7", "2025-01-05T00:00:00Z", aff, `"withdrawn":"2025-01-05T00:00:00Z"`),
		// …and on a tie the withdrawn copy wins.
		"osv/malicious/npm/pkg/MAL-8.json": rec("MAL-8", "2025-01-01T00:00:00Z", aff),
		"z/withdrawn/npm/pkg/MAL-8.json":   rec("MAL-8", "2025-01-01T00:00:00Z", aff),
	}
	f := load(t, writeTree(t, files))
	tests := []struct {
		eco           verify.Ecosystem
		name, version string
		want          []string
	}{
		{verify.NPM, "w", "1.0.0", nil},
		{verify.NPM, "@s/t", "1.0.0", nil},
		{verify.NPM, "withdrawn", "1.0.0", []string{"MAL-3"}},
		{verify.Go, "example.com/withdrawn/npm", "v1.0.0", []string{"MAL-4"}},
		{verify.NPM, "dup", "2.0.0", []string{"MAL-5"}},
		{verify.NPM, "dup", "1.0.0", nil},
		{verify.NPM, "pkg", "1.0.0", []string{"MAL-7"}},
	}
	for _, tt := range tests {
		a := verify.Artifact{Ecosystem: tt.eco, Name: tt.name, Version: tt.version}
		if got := ids(f.Match(a)); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s) = %v, want %v", a, got, tt.want)
		}
	}
	if got, want := f.Len(), 4; got != want { // MAL-3, 4, 5, 7
		t.Errorf("Len = %d, want %d", got, want)
	}
	if got := f.Affected(verify.NPM); !slices.Equal(got, []string{"dup", "pkg", "withdrawn"}) {
		t.Errorf("Affected(npm) = %v", got)
	}
}

func TestMalwareFlag(t *testing.T) {
	const mod = "2025-01-01T00:00:00Z"
	aff := npmAff("p", `"versions":["1.0.0"]`)
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"MAL id", rec("MAL-2025-1", mod, aff), true},
		{"GHSA vulnerability", rec("GHSA-aaaa-bbbb-cccc", mod, aff, `"database_specific":{"cwe_ids":["CWE-79"],"severity":"HIGH"}`), false},
		{"GHSA CWE-506", rec("GHSA-aaaa-bbbb-cccc", mod, aff, `"database_specific":{"cwe_ids":["CWE-94","CWE-506"]}`), true},
		{"affected cwes", rec("GHSA-aaaa-bbbb-cccc", mod, npmAff("p", `"versions":["1.0.0"],"database_specific":{"cwes":[{"cweId":"CWE-506"}]}`)), true},
		{"summary alone", `{"id":"GHSA-aaaa-bbbb-cccc","modified":"` + mod + `","summary":"Malware in p","affected":` + aff + `}`, false},
		{"odd database_specific", rec("GHSA-aaaa-bbbb-cccc", mod, aff, `"database_specific":{"cwe_ids":"CWE-506"}`), false},
		{"database_specific not an object", rec("GHSA-aaaa-bbbb-cccc", mod, aff, `"database_specific":[1,2]`), false},
		{"lowercase mal", rec("mal-2025-1", mod, aff), false},
	}
	for _, tt := range tests {
		r, err := Parse([]byte(tt.data))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r.Malware != tt.want {
			t.Errorf("%s: Malware = %v, want %v", tt.name, r.Malware, tt.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	const mod = `"modified":"2025-01-01T00:00:00Z"`
	tests := []string{
		``,
		`{`,
		`[]`,
		`null`,
		`{"id":"MAL-1"}`,                        // no modified
		`{"id":"",` + mod + `}`,                 // empty id
		`{"id":"MAL-1","modified":"yesterday"}`, // bad time
		`{"id":"MAL-1",` + mod + `,"withdrawn":"soon"}`,        // bad withdrawn
		`{"id":"MAL-\n1",` + mod + `}`,                         // control character
		`{"id":"MAL-1",` + mod + `}{"id":"MAL-2",` + mod + `}`, // two records
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm"}}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"versions":[""]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"RANGE","events":[{"introduced":"0"}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0.0"}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1.0.0"}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"},{"last_affected":"2.0.0"}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0"}]}]}]}`,    // npm has no shorthand
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"v1.0.0"}]}]}]}`, // nor a v
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"Go","name":"m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"latest"}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":"npm"}`,
	}
	for _, data := range tests {
		if r, err := Parse([]byte(data)); err == nil {
			t.Errorf("Parse(%s) = %+v, want an error", data, r)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%s): %v does not wrap ErrInvalid", data, err)
		}
	}
	// Other ecosystems' bounds are not ours to judge, and GIT bounds are commits.
	for _, data := range []string{
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"PyPI","name":"p"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"GIT","events":[{"introduced":"abc123"}]}]}]}`,
		`{"id":"MAL-1",` + mod + `,"affected":[{"ranges":[{"type":"GIT","repo":"https://x","events":[{"introduced":"abc123"}]}]}]}`,
	} {
		if _, err := Parse([]byte(data)); err != nil {
			t.Errorf("Parse(%s): %v", data, err)
		}
	}
}

func TestSkipsMalformed(t *testing.T) {
	files := map[string]string{
		"good.json":           rec("MAL-1", "2025-01-01T00:00:00Z", npmAff("p", `"versions":["1.0.0"]`)),
		"truncated.json":      `{"id":"MAL-2","modified":"2025-01-01T00:00:00Z","affected":[`,
		"empty.json":          ``,
		"binary.json":         "\x00\x01\x02",
		"README.md":           "not a record, not counted",
		".git/objects/x.json": "hidden directories are not entered",
		"big.json":            strings.Repeat(" ", MaxFileSize+1),
	}
	dir := writeTree(t, files)
	if err := os.Symlink(filepath.Join(dir, "good.json"), filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	f, err := Load(context.Background(), dir, Options{Log: slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Skipped(), 5; got != want { // truncated, empty, binary, big, link
		t.Errorf("Skipped = %d, want %d; log:\n%s", got, want, &logs)
	}
	if f.Len() != 1 || len(f.Match(verify.Artifact{Ecosystem: verify.NPM, Name: "p", Version: "1.0.0"})) != 1 {
		t.Errorf("good record lost: Len = %d", f.Len())
	}
	if !strings.Contains(logs.String(), "truncated.json") {
		t.Errorf("no warning names the bad file:\n%s", &logs)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Load(ctx, filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Error("Load of a missing path succeeded")
	}
	notZip := filepath.Join(t.TempDir(), "feed.zip")
	os.WriteFile(notZip, []byte("not a zip"), 0o644)
	if _, err := Load(ctx, notZip, Options{}); err == nil {
		t.Error("Load of a corrupt zip succeeded")
	}
	dir := writeTree(t, map[string]string{"a.json": rec("MAL-1", "2025-01-01T00:00:00Z", `[]`)})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Load(cancelled, dir, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context: %v", err)
	}
	many := writeTree(t, map[string]string{"a.json": "{}", "b.json": "{}", "c.json": "{}"})
	if _, err := Load(ctx, many, Options{MaxFiles: 2}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Load over MaxFiles: %v", err)
	}
	big := writeTree(t, map[string]string{"a.json": strings.Repeat(" ", 600), "b.json": strings.Repeat(" ", 600)})
	if _, err := Load(ctx, big, Options{MaxTotal: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Load over MaxTotal: %v", err)
	}
	single := filepath.Join(dir, "a.json")
	if f, err := Load(ctx, single, Options{}); err != nil || f.Len() != 1 {
		t.Errorf("Load of a single record: %v", err)
	}
}

type zipEntry struct {
	name string
	data []byte
	// declared overrides the uncompressed size written in the headers.
	declared uint64
}

// makeZip writes entries deflated by hand, so that headers can lie about
// sizes as a zip bomb's do.
func makeZip(t *testing.T, entries []zipEntry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(e.data)
		fw.Close()
		size := uint64(len(e.data))
		if e.declared != 0 {
			size = e.declared
		}
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name:               e.name,
			Method:             zip.Deflate,
			CRC32:              crc32.ChecksumIEEE(e.data),
			CompressedSize64:   uint64(comp.Len()),
			UncompressedSize64: size,
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "feed.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestZip(t *testing.T) {
	good := []byte(rec("MAL-1", "2025-01-01T00:00:00Z", npmAff("p", `"versions":["1.0.0"]`)))
	withdrawn := []byte(rec("MAL-2", "2025-01-01T00:00:00Z", npmAff("q", `"versions":["1.0.0"]`)))
	p := makeZip(t, []zipEntry{
		{name: "malicious-packages-main/osv/malicious/npm/p/MAL-1.json", data: good},
		{name: "malicious-packages-main/osv/withdrawn/npm/q/MAL-2.json", data: withdrawn},
		{name: "malicious-packages-main/README.md", data: []byte("# not a record")},
		{name: "malicious-packages-main/osv/bad.json", data: []byte("{")},
	})
	f := load(t, p)
	if f.Len() != 1 || f.Skipped() != 1 {
		t.Errorf("Len = %d, Skipped = %d; want 1, 1", f.Len(), f.Skipped())
	}
	got := f.Match(verify.Artifact{Ecosystem: verify.NPM, Name: "p", Version: "1.0.0"})
	if len(got) != 1 || got[0].Source != "malicious-packages-main/osv/malicious/npm/p/MAL-1.json" {
		t.Errorf("Match = %+v", got)
	}
	if got := f.Match(verify.Artifact{Ecosystem: verify.NPM, Name: "q", Version: "1.0.0"}); got != nil {
		t.Errorf("withdrawn record in a zip matched: %v", ids(got))
	}
}

// TestZipBomb: entries whose headers claim a few bytes but which inflate
// to far more than MaxFileSize are cut off after MaxFileSize+1 bytes and
// skipped; nothing close to their real size is allocated.
func TestZipBomb(t *testing.T) {
	const inflated = 64 << 20
	bomb := make([]byte, inflated) // zeros compress about 1000:1
	big := append([]byte(rec("MAL-3", "2025-01-01T00:00:00Z", npmAff("big", `"versions":["1.0.0"]`))), bytes.Repeat([]byte(" "), 2<<20)...)
	p := makeZip(t, []zipEntry{
		{name: "bomb.json", data: bomb, declared: 100},
		{name: "honest-big.json", data: big},                // declares 2 MiB: skipped unread
		{name: "lying-big.json", data: big, declared: 1000}, // valid JSON, but over the limit
		{name: "good.json", data: []byte(rec("MAL-1", "2025-01-01T00:00:00Z", npmAff("p", `"versions":["1.0.0"]`)))},
	})
	bomb = nil
	big = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := Load(context.Background(), p, Options{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if f.Skipped() != 3 || f.Len() != 1 {
		t.Errorf("Skipped = %d, Len = %d; want 3, 1", f.Skipped(), f.Len())
	}
	if f.Match(verify.Artifact{Ecosystem: verify.NPM, Name: "big", Version: "1.0.0"}) != nil {
		t.Error("a record over MaxFileSize was loaded")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("Load allocated %d MiB for a feed whose entries inflate to %d MiB", alloc>>20, inflated>>20)
	}

	// Many entries, each under the per-file limit, together over MaxTotal:
	// refused, not truncated. (archive/zip itself stops an entry at its
	// declared size, so these declare honestly.)
	chunk := bytes.Repeat([]byte(" "), 512<<10)
	var entries []zipEntry
	for i := range 8 {
		entries = append(entries, zipEntry{name: fmt.Sprintf("%d.json", i), data: chunk})
	}
	if _, err := Load(context.Background(), makeZip(t, entries), Options{MaxTotal: 2 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Load over MaxTotal: %v", err)
	}
}

func TestFinding(t *testing.T) {
	f := load(t, "testdata/real")
	a := verify.Artifact{Ecosystem: verify.NPM, Name: "chalk", Version: "5.6.1"}
	rs := f.Match(a)
	if len(rs) != 1 {
		t.Fatalf("Match(%s) = %v", a, ids(rs))
	}
	got := f.Finding(rs[0], a)
	want := verify.Finding{
		Check:   "known-malicious",
		Message: "npm:chalk@5.6.1 is known malicious: MAL-2025-46969: Malicious code in chalk (npm)",
		Evidence: map[string]string{
			"id":       "MAL-2025-46969",
			"aliases":  "GHSA-2v46-p5h4-248w",
			"source":   "osv/malicious/npm/chalk/MAL-2025-46969.json",
			"modified": "2025-09-12T01:13:34Z",
		},
	}
	if got.Check != want.Check || got.Message != want.Message || fmt.Sprint(got.Evidence) != fmt.Sprint(want.Evidence) {
		t.Errorf("Finding =\n%+v\nwant\n%+v", got, want)
	}
	// Feed text cannot break the message onto several lines.
	r := Record{ID: "MAL-1", Summary: "line one\n\tline two\x1b[31m" + strings.Repeat("x", 500)}
	msg := f.Finding(r, a).Message
	if strings.ContainsAny(msg, "\n\t\x1b") || len(msg) > 300 {
		t.Errorf("Finding message not cleaned: %q", msg)
	}
}

// TestReal loads records copied from ossf/malicious-packages and
// github/advisory-database (see testdata/README.md).
func TestReal(t *testing.T) {
	f := load(t, "testdata/real")
	// The MAL-0000 interim file has an empty id.
	if f.Skipped() != 1 {
		t.Errorf("Skipped = %d, want 1", f.Skipped())
	}
	tests := []struct {
		eco           verify.Ecosystem
		name, version string
		want          []string
	}{
		// The 2025-09-08 compromise of chalk and debug: one version each.
		{verify.NPM, "chalk", "5.6.1", []string{"MAL-2025-46969"}},
		{verify.NPM, "chalk", "5.6.0", nil},
		{verify.NPM, "chalk", "5.6.2", nil},
		{verify.NPM, "debug", "4.4.2", []string{"MAL-2025-46974"}},
		{verify.NPM, "debug", "4.4.1", nil},
		{verify.NPM, "debug", "4.4.3", nil},
		// A typosquat: every version.
		{verify.Go, "github.com/boltdb-go/bolt", "v1.3.1", []string{"MAL-2025-2545"}},
		{verify.Go, "github.com/boltdb-go/bolt", "v0.0.0-20240101000000-000000000000", []string{"MAL-2025-2545"}},
		{verify.Go, "github.com/boltdb/bolt", "v1.3.1", nil},
		// Withdrawn by malicious-packages.
		{verify.NPM, "@ctrl/plex", "6.0.0", nil},
		// GitHub's event-stream advisory, CWE-506: a range with versions[]
		// for event-stream and every version of flatmap-stream.
		{verify.NPM, "event-stream", "3.3.6", []string{"GHSA-mh6f-8j2x-4483"}},
		{verify.NPM, "event-stream", "3.3.5", nil},
		{verify.NPM, "event-stream", "4.0.0", nil},
		{verify.NPM, "flatmap-stream", "0.1.1", []string{"GHSA-mh6f-8j2x-4483"}},
		// An ordinary vulnerability is not malware.
		{verify.NPM, "lodash", "4.17.20", nil},
	}
	for _, tt := range tests {
		a := verify.Artifact{Ecosystem: tt.eco, Name: tt.name, Version: tt.version}
		if got := ids(f.Match(a)); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s) = %v, want %v", a, got, tt.want)
		}
	}
	if got := f.Affected(verify.Go); !slices.Equal(got, []string{"github.com/boltdb-go/bolt"}) {
		t.Errorf("Affected(go) = %v", got)
	}
	if got := f.Affected(verify.NPM); !slices.Equal(got, []string{"chalk", "debug", "event-stream", "flatmap-stream"}) {
		t.Errorf("Affected(npm) = %v", got)
	}
	lodash, err := os.ReadFile("testdata/real/ghsa/GHSA-35jh-r3h4-6jhm.json")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := Parse(lodash); err != nil || r.Malware {
		t.Errorf("lodash advisory: Malware = %v, err %v", r.Malware, err)
	}
}

// TestMatchReturnsCopies: the feed is immutable, whatever callers do with
// what Match returns.
func TestMatchReturnsCopies(t *testing.T) {
	f := load(t, "testdata/real")
	a := verify.Artifact{Ecosystem: verify.NPM, Name: "chalk", Version: "5.6.1"}
	r := f.Match(a)[0]
	r.Aliases[0] = "changed"
	r.Affected[0].Versions[0] = "0.0.0"
	if again := f.Match(a); len(again) != 1 || again[0].Aliases[0] != "GHSA-2v46-p5h4-248w" {
		t.Errorf("feed changed through a returned record: %+v", again)
	}
	names := f.Affected(verify.NPM)
	names[0] = "changed"
	if f.Affected(verify.NPM)[0] != "chalk" {
		t.Error("feed changed through Affected")
	}
}

func TestConcurrentMatch(t *testing.T) {
	f := load(t, "testdata/real")
	done := make(chan bool)
	for range 8 {
		go func() {
			for range 200 {
				f.Match(verify.Artifact{Ecosystem: verify.NPM, Name: "chalk", Version: "5.6.1"})
				f.Match(verify.Artifact{Ecosystem: verify.Go, Name: "github.com/boltdb-go/bolt", Version: "v1.0.0"})
				f.Affected(verify.NPM)
			}
			done <- true
		}()
	}
	for range 8 {
		<-done
	}
}

func TestNilFeed(t *testing.T) {
	var f *Feed
	if f.Match(verify.Artifact{Ecosystem: verify.NPM, Name: "chalk", Version: "5.6.1"}) != nil || f.Len() != 0 || f.Skipped() != 0 || f.Affected(verify.NPM) != nil {
		t.Error("nil feed is not empty")
	}
}

func TestFixes(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"GHSA-1.json": rec("GHSA-1", "2026-01-01T00:00:00Z", npmAff("lodash", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]`)),
		"GHSA-2.json": rec("GHSA-2", "2026-01-01T00:00:00Z", npmAff("lodash", `"ranges":[{"type":"SEMVER","events":[{"introduced":"4.0.0"},{"fixed":"4.17.21"}]}]`)),
		"GO-1.json":   rec("GO-2026-1", "2026-01-01T00:00:00Z", goAff("golang.org/x/net", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.38.0"}]}]`)),
		"GHSA-3.json": rec("GHSA-3", "2026-01-01T00:00:00Z", npmAff("left-pad", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]`), `"withdrawn":"2026-02-01T00:00:00Z"`),
		"MAL-1.json":  rec("MAL-2026-1", "2026-01-01T00:00:00Z", npmAff("evil", `"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"9.9.9"}]}]`)),
	})
	f := load(t, dir)
	tests := []struct {
		a    verify.Artifact
		want []string
	}{
		{verify.Artifact{Ecosystem: verify.NPM, Name: "lodash", Version: "4.17.21"}, []string{"GHSA-1", "GHSA-2"}},
		{verify.Artifact{Ecosystem: verify.NPM, Name: "lodash", Version: "4.17.20"}, nil},
		{verify.Artifact{Ecosystem: verify.Go, Name: "golang.org/x/net", Version: "v0.38.0"}, []string{"GO-2026-1"}},
		{verify.Artifact{Ecosystem: verify.NPM, Name: "left-pad", Version: "1.3.0"}, nil}, // withdrawn
		{verify.Artifact{Ecosystem: verify.NPM, Name: "evil", Version: "9.9.9"}, nil},     // malware is no advisory of a fix
	}
	for _, tt := range tests {
		if got := f.Fixes(tt.a); !slices.Equal(got, tt.want) {
			t.Errorf("Fixes(%s) = %v, want %v", tt.a, got, tt.want)
		}
	}
	var nilFeed *Feed
	if nilFeed.Fixes(tests[0].a) != nil {
		t.Error("nil feed")
	}
}
