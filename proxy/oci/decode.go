package oci

import (
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"strings"
)

// The manifest media types Airlock serves. Docker schema 1 is not among
// them: its digest is not the hash of the bytes served.
const (
	mtOCIIndex     = "application/vnd.oci.image.index.v1+json"
	mtOCIManifest  = "application/vnd.oci.image.manifest.v1+json"
	mtDockerList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerSchema = "application/vnd.docker.distribution.manifest.v2+json"
)

var manifestTypes = []string{mtOCIIndex, mtOCIManifest, mtDockerList, mtDockerSchema}

func isIndexType(mt string) bool { return mt == mtOCIIndex || mt == mtDockerList }

// descriptor is the part of an OCI descriptor Airlock reads and, in
// referrers lists, passes on.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
}

// manifestInfo is what admission needs from a manifest: its type and
// every digest it references.
type manifestInfo struct {
	mediaType string
	blobs     []descriptor // config and layers of an image manifest
	children  []descriptor // manifests of an index
	subject   string       // the subject's digest, if any
	// runnable: some layer is a container filesystem. Verification
	// material (signatures, attestations, SBOMs) never is, which keeps an
	// image from being let through as "material".
	runnable bool
}

// parseManifest decodes a manifest and the references in it. The media
// type is the body's mediaType field, else the upstream Content-Type; the
// two must agree when both are present, and an image manifest may not
// carry an index's "manifests" (nor an index "layers"), so that no client
// can read the bytes as something other than what was checked.
func parseManifest(body []byte, contentType string) (manifestInfo, error) {
	var raw struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Config        *descriptor      `json:"config"`
		Layers        []descriptor     `json:"layers"`
		Manifests     []descriptor     `json:"manifests"`
		Subject       *descriptor      `json:"subject"`
		Extra         *json.RawMessage `json:"fsLayers"` // schema 1
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return manifestInfo{}, fmt.Errorf("not a JSON manifest: %w", err)
	}
	ct := ""
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err == nil {
			ct = mt
		}
	}
	mt := raw.MediaType
	switch {
	case mt == "" && slices.Contains(manifestTypes, ct):
		mt = ct
	case mt == "":
		return manifestInfo{}, fmt.Errorf("manifest has no mediaType and upstream sent Content-Type %q", clip(contentType))
	case !slices.Contains(manifestTypes, mt):
		return manifestInfo{}, fmt.Errorf("manifest media type %q is not served (want one of %s)", clip(mt), strings.Join(manifestTypes, ", "))
	case slices.Contains(manifestTypes, ct) && ct != mt:
		return manifestInfo{}, fmt.Errorf("manifest says mediaType %q but upstream sent Content-Type %q", mt, ct)
	}
	if raw.SchemaVersion != 2 || raw.Extra != nil {
		return manifestInfo{}, fmt.Errorf("manifest schemaVersion %d is not 2", raw.SchemaVersion)
	}
	info := manifestInfo{mediaType: mt}
	if isIndexType(mt) {
		if raw.Config != nil || raw.Layers != nil {
			return manifestInfo{}, fmt.Errorf("index %s carries config or layers", mt)
		}
		info.children = raw.Manifests
	} else {
		if raw.Manifests != nil {
			return manifestInfo{}, fmt.Errorf("image manifest %s carries manifests", mt)
		}
		if raw.Config == nil {
			return manifestInfo{}, fmt.Errorf("image manifest has no config")
		}
		info.blobs = append([]descriptor{*raw.Config}, raw.Layers...)
		for _, l := range raw.Layers {
			if runnableLayer(l.MediaType) {
				info.runnable = true
			}
		}
	}
	for _, d := range append(slices.Clip(info.blobs), info.children...) {
		if !validDigest(d.Digest) {
			return manifestInfo{}, fmt.Errorf("manifest references digest %q: Airlock serves sha256 digests only", clip(d.Digest))
		}
		if d.Size < 0 {
			return manifestInfo{}, fmt.Errorf("manifest gives %s a negative size", d.Digest)
		}
	}
	if raw.Subject != nil {
		if !validDigest(raw.Subject.Digest) {
			return manifestInfo{}, fmt.Errorf("manifest subject digest %q is invalid", clip(raw.Subject.Digest))
		}
		info.subject = raw.Subject.Digest
	}
	return info, nil
}

// runnableLayer: a layer a container runtime unpacks as a filesystem (an
// unknown or absent type counts, to fail closed).
func runnableLayer(mt string) bool {
	return mt == "" || strings.Contains(mt, ".image.layer.") || strings.Contains(mt, ".image.rootfs.") ||
		strings.HasPrefix(mt, "application/vnd.docker.image.rootfs")
}

// accepts reports whether a client's Accept headers admit media type mt.
// No Accept header accepts anything, as does */*.
func accepts(headers []string, mt string) bool {
	seen := false
	for _, h := range headers {
		for _, part := range strings.Split(h, ",") {
			t, _, _ := strings.Cut(part, ";")
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			seen = true
			if t == mt || t == "*/*" || t == "application/*" {
				return true
			}
		}
	}
	return !seen
}
