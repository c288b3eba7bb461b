package cirecord

import (
	"errors"
	"fmt"
	"strings"

	"github.com/airlock-proxy/airlock/verify"
)

// errUnmappedRegistry: no GoreleaserOptions/InTotoOptions Registries
// prefix matches the image.
var errUnmappedRegistry = errors.New("registry not mapped to an Airlock upstream")

// imageRef is an image reference as CI tools write it:
// [registry/]repository[:tag][@sha256:hex].
type imageRef struct {
	registry, repo, tag, digest string
}

// parseImageRef parses ref. With hubDefault, a reference whose first
// component is not a registry host is a Docker Hub one ("acme/app" is
// docker.io/acme/app, "alpine" docker.io/library/alpine), as docker reads
// it; without, such a reference is refused, because an in-toto subject
// named "dist/app" is a file, not an image.
func parseImageRef(ref string, hubDefault bool) (imageRef, error) {
	var r imageRef
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		r.digest = rest[i+1:]
		rest = rest[:i]
		if err := checkSHA256(r.digest); err != nil {
			return imageRef{}, fmt.Errorf("image %q: %w", clip(ref), err)
		}
	}
	// A tag follows the last colon after the last slash; a colon before
	// it is a registry port.
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
		r.tag = rest[i+1:]
		rest = rest[:i]
		if !ociTag.MatchString(r.tag) {
			return imageRef{}, fmt.Errorf("image %q: tag %q is not a valid tag", clip(ref), clip(r.tag))
		}
	}
	first, path, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.registry, r.repo = strings.ToLower(first), path
	} else if hubDefault {
		r.registry, r.repo = "docker.io", rest
	} else {
		return imageRef{}, fmt.Errorf("image %q names no registry host", clip(ref))
	}
	switch r.registry {
	case "index.docker.io", "registry-1.docker.io":
		r.registry = "docker.io"
	}
	if r.registry == "docker.io" && !strings.Contains(r.repo, "/") {
		r.repo = "library/" + r.repo
	}
	if !ociPath.MatchString(r.repo) {
		return imageRef{}, fmt.Errorf("image %q: repository %q is not a valid OCI repository name", clip(ref), clip(r.repo))
	}
	if r.tag == "" && r.digest == "" {
		return imageRef{}, fmt.Errorf("image %q has neither tag nor digest", clip(ref))
	}
	return r, nil
}

// mapRegistry maps registry/repository to an Airlock OCI name by the
// longest prefix of registries that matches whole path components:
// {"ghcr.io": "ghcr"} maps ghcr.io/acme/app to ghcr/acme/app, and
// {"ghcr.io/acme": "acme"} maps it to acme/app. The bool is false when
// no prefix matches: an image pushed to a registry Airlock does not front.
func mapRegistry(registries map[string]string, registry, repo string) (string, bool) {
	full := registry + "/" + repo
	best, bestLen := "", -1
	for prefix, upstream := range registries {
		p := strings.TrimSuffix(prefix, "/")
		if p == "" || len(p) <= bestLen {
			continue
		}
		if full == p || strings.HasPrefix(full, p+"/") {
			best, bestLen = upstream, len(p)
		}
	}
	if bestLen < 0 {
		return "", false
	}
	rest := strings.TrimPrefix(full[bestLen:], "/")
	if rest == "" {
		return best, true
	}
	return strings.TrimSuffix(best, "/") + "/" + rest, true
}

// imageArtifact turns a parsed reference and the digest CI pushed into
// an OCI artifact and digest. A tagged reference gives a record of the
// tag ("the tag must point where CI put it"); an untagged one a record
// of the digest itself ("CI built this manifest").
func imageArtifact(registries map[string]string, r imageRef, digest string) (verify.Artifact, string, error) {
	if r.digest != "" && digest != "" && r.digest != digest {
		return verify.Artifact{}, "", fmt.Errorf("image names digest %s but records %s", r.digest, digest)
	}
	if digest == "" {
		digest = r.digest
	}
	if digest == "" {
		return verify.Artifact{}, "", fmt.Errorf("image %s/%s has no digest", r.registry, r.repo)
	}
	if err := checkSHA256(digest); err != nil {
		return verify.Artifact{}, "", err
	}
	name, ok := mapRegistry(registries, r.registry, r.repo)
	if !ok {
		return verify.Artifact{}, "", errUnmappedRegistry
	}
	version := r.tag
	if version == "" {
		version = digest
	}
	return verify.Artifact{Ecosystem: verify.OCI, Name: name, Version: version}, digest, nil
}
