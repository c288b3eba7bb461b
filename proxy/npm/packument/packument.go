// Package packument decodes, filters and re-encodes npm packuments (the
// registry's per-package metadata document). The npm front fetches the full
// packument upstream and answers clients with a filtered copy: quarantined
// versions removed, dist-tags that pointed at them moved, and only
// dist.tarball rewritten. Every other value is carried as the raw JSON
// upstream sent, so dist.integrity, dist.shasum, dist.signatures,
// dist.attestations, time entries of kept versions and unknown fields keep
// their bytes. In the full form each version object is upstream's bytes
// with only the tarball value spliced in (unless it has duplicate keys or
// no dist.tarball, when it is rebuilt from its members in key order); the
// top-level object, "time", "dist-tags" and "versions" are rebuilt in key
// order.
package packument

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Packument is a decoded full packument.
type Packument struct {
	Name     string
	DistTags map[string]string
	// Time holds the "time" object's raw values: version publish times,
	// "created", "modified", and whatever else upstream put there (an
	// unpublished package has an object under "unpublished").
	Time     map[string]json.RawMessage
	Versions map[string]*Version
	// Restrictions, when set, is written as the top-level
	// "policyRestrictions" object that npm's manifest picker reads (see
	// Restrictions). Parse never sets it.
	Restrictions *Restrictions

	hasName bool
	hasTime bool
	rest    map[string]json.RawMessage // top-level fields other than the above
}

// Restrictions names versions withheld from clients, so that the npm
// client can say why: a version listed here is chosen for a range only
// when nothing else satisfies it, and choosing it fails with E403 and
// Message ("Could not download pkg@1.2.3 due to policy violations: …")
// instead of "No matching version found". Clients that do not know the
// field (pnpm, yarn) simply do not see the versions, which Filter removed.
type Restrictions struct {
	Versions []string
	Message  string
}

func (p *Packument) writeRestrictions(b *bytes.Buffer) {
	vs := make(map[string]func(*bytes.Buffer), len(p.Restrictions.Versions))
	for _, v := range p.Restrictions.Versions {
		vs[v] = func(b *bytes.Buffer) {
			writeObject(b, map[string]func(*bytes.Buffer){"name": stringValue(p.Name), "version": stringValue(v)})
		}
	}
	writeObject(b, map[string]func(*bytes.Buffer){
		"message":  stringValue(p.Restrictions.Message),
		"versions": func(b *bytes.Buffer) { writeObject(b, vs) },
	})
}

// Version is one entry of "versions", keyed by Version. Its facts are
// decoded leniently: a field of an unexpected type leaves the fact zero and
// is named in Malformed, it never fails the packument.
type Version struct {
	Version string          // the key in "versions"
	Raw     json.RawMessage // the value exactly as upstream sent it

	Dist             Dist
	Scripts          map[string]string
	NpmUser          *Person // _npmUser
	Maintainers      []Person
	Dependencies     map[string]string
	Gypfile          bool
	Deprecated       string
	HasInstallScript bool // upstream's flag, or a preinstall/install/postinstall script
	Malformed        []string

	fields map[string]json.RawMessage
	dist   map[string]json.RawMessage
	// tarballAt and tarballEnd locate dist.tarball's value in Raw, for
	// rewriting by splicing; tarballEnd is 0 when that is not possible
	// (no dist.tarball, or duplicate keys).
	tarballAt, tarballEnd int
}

// Dist is the facts of a version's "dist" object.
type Dist struct {
	Tarball      string
	Integrity    string
	Shasum       string
	Signatures   []Signature
	Attestations json.RawMessage // nil when absent
}

// Signature is one entry of dist.signatures.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Person is a maintainer or publisher.
type Person struct {
	Name             string          `json:"name"`
	Email            string          `json:"email,omitempty"`
	TrustedPublisher json.RawMessage `json:"trustedPublisher,omitempty"`
}

// HasProvenance reports whether the version carries dist.attestations.
func (v *Version) HasProvenance() bool {
	return len(v.Dist.Attestations) > 0 && string(v.Dist.Attestations) != "null"
}

