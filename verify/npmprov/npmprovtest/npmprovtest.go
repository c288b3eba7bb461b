// Package npmprovtest is a sigstore and an npm registry key of a test's
// own, producing /-/npm/v1/attestations documents shaped as the public
// registry serves them: a keyless SLSA v1 provenance bundle (a Fulcio-like
// certificate for a GitHub Actions workflow identity, with the
// extensions Fulcio derives from the OIDC token and an embedded SCT) and a
// publish attestation signed with a registry key, each logged in a
// Rekor-like log as an intoto v0.0.2 entry with a signed entry timestamp
// and an inclusion proof under a signed checkpoint, as the real entries
// are. Bundles are sigstore bundle v0.3 JSON.
//
// It is test support: keys live in memory, and nothing here verifies.
package npmprovtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	rekortypes "github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/rekor/pkg/types/intoto"
	_ "github.com/sigstore/rekor/pkg/types/intoto/v0.0.2" // registers the kind
	rekorutil "github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// The values npm writes.
const (
	PredicateSLSAProvenanceV1 = "https://slsa.dev/provenance/v1"
	PredicateNPMPublish       = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
	// GitHubIssuer is the GitHub Actions OIDC issuer.
	GitHubIssuer = "https://token.actions.githubusercontent.com"
	// BundleMediaType is sigstore bundle v0.3.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	payloadType     = "application/vnd.in-toto+json"
	builderID       = "https://github.com/actions/runner/github-hosted"
)

// Sigstore is one CA, CT log and Rekor log, and the trusted root listing
// them. Two Sigstores trust nothing of each other.
type Sigstore struct {
	root, inter     *x509.Certificate
	interKey        *ecdsa.PrivateKey
	ctKey, rekorKey *ecdsa.PrivateKey
	ctLogID         [32]byte
	rekorLogID      [32]byte
	trusted         *root.TrustedRoot
	rootJSON        []byte
	serial          atomic.Int64
}

// Source is the GitHub repository and workflow run a provenance claims.
type Source struct {
	// Repository is "github.com/owner/repo".
	Repository string
	// Workflow is the workflow file, ".github/workflows/release.yml".
	Workflow string
	// Ref is the ref built, "refs/tags/v1.2.3".
	Ref string
	// Commit is the commit built, 40 hex digits.
	Commit string
}

// New starts a Sigstore whose CA and logs are valid from an hour ago.
func New(t testing.TB) *Sigstore {
	t.Helper()
	s, err := newSigstore()
	if err != nil {
		t.Fatalf("npmprovtest: %v", err)
	}
	return s
}

func newSigstore() (*Sigstore, error) {
	now := time.Now()
	s := &Sigstore{}
	s.serial.Store(now.UnixNano())
	keys := make([]*ecdsa.PrivateKey, 4)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	rootKey := keys[0]
	s.interKey, s.ctKey, s.rekorKey = keys[1], keys[2], keys[3]
	var err error
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "npmprovtest fulcio root", Organization: []string{"npmprovtest"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	if s.root, err = newCert(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey); err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "npmprovtest fulcio intermediate", Organization: []string{"npmprovtest"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	if s.inter, err = newCert(interTmpl, s.root, &s.interKey.PublicKey, rootKey); err != nil {
		return nil, err
	}
	if s.ctLogID, err = keyID(s.ctKey.Public()); err != nil {
		return nil, err
	}
	if s.rekorLogID, err = keyID(s.rekorKey.Public()); err != nil {
		return nil, err
	}
	tl := func(id [32]byte, pub crypto.PublicKey, base string) *root.TransparencyLog {
		return &root.TransparencyLog{BaseURL: base, ID: id[:], ValidityPeriodStart: now.Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: pub, SignatureHashFunc: crypto.SHA256}
	}
	s.trusted, err = root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: s.root, Intermediates: []*x509.Certificate{s.inter},
			ValidityPeriodStart: now.Add(-time.Hour), URI: "https://fulcio.npmprovtest.invalid",
		}},
		map[string]*root.TransparencyLog{hex.EncodeToString(s.ctLogID[:]): tl(s.ctLogID, s.ctKey.Public(), "https://ctfe.npmprovtest.invalid")},
		nil,
		map[string]*root.TransparencyLog{hex.EncodeToString(s.rekorLogID[:]): tl(s.rekorLogID, s.rekorKey.Public(), "https://rekor.npmprovtest.invalid")},
	)
	if err != nil {
		return nil, err
	}
	if s.rootJSON, err = s.trusted.MarshalJSON(); err != nil {
		return nil, err
	}
	return s, nil
}

