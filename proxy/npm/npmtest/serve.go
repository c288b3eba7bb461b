package npmtest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// Media types of the two packument forms.
const (
	fullType  = "application/json"
	corgiType = "application/vnd.npm.install-v1+json"
)

// Cache-Control values the public registry sends: packuments change,
// tarballs never do.
const (
	packumentCache = "public, max-age=300"
	tarballCache   = "public, immutable, max-age=31557600"
)

// maxAuditBody bounds an audit request body, compressed or not.
const maxAuditBody = 32 << 20

// Versions npm publish records for the toolchain; any plausible value does.
const (
	nodeVersion = "20.11.1"
	npmVersion  = "10.2.4"
)

// serve answers the registry API that installs and audits use
// (https://github.com/npm/registry/blob/main/docs/REGISTRY-API.md).
func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	esc := req.URL.EscapedPath()
	r.mu.Lock()
	r.requests[esc]++
	if req.URL.Path != esc {
		r.requests[req.URL.Path]++
	}
	down, trace := r.down, r.trace
	r.mu.Unlock()
	if trace != nil {
		trace(req)
	}
	if down {
		writeError(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}

	// Split before unescaping, so that a scoped name's %2f stays inside
	// its segment.
	raw := strings.Split(strings.TrimPrefix(esc, "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "Bad Request")
			return
		}
		segs[i] = u
	}
	if segs[0] == "-" {
		r.serveSpecial(w, req, segs[1:])
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	name, rest, ok := splitName(segs)
	if !ok {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	switch {
	case len(rest) == 0:
		r.servePackument(w, req, name)
	case len(rest) == 1 && rest[0] != "":
		r.serveVersion(w, req, name, rest[0])
	case len(rest) == 2 && rest[0] == "-":
		r.serveTarball(w, req, name, rest[1])
	default:
		writeError(w, http.StatusNotFound, "Not found")
	}
}

// splitName takes the package name off the front of unescaped path
// segments: "@scope/name" arrives as one segment when the slash was
// escaped, as two when it was not.
func splitName(segs []string) (name string, rest []string, ok bool) {
	first := segs[0]
	switch {
	case first == "":
		return "", nil, false
	case strings.HasPrefix(first, "@") && !strings.Contains(first, "/"):
		if len(segs) < 2 || segs[1] == "" {
			return "", nil, false
		}
		return first + "/" + segs[1], segs[2:], true
	}
	return first, segs[1:], true
}

// serveSpecial answers the /-/ endpoints; segs follow the "-".
func (r *Registry) serveSpecial(w http.ResponseWriter, req *http.Request, segs []string) {
	p := strings.Join(segs, "/")
	if strings.HasPrefix(p, "npm/v1/security/") {
		r.serveAudit(w, req, p)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	switch {
	case p == "ping":
		writeDoc(w, req, fullType, "no-cache", []byte("{}\n"), time.Time{})
	case p == "npm/v1/keys":
		writeDoc(w, req, fullType, packumentCache, r.keysJSON, time.Time{})
	case strings.HasPrefix(p, "npm/v1/attestations/"):
		spec := strings.TrimPrefix(p, "npm/v1/attestations/")
		at := strings.LastIndex(spec, "@")
		if at <= 0 {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		r.mu.Lock()
		v := r.pkgs[spec[:at]].get(spec[at+1:])
		var doc []byte
		var published time.Time
		if v != nil && !v.unpublished {
			doc, published = v.attestation, v.published
		}
		r.mu.Unlock()
		if doc == nil {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		writeDoc(w, req, fullType, packumentCache, doc, published)
	case len(segs) >= 3 && segs[0] == "package" && segs[len(segs)-1] == "dist-tags":
		name, rest, ok := splitName(segs[1 : len(segs)-1])
		r.mu.Lock()
		pk := r.pkgs[name]
		var tags map[string]string
		var modified time.Time
		if ok && len(rest) == 0 && pk != nil {
			tags, modified = pk.distTags(), pk.modified
		}
		r.mu.Unlock()
		if tags == nil {
			writeError(w, http.StatusNotFound, "Not found")
			return
		}
		body, err := json.Marshal(tags)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeDoc(w, req, fullType, "no-cache", body, modified)
	default:
		writeError(w, http.StatusNotFound, "Not found")
	}
}

// serveAudit answers the bulk advisory and quick audit endpoints that npm
// install and npm audit post to: no advisories. The body is read, and
// must be JSON once un-gzipped, so that a client sending garbage notices.
func (r *Registry) serveAudit(w http.ResponseWriter, req *http.Request, p string) {
	switch p {
	case "npm/v1/security/advisories/bulk", "npm/v1/security/audits/quick", "npm/v1/security/audits":
	default:
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	if req.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, maxAuditBody)
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid gzip body: "+err.Error())
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxAuditBody)
	}
	var doc any
	if err := json.NewDecoder(body).Decode(&doc); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", fullType)
	w.Write([]byte("{}"))
}

// wantsCorgi reports whether the Accept header prefers the abbreviated
// packument, as npm's "application/vnd.npm.install-v1+json; q=1.0,
// application/json; q=0.8, */*" does.
func wantsCorgi(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(mt), corgiType) {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "q") && strings.Trim(strings.TrimSpace(v), "0.") == "" {
				return false // q=0: explicitly not acceptable
			}
		}
		return true
	}
	return false
}

