package cirecord

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/intoto"
)

// In-toto statements carrying SLSA provenance. Each subject the default
// mapping (or InTotoOptions.Map) recognises becomes a record:
//
//   - "pkg:npm/<name>@<version>" (scope as %40scope or @scope, as npm
//     writes it) with a sha512 digest: npm, digest "sha512-<base64>".
//   - "pkg:golang/<module path>@<version>", or a bare
//     "<module path>@<version>", with a goModuleH1 digest: go, digest
//     "h1:<base64>". goModuleH1 is in-toto's DigestSet name for the
//     module's dirhash (in hex); no common tool writes Go module subjects
//     today, so this is the form a CI job of ours would write. The v1
//     DigestSet's dirHash is not accepted: it hashes paths without the
//     "module@version/" prefix go.sum's h1 includes, so it never equals
//     what the module proxy serves.
//   - "pkg:oci/<name>@sha256%3A<hex>?repository_url=<registry>/<repo>[&tag=<tag>]",
//     or "<registry>/<repo>[:tag][@sha256:<hex>]" with a sha256 digest
//     (the form of actions/attest-build-provenance and the SLSA
//     container generator): oci, named through Registries. A tag gives a
//     record of the tag; no tag, a record of the digest itself.
//
// Anything else (binaries, archives: "app_linux_amd64.tar.gz") is
// unmapped.

// Statement and predicate types read here.
const (
	statementV01 = "https://in-toto.io/Statement/v0.1"
	statementV1  = "https://in-toto.io/Statement/v1"
	// PredicateSLSAv02 and PredicateSLSAv1 are the provenance predicates
	// accepted: a record says "CI built this", which is what provenance
	// claims and other predicates do not.
	PredicateSLSAv02 = "https://slsa.dev/provenance/v0.2"
	PredicateSLSAv1  = "https://slsa.dev/provenance/v1"
)

// Limits: a DSSE envelope or bundle, and the subjects of one statement.
const (
	maxEnvelope = 8 << 20
	maxSubjects = 4096
)

// Identity is a keyless signer FromBundle accepts: the certificate's
// subject (SAN) exactly or by regexp, and its OIDC issuer exactly or by
// regexp, as sigstore-go's NewShortCertificateIdentity takes them. Set
// exactly one of each pair.
type Identity struct {
	Subject, SubjectRegexp string
	Issuer, IssuerRegexp   string
}

// InTotoOptions says how a statement's subjects become records.
type InTotoOptions struct {
	// Ecosystem, when set, keeps only subjects of that ecosystem; the
	// others count as unmapped.
	Ecosystem verify.Ecosystem
	// Map, when set, replaces the default mapping: it returns the
	// artifact and the digest in the ecosystem's form, or false for a
	// subject that is not an artifact of ours. Its results are validated
	// like any record.
	Map func(subjectName string, digests map[string]string) (verify.Artifact, string, bool)
	// Registries names OCI subjects, as GoreleaserOptions.Registries.
	Registries map[string]string
	// SkipUnmapped lets a statement hold subjects that map to nothing
	// (a provenance covering binaries and an image, say). Without it an
	// unmapped subject fails the import: a subject nobody maps is as
	// likely a mistake in the mapping as a file we do not front. A
	// statement where nothing maps always fails.
	SkipUnmapped bool
}

