package npm

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmprov"
)

// serveKeys answers /-/npm/v1/keys with the keys Airlock verifies with,
// so that npm audit signatures checks against the same trust.
func (h *Handler) serveKeys(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var doc []byte
	switch h.o.KeyMode {
	case KeysStatic:
		doc = h.o.KeysJSON
	case KeysUpstream:
		p, err := h.pinned(ctx)
		if err != nil {
			return err
		}
		if p != nil {
			doc = p.doc
		}
	}
	if doc == nil {
		return errorf(http.StatusNotFound, "airlock: the upstream registry does not sign versions, so there are no signing keys")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(doc))
	return nil
}

// serveAttestations answers with the document Airlock verified when the
// version's tarball was fetched, else passes upstream's through. A hidden
// version's attestations are refused like its tarball.
func (h *Handler) serveAttestations(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	a := artifact(req.name, req.version)
	st, err := h.status(ctx, a)
	if err != nil {
		return err
	}
	if st.Hidden() {
		return refusal(a.String(), st)
	}
	if f, d, ok := h.cachedBlob(ctx, a.Key(), fieldAttestations); ok {
		serveBlob(w, r, f, d, "application/json")
		return nil
	}
	doc, err := h.get(ctx, h.o.Upstream+"/-/npm/v1/attestations/"+escapeName(req.name)+"@"+req.version, npmprov.MaxAttestationsSize)
	if err != nil {
		return unavailable(err)
	}
	w.Header().Set("Content-Type", "application/json")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(doc))
	return nil
}

// maxAudit bounds an audit request and its answer: a report for a large
// lockfile is a few megabytes.
const maxAudit = 32 << 20

// serveAudit passes npm audit's POSTs through, so that npm audit works
// against Airlock. The body goes as the client encoded it (npm gzips it).
func (h *Handler) serveAudit(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAudit+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "airlock: reading the audit request: %s", oneLine(err.Error()))
	}
	if len(body) > maxAudit {
		return errorf(http.StatusRequestEntityTooLarge, "airlock: audit request over %d bytes", maxAudit)
	}
	up, err := http.NewRequestWithContext(ctx, http.MethodPost, h.o.Upstream+"/-/npm/v1/security/"+req.audit, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, k := range []string{"Content-Type", "Content-Encoding", "Accept", "Accept-Encoding"} {
		if v := r.Header.Get(k); v != "" {
			up.Header.Set(k, v)
		}
	}
	resp, err := h.o.Client.Do(up)
	if err != nil {
		return errorf(http.StatusBadGateway, "airlock: upstream audit endpoint unreachable: %s", oneLine(err.Error()))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAudit+1))
	if err != nil || len(out) > maxAudit {
		return errorf(http.StatusBadGateway, "airlock: upstream audit answer unreadable or over %d bytes", maxAudit)
	}
	for _, k := range []string{"Content-Type", "Content-Encoding"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
	return nil
}