// TrustedRootJSON is the trusted root as trusted_root.json, as
// root.NewTrustedRootFromJSON and LoadTrustedRoot read it.
func (s *Sigstore) TrustedRootJSON() []byte { return bytes.Clone(s.rootJSON) }

// TrustedMaterial is the trusted root: the CA, the CT log and the Rekor
// log.
func (s *Sigstore) TrustedMaterial() root.TrustedMaterial { return s.trusted }

// Attestations returns the body of /-/npm/v1/attestations/<name>@<version>:
// the publish attestation signed by key (keyid, the registry's name for
// it) first, as the registry orders them, then the SLSA v1 provenance
// signed keylessly for src. sha512 is the tarball's raw digest.
func (s *Sigstore) Attestations(name, version string, sha512 []byte, src Source, key *ecdsa.PrivateKey, keyid string) ([]byte, error) {
	pub, err := s.SignPublish(PublishStatement(name, version, sha512), key, keyid)
	if err != nil {
		return nil, err
	}
	stmt, err := ProvenanceStatement(name, version, sha512, src)
	if err != nil {
		return nil, err
	}
	prov, err := s.SignProvenance(stmt, src)
	if err != nil {
		return nil, err
	}
	return Document(Entry{PredicateNPMPublish, pub}, Entry{PredicateSLSAProvenanceV1, prov}), nil
}

// Entry is one attestation of a document.
type Entry struct {
	PredicateType string
	Bundle        []byte // bundle JSON
}

// Document assembles an attestations document, {"attestations":[...]}.
func Document(entries ...Entry) []byte {
	type att struct {
		PredicateType string          `json:"predicateType"`
		Bundle        json.RawMessage `json:"bundle"`
	}
	d := struct {
		Attestations []att `json:"attestations"`
	}{Attestations: []att{}}
	for _, e := range entries {
		d.Attestations = append(d.Attestations, att{e.PredicateType, e.Bundle})
	}
	out, err := json.Marshal(d)
	if err != nil {
		panic("npmprovtest: " + err.Error()) // RawMessage that is not JSON: a bug in the test
	}
	return out
}

// SubjectName is npm's purl for name@version (scope's @ as %40).
func SubjectName(name, version string) string {
	if strings.HasPrefix(name, "@") {
		name = "%40" + name[1:]
	}
	return "pkg:npm/" + name + "@" + version
}

func subject(name, version string, sha512 []byte) []any {
	return []any{map[string]any{"name": SubjectName(name, version), "digest": map[string]string{"sha512": hex.EncodeToString(sha512)}}}
}

// PublishStatement is the in-toto v0.1 statement the registry signs on
// publish.
func PublishStatement(name, version string, sha512 []byte) []byte {
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"subject":       subject(name, version, sha512),
		"predicateType": PredicateNPMPublish,
		"predicate":     map[string]string{"name": name, "version": version, "registry": "https://registry.npmjs.org"},
	})
	return b
}

// ProvenanceStatement is the in-toto v1 SLSA v1 statement npm publish
// --provenance writes on GitHub Actions (libnpmpublish's provenance.js).
func ProvenanceStatement(name, version string, sha512 []byte, src Source) ([]byte, error) {
	repoURL, err := src.url()
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       subject(name, version, sha512),
		"predicateType": PredicateSLSAProvenanceV1,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
				"externalParameters": map[string]any{
					"workflow": map[string]string{"ref": src.Ref, "repository": repoURL, "path": src.Workflow},
				},
				"internalParameters": map[string]any{
					"github": map[string]string{"event_name": "push", "repository_id": "1", "repository_owner_id": "2"},
				},
				"resolvedDependencies": []any{map[string]any{
					"uri":    "git+" + repoURL + "@" + src.Ref,
					"digest": map[string]string{"gitCommit": src.Commit},
				}},
			},
			"runDetails": map[string]any{
				"builder":  map[string]string{"id": builderID},
				"metadata": map[string]string{"invocationId": repoURL + "/actions/runs/1/attempts/1"},
			},
		},
	})
}

func (src Source) url() (string, error) {
	if src.Repository == "" || strings.Contains(src.Repository, "://") || strings.Count(src.Repository, "/") != 2 {
		return "", fmt.Errorf("npmprovtest: repository %q is not host/owner/repo", src.Repository)
	}
	return "https://" + src.Repository, nil
}