// InstallScripts returns the version's preinstall, install and postinstall
// scripts that are present and non-empty, by name.
func (v *Version) InstallScripts() map[string]string {
	var m map[string]string
	for _, k := range installScripts {
		if s := v.Scripts[k]; s != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[k] = s
		}
	}
	return m
}

var installScripts = []string{"preinstall", "install", "postinstall"}

// PublishTime returns the publish time of version from "time"; ok is false
// when it is missing or not an RFC 3339 string.
func (p *Packument) PublishTime(version string) (t time.Time, ok bool) {
	raw, found := p.Time[version]
	if !found {
		return t, false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return t, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// ErrTooLarge is returned by Parse for a document over its limit.
var ErrTooLarge = errors.New("packument too large")

// Parse decodes a full packument of at most max bytes (no limit if max <= 0).
// The result refers into data, which must not be modified afterwards.
func Parse(data []byte, max int64) (*Packument, error) {
	if max > 0 && int64(len(data)) > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), max)
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // for its message
		if err == nil {
			err = errSyntax
		}
		return nil, fmt.Errorf("malformed packument: %w", err)
	}
	top, ok, err := splitObject(bytes.TrimSpace(data))
	if err != nil || !ok {
		return nil, errors.New("malformed packument: not an object")
	}
	p := &Packument{DistTags: map[string]string{}, Time: map[string]json.RawMessage{}, Versions: map[string]*Version{}}
	if raw, ok := top["name"]; ok {
		if p.Name, ok = decodeString(raw); !ok {
			return nil, errors.New("malformed packument: name is not a string")
		}
		p.hasName = true
		delete(top, "name")
	}
	if raw, ok := top["dist-tags"]; ok {
		if p.DistTags, ok = stringMap(raw); !ok {
			return nil, errors.New("malformed packument: dist-tags is not an object of strings")
		}
		delete(top, "dist-tags")
	}
	if raw, ok := top["time"]; ok {
		if p.Time, ok, err = splitObject(raw); !ok || err != nil {
			return nil, errors.New("malformed packument: time is not an object")
		}
		p.hasTime = true
		delete(top, "time")
	}
	if raw, ok := top["versions"]; ok {
		vs, ok, err := splitObject(raw)
		if !ok || err != nil {
			return nil, errors.New("malformed packument: versions is not an object")
		}
		for k, raw := range vs {
			v, err := parseVersion(k, raw)
			if err != nil {
				return nil, err
			}
			p.Versions[k] = v
		}
		delete(top, "versions")
	}
	p.rest = top
	return p, nil
}

