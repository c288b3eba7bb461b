// Package cirecord keeps records of what the organisation's CI built: for
// one artifact (ecosystem, name, version), the digest CI produced, who
// built it and from which commit. The proxy can then require an upstream
// digest to equal the record, which catches a registry (or a stolen
// publish token) serving bytes our CI never produced.
//
// Records are immutable. A second record for the same artifact with the
// same digest is a no-op; one with a different digest is refused with
// ErrConflicting, because either CI rebuilt a released version
// (non-reproducible, or a re-tag) or someone is trying to replace the
// record: both are for a human to look at, never to be resolved by
// overwriting.
//
// Records come from the admin API, from goreleaser's dist/artifacts.json
// (FromGoreleaser) or from verified in-toto SLSA provenance (FromDSSE,
// FromBundle). The importers are pure functions; storing is Records.Put.
package cirecord

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// Check is the verify.Finding Check of every finding here.
const Check = "ci-digest"

// Bucket is the name a Store over cache.Meta should keep records under
// (its bucket), so that every wiring agrees on where they are.
const Bucket = "ci-records"

// Sources of a record.
const (
	SourceAPI        = "api"
	SourceGoreleaser = "goreleaser"
	SourceInToto     = "in-toto"
)

// ErrConflicting is wrapped by the *ConflictError Put returns when the
// artifact already has a record with another digest.
var ErrConflicting = errors.New("conflicting CI record")

// ErrInvalid is wrapped by Validate's errors.
var ErrInvalid = errors.New("invalid CI record")

// ErrNotFound is wrapped by Get when the artifact has no record.
var ErrNotFound = errors.New("no CI record")

// Limits on free-text fields: they end up in findings and admin pages,
// and a record is never large.
const (
	maxBuilder = 1024
	maxName    = 1024
)

// Store persists records, keyed by verify.Artifact.Key. It is the shape
// of gosum.Store: the verify layer must not import cache, so the wiring
// adapts cache.Meta's Get and CompareAndSwap (in bucket Bucket, with
// cache.ErrNotFound as absent and cache.ErrConflict as false), as
// cmd/airlock's bucketStore does.
type Store interface {
	// Load returns the value and whether it exists.
	Load(ctx context.Context, key string) ([]byte, bool, error)
	// Swap replaces old (nil: absent) with new atomically; false when the
	// stored value was not old.
	Swap(ctx context.Context, key string, old, new []byte) (bool, error)
}

// Record is what CI built for one artifact.
type Record struct {
	// Artifact names the artifact: ecosystem, name, version. Its Digest
	// is ignored (Digest below is the record's) and stored empty.
	Artifact verify.Artifact `json:"artifact"`
	// Digest is the digest CI produced, in the form the ecosystem's
	// upstream serves it, so that Check compares like with like: npm
	// "sha512-<base64>" (dist.integrity), go "h1:<base64>" (the module
	// zip's dirhash, as in go.sum), oci "sha256:<hex>" (the manifest or
	// index digest a tag resolves to).
	Digest string `json:"digest"`
	// Builder is who built it: a workflow identity, a SLSA builder id.
	Builder string `json:"builder,omitempty"`
	// Commit is the source commit, hex.
	Commit string `json:"commit,omitempty"`
	// Recorded is when the record was first stored; Put sets it,
	// ignoring what the caller gave.
	Recorded time.Time `json:"recorded"`
	// Source is how the record came in: SourceAPI, SourceGoreleaser or
	// SourceInToto.
	Source string `json:"source"`
}