// SignProvenance signs an in-toto statement keylessly as a GitHub Actions
// run of src: a fresh key, a certificate for the workflow identity with
// Fulcio's extensions and an SCT, a DSSE envelope, an intoto log entry.
// It returns the bundle JSON.
func (s *Sigstore) SignProvenance(stmt []byte, src Source) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := s.issue(key, src)
	if err != nil {
		return nil, err
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		return nil, err
	}
	env, err := signDSSE(key, "", stmt)
	if err != nil {
		return nil, err
	}
	entry, err := s.logIntoto(env, certPEM)
	if err != nil {
		return nil, err
	}
	return marshalBundle(&protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
	}, entry, env)
}

// SignPublish signs an in-toto statement with a registry key, as the
// registry does on publish: the bundle names the key by keyid (public key
// hint and DSSE keyid) and its log entry carries the public key.
func (s *Sigstore) SignPublish(stmt []byte, key *ecdsa.PrivateKey, keyid string) ([]byte, error) {
	env, err := signDSSE(key, keyid, stmt)
	if err != nil {
		return nil, err
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(key.Public())
	if err != nil {
		return nil, err
	}
	entry, err := s.logIntoto(env, pubPEM)
	if err != nil {
		return nil, err
	}
	return marshalBundle(&protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: keyid}},
	}, entry, env)
}

func marshalBundle(vm *protobundle.VerificationMaterial, entry *protorekor.TransparencyLogEntry, env *protodsse.Envelope) ([]byte, error) {
	vm.TlogEntries = []*protorekor.TransparencyLogEntry{entry}
	vm.TimestampVerificationData = &protobundle.TimestampVerificationData{}
	return protojson.Marshal(&protobundle.Bundle{
		MediaType:            BundleMediaType,
		VerificationMaterial: vm,
		Content:              &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env},
	})
}

// signDSSE signs payload as DSSE does: ECDSA P-256 over the SHA-256 of
// its pre-authentication encoding.
func signDSSE(key *ecdsa.PrivateKey, keyid string, payload []byte) (*protodsse.Envelope, error) {
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
	sum := sha256.Sum256([]byte(pae))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, err
	}
	return &protodsse.Envelope{
		Payload: payload, PayloadType: payloadType,
		Signatures: []*protodsse.Signature{{Sig: sig, Keyid: keyid}},
	}, nil
}

// issue is Fulcio for a GitHub Actions OIDC token of src: a ten-minute
// code-signing certificate whose SAN is the workflow ref and whose
// extensions are the token's claims, with an SCT from the CT log.
func (s *Sigstore) issue(key *ecdsa.PrivateKey, src Source) (*x509.Certificate, error) {
	repoURL, err := src.url()
	if err != nil {
		return nil, err
	}
	_, ownerRepo, _ := strings.Cut(src.Repository, "/")
	owner, _, _ := strings.Cut(ownerRepo, "/")
	workflowURI := repoURL + "/" + src.Workflow + "@" + src.Ref
	san, err := url.Parse(workflowURI)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	exts := []pkix.Extension{
		// v1 extensions: raw strings.
		{Id: oid(1), Value: []byte(GitHubIssuer)},
		{Id: oid(2), Value: []byte("push")},
		{Id: oid(3), Value: []byte(src.Commit)},
		{Id: oid(4), Value: []byte("release")},
		{Id: oid(5), Value: []byte(ownerRepo)},
		{Id: oid(6), Value: []byte(src.Ref)},
	}
	// v2 extensions: DER UTF8Strings.
	for i, v := range map[int]string{
		8: GitHubIssuer, 9: workflowURI, 10: src.Commit, 11: "github-hosted",
		12: repoURL, 13: src.Commit, 14: src.Ref, 15: "1",
		16: "https://" + strings.SplitN(src.Repository, "/", 2)[0] + "/" + owner, 17: "2",
		18: workflowURI, 19: src.Commit, 20: "push",
		21: repoURL + "/actions/runs/1/attempts/1", 22: "public",
	} {
		der, err := asn1.MarshalWithParams(v, "utf8")
		if err != nil {
			return nil, err
		}
		exts = append(exts, pkix.Extension{Id: oid(i), Value: der})
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(s.serial.Add(1)),
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs: []*url.URL{san}, ExtraExtensions: exts,
	}
	sct, err := s.sct(tmpl, key, now)
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, sct)
	return newCert(tmpl, s.inter, key.Public(), s.interKey)
}

func oid(n int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, n} }

