// Package cosigntest is a sigstore of a test's own, for keyless
// verification without the network: a Fulcio-like CA (root and
// intermediate) that issues short-lived code-signing certificates with an
// embedded SCT, the CT log that signs those SCTs, a Rekor-like log that
// records entries and returns them with a signed entry timestamp (SET) and
// an inclusion proof under a signed checkpoint, and the trusted_root.json
// that lists all three, as sigstore-go and cosign --trusted-root read it.
//
// It signs images the way cosign sign does: the legacy sha256-<hex>.sig
// tag (SignLegacy) or a sigstore bundle attached as an OCI 1.1 referrer
// (SignBundle). It is test support, not production code: keys live in
// memory, failures end the test, and nothing here verifies anything.
package cosigntest

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
	"math/big"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/go-openapi/swag/conv"
	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/google/go-containerregistry/pkg/name"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/rekor/pkg/generated/models"
	rekortypes "github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/rekor/pkg/types/dsse"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1" // registers the kind
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1" // registers the kind
	rekorutil "github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// PredicateCosignSign is the predicate type of the in-toto statement that
// cosign sign --new-bundle-format signs.
const PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"

// Sigstore is one CA, CT log and Rekor log, and the trusted root listing
// them. Two Sigstores trust nothing of each other.
type Sigstore struct {
	// Root and Intermediate are the CA's certificates; Intermediate
	// issues the signing certificates.
	Root, Intermediate *x509.Certificate

	interKey        *ecdsa.PrivateKey
	ctKey, rekorKey *ecdsa.PrivateKey
	ctLogID         [32]byte
	rekorLogID      string // hex
	trusted         *root.TrustedRoot
	rootJSON        []byte
	serial          atomic.Int64
}

// New starts a Sigstore whose CA and logs are valid from an hour ago.
func New(t testing.TB) *Sigstore {
	t.Helper()
	now := time.Now()
	s := &Sigstore{}
	s.serial.Store(now.UnixNano())
	rootKey := newKey(t)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cosigntest fulcio root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	s.Root = newCert(t, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	s.interKey = newKey(t)
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "cosigntest fulcio intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	s.Intermediate = newCert(t, interTmpl, s.Root, &s.interKey.PublicKey, rootKey)

	s.ctKey, s.rekorKey = newKey(t), newKey(t)
	ctDER, err := x509.MarshalPKIXPublicKey(s.ctKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	s.ctLogID = sha256.Sum256(ctDER)
	rekorDER, err := x509.MarshalPKIXPublicKey(s.rekorKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	rekorID := sha256.Sum256(rekorDER)
	s.rekorLogID = hex.EncodeToString(rekorID[:])

	tlog := func(id []byte, pub crypto.PublicKey, base string) *root.TransparencyLog {
		return &root.TransparencyLog{BaseURL: base, ID: id, ValidityPeriodStart: now.Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: pub, SignatureHashFunc: crypto.SHA256}
	}
	s.trusted, err = root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: s.Root, Intermediates: []*x509.Certificate{s.Intermediate},
			ValidityPeriodStart: now.Add(-time.Hour), URI: "https://fulcio.test",
		}},
		map[string]*root.TransparencyLog{hex.EncodeToString(s.ctLogID[:]): tlog(s.ctLogID[:], s.ctKey.Public(), "https://ctfe.test")},
		nil,
		map[string]*root.TransparencyLog{s.rekorLogID: tlog(rekorID[:], s.rekorKey.Public(), "https://rekor.test")},
	)
	if err != nil {
		t.Fatal(err)
	}
	s.rootJSON, err = s.trusted.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TrustedRoot is the trusted material: the CA, the CT log and the Rekor
// log.
func (s *Sigstore) TrustedRoot() *root.TrustedRoot { return s.trusted }

// TrustedRootJSON is the trusted root as trusted_root.json.
func (s *Sigstore) TrustedRootJSON() []byte { return bytes.Clone(s.rootJSON) }

// WriteTrustedRoot writes trusted_root.json to path.
func (s *Sigstore) WriteTrustedRoot(path string) error {
	return os.WriteFile(path, s.rootJSON, 0o644)
}

// Chain is the CA's chain above a signing certificate: intermediate, root.
func (s *Sigstore) Chain() []*x509.Certificate {
	return []*x509.Certificate{s.Intermediate, s.Root}
}

// Identity is a keyless signer: a certificate the CA issued for a subject
// and OIDC issuer, and the key it certifies.
type Identity struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Signer  signature.SignerVerifier
	s       *Sigstore
}

