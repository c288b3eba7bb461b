package packument

import (
	"bytes"
	"hash/fnv"
	"maps"
	"testing"
)

func FuzzParse(f *testing.F) {
	// The testdata fixture is not a seed: at 11 KB it slows coverage-guided
	// fuzzing to a crawl; this small packument has the same shapes.
	f.Add([]byte(`{"_id":"@a/b","name":"@a/b","dist-tags":{"latest":"1.1.0","next":"2.0.0-rc.1"},` +
		`"versions":{"1.0.0":{"name":"@a/b","version":"1.0.0","scripts":{"postinstall":"x"},` +
		`"_npmUser":{"name":"u","email":"e"},"maintainers":[{"name":"u"}],"dependencies":{"c":"^1"},` +
		`"dist":{"integrity":"sha512-AA==","shasum":"00","tarball":"https://r/@a/b/-/b-1.0.0.tgz",` +
		`"signatures":[{"keyid":"k","sig":"s"}],"attestations":{"url":"u","provenance":{"predicateType":"p"}}}},` +
		`"1.1.0":{"deprecated":"old","gypfile":true,"dist":{"tarball":"t"}},"2.0.0-rc.1":{"dist":{}}},` +
		`"time":{"created":"2020-01-01T00:00:00.000Z","modified":"2021-01-01T00:00:00.000Z","1.0.0":"2020-01-01T00:00:00.000Z"},` +
		`"readme":"\u00e9\n","x":{"y":[1,2.5e3]}}`))
	for _, s := range []string{
		`{}`, `null`, `{"name":"a","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"dist":{"tarball":"x"}}},"time":{"1.0.0":"2020-01-01T00:00:00Z"}}`,
		`{"versions":{"1.0.0-rc.1":{},"1.0.0":{"scripts":{"install":"x"}},"v1":{"dist":null}},"dist-tags":{"a":"1.0.0","b":"1.0.0-rc.1","c":"v1"}}`,
		`{"name":"\u00e9\"<>","x":[1,2,{"y":null}],"time":{"unpublished":{"time":"2020"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, 1<<20)
		if err != nil {
			return
		}
		hidden := func(v string) bool {
			h := fnv.New32a()
			h.Write([]byte(v))
			return h.Sum32()%3 == 0
		}
		q := p.Filter(hidden)
		tarball := func(v string) string { return "http://airlock/npm/" + p.Name + "/-/" + v + ".tgz" }
		var full, abbr bytes.Buffer
		if err := q.Encode(&full, tarball); err != nil {
			t.Fatal(err)
		}
		if err := q.EncodeAbbreviated(&abbr, tarball); err != nil {
			t.Fatal(err)
		}
		r, err := Parse(full.Bytes(), 0)
		if err != nil {
			t.Fatalf("Encode output does not re-parse: %v\n%s", err, full.Bytes())
		}
		if _, err := Parse(abbr.Bytes(), 0); err != nil {
			t.Fatalf("EncodeAbbreviated output does not re-parse: %v\n%s", err, abbr.Bytes())
		}
		if r.Name != q.Name || !maps.Equal(r.DistTags, q.DistTags) || len(r.Versions) != len(q.Versions) || len(r.Time) != len(q.Time) {
			t.Fatalf("round trip changed the packument:\n%s", full.Bytes())
		}
		for k, v := range r.Versions {
			if hidden(k) {
				t.Fatalf("hidden version %q encoded", k)
			}
			if v.Dist.Tarball != tarball(k) {
				t.Fatalf("%q tarball = %q", k, v.Dist.Tarball)
			}
			if o := q.Versions[k]; o == nil || v.Dist.Integrity != o.Dist.Integrity || v.HasInstallScript != o.HasInstallScript {
				t.Fatalf("%q changed in the round trip", k)
			}
		}
		for tag, v := range r.DistTags {
			if hidden(v) {
				t.Fatalf("tag %s points at hidden %q", tag, v)
			}
		}
	})
}
