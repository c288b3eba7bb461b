// Package npmprov verifies the attestations the npm registry serves for a
// package version (dist.attestations.url, /-/npm/v1/attestations/<name>@<version>):
// the SLSA build provenance a CI job signed keylessly with a Fulcio
// certificate, and the publish attestation the registry signed with one of
// its own keys. Verification is offline: the sigstore trusted root and the
// registry keys are inputs, and fetching the document is the caller's
// business.
//
// Trust decisions stay with the caller: a verified provenance says which
// repository, workflow and commit built the tarball, and the caller's
// policy (MatchRepository) says whether that is acceptable.
package npmprov

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/intoto"
	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// ErrBadDocument: the attestations document is not one at all (not JSON,
// no "attestations" array, over MaxAttestationsSize). A document that
// parses but holds attestations that do not verify is not an error: see
// Result.Findings.
var ErrBadDocument = errors.New("malformed npm attestations document")

// MaxAttestationsSize bounds the attestations document. Real ones are two
// bundles of a few kilobytes each; the bound only stops a hostile upstream
// from making the proxy buffer and parse without limit.
const MaxAttestationsSize = 4 << 20

// maxAttestations bounds the entries verified per document: each costs
// several signature checks, and npm writes two.
const maxAttestations = 16

// Predicate types npm writes.
const (
	PredicateSLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	PredicateSLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	PredicateNPMPublish        = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
)

// in-toto statement types npm writes: v1 for GitHub provenance, v0.1 for
// GitLab provenance and for the registry's publish attestation.
const (
	statementV1  = "https://in-toto.io/Statement/v1"
	statementV01 = "https://in-toto.io/Statement/v0.1"
)

// CheckProvenance is the verify.Finding Check of every finding here.
const CheckProvenance = "npm-provenance"

// Reasons an attestation did not verify, as Finding evidence "reason".
const (
	// ReasonBadBundle: the bundle is not a sigstore bundle this package can
	// verify (bad JSON, unknown media type, no DSSE envelope).
	ReasonBadBundle = "bad-bundle"
	// ReasonUnsupportedPredicate: the attestation's predicate type is
	// neither SLSA provenance nor the npm publish attestation.
	ReasonUnsupportedPredicate = "unsupported-predicate-type"
	// ReasonPredicateMismatch: the signed statement's predicate type
	// differs from the one the document declares.
	ReasonPredicateMismatch = "predicate-type-mismatch"
	// ReasonSubject: the statement is not about this name@version and
	// tarball sha512.
	ReasonSubject = "subject-mismatch"
	// ReasonVerification: sigstore verification failed (signature,
	// certificate chain, SCT, transparency log entry).
	ReasonVerification = "verification-failed"
	// ReasonUnknownKey, ReasonExpiredKey, ReasonNoPublishTime: the publish
	// attestation's registry key, as for npmsig.
	ReasonUnknownKey    = npmsig.ReasonUnknownKey
	ReasonExpiredKey    = npmsig.ReasonExpiredKey
	ReasonNoPublishTime = npmsig.ReasonNoPublishTime
	// ReasonBadPredicate: the predicate does not say what it must (publish
	// attestation for another name or version, unreadable provenance).
	ReasonBadPredicate = "bad-predicate"
	// ReasonInconsistent: the provenance statement names a repository,
	// commit, ref or workflow other than the one in the Fulcio certificate,
	// which the CI's OIDC token vouches for.
	ReasonInconsistent = "provenance-inconsistent"
)

// Verifier verifies npm attestation documents offline. It holds no
// mutable state and is safe for concurrent use.
type Verifier struct {
	trusted root.TrustedMaterial
	keys    npmsig.Keys
}

// New returns a Verifier that trusts the Fulcio CAs, CT logs, Rekor logs
// and timestamp authorities of trusted for provenance, and keys (the
// registry's /-/npm/v1/keys) for publish attestations.
func New(trusted root.TrustedMaterial, keys npmsig.Keys) *Verifier {
	return &Verifier{trusted: trusted, keys: keys}
}

// Result is the outcome of Verify.
type Result struct {
	// Provenance is the first SLSA provenance that verified, nil when none
	// did.
	Provenance *Provenance
	// Publish reports that a publish attestation verified with a registry
	// key.
	Publish bool
	// Findings has one entry per attestation that did not verify.
	Findings []verify.Finding
}