// IssueOption changes a certificate Issue makes.
type IssueOption func(*issueOptions)

type issueOptions struct{ noSCT bool }

// WithoutSCT issues the certificate without an embedded SCT, as if the CA
// had never logged it to certificate transparency.
func WithoutSCT() IssueOption { return func(o *issueOptions) { o.noSCT = true } }

// Issue is Fulcio: a fresh key and a ten-minute code-signing certificate
// for subject (a URI when it has a scheme, else an email address) from
// OIDC issuer, with an SCT from the CT log embedded.
func (s *Sigstore) Issue(t testing.TB, subject, issuer string, opts ...IssueOption) *Identity {
	t.Helper()
	var o issueOptions
	for _, f := range opts {
		f(&o)
	}
	key := newKey(t)
	now := time.Now()
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(s.serial.Add(1)),
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)}, // issuer (v1)
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuerV2},       // issuer (v2)
		},
	}
	if strings.Contains(subject, "://") {
		u, err := url.Parse(subject)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{subject}
	}
	if !o.noSCT {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, s.sct(t, tmpl, key, now))
	}
	cert := newCert(t, tmpl, s.Intermediate, key.Public(), s.interKey)
	certPEM, err := cryptoutils.MarshalCertificateToPEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &Identity{Cert: cert, CertPEM: certPEM, Signer: sv, s: s}
}

// sct is the certificate extension holding the CT log's SCT for the
// certificate tmpl will become. The SCT signs the certificate as it is
// without the SCT list (RFC 6962 §3.2: the precertificate's TBS and the
// issuer's key hash).
func (s *Sigstore) sct(t testing.TB, tmpl *x509.Certificate, key *ecdsa.PrivateKey, now time.Time) pkix.Extension {
	t.Helper()
	pre := newCert(t, tmpl, s.Intermediate, key.Public(), s.interKey)
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: s.ctLogID}, Timestamp: uint64(now.UnixMilli())}
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{
				IssuerKeyHash:  sha256.Sum256(s.Intermediate.RawSubjectPublicKeyInfo),
				TBSCertificate: pre.RawTBSCertificate,
			},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sig,
	}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cttls.Marshal(*list)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}, Value: ext}
}