type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// FromDSSE verifies a DSSE envelope (JSON, payload type in-toto) with
// keys and returns a record per subject of its SLSA provenance. One valid
// signature by one of keys suffices. Keys are *ecdsa.PublicKey (ASN.1
// signatures over the curve's hash, or SHA-256), ed25519.PublicKey, or
// *rsa.PublicKey (PKCS#1 v1.5 or PSS over SHA-256), as cosign and
// securesystemslib sign. Nothing is returned unless the envelope verifies
// and every subject maps (or is skipped by SkipUnmapped).
func FromDSSE(env []byte, keys []crypto.PublicKey, opt InTotoOptions) ([]Record, error) {
	if len(env) > maxEnvelope {
		return nil, fmt.Errorf("DSSE envelope: %d bytes, limit %d", len(env), maxEnvelope)
	}
	if len(keys) == 0 {
		return nil, errors.New("DSSE envelope: no keys to verify it with")
	}
	if err := intoto.CheckUniqueKeys(env); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	var e envelope
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if e.PayloadType != intoto.PayloadType {
		return nil, fmt.Errorf("DSSE envelope: payload type %q is not %s", clip(e.PayloadType), intoto.PayloadType)
	}
	payload, err := decodeB64(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("DSSE envelope: payload: %w", err)
	}
	if len(e.Signatures) == 0 {
		return nil, errors.New("DSSE envelope: no signatures")
	}
	pae := dssePAE(e.PayloadType, payload)
	verified := false
	for _, s := range e.Signatures {
		sig, err := decodeB64(s.Sig)
		if err != nil {
			continue
		}
		for _, k := range keys {
			ok, err := verifyWith(k, pae, sig)
			if err != nil {
				return nil, err
			}
			verified = verified || ok
		}
	}
	if !verified {
		return nil, errors.New("DSSE envelope: no signature verifies with the given keys")
	}
	return fromStatement(payload, "", "", opt)
}

// decodeB64 reads DSSE's base64, which producers write standard or
// URL-safe.
func decodeB64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

// dssePAE is DSSE's pre-authentication encoding, what is signed.
func dssePAE(typ string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(typ), typ, len(payload), payload)
}

func verifyWith(k crypto.PublicKey, msg, sig []byte) (bool, error) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		s256 := sha256.Sum256(msg)
		if ecdsa.VerifyASN1(k, s256[:], sig) {
			return true, nil
		}
		var d []byte
		switch k.Curve {
		case elliptic.P384():
			h := sha512.Sum384(msg)
			d = h[:]
		case elliptic.P521():
			h := sha512.Sum512(msg)
			d = h[:]
		default:
			return false, nil
		}
		return ecdsa.VerifyASN1(k, d, sig), nil
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig), nil
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil {
			return true, nil
		}
		return rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, nil) == nil, nil
	default:
		return false, fmt.Errorf("DSSE: unsupported key type %T", k)
	}
}

// FromBundle verifies a sigstore bundle holding a DSSE envelope, signed
// keylessly by one of ids under trusted (Fulcio chain, SCT, transparency
// log entry, as for npm provenance), and returns a record per subject of
// its SLSA provenance. The statement's commit must agree with the one the
// certificate's OIDC claims record, where both say one.
func FromBundle(b []byte, trusted root.TrustedMaterial, ids []Identity, opt InTotoOptions) ([]Record, error) {
	if len(b) > maxEnvelope {
		return nil, fmt.Errorf("sigstore bundle: %d bytes, limit %d", len(b), maxEnvelope)
	}
	if trusted == nil {
		return nil, errors.New("sigstore bundle: no trusted root")
	}
	if len(ids) == 0 {
		// An empty identity list would trust any certificate the CA
		// issued, to anyone with an OIDC account.
		return nil, errors.New("sigstore bundle: no identities to accept")
	}
	var policy []sgverify.PolicyOption
	for i, id := range ids {
		// sigstore-go would quietly use one of the two when both are
		// set; a policy that says two things is a mistake to report.
		if (id.Subject == "") == (id.SubjectRegexp == "") || (id.Issuer == "") == (id.IssuerRegexp == "") {
			return nil, fmt.Errorf("sigstore bundle: identity %d: set exactly one of Subject and SubjectRegexp, and of Issuer and IssuerRegexp", i)
		}
		ci, err := sgverify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegexp, id.Subject, id.SubjectRegexp)
		if err != nil {
			return nil, fmt.Errorf("sigstore bundle: identity %d: %w", i, err)
		}
		policy = append(policy, sgverify.WithCertificateIdentity(ci))
	}
	var bun bundle.Bundle
	if err := bun.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("sigstore bundle: %w", err)
	}
	env := bun.GetDsseEnvelope()
	if env == nil {
		return nil, errors.New("sigstore bundle: holds no DSSE envelope")
	}
	if env.GetPayloadType() != intoto.PayloadType {
		return nil, fmt.Errorf("sigstore bundle: payload type %q is not %s", clip(env.GetPayloadType()), intoto.PayloadType)
	}
	if bun.GetVerificationMaterial().GetPublicKey() != nil {
		return nil, errors.New("sigstore bundle: signed with a key, not a Fulcio certificate (use FromDSSE)")
	}
	sv, err := sgverify.NewVerifier(trusted,
		sgverify.WithTransparencyLog(1),
		sgverify.WithObserverTimestamps(1),
		sgverify.WithSignedCertificateTimestamps(1))
	if err != nil {
		return nil, fmt.Errorf("sigstore bundle: %w", err)
	}
	// No artifact to match: the records are the signed subjects
	// themselves, so the signature over the envelope is what matters,
	// and sigstore-go still verifies it.
	res, err := sv.Verify(&bun, sgverify.NewPolicy(sgverify.WithoutArtifactUnsafe(), policy...))
	if err != nil {
		return nil, fmt.Errorf("sigstore bundle: verification failed: %w", err)
	}
	var certCommit, san string
	if res.Signature != nil && res.Signature.Certificate != nil {
		certCommit = strings.ToLower(res.Signature.Certificate.SourceRepositoryDigest)
		san = res.Signature.Certificate.SubjectAlternativeName
	}
	return fromStatement(env.GetPayload(), certCommit, san, opt)
}

