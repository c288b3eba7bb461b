package cosign

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-proxy/airlock/verify/cosign/cosigntest"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

func TestNewPolicyErrors(t *testing.T) {
	fs := cosigntest.New(t)
	k := newKey(t)
	noCT, err := root.NewTrustedRoot(root.TrustedRootMediaType01, fs.TrustedRoot().FulcioCertificateAuthorities(), nil, nil, fs.TrustedRoot().RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Subject: ghSubject, Issuer: ghIssuer}
	tests := []struct {
		name    string
		cfg     PolicyConfig
		trusted root.TrustedMaterial
		want    string // substring of the error; "" for success
	}{
		{"key, tlog ignored, no root", PolicyConfig{Keys: [][]byte{k.pem}, IgnoreTlog: true}, nil, ""},
		{"key with tlog and root", PolicyConfig{Keys: [][]byte{k.pem}}, fs.TrustedRoot(), ""},
		{"identity with root", PolicyConfig{Identities: []Identity{id}}, fs.TrustedRoot(), ""},
		{"nothing to trust", PolicyConfig{IgnoreTlog: true}, nil, "neither keys nor identities"},
		{"not a key", PolicyConfig{Keys: [][]byte{[]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}, IgnoreTlog: true}, nil, "key 0"},
		{"garbage key", PolicyConfig{Keys: [][]byte{[]byte("ssh-ed25519 AAAA")}, IgnoreTlog: true}, nil, "key 0"},
		{"key needs tlog root", PolicyConfig{Keys: [][]byte{k.pem}}, nil, "ignore_tlog"},
		{"identity needs root", PolicyConfig{Identities: []Identity{id}}, nil, "trusted root"},
		{"identity needs CT log", PolicyConfig{Identities: []Identity{id}}, noCT, "CT log"},
		{"identity without issuer", PolicyConfig{Identities: []Identity{{Subject: ghSubject}}}, fs.TrustedRoot(), "issuer"},
		{"identity without subject", PolicyConfig{Identities: []Identity{{Issuer: ghIssuer}}}, fs.TrustedRoot(), "subject"},
		{"identity with subject and regexp", PolicyConfig{Identities: []Identity{{Subject: ghSubject, SubjectRegexp: ".*", Issuer: ghIssuer}}}, fs.TrustedRoot(), "exactly one of subject"},
		{"bad regexp", PolicyConfig{Identities: []Identity{{SubjectRegexp: "(", Issuer: ghIssuer}}}, fs.TrustedRoot(), "subject regexp"},
		{"attestation without type", PolicyConfig{Keys: [][]byte{k.pem}, IgnoreTlog: true, Attestations: []Attestation{{BuilderID: "x"}}}, nil, "predicate type"},
		{"builder on non-SLSA", PolicyConfig{Keys: [][]byte{k.pem}, IgnoreTlog: true, Attestations: []Attestation{{PredicateType: "https://spdx.dev/Document", BuilderID: "x"}}}, nil, "SLSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPolicy(tt.cfg, tt.trusted)
			if tt.want == "" {
				if err != nil || p == nil || p.ID() == "" {
					t.Fatalf("NewPolicy = %v, %v", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewPolicy error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestPolicyID(t *testing.T) {
	fs, fs2 := cosigntest.New(t), cosigntest.New(t)
	k1, k2 := newKey(t), newKey(t)
	id := func(c PolicyConfig, tm root.TrustedMaterial) string {
		t.Helper()
		p, err := NewPolicy(c, tm)
		if err != nil {
			t.Fatal(err)
		}
		return p.ID()
	}
	base := PolicyConfig{Keys: [][]byte{k1.pem}, Identities: []Identity{{Subject: ghSubject, Issuer: ghIssuer}}}
	with := func(f func(c *PolicyConfig)) PolicyConfig {
		c := base
		c.Keys = append([][]byte(nil), base.Keys...)
		c.Identities = append([]Identity(nil), base.Identities...)
		f(&c)
		return c
	}
	ref := id(base, fs.TrustedRoot())

	// The same outcome, the same ID.
	same := map[string]string{
		"again":                 id(base, fs.TrustedRoot()),
		"keys reordered":        id(with(func(c *PolicyConfig) { c.Keys = [][]byte{k2.pem, k1.pem} }), fs.TrustedRoot()),
		"duplicate key":         id(with(func(c *PolicyConfig) { c.Keys = append(c.Keys, k1.pem) }), fs.TrustedRoot()),
		"root loaded from JSON": id(base, mustLoad(t, writeRoot(t, fs))),
	}
	if same["keys reordered"] != id(with(func(c *PolicyConfig) { c.Keys = [][]byte{k1.pem, k2.pem} }), fs.TrustedRoot()) {
		t.Error("ID depends on the order of keys")
	}
	delete(same, "keys reordered")
	for name, got := range same {
		if got != ref {
			t.Errorf("%s: ID %s, want %s", name, got, ref)
		}
	}

	// Anything that changes the outcome changes the ID.
	different := map[string]string{
		"key added":        id(with(func(c *PolicyConfig) { c.Keys = append(c.Keys, k2.pem) }), fs.TrustedRoot()),
		"key replaced":     id(with(func(c *PolicyConfig) { c.Keys = [][]byte{k2.pem} }), fs.TrustedRoot()),
		"identity changed": id(with(func(c *PolicyConfig) { c.Identities[0].Subject += "x" }), fs.TrustedRoot()),
		"identity regexp":  id(with(func(c *PolicyConfig) { c.Identities[0] = Identity{SubjectRegexp: ghSubject, Issuer: ghIssuer} }), fs.TrustedRoot()),
		"identity added":   id(with(func(c *PolicyConfig) { c.Identities = append(c.Identities, Identity{Subject: "a@b", Issuer: ghIssuer}) }), fs.TrustedRoot()),
		"tlog ignored":     id(with(func(c *PolicyConfig) { c.IgnoreTlog = true }), fs.TrustedRoot()),
		"attestation":      id(with(func(c *PolicyConfig) { c.Attestations = []Attestation{{PredicateType: PredicateSLSAv1}} }), fs.TrustedRoot()),
		"attestation rule": id(with(func(c *PolicyConfig) {
			c.Attestations = []Attestation{{PredicateType: PredicateSLSAv1, BuilderID: "b"}}
		}), fs.TrustedRoot()),
		"other trusted root": id(base, fs2.TrustedRoot()),
	}
	seen := map[string]string{ref: "base"}
	for name, got := range different {
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: ID %s equals that of %s", name, got, prev)
		}
		seen[got] = name
	}
}

func mustLoad(t *testing.T, path string) root.TrustedMaterial {
	t.Helper()
	tm, err := LoadTrustedRoot(path)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestLoadTrustedRoot(t *testing.T) {
	fs := cosigntest.New(t)
	tm := mustLoad(t, writeRoot(t, fs))
	if len(tm.RekorLogs()) != 1 || len(tm.CTLogs()) != 1 || len(tm.FulcioCertificateAuthorities()) != 1 {
		t.Fatalf("loaded root: %d rekor, %d ct, %d CAs", len(tm.RekorLogs()), len(tm.CTLogs()), len(tm.FulcioCertificateAuthorities()))
	}
	// A root loaded from disk verifies what the in-memory one does.
	e := &env{reg: newRegistry(t, true), key: newKey(t), fs: fs}
	e.d = e.reg.push(t, "acme/app")
	signLegacy(t, e.d, e.d, e.keyless(t, ghSubject))
	p, err := NewPolicy(PolicyConfig{Identities: []Identity{{Subject: ghSubject, Issuer: ghIssuer}}}, tm)
	if err != nil {
		t.Fatal(err)
	}
	res, err := New(Options{}).Verify(context.Background(), e.d, p)
	if err != nil || !res.Verified {
		t.Fatalf("Verify = %+v, %v", res, err)
	}

	for name, content := range map[string]string{"missing": "", "not json": "{", "not a root": `{"mediaType":"x"}`} {
		path := filepath.Join(t.TempDir(), "root.json")
		if content != "" {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := LoadTrustedRoot(path); err == nil {
			t.Errorf("%s: LoadTrustedRoot succeeded", name)
		}
	}
}

// Each key type cosign generates or imports signs and verifies.
func TestKeyTypes(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, priv := range map[string]crypto.Signer{"ecdsa": mustKey(t), "ed25519": edPriv, "rsa": rsaPriv} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sv, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			pemKey, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			reg := newRegistry(t, true)
			d := reg.push(t, "acme/app")
			signLegacy(t, d, d, signer{sv: sv})
			p, err := NewPolicy(PolicyConfig{Keys: [][]byte{pemKey}, IgnoreTlog: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := New(Options{}).Verify(context.Background(), d, p)
			if err != nil || !res.Verified {
				t.Fatalf("Verify = %+v, %v", res, err)
			}
			fp, _ := KeyFingerprint(pemKey)
			if res.Signatures[0].Key != fp || !strings.HasPrefix(fp, "sha256:") || len(fp) != len("sha256:")+16 {
				t.Errorf("key = %q, fingerprint %q", res.Signatures[0].Key, fp)
			}
		})
	}
}

// One Verifier and one Policy serve concurrent requests (run with -race).
func TestConcurrentVerify(t *testing.T) {
	reg := newRegistry(t, true)
	k := newKey(t)
	d := reg.push(t, "acme/app")
	signLegacy(t, d, d, signer{sv: k.sv})
	attachBundle(t, d, signer{sv: k.sv}, statementFor(t, d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
	p, err := NewPolicy(PolicyConfig{Keys: [][]byte{k.pem}, IgnoreTlog: true,
		Attestations: []Attestation{{PredicateType: PredicateSLSAv1, SourceRepository: repoURL}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := New(Options{})
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 16 {
		wg.Go(func() {
			res, err := v.Verify(context.Background(), d, p)
			if err != nil || !res.Verified {
				errs <- fmt.Sprintf("Verify = %+v, %v", res, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
