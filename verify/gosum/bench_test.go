package gosum

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchZip builds a module zip of about 1 MiB in 64 files, a middling
// real-world size.
func benchZip(b *testing.B) (string, string) {
	files := map[string]string{"go.mod": goMod}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 64 {
		buf := make([]byte, 16<<10)
		for j := range buf {
			buf[j] = byte('a' + rng.IntN(26))
		}
		files[fmt.Sprintf("f%02d.go", i)] = "package hello\n// " + string(buf) + "\n"
	}
	return writeZip(b, modPath, modVers, files)
}

// BenchmarkCheckZipWarm verifies a zip whose checksum record is already
// authenticated and stored: the cost of a re-check (zip.CheckZip + h1:).
func BenchmarkCheckZipWarm(b *testing.B) {
	zipFile, zipHash := benchZip(b)
	skey, vkey := newKey(b)
	db := newTestDB(b, skey, vkey, map[string]string{modPath + " " + modVers: zipHash, modPath + " " + modVers + "/go.mod": "h1:x"})
	v, err := New(Options{Key: vkey, URL: db.srv.URL, Store: newMemStore()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.CheckZip(ctx, modPath, modVers, zipFile); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.CheckZip(ctx, modPath, modVers, zipFile); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckZipCold verifies with an empty store each time: lookup,
// tiles and tree head come from the database over loopback.
func BenchmarkCheckZipCold(b *testing.B) {
	zipFile, zipHash := benchZip(b)
	skey, vkey := newKey(b)
	db := newTestDB(b, skey, vkey, map[string]string{modPath + " " + modVers: zipHash, modPath + " " + modVers + "/go.mod": "h1:x"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, err := New(Options{Key: vkey, URL: db.srv.URL, Store: newMemStore()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.CheckZip(ctx, modPath, modVers, zipFile); err != nil {
			b.Fatal(err)
		}
	}
}
