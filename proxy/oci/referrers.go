package oci

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// indexDoc is an OCI image index as Airlock writes it for referrers.
type indexDoc struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// serveReferrers answers the referrers API for an admitted subject, from
// upstream's referrers API or, where upstream lacks it, its referrers tag
// (sha256-<hex>). An unknown subject gets an empty index, never a 404.
// What is listed becomes verification material of the subject: servable
// without a signature of its own, since it is the signature.
func (h *Handler) serveReferrers(w http.ResponseWriter, r *http.Request, t target, subject string) error {
	ctx := r.Context()
	artifactType := r.URL.Query().Get("artifactType")
	list := []descriptor{}
	_, err := h.admit(ctx, t, subject)
	switch {
	case err == nil:
		all, err := h.referrers(ctx, t, subject)
		if err != nil {
			return err
		}
		for _, d := range all {
			if !validDigest(d.Digest) || (artifactType != "" && d.ArtifactType != artifactType) {
				continue
			}
			if st, err := h.status(ctx, t.digestArtifact(d.Digest)); err != nil {
				return err
			} else if st.Hidden() {
				continue
			}
			if err := h.markMaterial(ctx, t, d.Digest, subject); err != nil {
				return err
			}
			list = append(list, d)
		}
	case isCode(err, codeManifestUnknown):
	default:
		return err
	}
	body, err := json.Marshal(indexDoc{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: list})
	if err != nil {
		return err
	}
	hd := w.Header()
	if artifactType != "" {
		hd.Set("OCI-Filters-Applied", "artifactType")
	}
	hd.Set("Content-Type", mtOCIIndex)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

// referrers lists the manifests upstream says refer to subject.
func (h *Handler) referrers(ctx context.Context, t target, subject string) ([]descriptor, error) {
	what := "referrers of " + t.key + "@" + subject
	resp, err := t.up.do(ctx, http.MethodGet, t.repo, "referrers/"+subject, mtOCIIndex)
	if err == nil && strings.HasPrefix(resp.Header.Get("Content-Type"), mtOCIIndex) {
		body, err := readAll(resp, h.o.MaxManifest, what)
		if err != nil {
			return nil, err
		}
		return decodeIndex(body, what)
	}
	var ue *upstreamError
	if err == nil {
		resp.Body.Close()
	} else if !errors.As(err, &ue) || ue.status != http.StatusNotFound {
		return nil, h.upstreamFailure(t.up, err, what, codeManifestUnknown)
	}
	// No referrers API: the referrers tag schema.
	f, err := t.up.getManifest(ctx, t.repo, strings.Replace(subject, ":", "-", 1))
	if errors.As(err, &ue) && ue.notFound() {
		return nil, nil
	}
	if err != nil {
		return nil, h.upstreamFailure(t.up, err, what, codeManifestUnknown)
	}
	return decodeIndex(f.body, what)
}

func decodeIndex(body []byte, what string) ([]descriptor, error) {
	var idx indexDoc
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, errorf(http.StatusBadGateway, codeManifestInvalid, "%s: upstream sent an invalid index: %s", what, err)
	}
	return idx.Manifests, nil
}
