package oci

import (
	"net/http"
	"strconv"
	"strings"
)

// serveManifest answers GET and HEAD of a manifest by tag or digest with
// the exact stored bytes, once policy has admitted them.
func (h *Handler) serveManifest(w http.ResponseWriter, r *http.Request, t target, ref string) error {
	ctx := r.Context()
	d := ref
	if !strings.HasPrefix(ref, "sha256:") {
		var err error
		if d, err = h.resolveTag(ctx, t, ref); err != nil {
			return err
		}
	}
	m, err := h.admit(ctx, t, d)
	if err != nil {
		return err
	}
	// After admission: a ci-digest hold is then the only thing between
	// the digest and the client, so a CI record that releases it cannot
	// release a signature check that never ran.
	if d != ref {
		if err := h.ciCheck(ctx, t, ref, d); err != nil {
			return err
		}
	}
	if !accepts(r.Header.Values("Accept"), m.info.mediaType) {
		return errorf(http.StatusNotFound, codeManifestUnknown,
			"manifest %s@%s is %s, which the client does not accept (Accept: %s); Airlock serves manifests as upstream sent them and never converts them",
			t.key, d, m.info.mediaType, clip(strings.Join(r.Header.Values("Accept"), ", ")))
	}
	hd := w.Header()
	hd.Set("Content-Type", m.info.mediaType)
	hd.Set("Docker-Content-Digest", d)
	hd.Set("Content-Length", strconv.Itoa(len(m.body)))
	hd.Set("ETag", `"`+d+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(m.body)
	}
	return nil
}
