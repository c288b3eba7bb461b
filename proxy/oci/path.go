package oci

import (
	"net/http"
	"regexp"
	"strings"
)

// The kinds of /v2/ request.
const (
	kindBase      = "base"      // /v2/
	kindManifest  = "manifest"  // /v2/<name>/manifests/<reference>
	kindBlob      = "blob"      // /v2/<name>/blobs/<digest>
	kindUpload    = "upload"    // /v2/<name>/blobs/uploads/…
	kindTags      = "tags"      // /v2/<name>/tags/list
	kindReferrers = "referrers" // /v2/<name>/referrers/<digest>
	kindCatalog   = "catalog"   // /v2/_catalog
)

// route is a parsed /v2/ path.
type route struct {
	kind string
	name string // repository name as written (upstream prefix included)
	ref  string // tag or digest (manifests), digest (blobs, referrers)
}

// The distribution spec's grammar. A name is at most 255 characters so
// that "<host>/<name>" stays within what clients accept.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

const maxName = 255

// parsePath splits a /v2/ path into kind, name and reference, validating
// each against the spec's grammar. Like go-containerregistry's registry it
// reads the path from the end, so a repository may itself contain a
// "manifests" or "blobs" element.
func parsePath(p string) (route, *regError) {
	rest, ok := strings.CutPrefix(p, "/v2")
	if !ok {
		return route{}, errNotEndpoint
	}
	if rest == "" || rest == "/" {
		return route{kind: kindBase}, nil
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return route{}, errNotEndpoint
	}
	if rest == "_catalog" {
		return route{kind: kindCatalog}, nil
	}
	el := strings.Split(rest, "/")
	n := len(el)
	var r route
	switch {
	case n >= 3 && el[n-2] == "manifests":
		r = route{kind: kindManifest, name: strings.Join(el[:n-2], "/"), ref: el[n-1]}
	case n >= 4 && el[n-3] == "blobs" && el[n-2] == "uploads":
		r = route{kind: kindUpload, name: strings.Join(el[:n-3], "/"), ref: el[n-1]}
	case n >= 3 && el[n-2] == "blobs":
		r = route{kind: kindBlob, name: strings.Join(el[:n-2], "/"), ref: el[n-1]}
	case n >= 3 && el[n-2] == "tags" && el[n-1] == "list":
		r = route{kind: kindTags, name: strings.Join(el[:n-2], "/")}
	case n >= 3 && el[n-2] == "referrers":
		r = route{kind: kindReferrers, name: strings.Join(el[:n-2], "/"), ref: el[n-1]}
	default:
		return route{}, errNotEndpoint
	}
	if r.kind == kindUpload {
		return r, nil // refused whatever it names
	}
	if len(r.name) > maxName || !nameRE.MatchString(r.name) {
		return route{}, errorf(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q: want lowercase path components [a-z0-9] separated by . _ __ or -, joined by /, at most %d characters", clip(r.name), maxName)
	}
	switch r.kind {
	case kindManifest:
		if strings.Contains(r.ref, ":") {
			if !validDigest(r.ref) {
				return route{}, errDigest(r.ref)
			}
		} else if !tagRE.MatchString(r.ref) {
			// No manifest can have such a tag: the spec (and its conformance
			// suite) wants 404 for it, not a name error.
			return route{}, errorf(http.StatusNotFound, codeManifestUnknown, "invalid tag %q: no manifest can have it (tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})", clip(r.ref))
		}
	case kindBlob, kindReferrers:
		if !validDigest(r.ref) {
			return route{}, errDigest(r.ref)
		}
	}
	return r, nil
}

// validDigest accepts what the blob store accepts: sha256 and 64
// lowercase hex digits. Other algorithms are refused rather than half
// supported.
func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func errDigest(d string) *regError {
	return errorf(http.StatusBadRequest, codeDigestInvalid, "invalid digest %q: Airlock serves sha256:<64 lowercase hex> digests only", clip(d))
}

// selectTarget maps a repository name to an upstream and its repository.
// With ?ns=<host> (containerd) the host picks the upstream and the name
// is unprefixed; ns naming Airlock itself is ignored. Otherwise the first
// segment names the upstream, and a name matching none belongs to the
// mirror. A single-segment repository of the mirror (Docker Hub) gets
// library/, as Docker Hub itself spells official images.
func (h *Handler) selectTarget(name, ns, host string) (target, *regError) {
	var up *upstream
	repo := name
	if ns != "" && !strings.EqualFold(ns, host) {
		for _, u := range h.upstreams {
			if u.hasHost(ns) {
				up = u
				break
			}
		}
		if up == nil {
			return target{}, errorf(http.StatusNotFound, codeNameUnknown, "no upstream is configured for registry %q (ns=)", clip(ns))
		}
	} else {
		first, after, ok := strings.Cut(name, "/")
		for _, u := range h.upstreams {
			if ok && u.Name == first {
				up, repo = u, after
				break
			}
		}
		if up == nil {
			if h.mirror == nil {
				return target{}, errorf(http.StatusNotFound, codeNameUnknown, "repository %q: its first path segment %q names no upstream (and no upstream is the Docker Hub mirror)", clip(name), clip(first))
			}
			up = h.mirror
		}
	}
	if up.Mirror && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	key := up.Name + "/" + repo
	return target{up: up, repo: repo, key: key, name: name, pol: h.policy(key)}, nil
}

func (h *Handler) policy(key string) Policy {
	p := h.o.Policy(key)
	if p.Tags == "" {
		p.Tags = TagsFollowSigned
	}
	return p
}

// clip keeps client-supplied text in messages short.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