// Provenance is what a verified SLSA provenance says about the build.
// Where the Fulcio certificate carries a fact (Fulcio takes it from the
// CI's OIDC token) it is used; the statement, which the build job wrote
// itself, only fills gaps and must otherwise agree.
type Provenance struct {
	PredicateType string
	// SourceRepository is normalised: "github.com/owner/repo", no scheme,
	// no ".git".
	SourceRepository string
	// Workflow is the path of the workflow file in the repository, e.g.
	// ".github/workflows/release.yml" (for GitLab, ".gitlab-ci.yml").
	Workflow string
	// Ref is the git ref built, e.g. "refs/tags/v1.2.3".
	Ref string
	// Commit is the source commit (sha1 hex) when known.
	Commit string
	// Builder is the statement's builder id, e.g.
	// "https://github.com/actions/runner/github-hosted".
	Builder string
	// Issuer is the certificate's OIDC issuer, Identity its SAN.
	Issuer   string
	Identity string
}

// SubjectName is the in-toto subject name npm gives a version: its
// package URL, with the leading @ of a scope percent-encoded as
// npm-package-arg's toPurl does ("pkg:npm/%40scope/name@1.0.0").
func SubjectName(name, version string) string {
	if strings.HasPrefix(name, "@") {
		name = "%40" + name[1:]
	}
	return "pkg:npm/" + name + "@" + version
}

// subjectNames are the names accepted for name@version: SubjectName, and
// the unencoded scope some producers write.
func subjectNames(name, version string) []string {
	names := []string{SubjectName(name, version)}
	if strings.HasPrefix(name, "@") {
		names = append(names, "pkg:npm/"+name+"@"+version)
	}
	return names
}

// attestation is one entry of the document.
type attestation struct {
	PredicateType string          `json:"predicateType"`
	Bundle        json.RawMessage `json:"bundle"`
}