func parseVersion(key string, raw json.RawMessage) (*Version, error) {
	v := &Version{Version: key, Raw: raw}
	var ok bool
	var err error
	var nf, nd int
	if v.fields, nf, ok, err = splitObjectN(raw); !ok || err != nil {
		return nil, fmt.Errorf("malformed packument: version %q is not an object", key)
	}
	if d, found := v.fields["dist"]; found {
		if v.dist, nd, ok, err = splitObjectN(d); !ok || err != nil {
			return nil, fmt.Errorf("malformed packument: version %q dist is not an object", key)
		}
		if t, found := v.dist["tarball"]; found && nf == len(v.fields) && nd == len(v.dist) {
			v.tarballAt = cap(raw) - cap(t)
			v.tarballEnd = v.tarballAt + len(t)
		}
	}
	bad := func(field string) { v.Malformed = append(v.Malformed, field) }
	str := func(name string, dst *string) {
		if r, found := v.dist[name]; found && string(r) != "null" {
			if *dst, ok = decodeString(r); !ok {
				bad("dist." + name)
			}
		}
	}
	str("tarball", &v.Dist.Tarball)
	str("integrity", &v.Dist.Integrity)
	str("shasum", &v.Dist.Shasum)
	if r, found := v.dist["signatures"]; found && string(r) != "null" {
		if json.Unmarshal(r, &v.Dist.Signatures) != nil {
			v.Dist.Signatures = nil
			bad("dist.signatures")
		}
	}
	v.Dist.Attestations = v.dist["attestations"]
	strMap := func(name string, dst *map[string]string) {
		if r, found := v.fields[name]; found && string(r) != "null" {
			if *dst, ok = stringMap(r); !ok {
				bad(name)
			}
		}
	}
	strMap("scripts", &v.Scripts)
	strMap("dependencies", &v.Dependencies)
	if r, found := v.fields["_npmUser"]; found && string(r) != "null" {
		if u, ok := person(r); ok {
			v.NpmUser = &u
		} else {
			bad("_npmUser")
		}
	}
	if r, found := v.fields["maintainers"]; found && string(r) != "null" {
		elems, ok, err := splitArray(r)
		for _, e := range elems {
			m, pok := person(e)
			ok = ok && pok
			v.Maintainers = append(v.Maintainers, m)
		}
		if !ok || err != nil {
			v.Maintainers = nil
			bad("maintainers")
		}
	}
	switch r := string(v.fields["gypfile"]); r {
	case "", "null", "false":
	case "true":
		v.Gypfile = true
	default:
		bad("gypfile")
	}
	if r, found := v.fields["deprecated"]; found {
		// npm writes a message; a bare true also marks deprecation.
		switch string(r) {
		case "null", "false":
		case "true":
			v.Deprecated = "true"
		default:
			if v.Deprecated, ok = decodeString(r); !ok {
				bad("deprecated")
			}
		}
	}
	flag := false
	switch r := string(v.fields["hasInstallScript"]); r {
	case "", "null", "false":
	case "true":
		flag = true
	default:
		bad("hasInstallScript")
	}
	v.HasInstallScript = flag || len(v.InstallScripts()) > 0
	return v, nil
}

// Filter returns a copy of p without the versions for which hidden is true.
// Their "time" entries go too ("created" and "modified" stay as upstream
// sent them). A dist-tag that pointed at a hidden version moves to the
// newest remaining version of the same major line that does not outrank the
// hidden one, choosing among releases only unless the tag pointed at a
// prerelease (then prereleases of the line are candidates too); it is
// dropped when there is no such version, or when the hidden version is not
// valid semver. Versions that are not valid semver are never chosen.
// Tags pointing at kept versions, or at unlisted versions that hidden
// does not hide, are left alone. p is not modified; Versions are shared.
func (p *Packument) Filter(hidden func(version string) bool) *Packument {
	q := &Packument{
		Name:     p.Name,
		DistTags: make(map[string]string, len(p.DistTags)),
		Time:     make(map[string]json.RawMessage, len(p.Time)),
		Versions: make(map[string]*Version, len(p.Versions)),
		hasName:  p.hasName,
		hasTime:  p.hasTime,
		rest:     p.rest,
	}
	gone := map[string]bool{}
	for k, v := range p.Versions {
		if hidden(k) {
			gone[k] = true
			continue
		}
		q.Versions[k] = v
	}
	for k, t := range p.Time {
		if !gone[k] {
			q.Time[k] = t
		}
	}
	lines := newLines(q.Versions)
	for tag, target := range p.DistTags {
		_, listed := p.Versions[target]
		if !gone[target] && (listed || !hidden(target)) {
			q.DistTags[tag] = target
			continue
		}
		if to, ok := lines.retarget(target); ok {
			q.DistTags[tag] = to
		}
	}
	return q
}

type kv struct {
	key string
	v   semver
}

// lines indexes the valid semver versions by major: all of them, and the
// releases only, each sorted by precedence (then key, for versions equal
// but for build metadata).
type lines map[string]*line

type line struct{ all, releases []kv }

