// Package npmsig holds the npm registry's own checks on a package version:
// the tarball's integrity (dist.integrity, dist.shasum), the registry's
// ECDSA signatures (dist.signatures, keys from /-/npm/v1/keys), and the
// validation of package names and versions. Everything here is a pure
// function over bytes: fetching packuments, tarballs and keys is the
// caller's business.
package npmsig

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Errors returned by ParseIntegrity, CheckTarball and Hasher.Check, to be
// inspected with errors.Is.
var (
	// ErrIntegrityMismatch: the tarball's digest differs from dist.integrity
	// or dist.shasum. The Evidence holds both sides.
	ErrIntegrityMismatch = errors.New("npm tarball integrity mismatch")
	// ErrNoIntegrity: the version has neither dist.integrity nor dist.shasum.
	ErrNoIntegrity = errors.New("npm version has no integrity or shasum")
	// ErrBadIntegrity: dist.integrity or dist.shasum does not parse.
	ErrBadIntegrity = errors.New("malformed npm integrity")
)

// maxIntegrity bounds an SRI string; real ones are one or two hashes.
const maxIntegrity = 16 << 10

// Hash algorithms, in increasing order of strength, as SRI names them.
const (
	SHA1   = "sha1"
	SHA256 = "sha256"
	SHA384 = "sha384"
	SHA512 = "sha512"
)

var algoSize = map[string]int{SHA1: sha1.Size, SHA256: sha256.Size, SHA384: sha512.Size384, SHA512: sha512.Size}

func algoRank(a string) int {
	switch a {
	case SHA1:
		return 1
	case SHA256:
		return 2
	case SHA384:
		return 3
	case SHA512:
		return 4
	}
	return 0
}

// Hash is one entry of an SRI string: algorithm, raw digest and the
// ?options suffix (kept, never interpreted).
type Hash struct {
	Algorithm string
	Digest    []byte
	Options   string
}

// String renders the hash in SRI form, "sha512-<base64>".
func (h Hash) String() string {
	s := h.Algorithm + "-" + base64.StdEncoding.EncodeToString(h.Digest)
	if h.Options != "" {
		s += "?" + h.Options
	}
	return s
}

// Integrity is a parsed SRI string. Hashes keeps the recognised entries in
// their original order.
type Integrity struct {
	Hashes []Hash
}

// Algorithm is the strongest algorithm present, the one a check uses.
func (in Integrity) Algorithm() string {
	best := ""
	for _, h := range in.Hashes {
		if algoRank(h.Algorithm) > algoRank(best) {
			best = h.Algorithm
		}
	}
	return best
}

// Strongest returns the hashes of the strongest algorithm present.
func (in Integrity) Strongest() []Hash {
	a := in.Algorithm()
	var out []Hash
	for _, h := range in.Hashes {
		if h.Algorithm == a {
			out = append(out, h)
		}
	}
	return out
}

// String renders the recognised hashes, space-separated.
func (in Integrity) String() string {
	parts := make([]string, len(in.Hashes))
	for i, h := range in.Hashes {
		parts[i] = h.String()
	}
	return strings.Join(parts, " ")
}

// ParseIntegrity parses an SRI string as npm writes dist.integrity:
// whitespace-separated "algo-<base64 digest>[?options]" entries. Following
// the SRI spec, entries with an algorithm other than sha1, sha256, sha384
// or sha512 are skipped; a recognised entry whose digest is not valid
// base64 of the algorithm's length is an error (a corrupt dist.integrity is
// not silently weakened to another entry). At least one recognised entry
// is required. Errors wrap ErrBadIntegrity.
func ParseIntegrity(s string) (Integrity, error) {
	if len(s) > maxIntegrity {
		return Integrity{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBadIntegrity, len(s), maxIntegrity)
	}
	var in Integrity
	for _, tok := range strings.Fields(s) {
		algo, rest, ok := strings.Cut(tok, "-")
		if !ok {
			continue // not an SRI entry at all: skipped, as ssri does
		}
		size, known := algoSize[algo]
		if !known {
			continue
		}
		b64, opts, _ := strings.Cut(rest, "?")
		d, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil {
			return Integrity{}, fmt.Errorf("%w: %s digest is not base64: %q", ErrBadIntegrity, algo, clip(b64))
		}
		if len(d) != size {
			return Integrity{}, fmt.Errorf("%w: %s digest has %d bytes, want %d", ErrBadIntegrity, algo, len(d), size)
		}
		in.Hashes = append(in.Hashes, Hash{Algorithm: algo, Digest: d, Options: opts})
	}
	if len(in.Hashes) == 0 {
		return Integrity{}, fmt.Errorf("%w: no sha1, sha256, sha384 or sha512 entry in %q", ErrBadIntegrity, clip(s))
	}
	return in, nil
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string { return clipN(s, 80) }

func clipN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Evidence is what an integrity check saw, for findings.
type Evidence struct {
	// Algorithm is the SRI algorithm compared; Want the dist.integrity
	// entries of that algorithm, Got the tarball's digest, both in SRI form.
	Algorithm string
	Want, Got string
	// ShasumWant is dist.shasum, ShasumGot the tarball's sha1, both hex;
	// empty when dist.shasum was absent.
	ShasumWant, ShasumGot string
	// Size is the number of bytes hashed.
	Size int64
}

// Map renders the evidence for a verify.Finding.
func (e Evidence) Map() map[string]string {
	m := map[string]string{"size": strconv.FormatInt(e.Size, 10)}
	if e.Algorithm != "" {
		m["algorithm"] = e.Algorithm
		m["expected"] = e.Want
		m["actual"] = e.Got
	}
	if e.ShasumWant != "" {
		m["expected_shasum"] = e.ShasumWant
		m["actual_shasum"] = e.ShasumGot
	}
	return m
}

// Hasher digests a tarball as it is written (to disk, say), so that it can
// be checked without being read twice. It always computes sha512 and sha1;
// NewHasherFor adds sha256 or sha384 when an old integrity needs them.
// It is not safe for concurrent use.
type Hasher struct {
	h    map[string]hash.Hash
	size int64
}

// NewHasher returns a Hasher computing sha512 and sha1.
func NewHasher() *Hasher {
	return &Hasher{h: map[string]hash.Hash{SHA512: sha512.New(), SHA1: sha1.New()}}
}

// NewHasherFor returns a Hasher computing sha512, sha1 and whatever
// algorithm the given integrity's strongest entry uses.
func NewHasherFor(in Integrity) *Hasher {
	h := NewHasher()
	switch in.Algorithm() {
	case SHA256:
		h.h[SHA256] = sha256.New()
	case SHA384:
		h.h[SHA384] = sha512.New384()
	}
	return h
}

// Write hashes p. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	for _, d := range h.h {
		d.Write(p)
	}
	h.size += int64(len(p))
	return len(p), nil
}

