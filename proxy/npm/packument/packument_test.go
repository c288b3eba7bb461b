package packument

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func fixture(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/acme-widget.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parseFixture(t testing.TB) *Packument {
	t.Helper()
	p, err := Parse(fixture(t), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func hide(vs ...string) func(string) bool {
	return func(v string) bool { return slices.Contains(vs, v) }
}

func airlockURL(name string) func(string) string {
	return func(v string) string {
		base := name[strings.LastIndexByte(name, '/')+1:]
		return "http://airlock:8080/prefix/npm/" + name + "/-/" + base + "-" + v + ".tgz"
	}
}

func TestParseFacts(t *testing.T) {
	p := parseFixture(t)
	if p.Name != "@acme/widget" {
		t.Errorf("Name = %q", p.Name)
	}
	if len(p.Versions) != 11 {
		t.Errorf("%d versions, want 11", len(p.Versions))
	}
	v := p.Versions["2.1.0"]
	if !v.HasInstallScript || !reflect.DeepEqual(v.InstallScripts(), map[string]string{"postinstall": "node scripts/postinstall.js"}) {
		t.Errorf("2.1.0 install scripts: %v %v", v.HasInstallScript, v.InstallScripts())
	}
	if !v.HasProvenance() {
		t.Error("2.1.0 has dist.attestations but HasProvenance is false")
	}
	if v.NpmUser == nil || v.NpmUser.Name != "GitHub Actions" || !strings.Contains(string(v.NpmUser.TrustedPublisher), `"oidc:0c1d2e3f"`) {
		t.Errorf("2.1.0 _npmUser = %+v", v.NpmUser)
	}
	if len(v.Maintainers) != 2 || v.Maintainers[1].Name != "bob" {
		t.Errorf("2.1.0 maintainers = %+v", v.Maintainers)
	}
	if v.Dependencies["@acme/core"] != "^2.1.0" {
		t.Errorf("2.1.0 dependencies = %v", v.Dependencies)
	}
	if len(v.Dist.Signatures) != 1 || v.Dist.Signatures[0].KeyID != "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U" {
		t.Errorf("2.1.0 signatures = %+v", v.Dist.Signatures)
	}
	if !strings.HasPrefix(v.Dist.Integrity, "sha512-2100") || v.Dist.Shasum != "2100456789abcdef0123456789abcdef01234567" {
		t.Errorf("2.1.0 dist = %+v", v.Dist)
	}
	if b := p.Versions["2.2.0-beta.1"]; !b.Gypfile || !b.HasInstallScript {
		t.Errorf("2.2.0-beta.1 gypfile=%v hasInstallScript=%v", b.Gypfile, b.HasInstallScript)
	}
	if b := p.Versions["2.2.0-beta.2"]; !b.HasInstallScript || len(b.InstallScripts()) != 0 {
		t.Errorf("2.2.0-beta.2: upstream hasInstallScript not honoured: %v", b.HasInstallScript)
	}
	if p.Versions["2.0.0"].HasInstallScript || p.Versions["2.0.0"].HasProvenance() {
		t.Error("2.0.0 has neither install script nor provenance")
	}
	if d := p.Versions["1.2.0"].Deprecated; !strings.Contains(d, "unsupported") {
		t.Errorf("1.2.0 deprecated = %q", d)
	}
	if m := p.Versions["0.9.0+build.5"].Malformed; !slices.Equal(m, []string{"maintainers"}) {
		t.Errorf("0.9.0 malformed = %v, want [maintainers]", m)
	}
	if ts, ok := p.PublishTime("1.1.0"); !ok || ts.Format("2006-01-02T15:04:05.000Z07:00") != "2021-09-15T09:12:44.501Z" {
		t.Errorf("PublishTime(1.1.0) = %v %v", ts, ok)
	}
	if _, ok := p.PublishTime("9.9.9"); ok {
		t.Error("PublishTime of an absent version reported ok")
	}
}

func TestFilter(t *testing.T) {
	orig := parseFixture(t)
	tags := orig.DistTags
	tests := []struct {
		name     string
		hidden   []string
		wantTags map[string]string // changes from upstream; "" means dropped
	}{
		{"nothing hidden", nil, nil},
		{"latest moves within its major to newest release", []string{"2.1.0"}, map[string]string{"latest": "2.0.0"}},
		{"latest never moves to a prerelease or another major", []string{"2.1.0", "2.0.0"}, map[string]string{"latest": "", "stable": ""}},
		{"next on a prerelease moves to the previous prerelease", []string{"2.2.0-beta.2"}, map[string]string{"next": "2.2.0-beta.1"}},
		{"next falls back to a release of the line", []string{"2.2.0-beta.2", "2.2.0-beta.1"}, map[string]string{"next": "2.1.0"}},
		{"next never moves to a newer version", []string{"2.2.0-beta.2", "2.2.0-beta.1", "2.1.0", "2.0.0"}, map[string]string{"next": "2.0.0-rc.1", "latest": "", "stable": ""}},
		{"a tag never moves to a newer version", []string{"2.0.0"}, map[string]string{"stable": ""}},
		{"a tag moves down past a newer kept version", []string{"1.1.0"}, map[string]string{"old": "1.0.0"}},
		{"tag with no candidate is dropped", []string{"3.0.0-alpha.1"}, map[string]string{"alpha": ""}},
		{"deprecated line", []string{"1.2.0"}, map[string]string{"legacy": "1.1.0"}},
		{"invalid version target is dropped", []string{"not-semver"}, map[string]string{"odd": ""}},
		{"tag at kept version untouched", []string{"1.0.0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := orig.Filter(hide(tt.hidden...))
			want := maps.Clone(tags)
			for k, v := range tt.wantTags {
				if v == "" {
					delete(want, k)
				} else {
					want[k] = v
				}
			}
			if !reflect.DeepEqual(f.DistTags, want) {
				t.Errorf("dist-tags = %v, want %v", f.DistTags, want)
			}
			for _, h := range tt.hidden {
				if _, ok := f.Versions[h]; ok {
					t.Errorf("hidden %s still in versions", h)
				}
				if _, ok := f.Time[h]; ok {
					t.Errorf("hidden %s still in time", h)
				}
			}
			if len(f.Versions) != len(orig.Versions)-len(tt.hidden) {
				t.Errorf("%d versions left, want %d", len(f.Versions), len(orig.Versions)-len(tt.hidden))
			}
			for _, k := range []string{"created", "modified", "1.1.0"} {
				if !slices.Contains(tt.hidden, k) && !bytes.Equal(f.Time[k], orig.Time[k]) {
					t.Errorf("time[%s] = %s, want %s", k, f.Time[k], orig.Time[k])
				}
			}
		})
	}
	if !reflect.DeepEqual(orig.DistTags, tags) || len(orig.Versions) != 11 || len(orig.Time) != 13 {
		t.Error("Filter modified its receiver")
	}
}

// decode is the JSON value of data, for comparisons of meaning.
func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, data)
	}
	return m
}