func newLines(vs map[string]*Version) lines {
	ls := lines{}
	for k := range vs {
		s, ok := parseSemver(k)
		if !ok {
			continue
		}
		l := ls[s.major]
		if l == nil {
			l = &line{}
			ls[s.major] = l
		}
		l.all = append(l.all, kv{k, s})
		if len(s.pre) == 0 {
			l.releases = append(l.releases, kv{k, s})
		}
	}
	cmp := func(a, b kv) int {
		if c := a.v.compare(b.v); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	}
	for _, l := range ls {
		slices.SortFunc(l.all, cmp)
		slices.SortFunc(l.releases, cmp)
	}
	return ls
}

// retarget returns the newest version of target's major line that does not
// outrank target, a release unless target is a prerelease.
func (ls lines) retarget(target string) (string, bool) {
	t, ok := parseSemver(target)
	if !ok {
		return "", false
	}
	l := ls[t.major]
	if l == nil {
		return "", false
	}
	cands := l.releases
	if len(t.pre) > 0 {
		cands = l.all
	}
	// The first candidate that outranks t; the one before it is the answer.
	i := sort.Search(len(cands), func(i int) bool { return cands[i].v.compare(t) > 0 })
	if i == 0 {
		return "", false
	}
	return cands[i-1].key, true
}

// Encode writes the full packument with every version's dist.tarball
// replaced by tarball(version) and everything else preserved.
func (p *Packument) Encode(w io.Writer, tarball func(version string) string) error {
	var b bytes.Buffer
	b.Grow(p.sizeHint())
	fields := make(map[string]func(*bytes.Buffer), len(p.rest)+4)
	for k, raw := range p.rest {
		fields[k] = rawValue(raw)
	}
	if p.hasName || p.Name != "" {
		fields["name"] = stringValue(p.Name)
	}
	fields["dist-tags"] = p.writeDistTags
	if p.hasTime || len(p.Time) > 0 {
		fields["time"] = func(b *bytes.Buffer) { writeObject(b, rawFields(p.Time)) }
	}
	fields["versions"] = func(b *bytes.Buffer) {
		vs := make(map[string]func(*bytes.Buffer), len(p.Versions))
		for k, v := range p.Versions {
			vs[k] = func(b *bytes.Buffer) { v.writeFull(b, tarball(k)) }
		}
		writeObject(b, vs)
	}
	if p.Restrictions != nil {
		fields["policyRestrictions"] = p.writeRestrictions
	}
	writeObject(&b, fields)
	_, err := w.Write(b.Bytes())
	return err
}

// AbbreviatedFields are the per-version fields kept in the abbreviated
// ("corgi", application/vnd.npm.install-v1+json) form, besides
// hasInstallScript, which is derived.
var AbbreviatedFields = []string{
	"name", "version", "dependencies", "optionalDependencies", "devDependencies",
	"bundleDependencies", "peerDependencies", "peerDependenciesMeta", "bin",
	"directories", "dist", "engines", "cpu", "os", "_hasShrinkwrap",
	"deprecated", "funding", "license", "acceptDependencies", "libc",
}

// EncodeAbbreviated writes npm's abbreviated form: name, modified,
// dist-tags and, per version, only AbbreviatedFields (dist with its tarball
// rewritten) plus "hasInstallScript": true when the version has one.
// "modified" is the top-level field if upstream sent one, else
// time.modified; it is omitted when neither exists.
func (p *Packument) EncodeAbbreviated(w io.Writer, tarball func(version string) string) error {
	var b bytes.Buffer
	b.Grow(p.sizeHint() / 2)
	fields := map[string]func(*bytes.Buffer){
		"name":      stringValue(p.Name),
		"dist-tags": p.writeDistTags,
	}
	if m, ok := p.rest["modified"]; ok {
		fields["modified"] = rawValue(m)
	} else if m, ok := p.Time["modified"]; ok {
		fields["modified"] = rawValue(m)
	}
	order := abbreviatedOrder()
	fields["versions"] = func(b *bytes.Buffer) {
		vs := make(map[string]func(*bytes.Buffer), len(p.Versions))
		for k, v := range p.Versions {
			vs[k] = func(b *bytes.Buffer) { v.writeAbbreviated(b, tarball(k), order) }
		}
		writeObject(b, vs)
	}
	if p.Restrictions != nil {
		fields["policyRestrictions"] = p.writeRestrictions
	}
	writeObject(&b, fields)
	_, err := w.Write(b.Bytes())
	return err
}