// LogEntry is Rekor: it records an entry of kind (hashedrekord, dsse;
// canonicalised as Rekor does) and returns it with a signed entry
// timestamp and an inclusion proof in a one-leaf tree under a signed
// checkpoint.
func (s *Sigstore) LogEntry(t testing.TB, kind string, props rekortypes.ArtifactProperties) *models.LogEntryAnon {
	t.Helper()
	ctx := context.Background()
	pe, err := rekortypes.NewProposedEntry(ctx, kind, "0.0.1", props)
	if err != nil {
		t.Fatal(err)
	}
	impl, err := rekortypes.CreateVersionedEntry(pe)
	if err != nil {
		t.Fatal(err)
	}
	body, err := rekortypes.CanonicalizeEntry(ctx, impl)
	if err != nil {
		t.Fatal(err)
	}
	integrated := time.Now().Unix()
	b64 := base64.StdEncoding.EncodeToString(body)
	set := s.signSET(t, cbundle.RekorPayload{Body: b64, IntegratedTime: integrated, LogIndex: 0, LogID: s.rekorLogID})
	leaf := sha256.Sum256(append([]byte{0}, body...))
	signer, err := signature.LoadECDSASignerVerifier(s.rekorKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := rekorutil.CreateAndSignCheckpoint(ctx, "rekor.test", 123, 1, leaf[:], signer)
	if err != nil {
		t.Fatal(err)
	}
	return &models.LogEntryAnon{
		Body: b64, IntegratedTime: conv.Pointer(integrated), LogID: conv.Pointer(s.rekorLogID), LogIndex: conv.Pointer(int64(0)),
		Verification: &models.LogEntryAnonVerification{
			SignedEntryTimestamp: set,
			InclusionProof: &models.InclusionProof{
				Checkpoint: conv.Pointer(string(cp)), Hashes: []string{}, LogIndex: conv.Pointer(int64(0)),
				RootHash: conv.Pointer(hex.EncodeToString(leaf[:])), TreeSize: conv.Pointer(int64(1)),
			},
		},
	}
}

// signSET signs a Rekor payload as Rekor does: its canonical JSON.
func (s *Sigstore) signSET(t testing.TB, p cbundle.RekorPayload) []byte {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := jsoncanonicalizer.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	sig, err := ecdsa.SignASN1(rand.Reader, s.rekorKey, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// SignOption changes a signature SignLegacy or SignBundle makes.
type SignOption func(*signOptions)

type signOptions struct {
	noTlog bool
	log    *Sigstore // nil: the issuing Sigstore
	remote []ociremote.Option
}

// WithoutTlog leaves the signature out of the Rekor log, as cosign sign
// --tlog-upload=false does: no SET, no inclusion proof.
func WithoutTlog() SignOption { return func(o *signOptions) { o.noTlog = true } }

// LoggedBy records the signature in other's Rekor log instead of the
// issuing Sigstore's: a certificate of a CA the verifier does not trust,
// with a tlog entry it does.
func LoggedBy(other *Sigstore) SignOption { return func(o *signOptions) { o.log = other } }

// WithRemote passes options (credentials, transport) to the registry
// writes.
func WithRemote(opts ...ociremote.Option) SignOption {
	return func(o *signOptions) { o.remote = append(o.remote, opts...) }
}

// SignLegacy signs image d (repo@sha256:…, in a registry the test can
// write to) the way cosign sign does without --new-bundle-format: a
// simple-signing payload naming d, signed by the identity's key, with the
// certificate, the CA chain and (unless WithoutTlog) the Rekor bundle in
// the annotations of a layer of d's sha256-<hex>.sig manifest.
func (id *Identity) SignLegacy(t testing.TB, d name.Digest, opts ...SignOption) {
	t.Helper()
	o := id.options(opts)
	pl, err := payload.Cosign{Image: d}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := id.Signer.SignMessage(bytes.NewReader(pl))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := cryptoutils.MarshalCertificatesToPEM(id.s.Chain())
	if err != nil {
		t.Fatal(err)
	}
	sopts := []static.Option{static.WithCertChain(id.CertPEM, chain)}
	if !o.noTlog {
		sum := sha256.Sum256(pl)
		e := o.log.LogEntry(t, hashedrekord.KIND, rekortypes.ArtifactProperties{
			ArtifactHash: hex.EncodeToString(sum[:]), SignatureBytes: raw,
			PublicKeyBytes: [][]byte{id.CertPEM}, PKIFormat: "x509",
		})
		sopts = append(sopts, static.WithBundle(cbundle.EntryToBundle(e)))
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw), sopts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(d, o.remote...), sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se, o.remote...); err != nil {
		t.Fatalf("writing the signature of %s: %v", d, err)
	}
}

// SignBundle signs image d the way cosign sign --new-bundle-format does:
// an in-toto statement of predicate type PredicateCosignSign about d in a
// DSSE envelope, logged in Rekor (unless WithoutTlog), in a sigstore
// bundle with the certificate, attached to d as an OCI 1.1 referrer (or
// the sha256-<hex> fallback tag on a registry without the referrers API).
func (id *Identity) SignBundle(t testing.TB, d name.Digest, opts ...SignOption) {
	t.Helper()
	o := id.options(opts)
	stmt, err := json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v1",
		"subject": []any{map[string]any{
			"name":   d.Context().Name(),
			"digest": map[string]string{"sha256": strings.TrimPrefix(d.DigestStr(), "sha256:")},
		}},
		"predicateType": PredicateCosignSign,
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := sigdsse.WrapSigner(id.Signer, "application/vnd.in-toto+json").SignMessage(bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	var entry *models.LogEntryAnon
	if !o.noTlog {
		entry = o.log.LogEntry(t, dsse.KIND, rekortypes.ArtifactProperties{
			ArtifactBytes: env, PublicKeyBytes: [][]byte{id.CertPEM}, PKIFormat: "x509",
		})
	}
	b, err := cbundle.MakeNewBundle(id.Cert.PublicKey, entry, stmt, env, id.CertPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestationNewBundleFormat(d, b, PredicateCosignSign, o.remote...); err != nil {
		t.Fatalf("writing the bundle of %s: %v", d, err)
	}
}

func (id *Identity) options(opts []SignOption) signOptions {
	o := signOptions{log: id.s}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