// fromStatement turns a verified payload into records. certCommit and
// san are what a Fulcio certificate vouches for ("" for key-signed).
func fromStatement(payload []byte, certCommit, san string, opt InTotoOptions) ([]Record, error) {
	// The signature covers bytes; encoding/json and other readers must
	// not be able to read different statements from them.
	if err := intoto.CheckUniqueKeys(payload); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	var st intoto.Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if st.Type != statementV01 && st.Type != statementV1 {
		return nil, fmt.Errorf("in-toto statement: type %q is not an in-toto statement", clip(st.Type))
	}
	builder, commit, err := provenance(st.PredicateType, st.Predicate)
	if err != nil {
		return nil, err
	}
	if certCommit != "" {
		if commit != "" && commit != certCommit {
			return nil, fmt.Errorf("in-toto statement: commit %s differs from the certificate's %s", commit, certCommit)
		}
		commit = certCommit
	}
	if builder == "" {
		builder = san
	}
	if len(st.Subject) == 0 {
		return nil, errors.New("in-toto statement: no subjects")
	}
	if len(st.Subject) > maxSubjects {
		return nil, fmt.Errorf("in-toto statement: %d subjects, limit %d", len(st.Subject), maxSubjects)
	}
	var out []Record
	byKey := map[string]int{}
	for _, s := range st.Subject {
		art, digest, ok, err := mapSubject(s.Name, s.Digest, opt)
		if err != nil {
			return nil, fmt.Errorf("in-toto subject %q: %w", clip(s.Name), err)
		}
		if ok && opt.Ecosystem != "" && art.Ecosystem != opt.Ecosystem {
			ok = false
		}
		if !ok {
			if opt.SkipUnmapped {
				continue
			}
			return nil, fmt.Errorf("in-toto subject %q maps to no artifact", clip(s.Name))
		}
		r := Record{Artifact: art, Digest: digest, Builder: builder, Commit: commit, Source: SourceInToto}
		r.Artifact.Digest = ""
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("in-toto subject %q: %w", clip(s.Name), err)
		}
		key := r.Artifact.Key()
		if j, dup := byKey[key]; dup {
			if out[j].Digest != r.Digest {
				return nil, fmt.Errorf("in-toto statement: %s has two digests, %s and %s", key, out[j].Digest, r.Digest)
			}
			continue
		}
		byKey[key] = len(out)
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("in-toto statement: no subject maps to an artifact")
	}
	return out, nil
}