func rawObject(t *testing.T, data []byte, path ...string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		var next map[string]json.RawMessage
		if err := json.Unmarshal(m[p], &next); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		m = next
	}
	return m
}

func TestEncodeChangesOnlyTarball(t *testing.T) {
	in := fixture(t)
	p := parseFixture(t)
	tests := []struct {
		name   string
		hidden []string
	}{
		{"unfiltered", nil},
		{"filtered", []string{"2.1.0", "1.0.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := p.Filter(hide(tt.hidden...))
			var out bytes.Buffer
			if err := f.Encode(&out, airlockURL(p.Name)); err != nil {
				t.Fatal(err)
			}
			got, want := decode(t, out.Bytes()), decode(t, in)
			wantVersions := want["versions"].(map[string]any)
			wantTime := want["time"].(map[string]any)
			for _, h := range tt.hidden {
				delete(wantVersions, h)
				delete(wantTime, h)
			}
			for k, v := range wantVersions {
				dist := v.(map[string]any)["dist"].(map[string]any)
				dist["tarball"] = airlockURL(p.Name)(k)
			}
			want["dist-tags"] = decode(t, mustJSON(t, map[string]any{"x": f.DistTags}))["x"]
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", " ")
				w, _ := json.MarshalIndent(want, "", " ")
				t.Errorf("Encode changed more than dist.tarball:\ngot  %s\nwant %s", g, w)
			}
			// The signed and attested values are written byte for byte.
			for v := range f.Versions {
				gd, wd := rawObject(t, out.Bytes(), "versions", v, "dist"), rawObject(t, in, "versions", v, "dist")
				for _, k := range []string{"integrity", "shasum", "signatures", "attestations"} {
					if !bytes.Equal(gd[k], wd[k]) {
						t.Errorf("%s dist.%s = %s, want %s", v, k, gd[k], wd[k])
					}
				}
				if u := rawObject(t, out.Bytes(), "versions", v)["x-acme-unknown"]; !bytes.Equal(u, rawObject(t, in, "versions", v)["x-acme-unknown"]) {
					t.Errorf("%s unknown field = %s", v, u)
				}
			}
			gt, wt := rawObject(t, out.Bytes(), "time"), rawObject(t, in, "time")
			for k, v := range gt {
				if !bytes.Equal(v, wt[k]) {
					t.Errorf("time[%s] = %s, want %s", k, v, wt[k])
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeAbbreviated(t *testing.T) {
	in := fixture(t)
	p := parseFixture(t).Filter(hide("2.2.0-beta.2"))
	var out bytes.Buffer
	if err := p.EncodeAbbreviated(&out, airlockURL(p.Name)); err != nil {
		t.Fatal(err)
	}
	got := decode(t, out.Bytes())
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"dist-tags", "modified", "name", "versions"}) {
		t.Errorf("top-level keys = %v", keys)
	}
	if got["modified"] != "2024-06-02T08:30:15.123Z" || got["name"] != "@acme/widget" {
		t.Errorf("name, modified = %v, %v", got["name"], got["modified"])
	}
	if got["dist-tags"].(map[string]any)["next"] != "2.2.0-beta.1" {
		t.Errorf("dist-tags not filtered: %v", got["dist-tags"])
	}
	allowed := append(slices.Clone(AbbreviatedFields), "hasInstallScript")
	full := decode(t, in)["versions"].(map[string]any)
	versions := got["versions"].(map[string]any)
	if len(versions) != 10 {
		t.Errorf("%d versions, want 10", len(versions))
	}
	for v, m := range versions {
		m := m.(map[string]any)
		for k := range m {
			if !slices.Contains(allowed, k) {
				t.Errorf("%s: field %q not allowed in the abbreviated form", v, k)
			}
		}
		for _, k := range AbbreviatedFields {
			fv, ok := full[v].(map[string]any)[k]
			if k == "dist" {
				fv.(map[string]any)["tarball"] = airlockURL(p.Name)(v)
			}
			if gv := m[k]; ok && !reflect.DeepEqual(gv, fv) {
				t.Errorf("%s.%s = %v, want %v", v, k, gv, fv)
			}
		}
		wantScript := v == "2.1.0" || v == "2.2.0-beta.1"
		if hs, ok := m["hasInstallScript"]; wantScript != ok || (ok && hs != true) {
			t.Errorf("%s hasInstallScript = %v (present %v), want %v", v, hs, ok, wantScript)
		}
	}
	if _, ok := versions["1.2.0"].(map[string]any)["deprecated"]; !ok {
		t.Error("deprecated lost from 1.2.0")
	}
	if _, ok := versions["2.1.0"].(map[string]any)["scripts"]; ok {
		t.Error("scripts kept in the abbreviated form")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int64
	}{
		{"oversize", `{"name":"a"}`, 5},
		{"empty", ``, 0},
		{"truncated", `{"name":"a","versions":{`, 0},
		{"array", `[]`, 0},
		{"null", `null`, 0},
		{"name not string", `{"name":5}`, 0},
		{"versions array", `{"versions":[]}`, 0},
		{"version null", `{"versions":{"1.0.0":null}}`, 0},
		{"version string", `{"versions":{"1.0.0":"x"}}`, 0},
		{"dist string", `{"versions":{"1.0.0":{"dist":"x"}}}`, 0},
		{"dist-tag number", `{"dist-tags":{"latest":1}}`, 0},
		{"time array", `{"time":[]}`, 0},
		{"trailing garbage", `{"name":"a"} x`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.in), tt.max)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tt.in, p)
			}
			if tt.name == "oversize" && !errors.Is(err, ErrTooLarge) {
				t.Errorf("oversize error %v is not ErrTooLarge", err)
			}
		})
	}
	if _, err := Parse(fixture(t), int64(len(fixture(t)))); err != nil {
		t.Errorf("a document of exactly max bytes: %v", err)
	}
}

