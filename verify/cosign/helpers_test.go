package cosign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify/cosign/cosigntest"
	"github.com/airlock-proxy/airlock/verify/intoto"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/rekor/pkg/generated/models"
	rekortypes "github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/rekor/pkg/types/dsse"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// --- registry ---------------------------------------------------------

type testRegistry struct {
	srv  *httptest.Server
	host string
	// fail, when set, answers a request instead of the registry.
	fail func(r *http.Request) int
}

func newRegistry(t *testing.T, referrers bool) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	reg := registry.New(registry.WithReferrersSupport(referrers), registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tr.fail != nil {
			if code := tr.fail(r); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	u, _ := url.Parse(tr.srv.URL)
	tr.host = u.Host
	return tr
}

func (tr *testRegistry) push(t *testing.T, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(tr.host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Digest(h.String())
}

func (tr *testRegistry) pushIndex(t *testing.T, repo string) name.Digest {
	t.Helper()
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(tr.host + "/" + repo + ":index")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Digest(h.String())
}

// --- keys --------------------------------------------------------------

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type testKey struct {
	priv *ecdsa.PrivateKey
	sv   signature.SignerVerifier
	pem  []byte
	fp   string
}

func newKey(t *testing.T) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	fp, err := KeyFingerprint(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, sv: sv, pem: pemKey, fp: fp}
}

// --- keyless: a sigstore of our own (cosigntest) -------------------------

// keylessSigner signs with a certificate fs issued.
func keylessSigner(fs *cosigntest.Sigstore, id *cosigntest.Identity) signer {
	return signer{sv: id.Signer, cert: id.Cert, fs: fs}
}

// writeRoot writes fs's trusted_root.json into a temporary directory.
func writeRoot(t *testing.T, fs *cosigntest.Sigstore) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := fs.WriteTrustedRoot(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// --- signing the way cosign does ---------------------------------------

type signer struct {
	sv   signature.SignerVerifier
	cert *x509.Certificate    // keyless; nil for a key
	fs   *cosigntest.Sigstore // the CA of cert; its Rekor records the signature unless noTlog
	// noTlog: cosign sign --tlog-upload=false
	noTlog bool
}

func (s signer) tlog() bool { return s.fs != nil && !s.noTlog }

func (s signer) pem(t *testing.T) []byte {
	t.Helper()
	if s.cert != nil {
		b, err := cryptoutils.MarshalCertificateToPEM(s.cert)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pub, _ := s.sv.PublicKey()
	b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeOpts() ociremote.Option { return ociremote.WithRemoteOptions() }

// signLegacy attaches a simple-signing signature for claim (normally d
// itself) at d's .sig tag, as cosign sign does (without
// --new-bundle-format).
func signLegacy(t *testing.T, d, claim name.Digest, s signer) {
	t.Helper()
	pl, err := payload.Cosign{Image: claim}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	signLegacyRaw(t, d, s, pl)
}

// signLegacyRaw signs the simple-signing payload pl and attaches it to d.
func signLegacyRaw(t *testing.T, d name.Digest, s signer, pl []byte) {
	t.Helper()
	raw, err := s.sv.SignMessage(bytes.NewReader(pl))
	if err != nil {
		t.Fatal(err)
	}
	var opts []static.Option
	if s.cert != nil {
		chain, err := cryptoutils.MarshalCertificatesToPEM(s.fs.Chain())
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, static.WithCertChain(s.pem(t), chain))
	}
	if s.tlog() {
		sum := sha256.Sum256(pl)
		e := s.fs.LogEntry(t, hashedrekord.KIND, rekortypes.ArtifactProperties{
			ArtifactHash: hex.EncodeToString(sum[:]), SignatureBytes: raw,
			PublicKeyBytes: [][]byte{s.pem(t)}, PKIFormat: "x509",
		})
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(e)))
	}
	sig, err := static.NewSignature(pl, base64.StdEncoding.EncodeToString(raw), opts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(d, writeOpts()), sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se, writeOpts()); err != nil {
		t.Fatal(err)
	}
}

// statementFor is an in-toto v1 statement about subject.
func statementFor(t *testing.T, subject name.Digest, predicateType string, predicate any) []byte {
	t.Helper()
	h := strings.TrimPrefix(subject.DigestStr(), "sha256:")
	st := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": subject.Context().Name(), "digest": map[string]string{"sha256": h}}},
		"predicateType": predicateType,
	}
	if predicate != nil {
		st["predicate"] = predicate
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dsseSign(t *testing.T, s signer, stmt []byte) []byte {
	t.Helper()
	env, err := sigdsse.WrapSigner(s.sv, intoto.PayloadType).SignMessage(bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// attestLegacy attaches a DSSE attestation at d's .att tag, as cosign
// attest does (without --new-bundle-format).
func attestLegacy(t *testing.T, d name.Digest, s signer, predicateType string, stmt []byte) {
	t.Helper()
	env := dsseSign(t, s, stmt)
	opts := []static.Option{
		static.WithLayerMediaType("application/vnd.dsse.envelope.v1+json"),
		static.WithAnnotations(map[string]string{"predicateType": predicateType}),
	}
	if s.cert != nil {
		chain, _ := cryptoutils.MarshalCertificatesToPEM(s.fs.Chain())
		opts = append(opts, static.WithCertChain(s.pem(t), chain))
	}
	if s.tlog() {
		e := s.fs.LogEntry(t, dsse.KIND, rekortypes.ArtifactProperties{
			ArtifactBytes: env, PublicKeyBytes: [][]byte{s.pem(t)}, PKIFormat: "x509",
		})
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(e)))
	}
	att, err := static.NewAttestation(env, opts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := mutate.AttachAttestationToEntity(ociremote.SignedUnknown(d, writeOpts()), att)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestations(d.Repository, se, writeOpts()); err != nil {
		t.Fatal(err)
	}
}

// attachBundle signs stmt into a sigstore bundle (with a Rekor entry when
// s.fs is set) and attaches it to d as cosign --new-bundle-format does: a
// referrer, or the fallback tag on a registry without the referrers API.
func attachBundle(t *testing.T, d name.Digest, s signer, stmt []byte) {
	t.Helper()
	env := dsseSign(t, s, stmt)
	var entry *models.LogEntryAnon
	if s.tlog() {
		entry = s.fs.LogEntry(t, dsse.KIND, rekortypes.ArtifactProperties{
			ArtifactBytes: env, PublicKeyBytes: [][]byte{s.pem(t)}, PKIFormat: "x509",
		})
	}
	pub, _ := s.sv.PublicKey()
	b, err := cbundle.MakeNewBundle(pub, entry, stmt, env, s.pem(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	_ = json.Unmarshal(stmt, &st)
	if err := ociremote.WriteAttestationNewBundleFormat(d, b, st.PredicateType, writeOpts()); err != nil {
		t.Fatal(err)
	}
}

func slsaV1(builder, repo string) map[string]any {
	return map[string]any{
		"buildDefinition": map[string]any{
			"buildType":          "https://actions.github.io/buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{"ref": "refs/heads/main", "repository": repo, "path": ".github/workflows/release.yml"}},
			"resolvedDependencies": []any{map[string]any{"uri": "git+" + repo + "@refs/heads/main",
				"digest": map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}},
		},
		"runDetails": map[string]any{"builder": map[string]any{"id": builder}},
	}
}

func slsaV02(builder, repo string) map[string]any {
	return map[string]any{
		"builder":    map[string]any{"id": builder},
		"buildType":  "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
		"invocation": map[string]any{"configSource": map[string]any{"uri": "git+" + repo + "@refs/heads/main", "entryPoint": ".github/workflows/release.yml"}},
	}
}

// copyTag copies from's .<suffix> manifest to to's, as a mirror or an
// attacker could.
func copyTag(t *testing.T, from, to name.Digest, suffix string) {
	t.Helper()
	tag := func(d name.Digest) name.Tag {
		return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + "." + suffix)
	}
	desc, err := remote.Get(tag(from))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag(to), desc); err != nil {
		t.Fatal(err)
	}
}