// sct is the certificate extension holding the CT log's SCT for the
// certificate tmpl will become (RFC 6962 §3.2: signed over the
// precertificate's TBS and the issuer's key hash).
func (s *Sigstore) sct(tmpl *x509.Certificate, key *ecdsa.PrivateKey, now time.Time) (pkix.Extension, error) {
	pre, err := newCert(tmpl, s.inter, key.Public(), s.interKey)
	if err != nil {
		return pkix.Extension{}, err
	}
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: s.ctLogID}, Timestamp: uint64(now.UnixMilli())}
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{
				IssuerKeyHash:  sha256.Sum256(s.inter.RawSubjectPublicKeyInfo),
				TBSCertificate: pre.RawTBSCertificate,
			},
		},
	}})
	if err != nil {
		return pkix.Extension{}, err
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, digest[:])
	if err != nil {
		return pkix.Extension{}, err
	}
	sct.Signature = ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sig,
	}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		return pkix.Extension{}, err
	}
	raw, err := cttls.Marshal(*list)
	if err != nil {
		return pkix.Extension{}, err
	}
	ext, err := asn1.Marshal(raw)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}, Value: ext}, nil
}

// logIntoto is Rekor: it records env as an intoto v0.0.2 entry (the kind
// npm's entries are) under the signer's certificate or public key PEM and
// returns it with a signed entry timestamp and an inclusion proof in a
// one-leaf tree under a signed checkpoint.
func (s *Sigstore) logIntoto(env *protodsse.Envelope, keyPEM []byte) (*protorekor.TransparencyLogEntry, error) {
	ctx := context.Background()
	type sig struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	}
	sigs := make([]sig, len(env.Signatures))
	for i, sg := range env.Signatures {
		sigs[i] = sig{sg.Keyid, base64.StdEncoding.EncodeToString(sg.Sig)}
	}
	envJSON, err := json.Marshal(struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []sig  `json:"signatures"`
	}{env.PayloadType, base64.StdEncoding.EncodeToString(env.Payload), sigs})
	if err != nil {
		return nil, err
	}
	pe, err := rekortypes.NewProposedEntry(ctx, intoto.KIND, "0.0.2", rekortypes.ArtifactProperties{
		ArtifactBytes: envJSON, PublicKeyBytes: [][]byte{keyPEM},
	})
	if err != nil {
		return nil, fmt.Errorf("npmprovtest: intoto entry: %w", err)
	}
	impl, err := rekortypes.CreateVersionedEntry(pe)
	if err != nil {
		return nil, err
	}
	body, err := rekortypes.CanonicalizeEntry(ctx, impl)
	if err != nil {
		return nil, err
	}
	integrated := time.Now().Unix()
	logID := hex.EncodeToString(s.rekorLogID[:])
	payload, err := json.Marshal(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: integrated, LogIndex: 0, LogID: logID})
	if err != nil {
		return nil, err
	}
	canon, err := jsoncanonicalizer.Transform(payload)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(canon)
	set, err := ecdsa.SignASN1(rand.Reader, s.rekorKey, sum[:])
	if err != nil {
		return nil, err
	}
	leaf := sha256.Sum256(append([]byte{0}, body...))
	signer, err := signature.LoadECDSASignerVerifier(s.rekorKey, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	cp, err := rekorutil.CreateAndSignCheckpoint(ctx, "rekor.npmprovtest.invalid", 123, 1, leaf[:], signer)
	if err != nil {
		return nil, err
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          0,
		LogId:             &protocommon.LogId{KeyId: s.rekorLogID[:]},
		KindVersion:       &protorekor.KindVersion{Kind: intoto.KIND, Version: "0.0.2"},
		IntegratedTime:    integrated,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		InclusionProof:    &protorekor.InclusionProof{LogIndex: 0, RootHash: leaf[:], TreeSize: 1, Hashes: [][]byte{}, Checkpoint: &protorekor.Checkpoint{Envelope: string(cp)}},
		CanonicalizedBody: body,
	}, nil
}

// RegistryKey is a fresh registry signing key and npm's keyid for it
// (the OpenSSH SHA256 fingerprint of the key).
func RegistryKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, f := range [][]byte{[]byte("ecdsa-sha2-nistp256"), []byte("nistp256"), pt} {
		blob = append(blob, byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f)))
		blob = append(blob, f...)
	}
	sum := sha256.Sum256(blob)
	return k, "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// KeysJSON is a /-/npm/v1/keys document holding pub as keyid; a zero
// expires is a key that does not expire.
func KeysJSON(pub *ecdsa.PublicKey, keyid string, expires time.Time) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var exp any
	if !expires.IsZero() {
		exp = expires.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return json.Marshal(map[string]any{"keys": []any{map[string]any{
		"expires": exp, "keyid": keyid, "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256",
		"key": base64.StdEncoding.EncodeToString(der),
	}}})
}

func keyID(pub crypto.PublicKey) ([32]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(der), nil
}

func newCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
