package oci_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-proxy/airlock/cache/fill"
	"github.com/airlock-proxy/airlock/proxy/oci"
)

// fillSource adapts cache/fill the way cmd/airlock does.
type fillSource struct{ g *fill.Group }

func (s fillSource) Open(ctx context.Context, d string, fetch func(context.Context) (io.ReadCloser, int64, error)) (oci.BlobReader, error) {
	r, err := s.g.Open(ctx, d, fill.Fetch(fetch))
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return r, nil
}

// TestWithFill runs pulls through the real one-fetch blob filler:
// concurrent cold pulls make one upstream fetch per blob, and a corrupt
// layer aborts the transfer and stores nothing.
func TestWithFill(t *testing.T) {
	var g *fill.Group
	f := newFixture(t, func(o *oci.Options) {
		g = fill.New(fill.Options{Blobs: o.Blobs.(diskSource).disk})
		o.Blobs = fillSource{g}
	})
	t.Cleanup(g.Wait)
	img, err := random.Image(1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	f.push(t, "test/app:v1", img)
	want := layersOf(t, img)
	ref := f.ref(t, "up/test/app:v1")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := remote.Image(ref)
			if err != nil {
				errs <- err
				return
			}
			ls, err := got.Layers()
			if err != nil {
				errs <- err
				return
			}
			for _, l := range ls {
				d, _ := l.Digest()
				rc, err := l.Compressed()
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(b, want[d.String()]) {
					errs <- fmt.Errorf("layer %s: %v (%d bytes)", d, err, len(b))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The two layers (the config is never read here).
	if n := f.faults.count("GET", "/blobs/"); n != 2 {
		t.Errorf("%d upstream blob GETs for 8 concurrent pulls, want 2", n)
	}

	bad, err := random.Image(1<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	f.push(t, "test/bad:v1", bad)
	var layer string
	var content []byte
	for d, b := range layersOf(t, bad) {
		layer, content = d, b
	}
	wrong := bytes.Clone(content)
	wrong[len(wrong)-1] ^= 1
	f.faults.set(func(f *faults) { f.corrupt = map[string][]byte{"/blobs/" + layer: wrong} })
	if _, err := remote.Head(f.ref(t, "up/test/bad:v1")); err != nil {
		t.Fatal(err)
	}
	resp, body, err := rawGet(t, f.srv.URL+"/v2/up/test/bad/blobs/"+layer)
	if err == nil && resp.StatusCode == 200 {
		t.Fatalf("corrupt layer served whole: %d bytes of %d", len(body), len(content))
	}
	if len(body) >= len(content) {
		t.Fatalf("client got %d bytes of %d", len(body), len(content))
	}
	g.Wait()
	if has, _ := f.disk.Has(context.Background(), layer); has {
		t.Fatal("corrupt layer stored")
	}
}