// provenance reads the builder id and the source commit of a SLSA
// predicate. The commit is, for v1, the gitCommit of the first resolved
// dependency (by convention the checked-out source; later ones are
// inputs of the build), for v0.2 the configSource's, else the first
// material's.
func provenance(predicateType string, raw json.RawMessage) (builder, commit string, err error) {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", "", errors.New("in-toto statement: no predicate")
	}
	switch predicateType {
	case PredicateSLSAv1:
		var p struct {
			BuildDefinition struct {
				ResolvedDependencies []struct {
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return "", "", fmt.Errorf("SLSA v1 predicate: %w", err)
		}
		builder = p.RunDetails.Builder.ID
		if deps := p.BuildDefinition.ResolvedDependencies; len(deps) > 0 {
			commit = gitDigest(deps[0].Digest)
		}
	case PredicateSLSAv02:
		var p struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Invocation struct {
				ConfigSource struct {
					Digest map[string]string `json:"digest"`
				} `json:"configSource"`
			} `json:"invocation"`
			Materials []struct {
				Digest map[string]string `json:"digest"`
			} `json:"materials"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return "", "", fmt.Errorf("SLSA v0.2 predicate: %w", err)
		}
		builder = p.Builder.ID
		commit = gitDigest(p.Invocation.ConfigSource.Digest)
		if commit == "" && len(p.Materials) > 0 {
			commit = gitDigest(p.Materials[0].Digest)
		}
	default:
		return "", "", fmt.Errorf("in-toto statement: predicate type %q is not SLSA provenance", clip(predicateType))
	}
	if commit != "" && !gitCommit.MatchString(commit) {
		return "", "", fmt.Errorf("SLSA predicate: source commit %q is not a git commit", clip(commit))
	}
	return builder, commit, nil
}

func gitDigest(d map[string]string) string {
	for _, k := range []string{"gitCommit", "sha1"} {
		if v := d[k]; v != "" {
			return strings.ToLower(v)
		}
	}
	return ""
}

// mapSubject maps one subject with opt.Map or the default mapping. An
// error is a subject in a recognised form that is malformed (a pkg:npm
// without sha512), which is not the same as a subject of no known form.
func mapSubject(name string, digests map[string]string, opt InTotoOptions) (verify.Artifact, string, bool, error) {
	if opt.Map != nil {
		a, d, ok := opt.Map(name, digests)
		return a, d, ok, nil
	}
	switch {
	case strings.HasPrefix(name, "pkg:npm/"):
		n, v, err := purlNameVersion(strings.TrimPrefix(name, "pkg:npm/"))
		if err != nil {
			return verify.Artifact{}, "", false, err
		}
		h, ok := digests["sha512"]
		if !ok {
			return verify.Artifact{}, "", false, errors.New("npm subject without a sha512 digest")
		}
		d, err := sha512FromHex(h)
		if err != nil {
			return verify.Artifact{}, "", false, err
		}
		return verify.Artifact{Ecosystem: verify.NPM, Name: n, Version: v}, d, true, nil
	case strings.HasPrefix(name, "pkg:golang/"):
		n, v, err := purlNameVersion(strings.TrimPrefix(name, "pkg:golang/"))
		if err != nil {
			return verify.Artifact{}, "", false, err
		}
		d, err := goDigest(digests)
		if err != nil {
			return verify.Artifact{}, "", false, err
		}
		return verify.Artifact{Ecosystem: verify.Go, Name: n, Version: v}, d, true, nil
	case strings.HasPrefix(name, "pkg:oci/"):
		return ociPurl(strings.TrimPrefix(name, "pkg:oci/"), digests, opt.Registries)
	case strings.HasPrefix(name, "pkg:"):
		return verify.Artifact{}, "", false, nil
	}
	if h, ok := digests["goModuleH1"]; ok {
		path, version, found := strings.Cut(name, "@")
		if !found || verify.CheckGoModule(path, version) != nil {
			return verify.Artifact{}, "", false, fmt.Errorf("goModuleH1 digest on a subject that is not module@version")
		}
		d, err := h1FromHex(h)
		if err != nil {
			return verify.Artifact{}, "", false, err
		}
		return verify.Artifact{Ecosystem: verify.Go, Name: path, Version: version}, d, true, nil
	}
	if h, ok := digests["sha256"]; ok && looksLikeImage(name) {
		ref := name
		if !strings.Contains(ref, "@") {
			ref += "@sha256:" + strings.ToLower(h)
		}
		r, err := parseImageRef(ref, false)
		if err != nil {
			return verify.Artifact{}, "", false, err
		}
		return ociArtifact(r, "sha256:"+strings.ToLower(h), opt.Registries)
	}
	return verify.Artifact{}, "", false, nil
}

// looksLikeImage tells an image subject ("ghcr.io/acme/app[:tag]",
// "…@sha256:…") from a file ("dist/app.tar.gz") or another package's
// "name@version": its first component is a registry host, and an @ in it
// can only introduce a digest. A subject that looks like an image and
// then does not parse is an error, not silently unmapped.
func looksLikeImage(name string) bool {
	first, _, ok := strings.Cut(name, "/")
	if !ok || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		return false
	}
	_, after, hasAt := strings.Cut(name, "@")
	return !hasAt || strings.HasPrefix(after, "sha256:")
}

func ociArtifact(r imageRef, digest string, registries map[string]string) (verify.Artifact, string, bool, error) {
	a, d, err := imageArtifact(registries, r, digest)
	if errors.Is(err, errUnmappedRegistry) {
		return verify.Artifact{}, "", false, nil
	}
	if err != nil {
		return verify.Artifact{}, "", false, err
	}
	return a, d, true, nil
}

func goDigest(digests map[string]string) (string, error) {
	if h, ok := digests["goModuleH1"]; ok {
		return h1FromHex(h)
	}
	if _, ok := digests["dirHash"]; ok {
		return "", errors.New("go subject with dirHash only: dirHash omits the module@version/ prefix go.sum's h1 hashes, so it cannot be compared; want goModuleH1")
	}
	return "", errors.New("go subject without a goModuleH1 digest")
}

// purlNameVersion splits a purl's "<namespace>/<name>@<version>" (the
// part after the type), percent-decoding it. Qualifiers and subpaths
// are refused: they name something other than the registry's artifact.
func purlNameVersion(s string) (string, string, error) {
	if strings.ContainsAny(s, "?#") {
		return "", "", errors.New("package URL qualifiers or subpath not supported here")
	}
	i := strings.LastIndex(s, "@")
	if i <= 0 || i == len(s)-1 {
		return "", "", errors.New("package URL without @version")
	}
	name, err := url.PathUnescape(s[:i])
	if err != nil {
		return "", "", fmt.Errorf("package URL name: %w", err)
	}
	version, err := url.PathUnescape(s[i+1:])
	if err != nil {
		return "", "", fmt.Errorf("package URL version: %w", err)
	}
	return name, version, nil
}

// ociPurl maps "pkg:oci/<name>@<digest>?repository_url=…&tag=…". The
// repository_url qualifier is required: without it the purl names an
// image on no registry in particular.
func ociPurl(s string, digests map[string]string, registries map[string]string) (verify.Artifact, string, bool, error) {
	s, _, _ = strings.Cut(s, "#")
	base, rawq, _ := strings.Cut(s, "?")
	i := strings.LastIndex(base, "@")
	if i <= 0 {
		return verify.Artifact{}, "", false, errors.New("oci package URL without @digest")
	}
	name, err := url.PathUnescape(base[:i])
	if err != nil {
		return verify.Artifact{}, "", false, err
	}
	version, err := url.PathUnescape(base[i+1:])
	if err != nil {
		return verify.Artifact{}, "", false, err
	}
	if err := checkSHA256(version); err != nil {
		return verify.Artifact{}, "", false, fmt.Errorf("oci package URL version: %w", err)
	}
	if h, ok := digests["sha256"]; ok && "sha256:"+strings.ToLower(h) != version {
		return verify.Artifact{}, "", false, fmt.Errorf("oci package URL version %s differs from the subject's sha256 %s", version, clip(h))
	}
	q, err := url.ParseQuery(rawq)
	if err != nil {
		return verify.Artifact{}, "", false, fmt.Errorf("oci package URL qualifiers: %w", err)
	}
	repoURL := q.Get("repository_url")
	if repoURL == "" {
		return verify.Artifact{}, "", false, errors.New("oci package URL without repository_url")
	}
	repoURL = strings.TrimPrefix(strings.TrimPrefix(repoURL, "https://"), "http://")
	if last := repoURL[strings.LastIndex(repoURL, "/")+1:]; last != name {
		return verify.Artifact{}, "", false, fmt.Errorf("oci package URL name %q is not the last component of repository_url %q", clip(name), clip(repoURL))
	}
	ref := repoURL
	if tag := q.Get("tag"); tag != "" {
		ref += ":" + tag
	}
	r, err := parseImageRef(ref+"@"+version, false)
	if err != nil {
		return verify.Artifact{}, "", false, err
	}
	return ociArtifact(r, version, registries)
}