var (
	// The grammar of an OCI repository (distribution's reference
	// grammar, path components only) and of a tag.
	ociPath = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	ociTag  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// An Airlock OCI upstream name, as config accepts it.
	upstreamName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	gitCommit    = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)
)

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// Validate checks the record's syntax with each ecosystem's own rules, so
// that a record is safe as a storage key and its digest comparable with
// what the upstream serves. Errors wrap ErrInvalid and name the field.
func (r Record) Validate() error {
	a := r.Artifact
	if len(a.Name) > maxName {
		return invalid("artifact.name", "%d bytes, limit %d", len(a.Name), maxName)
	}
	switch a.Ecosystem {
	case verify.NPM:
		if err := npmsig.CheckName(a.Name); err != nil {
			return invalid("artifact.name", "%v", err)
		}
		if err := npmsig.CheckVersion(a.Version); err != nil {
			return invalid("artifact.version", "%v", err)
		}
		if _, err := npmDigest(r.Digest); err != nil {
			return invalid("digest", "%v", err)
		}
	case verify.Go:
		if err := verify.CheckGoModule(a.Name, a.Version); err != nil {
			return invalid("artifact", "%v", err)
		}
		if err := checkH1(r.Digest); err != nil {
			return invalid("digest", "%v", err)
		}
	case verify.OCI:
		if err := checkOCIName(a.Name); err != nil {
			return invalid("artifact.name", "%v", err)
		}
		if err := checkSHA256(r.Digest); err != nil {
			return invalid("digest", "%v", err)
		}
		switch {
		case strings.HasPrefix(a.Version, "sha256:"):
			// A record by digest says "CI built this manifest"; it
			// cannot name one digest and record another.
			if a.Version != r.Digest {
				return invalid("artifact.version", "digest version %q differs from the record's digest %q", clip(a.Version), r.Digest)
			}
		case !ociTag.MatchString(a.Version):
			return invalid("artifact.version", "%q is neither a tag nor a sha256 digest", clip(a.Version))
		}
	default:
		return invalid("artifact.ecosystem", "%q is not go, npm or oci", clip(string(a.Ecosystem)))
	}
	if a.Digest != "" && a.Digest != r.Digest {
		return invalid("artifact.digest", "%q differs from the record's digest %q", clip(a.Digest), clip(r.Digest))
	}
	if len(r.Builder) > maxBuilder {
		return invalid("builder", "%d bytes, limit %d", len(r.Builder), maxBuilder)
	}
	if strings.IndexFunc(r.Builder, notPrintable) >= 0 {
		return invalid("builder", "contains a control or non-printable character")
	}
	if r.Commit != "" && !gitCommit.MatchString(r.Commit) {
		return invalid("commit", "%q is not a full lowercase hex git commit", clip(r.Commit))
	}
	switch r.Source {
	case SourceAPI, SourceGoreleaser, SourceInToto:
	default:
		return invalid("source", "%q is not %s, %s or %s", clip(r.Source), SourceAPI, SourceGoreleaser, SourceInToto)
	}
	return nil
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

// checkOCIName checks "<upstream>/<repository>", the name the OCI front
// gives an artifact.
func checkOCIName(name string) error {
	up, repo, ok := strings.Cut(name, "/")
	if !ok || repo == "" {
		return fmt.Errorf("%q is not <upstream>/<repository>", clip(name))
	}
	if !upstreamName.MatchString(up) {
		return fmt.Errorf("upstream %q is not a valid upstream name", clip(up))
	}
	if len(repo) > 255 || !ociPath.MatchString(repo) {
		return fmt.Errorf("repository %q is not a valid OCI repository name", clip(repo))
	}
	return nil
}

func checkSHA256(d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 2*sha256.Size || !isLowerHex(h) {
		return fmt.Errorf("%q is not sha256:<64 lowercase hex>", clip(d))
	}
	return nil
}

func checkH1(d string) error {
	b64, ok := strings.CutPrefix(d, "h1:")
	if !ok {
		return fmt.Errorf("%q is not h1:<base64>", clip(d))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != sha256.Size {
		return fmt.Errorf("%q is not h1: and the base64 of a sha256", clip(d))
	}
	return nil
}

// npmDigest parses a record's npm digest: exactly one sha512 SRI entry.
// One entry, not a list, because a record states the one digest CI
// produced, and sha512 because it is what dist.integrity carries for
// every package published since 2017 and weaker ones prove little.
func npmDigest(d string) ([]byte, error) {
	in, err := npmsig.ParseIntegrity(d)
	if err != nil {
		return nil, err
	}
	if len(in.Hashes) != 1 || len(strings.Fields(d)) != 1 || in.Hashes[0].Algorithm != npmsig.SHA512 || in.Hashes[0].Options != "" {
		return nil, fmt.Errorf("%q is not a single sha512-<base64> entry", clip(d))
	}
	return in.Hashes[0].Digest, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// ConflictError is the error of a Put whose digest differs from the
// stored record's. Existing is what is stored (unchanged); Proposed is
// what was refused.
type ConflictError struct {
	Existing, Proposed Record
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %s is recorded with digest %s (by %s from %s), refusing %s (by %s from %s)",
		ErrConflicting, e.Existing.Artifact, e.Existing.Digest, orNone(e.Existing.Builder), e.Existing.Source,
		e.Proposed.Digest, orNone(e.Proposed.Builder), e.Proposed.Source)
}

func (e *ConflictError) Unwrap() error { return ErrConflicting }

func orNone(s string) string {
	if s == "" {
		return "unknown builder"
	}
	return s
}

// Records stores and checks CI records. It holds no mutable state of its
// own and is safe for concurrent use if the Store is.
type Records struct {
	store Store
	now   func() time.Time
}

// New returns Records over store; now stamps new records (time.Now when
// nil).
func New(store Store, now func() time.Time) *Records {
	if now == nil {
		now = time.Now
	}
	return &Records{store: store, now: now}
}

// Put stores r and reports whether it is new. The same artifact with the
// same digest is a no-op that returns the stored record (its time,
// builder and source, not r's) and false; a different digest returns a
// *ConflictError wrapping ErrConflicting and stores nothing.
func (rs *Records) Put(ctx context.Context, r Record) (Record, bool, error) {
	if err := r.Validate(); err != nil {
		return Record{}, false, err
	}
	r.Artifact.Digest = ""
	// The time is the store's, not the caller's: an importer cannot know
	// it, and an API client must not be able to backdate a record.
	r.Recorded = rs.now().UTC().Round(0)
	data, err := json.Marshal(r)
	if err != nil {
		return Record{}, false, err
	}
	key := r.Artifact.Key()
	// Records are never changed nor deleted, so a lost race leaves a
	// record to compare with; the loop only guards a Store that loses
	// a value between the two calls.
	for range 3 {
		ok, err := rs.store.Swap(ctx, key, nil, data)
		if err != nil {
			return Record{}, false, fmt.Errorf("storing CI record %s: %w", key, err)
		}
		if ok {
			return r, true, nil
		}
		old, err := rs.get(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Record{}, false, err
		}
		if old.Digest == r.Digest {
			return old, false, nil
		}
		return Record{}, false, &ConflictError{Existing: old, Proposed: r}
	}
	return Record{}, false, fmt.Errorf("storing CI record %s: store keeps conflicting with no record", key)
}

// Get returns the record of a (its Digest is ignored); an error wrapping
// ErrNotFound when there is none.
func (rs *Records) Get(ctx context.Context, a verify.Artifact) (Record, error) {
	a.Digest = ""
	return rs.get(ctx, a.Key())
}

func (rs *Records) get(ctx context.Context, key string) (Record, error) {
	data, ok, err := rs.store.Load(ctx, key)
	if err != nil {
		return Record{}, fmt.Errorf("CI record %s: %w", key, err)
	}
	if !ok {
		return Record{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("CI record %s: decoding: %w", key, err)
	}
	// A stored record that no longer validates (edited by hand, written
	// by a newer version) must not silently pass or fail checks.
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("CI record %s: stored record: %w", key, err)
	}
	return r, nil
}

// Check compares the digest an upstream serves for a with its record: no
// record gives a finding "not built by our CI", a different digest a
// finding with both, a match nil. An error means the record could not be
// read (store failure, a stored record that no longer validates), never
// a verdict; what to do with a finding is the policy's business. For an
// OCI tag, a is the tag artifact (Version the tag), not the tag move
// ("tag@digest") the OCI front holds a moved tag under.
func (rs *Records) Check(ctx context.Context, a verify.Artifact, upstreamDigest string) (*verify.Finding, error) {
	a.Digest = ""
	r, err := rs.Get(ctx, a)
	if errors.Is(err, ErrNotFound) {
		return &verify.Finding{Check: Check, Message: "not built by our CI", Evidence: map[string]string{
			"artifact": a.String(), "actual": clip(upstreamDigest),
		}}, nil
	}
	if err != nil {
		return nil, err
	}
	ok, why := sameDigest(a.Ecosystem, r.Digest, upstreamDigest)
	if ok {
		return nil, nil
	}
	ev := map[string]string{
		"artifact": a.String(),
		"expected": r.Digest,
		"actual":   clip(upstreamDigest),
		"source":   r.Source,
		"recorded": r.Recorded.UTC().Format(time.RFC3339),
	}
	if r.Builder != "" {
		ev["builder"] = r.Builder
	}
	if r.Commit != "" {
		ev["commit"] = r.Commit
	}
	if why != "" {
		ev["reason"] = why
	}
	return &verify.Finding{Check: Check, Message: "digest differs from the one our CI built", Evidence: ev}, nil
}

// sameDigest compares a record's digest with an upstream's, in the
// upstream's own form. For npm, dist.integrity may list several entries:
// any sha512 entry equal to the record's matches, as in SRI, and an
// integrity without sha512 cannot match a sha512 record.
func sameDigest(eco verify.Ecosystem, recorded, upstream string) (bool, string) {
	switch eco {
	case verify.NPM:
		want, err := npmDigest(recorded)
		if err != nil {
			return false, "recorded digest unreadable"
		}
		in, err := npmsig.ParseIntegrity(upstream)
		if err != nil {
			return false, "upstream integrity unreadable"
		}
		sha512 := false
		for _, h := range in.Hashes {
			if h.Algorithm != npmsig.SHA512 {
				continue
			}
			sha512 = true
			if bytes.Equal(h.Digest, want) {
				return true, ""
			}
		}
		if !sha512 {
			return false, "upstream integrity has no sha512 entry"
		}
		return false, ""
	case verify.OCI:
		// Registries and clients write hex in lower case; an upper-case
		// digest is the same bytes.
		return strings.EqualFold(recorded, upstream) && checkSHA256(strings.ToLower(upstream)) == nil, ""
	default:
		return recorded == upstream, ""
	}
}

// h1FromHex turns an in-toto goModuleH1 value (hex) into go.sum's form.
func h1FromHex(h string) (string, error) {
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != sha256.Size {
		return "", fmt.Errorf("goModuleH1 %q is not 64 hex digits", clip(h))
	}
	return "h1:" + base64.StdEncoding.EncodeToString(raw), nil
}

// sha512FromHex turns an in-toto sha512 value (hex) into SRI form.
func sha512FromHex(h string) (string, error) {
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 64 {
		return "", fmt.Errorf("sha512 %q is not 128 hex digits", clip(h))
	}
	return "sha512-" + base64.StdEncoding.EncodeToString(raw), nil
}
