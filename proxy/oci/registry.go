package oci

import (
	"net/http"
)

// ServeHTTP dispatches a /v2/ request, in the manner of
// go-containerregistry's registry: parse the path, pick the upstream,
// hand over to manifests, blobs, tags or referrers, and turn every error
// into the spec's JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := h.serve(w, r); err != nil {
		h.writeError(w, r, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	// Read-only: anything but a read is refused before the path is even
	// looked at, so that a push fails the same way everywhere.
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return errReadOnly
	}
	rt, perr := parsePath(r.URL.Path)
	if perr != nil {
		return perr
	}
	switch rt.kind {
	case kindBase:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write([]byte("{}"))
		}
		return nil
	case kindCatalog:
		return errorf(http.StatusNotFound, codeUnsupported, "the catalog is not served: a pull-through proxy does not know every repository of its upstreams")
	case kindUpload:
		w.Header().Set("Allow", "GET, HEAD")
		return errReadOnly
	}
	t, terr := h.selectTarget(rt.name, r.URL.Query().Get("ns"), r.Host)
	if terr != nil {
		return terr
	}
	switch rt.kind {
	case kindManifest:
		return h.serveManifest(w, r, t, rt.ref)
	case kindBlob:
		return h.serveBlob(w, r, t, rt.ref)
	case kindTags:
		return h.serveTags(w, r, t)
	case kindReferrers:
		return h.serveReferrers(w, r, t, rt.ref)
	}
	return errNotEndpoint
}