func (r *Registry) servePackument(w http.ResponseWriter, req *http.Request, name string) {
	corgi := wantsCorgi(req.Header.Get("Accept"))
	r.mu.Lock()
	pk := r.pkgs[name]
	var body []byte
	var modified time.Time
	var err error
	if pk != nil {
		body, err = r.packument(pk, corgi)
		modified = pk.modified
	}
	r.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if body == nil {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	w.Header().Set("Vary", "Accept-Encoding, Accept")
	ctype := fullType
	if corgi {
		ctype = corgiType
	}
	writeDoc(w, req, ctype, packumentCache, body, modified)
}

// serveVersion answers /<name>/<version-or-dist-tag> with the version's
// full manifest, as the registry does for `npm view name@1.0.0`.
func (r *Registry) serveVersion(w http.ResponseWriter, req *http.Request, name, ref string) {
	r.mu.Lock()
	pk := r.pkgs[name]
	var body []byte
	var published time.Time
	var err error
	if pk != nil {
		if tag, ok := pk.distTags()[ref]; ok {
			ref = tag
		}
		if v := pk.get(ref); v != nil && !v.unpublished {
			body, err = json.Marshal(r.versionDoc(pk, v, false))
			published = v.published
		}
	}
	r.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if body == nil {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeDoc(w, req, fullType, packumentCache, body, published)
}

func (r *Registry) serveTarball(w http.ResponseWriter, req *http.Request, name, file string) {
	_, bare := npmsig.SplitScoped(name)
	ver, ok := strings.CutPrefix(file, bare+"-")
	if ok {
		ver, ok = strings.CutSuffix(ver, ".tgz")
	}
	var body []byte
	var published time.Time
	if ok {
		r.mu.Lock()
		if v := r.pkgs[name].get(ver); v != nil && !v.unpublished {
			body, published = v.served, v.published
		}
		r.mu.Unlock()
	}
	if body == nil {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	writeDoc(w, req, "application/octet-stream", tarballCache, body, published)
}

// packument renders pk in full or abbreviated form. r.mu must be held.
func (r *Registry) packument(pk *pkg, corgi bool) ([]byte, error) {
	live := pk.live()
	versions := make(object, 0, len(live))
	for _, v := range live {
		versions = append(versions, field{v.Version.Version, r.versionDoc(pk, v, corgi)})
	}
	tags := pk.distTags()
	if corgi {
		return json.Marshal(object{
			{"name", pk.name},
			{"dist-tags", tags},
			{"versions", versions},
			{"modified", stamp(pk.modified)},
		})
	}

	all := pk.byPublished()
	times := object{{"created", stamp(all[0].published)}, {"modified", stamp(pk.modified)}}
	var maintainers []object
	seen := map[string]bool{}
	for _, v := range all {
		times = append(times, field{v.Version.Version, stamp(v.published)})
		if !seen[v.publisher] {
			seen[v.publisher] = true
			maintainers = append(maintainers, person(v.publisher))
		}
	}
	if len(live) == 0 {
		var gone []string
		for _, v := range all {
			gone = append(gone, v.Version.Version)
		}
		times = append(times, field{"unpublished", object{
			{"time", stamp(pk.modified)},
			{"versions", gone},
		}})
	}
	rev := sha256.Sum256([]byte(pk.name + "\x00" + stamp(pk.modified)))
	return json.Marshal(object{
		{"_id", pk.name},
		{"_rev", strconv.Itoa(pk.rev) + "-" + hex.EncodeToString(rev[:16])},
		{"name", pk.name},
		{"dist-tags", tags},
		{"versions", versions},
		{"time", times},
		{"license", "MIT"},
		{"description", description(pk.name)},
		{"maintainers", maintainers},
		{"readme", "# " + pk.name + "\n\n" + description(pk.name) + ".\n\n```js\nconst x = require('" + pk.name + "');\n```\n"},
		{"readmeFilename", "README.md"},
	})
}

// versionDoc is one entry of versions: what npm publish records for the
// version (its package.json and the registry's additions), or, for the
// abbreviated form, only what installing needs. r.mu must be held.
func (r *Registry) versionDoc(pk *pkg, v *version, corgi bool) object {
	name, ver := pk.name, v.Version.Version
	dist := object{
		{"integrity", v.integrity},
		{"shasum", v.shasum},
		{"tarball", r.tarballURL(name, ver)},
		{"fileCount", v.fileCount},
		{"unpackedSize", v.unpackedSize},
	}
	if v.attestation != nil {
		dist = append(dist, field{"attestations", object{
			{"url", r.URL + "/-/npm/v1/attestations/" + strings.Replace(name, "/", "%2f", 1) + "@" + ver},
			{"provenance", object{{"predicateType", "https://slsa.dev/provenance/v1"}}},
		}})
	}
	switch v.fault {
	case sigOK:
		dist = append(dist, field{"signatures", []object{{{"keyid", r.keyID}, {"sig", v.sig}}}})
	case sigCorrupt:
		dist = append(dist, field{"signatures", []object{{{"keyid", r.keyID}, {"sig", v.badSig}}}})
	}
	install := hasInstallScript(v.Scripts)

	if corgi {
		doc := object{{"name", name}, {"version", ver}}
		if v.Deprecated != "" {
			doc = append(doc, field{"deprecated", v.Deprecated})
		}
		if len(v.Dependencies) > 0 {
			doc = append(doc, field{"dependencies", v.Dependencies})
		}
		doc = append(doc, field{"dist", dist})
		if install {
			doc = append(doc, field{"hasInstallScript", true})
		}
		return append(doc, field{"_hasShrinkwrap", false})
	}

	doc := object{
		{"name", name},
		{"version", ver},
		{"description", description(name)},
		{"main", "index.js"},
	}
	if len(v.Scripts) > 0 {
		doc = append(doc, field{"scripts", v.Scripts})
	}
	if len(v.Dependencies) > 0 {
		doc = append(doc, field{"dependencies", v.Dependencies})
	}
	doc = append(doc,
		field{"license", "MIT"},
		field{"_id", name + "@" + ver},
		field{"gitHead", v.gitHead},
		field{"_nodeVersion", nodeVersion},
		field{"_npmVersion", npmVersion},
		field{"dist", dist},
		field{"_npmUser", person(v.publisher)},
		field{"directories", object{}},
		field{"maintainers", []object{person(v.publisher)}},
	)
	if install {
		doc = append(doc, field{"hasInstallScript", true})
	}
	if v.Deprecated != "" {
		doc = append(doc, field{"deprecated", v.Deprecated})
	}
	_, bare := npmsig.SplitScoped(name)
	return append(doc,
		field{"_npmOperationalInternal", object{
			{"host", "s3://npm-registry-packages-npm-production"},
			{"tmp", "tmp/" + bare + "_" + ver + "_" + strconv.Itoa(int(v.published.UnixMilli())) + "_0.5"},
		}},
		field{"_hasShrinkwrap", false},
	)
}

// tarballURL is where the registry keeps name@version's tarball:
// /<name>/-/<bare name>-<version>.tgz, scope slash unescaped.
func (r *Registry) tarballURL(name, version string) string {
	_, bare := npmsig.SplitScoped(name)
	return r.URL + "/" + name + "/-/" + bare + "-" + version + ".tgz"
}

func person(name string) object {
	return object{{"name", name}, {"email", name + "@example.com"}}
}

// hasInstallScript mirrors the registry's flag: npm runs these scripts on
// install, so clients (and Airlock) want to know without the tarball.
func hasInstallScript(scripts map[string]string) bool {
	for _, s := range []string{"preinstall", "install", "postinstall"} {
		if _, ok := scripts[s]; ok {
			return true
		}
	}
	return false
}

// writeDoc sends body with a strong ETag over its content, so that any
// change (a fault included) changes it, and lets http.ServeContent answer
// If-None-Match, If-Modified-Since, HEAD and ranges.
func writeDoc(w http.ResponseWriter, req *http.Request, ctype, cacheControl string, body []byte, lastModified time.Time) {
	sum := sha256.Sum256(body)
	h := w.Header()
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheControl)
	http.ServeContent(w, req, "", lastModified, bytes.NewReader(body))
}

// writeError answers like the registry: {"error":"Not found"}.
func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", fullType)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	w.Write(body)
}