func TestSemver(t *testing.T) {
	order := []string{
		"0.0.1", "0.9.0", "1.0.0-0", "1.0.0-1", "1.0.0-2", "1.0.0-10", "1.0.0-alpha", "1.0.0-alpha.1",
		"1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
		"1.0.1", "1.2.0", "1.10.0", "2.0.0", "10.0.0", "99999999999999999999.0.0",
	}
	for i := range order {
		for j := range order {
			c, ok := CompareVersions(order[i], order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if !ok || c != want {
				t.Errorf("CompareVersions(%s, %s) = %d %v, want %d", order[i], order[j], c, ok, want)
			}
		}
	}
	if c, ok := CompareVersions("1.0.0+build.1", "1.0.0+build.2"); !ok || c != 0 {
		t.Errorf("build metadata affects precedence: %d %v", c, ok)
	}
	for _, bad := range []string{"", "1", "1.2", "v1.2.3", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.3+a_b", "1.2.3.4", "1.2.x", "-1.2.3", " 1.2.3"} {
		if _, ok := parseSemver(bad); ok {
			t.Errorf("parseSemver(%q) accepted", bad)
		}
	}
	for _, good := range []string{"0.0.0", "1.2.3-0a", "1.2.3-x-y.0", "1.2.3+001", "1.2.3-rc.1+sha.abc"} {
		if _, ok := parseSemver(good); !ok {
			t.Errorf("parseSemver(%q) rejected", good)
		}
	}
}

func TestRoundTripEscapes(t *testing.T) {
	tests := []string{
		`{"name":"a\"b","dist-tags":{"l\\":"1.0.0"},"versions":{"1.0.0":{"x":"q\\\\\"","dist":{"tarball":"t\\","integrity":"\u0041\"\\"}}}}`,
		` {"name":"\u00e9\ud83d\ude00","versions":{"1.0.0":{"k\"ey":["\\",{"\\\"":"\\\\"}],"dist":{}}}} `,
	}
	for _, in := range tests {
		p, err := Parse([]byte(in), 0)
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		var out bytes.Buffer
		if err := p.Encode(&out, func(string) string { return "T" }); err != nil {
			t.Fatal(err)
		}
		got, want := decode(t, out.Bytes()), decode(t, []byte(in))
		want["versions"].(map[string]any)["1.0.0"].(map[string]any)["dist"].(map[string]any)["tarball"] = "T"
		if _, ok := want["dist-tags"]; !ok {
			want["dist-tags"] = map[string]any{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s\ngot  %s", in, out.Bytes())
		}
	}
}

func TestRestrictions(t *testing.T) {
	p := parseFixture(t).Filter(hide("2.2.0-beta.2", "2.1.0"))
	p.Restrictions = &Restrictions{Versions: []string{"2.1.0", "2.2.0-beta.2"}, Message: "held \"by\" airlock"}
	for _, tc := range []struct {
		form   string
		encode func(*bytes.Buffer) error
	}{
		{"full", func(b *bytes.Buffer) error { return p.Encode(b, airlockURL(p.Name)) }},
		{"abbreviated", func(b *bytes.Buffer) error { return p.EncodeAbbreviated(b, airlockURL(p.Name)) }},
	} {
		t.Run(tc.form, func(t *testing.T) {
			var out bytes.Buffer
			if err := tc.encode(&out); err != nil {
				t.Fatal(err)
			}
			got := decode(t, out.Bytes())
			pr, ok := got["policyRestrictions"].(map[string]any)
			if !ok {
				t.Fatalf("policyRestrictions = %v", got["policyRestrictions"])
			}
			if pr["message"] != `held "by" airlock` {
				t.Errorf("message = %q", pr["message"])
			}
			vs := pr["versions"].(map[string]any)
			if len(vs) != 2 {
				t.Errorf("restricted versions = %v", vs)
			}
			for _, v := range []string{"2.1.0", "2.2.0-beta.2"} {
				m, _ := vs[v].(map[string]any)
				if m["name"] != "@acme/widget" || m["version"] != v {
					t.Errorf("restricted %s = %v", v, vs[v])
				}
				if _, listed := got["versions"].(map[string]any)[v]; listed {
					t.Errorf("%s still in versions", v)
				}
			}
		})
	}
	var out bytes.Buffer
	if err := parseFixture(t).Encode(&out, airlockURL("@acme/widget")); err != nil {
		t.Fatal(err)
	}
	if _, ok := decode(t, out.Bytes())["policyRestrictions"]; ok {
		t.Error("policyRestrictions written without restrictions")
	}
}

func TestEncodeVersion(t *testing.T) {
	p := parseFixture(t)
	v := p.Versions["2.1.0"]
	var out bytes.Buffer
	if err := v.Encode(&out, "http://airlock/x.tgz"); err != nil {
		t.Fatal(err)
	}
	got := decode(t, out.Bytes())
	want := decode(t, v.Raw)
	want["dist"].(map[string]any)["tarball"] = "http://airlock/x.tgz"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
}

func TestLine(t *testing.T) {
	for v, want := range map[string]string{"1.2.3": "1", "12.0.0-rc.1": "12", "0.3.1": "0.3", "0.0.7": "0.0", "v1.0.0": "", "1.2": ""} {
		line, pre, ok := Line(v)
		if line != want || ok != (want != "") || pre != strings.Contains(v, "-") && ok {
			t.Errorf("Line(%q) = %q, %v, %v; want %q", v, line, pre, ok, want)
		}
	}
}
