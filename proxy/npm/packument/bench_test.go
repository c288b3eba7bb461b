package packument

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// bigPackument builds a packument shaped like a popular package's: n
// versions with realistic per-version fields and a long top-level readme.
func bigPackument(n int) []byte {
	versions := map[string]any{}
	times := map[string]string{"created": "2015-01-01T00:00:00.000Z", "modified": "2024-06-01T00:00:00.000Z"}
	tags := map[string]string{}
	deps := map[string]string{}
	for i := range 12 {
		deps[fmt.Sprintf("dependency-number-%d", i)] = fmt.Sprintf("^%d.%d.0", i, i*3)
	}
	dev := map[string]string{}
	for i := range 20 {
		dev[fmt.Sprintf("@types/dev-tool-%d", i)] = fmt.Sprintf("~%d.0.%d", i+1, i)
	}
	for i := range n {
		v := fmt.Sprintf("%d.%d.%d", i/300, (i/20)%15, i%20)
		if i%10 == 9 {
			v += fmt.Sprintf("-beta.%d", i%7)
		}
		versions[v] = map[string]any{
			"name": "@big/pkg", "version": v, "description": "A package with a great many versions, published often over many years",
			"main": "lib/index.js", "types": "lib/index.d.ts", "license": "MIT",
			"keywords":     []string{"alpha", "beta", "gamma", "delta", "epsilon"},
			"scripts":      map[string]string{"test": "jest --coverage", "build": "tsc -p .", "lint": "eslint ."},
			"repository":   map[string]string{"type": "git", "url": "git+https://github.com/big/pkg.git"},
			"bugs":         map[string]string{"url": "https://github.com/big/pkg/issues"},
			"homepage":     "https://github.com/big/pkg#readme",
			"author":       map[string]string{"name": "Big Maintainer", "email": "big@example.com"},
			"dependencies": deps, "devDependencies": dev,
			"engines": map[string]string{"node": ">=18"},
			"gitHead": strings.Repeat("ab", 20), "_id": "@big/pkg@" + v, "_nodeVersion": "20.11.0", "_npmVersion": "10.2.4",
			"_npmUser":    map[string]string{"name": "big", "email": "big@example.com"},
			"maintainers": []map[string]string{{"name": "big", "email": "big@example.com"}, {"name": "other", "email": "other@example.com"}},
			"dist": map[string]any{
				"integrity":    "sha512-" + strings.Repeat("A", 86) + "==",
				"shasum":       strings.Repeat("0", 40),
				"tarball":      "https://registry.npmjs.org/@big/pkg/-/pkg-" + v + ".tgz",
				"fileCount":    42,
				"unpackedSize": 123456,
				"signatures":   []map[string]string{{"keyid": "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA", "sig": "MEUCIQ" + strings.Repeat("x", 90)}},
				"attestations": map[string]any{"url": "https://registry.npmjs.org/-/npm/v1/attestations/@big%2fpkg@" + v, "provenance": map[string]string{"predicateType": "https://slsa.dev/provenance/v1"}},
			},
			"_npmOperationalInternal": map[string]string{"host": "s3://npm-registry-packages", "tmp": "tmp/pkg_" + v},
			"_hasShrinkwrap":          false,
		}
		times[v] = fmt.Sprintf("2020-01-01T00:00:%02d.000Z", i%60)
		tags["latest"] = v
	}
	doc := map[string]any{
		"_id": "@big/pkg", "name": "@big/pkg", "dist-tags": tags, "versions": versions, "time": times,
		"readme": strings.Repeat("Lorem ipsum dolor sit amet. ", 4000), "license": "MIT",
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkFilterEncode10MB(b *testing.B) {
	data := bigPackument(3750)
	hidden := func(v string) bool { return strings.HasSuffix(v, ".7") }
	tarball := func(v string) string { return "http://airlock:8080/npm/@big/pkg/-/pkg-" + v + ".tgz" }
	b.Logf("packument: %d bytes", len(data))
	b.Run("Parse+Filter+Encode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			p, err := Parse(data, 64<<20)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Filter(hidden).Encode(io.Discard, tarball); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, err := Parse(data, 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Parse(data, 64<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Filter+Encode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := p.Filter(hidden).Encode(io.Discard, tarball); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Filter+EncodeAbbreviated", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := p.Filter(hidden).EncodeAbbreviated(&buf, tarball); err != nil {
				b.Fatal(err)
			}
		}
	})
}
