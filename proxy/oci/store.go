package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// The metadata buckets of the front (named values, cache.Meta Get/Put).
//
//	oci-manifest  <digest>                 media type, "\n", the exact upstream bytes
//	oci-admitted  <repo>@<digest>          admission record: references recorded, why allowed
//	oci-verdict   <digest> <policy id>     a signature verdict, positive or negative
//	oci-blob      <repo>@<blob digest>     size and the admitted manifests referencing it
//	oci-parent    <repo>@<child digest>    the admitted indexes listing it
//	oci-material  <repo>@<digest>          the subject it is verification material for
//	oci-tag       <repo>:<tag>             digest served, digest upstream, last checked
//
// <repo> is always the repository key "<upstream>/<repository>".
const (
	bucketManifest = "oci-manifest"
	bucketAdmitted = "oci-admitted"
	bucketVerdict  = "oci-verdict"
	bucketBlob     = "oci-blob"
	bucketParent   = "oci-parent"
	bucketMaterial = "oci-material"
	bucketTag      = "oci-tag"
)

// maxLinks bounds the manifests remembered per blob (a base layer is
// shared by many) and the parents per child; past it the oldest is
// dropped.
const maxLinks = 64

func (h *Handler) getJSON(ctx context.Context, bucket, key string, v any) (bool, error) {
	b, err := h.o.Meta.Get(ctx, bucket, key)
	if errors.Is(err, cache.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s/%s: %w", bucket, key, err)
	}
	return true, nil
}

func (h *Handler) putJSON(ctx context.Context, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return h.o.Meta.Put(ctx, bucket, key, b)
}

// update applies fn to the value under bucket/key (nil when absent) in
// one transaction. fn returns false to leave the value as it is.
func (h *Handler) update(ctx context.Context, bucket, key string, fn func(old []byte) ([]byte, bool, error)) error {
	return h.o.Meta.Update(ctx, bucket, []string{key}, func(_ string, old []byte) ([]byte, bool, error) { return fn(old) })
}

// link adds member to the set under bucket/key.
func (h *Handler) link(ctx context.Context, bucket, key, member string) error {
	return h.linkAll(ctx, bucket, []string{key}, member)
}

// linkAll adds member to the set under each of keys, in one transaction.
func (h *Handler) linkAll(ctx context.Context, bucket string, keys []string, member string) error {
	return h.o.Meta.Update(ctx, bucket, keys, func(_ string, old []byte) ([]byte, bool, error) {
		var set []string
		if old != nil {
			if err := json.Unmarshal(old, &set); err != nil {
				return nil, false, err
			}
		}
		if slices.Contains(set, member) {
			return nil, false, nil
		}
		if len(set) >= maxLinks {
			set = set[1:]
		}
		b, err := json.Marshal(append(set, member))
		return b, true, err
	})
}

func (h *Handler) links(ctx context.Context, bucket, key string) ([]string, error) {
	var set []string
	_, err := h.getJSON(ctx, bucket, key, &set)
	return set, err
}

// blobRef is what is known of a blob in one repository.
type blobRef struct {
	Size      int64    `json:"size"`
	Manifests []string `json:"manifests"`
}

// linkBlobs records that manifest references blobs in the repository
// key, in one transaction: a cold pull of a many-layer image would
// otherwise wait for an fsync per layer before its manifest is served.
func (h *Handler) linkBlobs(ctx context.Context, key string, blobs []descriptor, manifest string) error {
	keys := make([]string, len(blobs))
	sizes := make(map[string]int64, len(blobs))
	for i, d := range blobs {
		keys[i] = key + "@" + d.Digest
		sizes[keys[i]] = d.Size
	}
	return h.o.Meta.Update(ctx, bucketBlob, keys, func(k string, old []byte) ([]byte, bool, error) {
		ref := blobRef{Size: sizes[k]}
		if old != nil {
			if err := json.Unmarshal(old, &ref); err != nil {
				return nil, false, err
			}
		}
		if slices.Contains(ref.Manifests, manifest) {
			return nil, false, nil
		}
		if len(ref.Manifests) >= maxLinks {
			ref.Manifests = ref.Manifests[1:]
		}
		ref.Manifests = append(ref.Manifests, manifest)
		b, err := json.Marshal(ref)
		return b, true, err
	})
}

// manifest is one stored manifest.
type manifest struct {
	digest string
	body   []byte
	info   manifestInfo
}

// loadManifest returns a stored manifest. The bytes are hashed again on
// every read (they are small): what is served is what was checked.
func (h *Handler) loadManifest(ctx context.Context, d string) (*manifest, bool, error) {
	v, err := h.o.Meta.Get(ctx, bucketManifest, d)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	mt, body, ok := bytes.Cut(v, []byte("\n"))
	if !ok || sha256Of(body) != d {
		h.o.Log.Error("stored manifest does not match its digest; fetching it again", "digest", d)
		return nil, false, nil
	}
	info, err := parseManifest(body, string(mt))
	if err != nil {
		h.o.Log.Error("stored manifest does not parse; fetching it again", "digest", d, "err", err)
		return nil, false, nil
	}
	return &manifest{digest: d, body: body, info: info}, true, nil
}

func (h *Handler) storeManifest(ctx context.Context, m *manifest) error {
	v := make([]byte, 0, len(m.info.mediaType)+1+len(m.body))
	v = append(append(append(v, m.info.mediaType...), '\n'), m.body...)
	return h.o.Meta.Put(ctx, bucketManifest, m.digest, v)
}

// status returns the stored decision, or a zero Status when none.
func (h *Handler) status(ctx context.Context, a verify.Artifact) (cache.Status, error) {
	st, err := h.o.Meta.Status(ctx, a)
	if errors.Is(err, cache.ErrNotFound) {
		return cache.Status{}, nil
	}
	return st, err
}

// released reports whether an admin released the artifact's record.
func released(st cache.Status) bool {
	return st.Quarantine != nil && st.Quarantine.State == cache.Released
}
