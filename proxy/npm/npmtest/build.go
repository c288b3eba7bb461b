package npmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// packTime is the mtime npm gives every tarball entry (pacote and npm pack
// normalise it so that tarballs are reproducible).
func packTime() time.Time { return time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC) }

// build computes everything served for name@v, published at now unless v
// says otherwise.
func (r *Registry) build(name string, v Version, now time.Time) (*version, error) {
	if err := npmsig.CheckVersion(v.Version); err != nil {
		return nil, err
	}
	files := make(map[string]string, len(v.Files))
	for f, content := range v.Files {
		if f == "" || path.Clean(f) != f || path.IsAbs(f) || f == ".." || strings.HasPrefix(f, "../") {
			return nil, fmt.Errorf("file name %q is not a clean relative path", f)
		}
		files[f] = content
	}
	if v.Files == nil {
		files["index.js"] = fmt.Sprintf("module.exports = %q;\n", name+"@"+v.Version)
	}
	manifest := []byte(files["package.json"])
	if _, ok := files["package.json"]; ok {
		delete(files, "package.json")
	} else {
		var err error
		if manifest, err = packageJSON(name, v); err != nil {
			return nil, err
		}
	}
	tgz, count, size, err := pack(manifest, files)
	if err != nil {
		return nil, err
	}
	sum512 := sha512.Sum512(tgz)
	sum1 := sha1.Sum(tgz)
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum512[:])
	sig, err := r.sign(name, v.Version, integrity)
	if err != nil {
		return nil, err
	}
	// A corrupt signature is a genuine one over another integrity: it
	// parses and names the right key, so only verification catches it.
	other := sha512.Sum512(append(tgz, 0))
	badSig, err := r.sign(name, v.Version, "sha512-"+base64.StdEncoding.EncodeToString(other[:]))
	if err != nil {
		return nil, err
	}
	var att []byte
	if v.Provenance {
		if r.attest == nil {
			return nil, errors.New("Provenance is set but Options.Attest is nil")
		}
		if att, err = r.attest(name, v.Version, sum512[:]); err != nil {
			return nil, fmt.Errorf("attestation: %w", err)
		}
	}
	published := v.Published
	if published.IsZero() {
		published = now
	}
	publisher := v.Publisher
	if publisher == "" {
		publisher = "alice"
	}
	head := sha1.Sum([]byte(name + "@" + v.Version))
	return &version{
		Version:      v,
		publisher:    publisher,
		published:    msec(published),
		manifest:     manifest,
		tarball:      tgz,
		served:       tgz,
		integrity:    integrity,
		shasum:       hex.EncodeToString(sum1[:]),
		fileCount:    count,
		unpackedSize: size,
		sig:          sig,
		badSig:       badSig,
		attestation:  att,
		gitHead:      hex.EncodeToString(head[:]),
	}, nil
}

func (r *Registry) sign(name, version, integrity string) (string, error) {
	digest := sha256.Sum256(npmsig.Message(name, version, integrity))
	der, err := ecdsa.SignASN1(rand.Reader, r.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// packageJSON is the package.json npm would pack for v: the fields the
// packument repeats for the version, so that what npm installs agrees
// with what it resolved.
func packageJSON(name string, v Version) ([]byte, error) {
	m := object{
		{"name", name},
		{"version", v.Version},
		{"description", description(name)},
		{"main", "index.js"},
	}
	if len(v.Scripts) > 0 {
		m = append(m, field{"scripts", v.Scripts})
	}
	if len(v.Dependencies) > 0 {
		m = append(m, field{"dependencies", v.Dependencies})
	}
	m = append(m, field{"license", "MIT"})
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func description(name string) string { return "Test package " + name + ", served by npmtest" }

// pack builds a tarball as npm pack does: a gzip'd ustar archive of
// regular files under package/, package.json first, with the fixed mode
// and mtime npm normalises entries to. It returns the file count and
// unpacked size that dist reports.
func pack(manifest []byte, files map[string]string) (tgz []byte, count, size int, err error) {
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, body []byte) error {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     "package/" + name,
			Mode:     0o644,
			Size:     int64(len(body)),
			ModTime:  packTime(),
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(body)
		count++
		size += len(body)
		return err
	}
	if err := add("package.json", manifest); err != nil {
		return nil, 0, 0, err
	}
	for _, f := range names {
		if err := add(f, []byte(files[f])); err != nil {
			return nil, 0, 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, 0, err
	}
	return buf.Bytes(), count, size, nil
}

// field and object make JSON objects that keep their members in the order
// given, so that documents read like the registry's rather than sorted.
type field struct {
	k string
	v any
}

type object []field

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.k)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// isPrerelease reports whether a (valid) semver has a prerelease part.
func isPrerelease(v string) bool {
	core, _, _ := strings.Cut(v, "+")
	return strings.Contains(core, "-")
}

// compareSemver orders valid semvers by semver precedence, build metadata
// ignored.
func compareSemver(a, b string) int {
	a, _, _ = strings.Cut(a, "+")
	b, _, _ = strings.Cut(b, "+")
	ac, apre, _ := strings.Cut(a, "-")
	bc, bpre, _ := strings.Cut(b, "-")
	as, bs := strings.Split(ac, "."), strings.Split(bc, ".")
	for i := 0; i < 3 && i < len(as) && i < len(bs); i++ {
		if c := compareIdent(as[i], bs[i]); c != 0 {
			return c
		}
	}
	switch {
	case apre == bpre:
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	ap, bp := strings.Split(apre, "."), strings.Split(bpre, ".")
	for i := 0; i < len(ap) && i < len(bp); i++ {
		if c := compareIdent(ap[i], bp[i]); c != 0 {
			return c
		}
	}
	return len(ap) - len(bp)
}

// compareIdent compares identifiers numerically when both are numbers;
// numbers sort before words.
func compareIdent(a, b string) int {
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return 0
	case aerr == nil:
		return -1
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}
