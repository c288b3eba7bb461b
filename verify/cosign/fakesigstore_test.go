package cosign

// A sigstore of our own for keyless tests: a Fulcio CA that embeds real
// SCTs, a CT log and a Rekor log that sign what they are given (SETs,
// checkpoints), and the trusted root that lists them.

import (
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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/go-openapi/swag/conv"
	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/rekor/pkg/generated/models"
	rekortypes "github.com/sigstore/rekor/pkg/types"
	rekorutil "github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
)

// --- a sigstore of our own: Fulcio CA, CT log, Rekor log -----------------

type fakeSigstore struct {
	rootCert, interCert *x509.Certificate
	interKey            *ecdsa.PrivateKey
	ctKey, rekorKey     *ecdsa.PrivateKey
	ctLogID             [32]byte
	rekorLogID          string // hex
	trusted             *root.TrustedRoot
	rootJSON            []byte
}

func newFakeSigstore(t *testing.T) *fakeSigstore {
	t.Helper()
	now := time.Now()
	f := &fakeSigstore{}
	var err error
	rootKey := mustKey(t)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fulcio root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	f.rootCert = mustCert(t, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	f.interKey = mustKey(t)
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test fulcio intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	f.interCert = mustCert(t, interTmpl, f.rootCert, &f.interKey.PublicKey, rootKey)

	f.ctKey, f.rekorKey = mustKey(t), mustKey(t)
	ctDER, _ := x509.MarshalPKIXPublicKey(f.ctKey.Public())
	f.ctLogID = sha256.Sum256(ctDER)
	rekorDER, _ := x509.MarshalPKIXPublicKey(f.rekorKey.Public())
	rekorID := sha256.Sum256(rekorDER)
	f.rekorLogID = hex.EncodeToString(rekorID[:])

	tlog := func(id []byte, pub crypto.PublicKey, base string) *root.TransparencyLog {
		return &root.TransparencyLog{BaseURL: base, ID: id, ValidityPeriodStart: now.Add(-time.Hour),
			HashFunc: crypto.SHA256, PublicKey: pub, SignatureHashFunc: crypto.SHA256}
	}
	f.trusted, err = root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: f.rootCert, Intermediates: []*x509.Certificate{f.interCert},
			ValidityPeriodStart: now.Add(-time.Hour), URI: "https://fulcio.test",
		}},
		map[string]*root.TransparencyLog{hex.EncodeToString(f.ctLogID[:]): tlog(f.ctLogID[:], f.ctKey.Public(), "https://ctfe.test")},
		nil,
		map[string]*root.TransparencyLog{f.rekorLogID: tlog(rekorID[:], f.rekorKey.Public(), "https://rekor.test")},
	)
	if err != nil {
		t.Fatal(err)
	}
	f.rootJSON, err = f.trusted.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeSigstore) writeRoot(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, f.rootJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
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

// issue is Fulcio: a short-lived code-signing certificate for subject
// (an email, or a URI when it has a scheme) from issuer, with an SCT from
// the CT log embedded unless noSCT.
func (f *fakeSigstore) issue(t *testing.T, subject, issuer string, noSCT bool) (*x509.Certificate, signature.SignerVerifier) {
	t.Helper()
	key := mustKey(t)
	now := time.Now()
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuerV2},
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
	if !noSCT {
		// The SCT signs the certificate as it is without the SCT list
		// (RFC 6962 §3.2: the precertificate's TBS, issuer key hash).
		pre := mustCert(t, tmpl, f.interCert, key.Public(), f.interKey)
		sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: f.ctLogID}, Timestamp: uint64(now.UnixMilli())}
		input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
			Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
			TimestampedEntry: &ct.TimestampedEntry{
				Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType,
				PrecertEntry: &ct.PreCert{
					IssuerKeyHash:  sha256.Sum256(f.interCert.RawSubjectPublicKeyInfo),
					TBSCertificate: pre.RawTBSCertificate,
				},
			},
		}})
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(input)
		sig, err := ecdsa.SignASN1(rand.Reader, f.ctKey, digest[:])
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
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}, Value: ext})
	}
	cert := mustCert(t, tmpl, f.interCert, key.Public(), f.interKey)
	sv, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return cert, sv
}

// logEntry is Rekor: it records an entry (canonicalised as Rekor does) and
// returns it with a signed entry timestamp and an inclusion proof in a
// one-leaf tree with a signed checkpoint.
func (f *fakeSigstore) logEntry(t *testing.T, kind string, props rekortypes.ArtifactProperties) *models.LogEntryAnon {
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
	set := f.signSET(t, cbundle.RekorPayload{Body: b64, IntegratedTime: integrated, LogIndex: 0, LogID: f.rekorLogID})
	leaf := sha256.Sum256(append([]byte{0}, body...))
	signer, err := signature.LoadECDSASignerVerifier(f.rekorKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := rekorutil.CreateAndSignCheckpoint(ctx, "rekor.test", 123, 1, leaf[:], signer)
	if err != nil {
		t.Fatal(err)
	}
	return &models.LogEntryAnon{
		Body: b64, IntegratedTime: conv.Pointer(integrated), LogID: conv.Pointer(f.rekorLogID), LogIndex: conv.Pointer(int64(0)),
		Verification: &models.LogEntryAnonVerification{
			SignedEntryTimestamp: set,
			InclusionProof: &models.InclusionProof{
				Checkpoint: conv.Pointer(string(cp)), Hashes: []string{}, LogIndex: conv.Pointer(int64(0)),
				RootHash: conv.Pointer(hex.EncodeToString(leaf[:])), TreeSize: conv.Pointer(int64(1)),
			},
		},
	}
}

func (f *fakeSigstore) signSET(t *testing.T, p cbundle.RekorPayload) []byte {
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
	sig, err := ecdsa.SignASN1(rand.Reader, f.rekorKey, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
