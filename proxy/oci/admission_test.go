package oci_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/airlock-proxy/airlock/proxy/oci"
)

// writeCounter counts the metadata store's write transactions.
type writeCounter struct {
	oci.Meta
	n atomic.Int64
}

func (c *writeCounter) Put(ctx context.Context, bucket, key string, value []byte) error {
	c.n.Add(1)
	return c.Meta.Put(ctx, bucket, key, value)
}

func (c *writeCounter) Update(ctx context.Context, bucket string, keys []string, fn func(string, []byte) ([]byte, bool, error)) error {
	c.n.Add(1)
	return c.Meta.Update(ctx, bucket, keys, fn)
}

// Each write transaction is an fsync before a cold manifest is served, so
// admitting an image must cost the same number of them whatever its
// number of layers; and every layer must still be servable after.
func TestAdmissionWritesDoNotGrowWithLayers(t *testing.T) {
	writes := map[int]int64{}
	for _, layers := range []int{1, 24} {
		wc := &writeCounter{}
		f := newFixture(t, func(o *oci.Options) { wc.Meta = o.Meta; o.Meta = wc })
		img, err := random.Image(512, int64(layers))
		if err != nil {
			t.Fatal(err)
		}
		f.push(t, "test/layers:v1", img)
		before := wc.n.Load()
		if resp, _ := f.do(t, "GET", "/v2/up/test/layers/manifests/"+digestOf(t, img)); resp.StatusCode != 200 {
			t.Fatalf("%d layers: manifest GET = %d", layers, resp.StatusCode)
		}
		writes[layers] = wc.n.Load() - before
		pullImage(t, f, "up/test/layers:v1", img)
	}
	if writes[24] != writes[1] {
		t.Errorf("admitting an image wrote %d transactions with 1 layer and %d with 24; want the same", writes[1], writes[24])
	}
}
