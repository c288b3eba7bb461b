package npm

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// Kinds of request the front answers.
const (
	kindPackument    = "packument"
	kindVersion      = "version"      // GET /<name>/<version-or-tag>
	kindTarball      = "tarball"      // GET /<name>/-/<bare>-<version>.tgz
	kindDistTags     = "dist-tags"    // GET /-/package/<name>/dist-tags
	kindKeys         = "keys"         // GET /-/npm/v1/keys
	kindAttestations = "attestations" // GET /-/npm/v1/attestations/<name>@<version>
	kindAudit        = "audit"        // POST /-/npm/v1/security/…
	kindPing         = "ping"         // GET /-/ping
)

// request is a parsed and validated front request.
type request struct {
	kind    string
	name    string // validated package name, "@scope/name" for scoped
	version string // validated version (tarball, attestations; version requests naming one)
	tag     string // dist-tag of a version request
	audit   string // the path below /-/npm/v1/security/ of an audit request
}

// maxTag bounds a dist-tag name; real ones are words like latest or next.
const maxTag = 128

// parse maps a request to its kind. Paths arrive escaped, with the /npm
// prefix removed; scoped names come as @scope%2fname (npm's own spelling,
// any case of the escape) or @scope/name. A status is returned for
// anything that is not the read-only registry API, with a message for
// the client.
func parse(method, escaped string) (request, int, string) {
	p := strings.TrimPrefix(escaped, "/")
	if p == "" {
		return request{}, http.StatusNotFound, "airlock: no package named (want /npm/<package>)"
	}
	raw := strings.Split(p, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return request{}, http.StatusBadRequest, "airlock: malformed escape in the path"
		}
		segs[i] = u
	}
	if segs[0] == "-" {
		return parseSpecial(method, segs[1:])
	}
	if method != http.MethodGet && method != http.MethodHead {
		return request{}, http.StatusMethodNotAllowed, readOnly
	}
	name, rest, msg := splitName(segs)
	if msg != "" {
		return request{}, http.StatusBadRequest, msg
	}
	switch {
	case len(rest) == 0:
		return request{kind: kindPackument, name: name}, 0, ""
	case len(rest) == 1:
		return parseVersionOrTag(name, rest[0])
	case len(rest) == 2 && rest[0] == "-":
		return parseTarball(name, rest[1])
	}
	return request{}, http.StatusNotFound, "airlock: not an npm registry path"
}

// readOnly is the answer to publish, unpublish, login and tag writes.
const readOnly = "airlock: this registry is a read-only verifying proxy: publishing, unpublishing, login and dist-tag changes go to the upstream registry directly"

// splitName takes the package name off the front of the path segments.
func splitName(segs []string) (name string, rest []string, msg string) {
	name, rest = segs[0], segs[1:]
	if strings.HasPrefix(name, "@") && !strings.Contains(name, "/") {
		if len(rest) == 0 {
			return "", nil, "airlock: invalid package name " + quote(name) + ": a scope without a name"
		}
		name, rest = name+"/"+rest[0], rest[1:]
	}
	if err := npmsig.CheckName(name); err != nil {
		return "", nil, "airlock: " + err.Error()
	}
	return name, rest, ""
}

func parseVersionOrTag(name, s string) (request, int, string) {
	if npmsig.CheckVersion(s) == nil {
		return request{kind: kindVersion, name: name, version: s}, 0, ""
	}
	if !validTag(s) {
		return request{}, http.StatusBadRequest, "airlock: " + quote(s) + " is neither a version nor a dist-tag"
	}
	return request{kind: kindVersion, name: name, tag: s}, 0, ""
}

// validTag accepts what npm allows as a tag name that can sit in a path:
// no semver range (npm refuses those as tags) and nothing to escape.
func validTag(s string) bool {
	if s == "" || len(s) > maxTag || s[0] == '.' {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func parseTarball(name, file string) (request, int, string) {
	_, bare := npmsig.SplitScoped(name)
	v, ok := strings.CutPrefix(file, bare+"-")
	if ok {
		v, ok = strings.CutSuffix(v, ".tgz")
	}
	if !ok {
		return request{}, http.StatusNotFound, "airlock: tarball " + quote(file) + " does not belong to " + name + " (want " + bare + "-<version>.tgz)"
	}
	if err := npmsig.CheckVersion(v); err != nil {
		return request{}, http.StatusBadRequest, "airlock: " + err.Error()
	}
	return request{kind: kindTarball, name: name, version: v}, 0, ""
}

// parseSpecial handles the /-/ namespace: the registry's own endpoints.
func parseSpecial(method string, segs []string) (request, int, string) {
	get := method == http.MethodGet || method == http.MethodHead
	path := strings.Join(segs, "/")
	switch {
	case path == "ping" && get:
		return request{kind: kindPing}, 0, ""
	case path == "npm/v1/keys" && get:
		return request{kind: kindKeys}, 0, ""
	case len(segs) >= 4 && segs[0] == "npm" && segs[1] == "v1" && segs[2] == "attestations" && get:
		spec := strings.Join(segs[3:], "/")
		i := strings.LastIndex(spec, "@")
		if i <= 0 {
			return request{}, http.StatusBadRequest, "airlock: want /-/npm/v1/attestations/<name>@<version>"
		}
		name, v := spec[:i], spec[i+1:]
		if err := npmsig.CheckName(name); err != nil {
			return request{}, http.StatusBadRequest, "airlock: " + err.Error()
		}
		if err := npmsig.CheckVersion(v); err != nil {
			return request{}, http.StatusBadRequest, "airlock: " + err.Error()
		}
		return request{kind: kindAttestations, name: name, version: v}, 0, ""
	case path == "npm/v1/security/advisories/bulk" || path == "npm/v1/security/audits/quick":
		if method != http.MethodPost {
			return request{}, http.StatusMethodNotAllowed, "airlock: the audit endpoints take POST"
		}
		return request{kind: kindAudit, audit: strings.TrimPrefix(path, "npm/v1/security/")}, 0, ""
	case len(segs) >= 3 && segs[0] == "package" && segs[len(segs)-1] == "dist-tags" && get:
		name := strings.Join(segs[1:len(segs)-1], "/")
		if err := npmsig.CheckName(name); err != nil {
			return request{}, http.StatusBadRequest, "airlock: " + err.Error()
		}
		return request{kind: kindDistTags, name: name}, 0, ""
	}
	if !get {
		return request{}, http.StatusMethodNotAllowed, readOnly
	}
	return request{}, http.StatusNotFound, "airlock: unsupported registry endpoint /-/" + path
}

// quote renders untrusted text for a message: quoted and bounded.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ReplaceAll(strings.ReplaceAll(`"`+s+`"`, "\n", `\n`), "\r", `\r`)
}
