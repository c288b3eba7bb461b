package osv

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/airlock-proxy/airlock/verify"
)

func slogTo(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/real/*/*.json")
	more, _ := filepath.Glob("testdata/real/*/*/*/*/*.json")
	for _, p := range append(seeds, more...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		`{"id":"MAL-1","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.0.0-rc.1"},{"limit":"2.0.0"},{"last_affected":"1.5.0"}]}]}]}`,
		`{"id":"MAL-1","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"m"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0"},{"introduced":"0"}]}]}]}`,
		`{}`, `null`, `{"id":"x","modified":"2025-01-01T00:00:00+02:00"}`,
	} {
		f.Add([]byte(s))
	}
	versions := []string{"0.0.0", "1.0.0", "1.0.0-rc.1", "1.5.0", "2.0.0", "v1.0.0", "1.0", "garbage", ""}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		if r.ID == "" || r.Modified.IsZero() {
			t.Fatalf("accepted record without id or modified: %+v", r)
		}
		for _, a := range r.Affected {
			if (a.Ecosystem == "") == (a.Other == "") && a.Name != "" {
				t.Fatalf("affected %q has ecosystem %q and other %q", a.Name, a.Ecosystem, a.Other)
			}
			for _, rg := range a.Ranges {
				for _, e := range rg.Events {
					n := 0
					for _, s := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
						if s != "" {
							n++
						}
					}
					if n != 1 {
						t.Fatalf("event %+v has %d fields", e, n)
					}
				}
			}
			// Whatever Parse accepts, matching must not panic.
			r.Malware = true
			l := &loader{byID: map[string]entry{r.ID: {rec: r}}}
			feed := l.build()
			for _, v := range versions {
				feed.Match(verify.Artifact{Ecosystem: a.Ecosystem, Name: a.Name, Version: v})
			}
		}
	})
}
