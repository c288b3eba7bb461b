package oci

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/airlock-proxy/airlock/cache"
)

// serveBlob answers GET and HEAD of a blob that an admitted manifest of
// the repository references. A cached blob is served with
// http.ServeContent (ranges, sendfile); a miss streams from upstream
// through the BlobSource, which checks the digest as the bytes pass. A
// failure after the headers went out aborts the response, so the client
// sees a broken transfer rather than a short 200. A Range on a miss is
// answered with the whole blob (200), which HTTP allows.
func (h *Handler) serveBlob(w http.ResponseWriter, r *http.Request, t target, d string) error {
	ctx := r.Context()
	ref, err := h.blobAllowed(ctx, t, d)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Docker-Content-Digest", d)
	hd.Set("ETag", `"`+d+`"`)
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	if r.Method == http.MethodHead {
		// From the manifest's descriptor: no upstream fetch for a HEAD.
		hd.Set("Content-Length", strconv.FormatInt(ref.Size, 10))
		hd.Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rd, err := h.o.Blobs.Open(ctx, d, func(ctx context.Context) (io.ReadCloser, int64, error) {
		h.o.Log.Info("fetching blob", "repo", t.key, "digest", d, "size", ref.Size)
		return t.up.blob(ctx, t.repo, d)
	})
	if err != nil {
		return h.streamFailure(t, d, err)
	}
	defer rd.Close()
	if rd.Cached() {
		h.o.Metrics.CacheHits.WithLabelValues("oci", "blob").Inc()
		if f, ok := rd.File(); ok {
			http.ServeContent(w, r, "", time.Time{}, f)
			return nil
		}
	} else {
		h.o.Metrics.CacheMisses.WithLabelValues("oci", "blob").Inc()
	}
	return h.stream(w, t, d, rd)
}

// streamChunk is the size of one read from a blob being fetched.
const streamChunk = 256 << 10

// stream copies a blob being fetched to the client. The bytes that
// complete the body are held back until the next read succeeds: the
// BlobSource reports a wrong digest only at the end, and the client must
// never have received every byte (a complete-looking body) when that
// happens. Bytes that leave announced ones to come cannot complete it and
// go out at once; with no size announced, every chunk waits for the next
// read. The headers go out with the first bytes sent, so that a blob that
// fails within its first chunk still gets a proper error answer; after
// the headers a failure aborts the response.
func (h *Handler) stream(w http.ResponseWriter, t target, d string, rd BlobReader) error {
	bufs := [2][]byte{make([]byte, streamChunk), make([]byte, streamChunk)}
	size := rd.Size()
	var off int64
	var pending []byte
	sent := false
	write := func(b []byte) {
		if !sent {
			if size >= 0 {
				w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			}
			w.WriteHeader(http.StatusOK)
			sent = true
		}
		if _, err := w.Write(b); err != nil {
			panic(http.ErrAbortHandler) // the client went away
		}
	}
	for i := 0; ; i ^= 1 {
		n, err := 0, error(nil)
		for n == 0 && err == nil {
			n, err = rd.Read(bufs[i])
		}
		if err != nil && err != io.EOF {
			if !sent {
				return h.streamFailure(t, d, err)
			}
			h.o.Log.Warn("blob transfer aborted", "repo", t.key, "digest", d, "err", err)
			panic(http.ErrAbortHandler)
		}
		off += int64(n)
		if len(pending) > 0 {
			write(pending)
			pending = nil
		}
		switch {
		case err == io.EOF:
			write(bufs[i][:n])
			return nil
		case size >= 0 && off < size:
			write(bufs[i][:n])
		default:
			pending = bufs[i][:n]
		}
	}
}

func (h *Handler) streamFailure(t target, d string, err error) error {
	if errors.Is(err, cache.ErrDigestMismatch) {
		h.o.Log.Warn("upstream blob does not match its digest", "repo", t.key, "digest", d, "err", err)
		return errorf(http.StatusBadGateway, codeDigestInvalid, "airlock: upstream %s sent bytes for blob %s that hash to something else; nothing was stored", t.up.Name, d)
	}
	return h.upstreamFailure(t.up, err, "blob "+t.key+"@"+d, codeBlobUnknown)
}

// blobAllowed returns what is known of blob d in t's repository when an
// admitted manifest that is not held or blocked references it.
func (h *Handler) blobAllowed(ctx context.Context, t target, d string) (blobRef, error) {
	var ref blobRef
	found, err := h.getJSON(ctx, bucketBlob, t.key+"@"+d, &ref)
	if err != nil {
		return ref, err
	}
	for _, m := range ref.Manifests {
		st, err := h.status(ctx, t.digestArtifact(m))
		if err != nil {
			return ref, err
		}
		if !st.Hidden() {
			return ref, nil
		}
	}
	if found {
		return ref, errorf(http.StatusNotFound, codeBlobUnknown, "blob %s of %s is referenced only by manifests that are held or blocked", d, t.key)
	}
	return ref, errorf(http.StatusNotFound, codeBlobUnknown, "blob %s is not referenced by any manifest Airlock admitted for %s (pull the manifest first)", d, t.key)
}