// Size is the number of bytes written so far.
func (h *Hasher) Size() int64 { return h.size }

// Sum returns the digest for an algorithm, or nil if it was not computed.
func (h *Hasher) Sum(algo string) []byte {
	d, ok := h.h[algo]
	if !ok {
		return nil
	}
	return d.Sum(nil)
}

// Check compares what was written against dist.integrity and, where
// present, dist.shasum (hex sha1). Both are checked when both are given.
// Only the strongest algorithm in integrity is compared, and any entry of
// that algorithm matching is a match, as in SRI. The error wraps
// ErrIntegrityMismatch, ErrNoIntegrity or ErrBadIntegrity; the Evidence is
// filled as far as the check got.
func (h *Hasher) Check(integrity, shasum string) (Evidence, error) {
	ev := Evidence{Size: h.size}
	integrity, shasum = strings.TrimSpace(integrity), strings.TrimSpace(shasum)
	if integrity == "" && shasum == "" {
		return ev, ErrNoIntegrity
	}
	var mismatch []string
	if integrity != "" {
		in, err := ParseIntegrity(integrity)
		if err != nil {
			return ev, err
		}
		algo := in.Algorithm()
		got := h.Sum(algo)
		if got == nil {
			return ev, fmt.Errorf("%w: %s was not computed (use NewHasherFor)", ErrBadIntegrity, algo)
		}
		ev.Algorithm = algo
		ev.Got = Hash{Algorithm: algo, Digest: got}.String()
		var wants []string
		ok := false
		for _, w := range in.Strongest() {
			wants = append(wants, Hash{Algorithm: w.Algorithm, Digest: w.Digest}.String())
			if subtle.ConstantTimeCompare(w.Digest, got) == 1 {
				ok = true
			}
		}
		ev.Want = strings.Join(wants, " ")
		if !ok {
			mismatch = append(mismatch, fmt.Sprintf("integrity %s, tarball %s", ev.Want, ev.Got))
		}
	}
	if shasum != "" {
		want, err := hex.DecodeString(shasum)
		if err != nil || len(want) != sha1.Size {
			return ev, fmt.Errorf("%w: shasum %q is not 40 hex digits", ErrBadIntegrity, clip(shasum))
		}
		got := h.Sum(SHA1)
		ev.ShasumWant = hex.EncodeToString(want)
		ev.ShasumGot = hex.EncodeToString(got)
		if subtle.ConstantTimeCompare(want, got) != 1 {
			mismatch = append(mismatch, fmt.Sprintf("shasum %s, tarball %s", ev.ShasumWant, ev.ShasumGot))
		}
	}
	if len(mismatch) > 0 {
		return ev, fmt.Errorf("%w: %s", ErrIntegrityMismatch, strings.Join(mismatch, "; "))
	}
	return ev, nil
}

// CheckTarball reads r to the end, hashing it once, and checks it as
// Hasher.Check does. A read error is returned as is.
func CheckTarball(r io.Reader, integrity, shasum string) (Evidence, error) {
	h := NewHasher()
	if in, err := ParseIntegrity(integrity); err == nil {
		h = NewHasherFor(in)
	}
	if _, err := io.Copy(h, r); err != nil {
		return Evidence{Size: h.size}, err
	}
	return h.Check(integrity, shasum)
}