// parse reads the document shape; the bundles stay raw so that one bad
// bundle is a finding, not a bad document.
func parse(doc []byte) ([]attestation, error) {
	if len(doc) > MaxAttestationsSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadDocument, len(doc), MaxAttestationsSize)
	}
	var d struct {
		Attestations *[]attestation `json:"attestations"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDocument, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the document", ErrBadDocument)
	}
	if d.Attestations == nil {
		return nil, fmt.Errorf("%w: no \"attestations\" array", ErrBadDocument)
	}
	if n := len(*d.Attestations); n > maxAttestations {
		return nil, fmt.Errorf("%w: %d attestations, limit %d", ErrBadDocument, n, maxAttestations)
	}
	return *d.Attestations, nil
}

// Verify checks the attestations document of name@version whose tarball
// sha512 is sha512 (raw 64 bytes), published at published (the
// packument's time[version]). Each attestation must be a sigstore bundle
// of a DSSE-signed in-toto statement with exactly one subject, named
// SubjectName(name, version) with digest sha512, and logged in a Rekor log
// of the trusted root:
//
//   - SLSA provenance (v1, v0.2): keyless, a Fulcio certificate with an
//     embedded SCT, any identity and issuer (the caller judges the facts).
//   - the npm publish attestation: signed by the registry key named by the
//     bundle's public key hint, which must be known and, if it expires,
//     expire after both published and the Rekor integrated time; its
//     predicate must name name and version.
//
// Every attestation that does not verify is a finding; an attestation of
// an unknown predicate type is a finding too (ReasonUnsupportedPredicate),
// so a caller that tolerates new types filters on the reason. The error is
// only for a document that cannot be read (ErrBadDocument) or a cancelled
// ctx.
func (v *Verifier) Verify(ctx context.Context, name, version string, sha512 []byte, doc []byte, published time.Time) (Result, error) {
	var r Result
	atts, err := parse(doc)
	if err != nil {
		return r, err
	}
	if len(sha512) != 64 {
		return r, fmt.Errorf("npmprov: tarball sha512 of %d bytes, want 64", len(sha512))
	}
	c := check{v: v, name: name, version: version, sha512: sha512, published: published}
	for i, a := range atts {
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("npmprov: %w", err)
		}
		ev := map[string]string{"predicate_type": clip(a.PredicateType), "index": fmt.Sprint(i)}
		prov, ferr := c.one(a, ev)
		if ferr != nil {
			ev["reason"] = ferr.reason
			ev["error"] = clipN(ferr.Error(), 1024)
			r.Findings = append(r.Findings, verify.Finding{
				Check:    CheckProvenance,
				Message:  fmt.Sprintf("%s@%s: %s attestation did not verify: %s", name, version, describe(a.PredicateType), ferr.msg),
				Evidence: ev,
			})
			continue
		}
		if prov == nil {
			r.Publish = true
		} else if r.Provenance == nil {
			r.Provenance = prov
		}
	}
	return r, nil
}

func describe(predicateType string) string {
	switch predicateType {
	case PredicateSLSAProvenanceV1, PredicateSLSAProvenanceV02:
		return "SLSA provenance"
	case PredicateNPMPublish:
		return "npm publish"
	}
	return fmt.Sprintf("%q", clip(predicateType))
}

// failure is why one attestation did not count.
type failure struct {
	reason string
	msg    string
	err    error
}

func (f *failure) Error() string {
	if f.err != nil {
		return f.msg + ": " + f.err.Error()
	}
	return f.msg
}

func fail(reason string, err error, format string, args ...any) *failure {
	return &failure{reason: reason, msg: fmt.Sprintf(format, args...), err: err}
}

// check is the per-call context of Verify.
type check struct {
	v             *Verifier
	name, version string
	sha512        []byte
	published     time.Time
}

// one verifies one attestation: a Provenance for SLSA provenance, nil for
// the publish attestation.
func (c *check) one(a attestation, ev map[string]string) (*Provenance, *failure) {
	keyless := false
	switch a.PredicateType {
	case PredicateSLSAProvenanceV1, PredicateSLSAProvenanceV02:
		keyless = true
	case PredicateNPMPublish:
	default:
		return nil, fail(ReasonUnsupportedPredicate, nil, "unsupported predicate type")
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(a.Bundle); err != nil {
		return nil, fail(ReasonBadBundle, err, "not a sigstore bundle")
	}
	ev["bundle_media_type"] = clip(b.GetMediaType())
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fail(ReasonBadBundle, nil, "bundle holds no DSSE envelope")
	}
	var st intoto.Statement
	if err := intoto.CheckUniqueKeys(env.GetPayload()); err != nil {
		return nil, fail(ReasonBadBundle, err, "ambiguous in-toto statement")
	}
	if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
		return nil, fail(ReasonBadBundle, err, "DSSE payload is not an in-toto statement")
	}
	if st.Type != statementV1 && st.Type != statementV01 {
		return nil, fail(ReasonBadBundle, nil, "statement type %q is not in-toto", clip(st.Type))
	}
	if st.PredicateType != a.PredicateType {
		ev["statement_predicate_type"] = clip(st.PredicateType)
		return nil, fail(ReasonPredicateMismatch, nil, "the statement's predicate type %q is not the declared one", clip(st.PredicateType))
	}
	if f := c.subject(st, ev); f != nil {
		return nil, f
	}

	if !keyless {
		if f := c.verifyKeyed(&b, ev); f != nil {
			return nil, f
		}
		if err := c.publishPredicate(st); err != nil {
			return nil, fail(ReasonBadPredicate, err, "publish predicate does not match")
		}
		return nil, nil
	}
	res, err := c.verifyKeyless(&b)
	if err != nil {
		return nil, fail(ReasonVerification, err, "sigstore verification failed")
	}
	return provenance(st, res, ev)
}

// subject requires exactly one subject, this version's, with the
// tarball's sha512: npm writes one, and a statement covering several
// artifacts is not what the registry serves for a version.
func (c *check) subject(st intoto.Statement, ev map[string]string) *failure {
	if len(st.Subject) != 1 {
		ev["subjects"] = fmt.Sprint(len(st.Subject))
		return fail(ReasonSubject, nil, "statement has %d subjects, want 1", len(st.Subject))
	}
	s := st.Subject[0]
	ev["subject"] = clip(s.Name)
	ok := false
	for _, n := range subjectNames(c.name, c.version) {
		ok = ok || s.Name == n
	}
	if !ok {
		ev["expected_subject"] = SubjectName(c.name, c.version)
		return fail(ReasonSubject, nil, "statement is about %q, not %q", clip(s.Name), SubjectName(c.name, c.version))
	}
	want := hex.EncodeToString(c.sha512)
	got := s.Digest["sha512"]
	if !strings.EqualFold(got, want) {
		ev["expected_sha512"], ev["actual_sha512"] = want, clip(got)
		return fail(ReasonSubject, nil, "statement's sha512 is not the tarball's")
	}
	return nil
}

func (c *check) verifyKeyless(b *bundle.Bundle) (*sgverify.VerificationResult, error) {
	if b.GetVerificationMaterial().GetPublicKey() != nil {
		return nil, errors.New("provenance is signed with a key, not a Fulcio certificate")
	}
	sv, err := sgverify.NewVerifier(c.v.trusted,
		sgverify.WithTransparencyLog(1),
		sgverify.WithObserverTimestamps(1),
		sgverify.WithSignedCertificateTimestamps(1))
	if err != nil {
		return nil, err
	}
	// Any identity the trusted Fulcio certified will do: the facts it
	// vouches for are returned, and pinning them is the caller's policy.
	id, err := sgverify.NewShortCertificateIdentity("", ".+", "", ".+")
	if err != nil {
		return nil, err
	}
	return sv.Verify(b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha512", c.sha512), sgverify.WithCertificateIdentity(id)))
}

// verifyKeyed verifies the publish attestation with the registry key the
// bundle names. sigstore-go looks the key up by the bundle's public key
// hint; pacote by the DSSE signature's keyid. Real bundles carry both and
// they agree, so a bundle where they differ is refused rather than
// verified one way and read the other.
func (c *check) verifyKeyed(b *bundle.Bundle, ev map[string]string) *failure {
	pk := b.GetVerificationMaterial().GetPublicKey()
	if pk == nil {
		return fail(ReasonBadBundle, nil, "publish attestation is not signed with a registry key")
	}
	hint := pk.GetHint()
	ev["keyid"] = clip(hint)
	for _, s := range b.GetDsseEnvelope().GetSignatures() {
		if id := s.GetKeyid(); id != "" && id != hint {
			ev["dsse_keyid"] = clip(id)
			return fail(ReasonBadBundle, nil, "DSSE keyid %q differs from the bundle's key hint %q", clip(id), clip(hint))
		}
	}
	key, ok := c.v.keys.Lookup(hint)
	if !ok {
		return fail(ReasonUnknownKey, nil, "signed with unknown registry key %q", clip(hint))
	}
	if !key.Expires.IsZero() {
		ev["expires"] = key.Expires.UTC().Format(time.RFC3339)
		if c.published.IsZero() {
			return fail(ReasonNoPublishTime, nil, "registry key %s expires but the version has no publish time", hint)
		}
		ev["published"] = c.published.UTC().Format(time.RFC3339)
		if !c.published.Before(key.Expires) {
			return fail(ReasonExpiredKey, nil, "published %s, after registry key %s expired %s", ev["published"], hint, ev["expires"])
		}
	}
	pub, err := signature.LoadECDSAVerifier(key.Public, crypto.SHA256)
	if err != nil {
		return fail(ReasonVerification, err, "registry key %s", hint)
	}
	// The key's expiry also bounds the Rekor integrated time: sigstore-go
	// checks each verified log entry's time against ValidAtTime, as pacote
	// checks integratedTime against keys[].expires.
	expiring := root.NewExpiringKey(pub, time.Time{}, key.Expires)
	keys := root.NewTrustedPublicKeyMaterial(func(id string) (root.TimeConstrainedVerifier, error) {
		if id != hint {
			return nil, fmt.Errorf("registry key %q not trusted", id)
		}
		return expiring, nil
	})
	// The registry key first, so that key material of the trusted root
	// never answers for the registry's hint.
	tm := root.TrustedMaterialCollection{keys, c.v.trusted}
	sv, err := sgverify.NewVerifier(tm, sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	if err != nil {
		return fail(ReasonVerification, err, "sigstore verifier")
	}
	if _, err := sv.Verify(b, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha512", c.sha512), sgverify.WithKey())); err != nil {
		return fail(ReasonVerification, err, "sigstore verification with registry key %s failed", hint)
	}
	return nil
}

// publishPredicate checks that the registry attested this name and
// version.
func (c *check) publishPredicate(st intoto.Statement) error {
	var p struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(st.Predicate, &p); err != nil {
		return err
	}
	if p.Name != c.name || p.Version != c.version {
		return fmt.Errorf("predicate names %s@%s", clip(p.Name), clip(p.Version))
	}
	return nil
}

func clip(s string) string { return clipN(s, 200) }

func clipN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