func (p *Packument) sizeHint() int {
	n := 1024
	for _, v := range p.Versions {
		n += len(v.Raw) + 64
	}
	for _, r := range p.rest {
		n += len(r) + 32
	}
	return n
}

func (p *Packument) writeDistTags(b *bytes.Buffer) {
	m := make(map[string]func(*bytes.Buffer), len(p.DistTags))
	for k, v := range p.DistTags {
		m[k] = stringValue(v)
	}
	writeObject(b, m)
}

// Encode writes the version object as the full packument has it, with
// dist.tarball replaced: the answer to GET /<name>/<version>.
func (v *Version) Encode(w io.Writer, tarball string) error {
	var b bytes.Buffer
	b.Grow(len(v.Raw) + len(tarball))
	v.writeFull(&b, tarball)
	_, err := w.Write(b.Bytes())
	return err
}

func (v *Version) writeFull(b *bytes.Buffer, tarball string) {
	if v.tarballEnd > 0 {
		// Upstream's bytes, with only the tarball value replaced.
		b.Write(v.Raw[:v.tarballAt])
		writeString(b, tarball)
		b.Write(v.Raw[v.tarballEnd:])
		return
	}
	m := rawFields(v.fields)
	if v.dist != nil || tarball != "" {
		m["dist"] = v.distWriter(tarball)
	}
	writeObject(b, m)
}

// abbreviatedOrder is the abbreviated form's keys in the order writeObject
// would write them, so that versions can be written without building a map
// each: a large packument has thousands.
func abbreviatedOrder() []string {
	keys := append(slices.Clone(AbbreviatedFields), "hasInstallScript")
	if !slices.Contains(keys, "dist") {
		keys = append(keys, "dist")
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

func (v *Version) writeAbbreviated(b *bytes.Buffer, tarball string, order []string) {
	b.WriteByte('{')
	n := 0
	key := func(k string) {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		writeString(b, k)
		b.WriteByte(':')
	}
	for _, k := range order {
		switch k {
		case "dist":
			if v.dist != nil || tarball != "" {
				key(k)
				v.distWriter(tarball)(b)
			}
		case "hasInstallScript":
			if v.HasInstallScript {
				key(k)
				b.WriteString("true")
			}
		default:
			if r, ok := v.fields[k]; ok {
				key(k)
				b.Write(r)
			}
		}
	}
	b.WriteByte('}')
}

func (v *Version) distWriter(tarball string) func(*bytes.Buffer) {
	return func(b *bytes.Buffer) {
		d := rawFields(v.dist)
		d["tarball"] = stringValue(tarball)
		writeObject(b, d)
	}
}

func rawFields(m map[string]json.RawMessage) map[string]func(*bytes.Buffer) {
	out := make(map[string]func(*bytes.Buffer), len(m)+1)
	for k, r := range m {
		out[k] = rawValue(r)
	}
	return out
}

// rawValue writes a value decoded by encoding/json, hence valid JSON.
func rawValue(r json.RawMessage) func(*bytes.Buffer) {
	return func(b *bytes.Buffer) { b.Write(r) }
}

func stringValue(s string) func(*bytes.Buffer) {
	return func(b *bytes.Buffer) { writeString(b, s) }
}

// writeObject writes m's members in key order.
func writeObject(b *bytes.Buffer, m map[string]func(*bytes.Buffer)) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, k)
		b.WriteByte(':')
		m[k](b)
	}
	b.WriteByte('}')
}

// writeString writes s as a JSON string; the common case of printable
// ASCII with nothing to escape skips encoding/json.
func writeString(b *bytes.Buffer, s string) {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	enc, _ := json.Marshal(strings.ToValidUTF8(s, "\uFFFD"))
	b.Write(enc)
}
