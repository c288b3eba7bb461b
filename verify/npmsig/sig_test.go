package npmsig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testKey struct {
	id   string
	priv *ecdsa.PrivateKey
	spki string
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{id: Fingerprint(&priv.PublicKey), priv: priv, spki: base64.StdEncoding.EncodeToString(der)}
}

// sign signs as the npm registry does: ECDSA P-256 over the SHA-256 of
// "name@version:integrity", DER, base64.
func (k testKey) sign(t testing.TB, name, version, integrity string) Signature {
	t.Helper()
	sum := sha256.Sum256([]byte(name + "@" + version + ":" + integrity))
	der, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return Signature{KeyID: k.id, Sig: base64.StdEncoding.EncodeToString(der)}
}

func keysJSON(t testing.TB, entries ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func entry(k testKey, expires any) map[string]any {
	return map[string]any{"expires": expires, "keyid": k.id, "keytype": KeyType, "scheme": KeyType, "key": k.spki}
}

func TestVerify(t *testing.T) {
	current, old, stranger := newTestKey(t), newTestKey(t), newTestKey(t)
	keys, err := ParseKeys(keysJSON(t, entry(current, nil), entry(old, "2025-01-29T00:00:00.000Z")))
	if err != nil {
		t.Fatal(err)
	}
	const name, version = "@acme/widget", "1.2.3"
	integ := "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64))
	before := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	after := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	good := current.sign(t, name, version, integ)
	oldSig := old.sign(t, name, version, integ)

	tests := []struct {
		name      string
		version   string
		integrity string
		sigs      []Signature
		published time.Time
		opt       Options
		verified  []string
		reasons   []string
	}{
		{name: "verified", sigs: []Signature{good}, published: after, verified: []string{current.id}},
		{name: "verified without publish time, key does not expire", sigs: []Signature{good}, verified: []string{current.id}},
		{name: "old key before expiry", sigs: []Signature{oldSig}, published: before, verified: []string{old.id}},
		{name: "old key after expiry", sigs: []Signature{oldSig}, published: after, reasons: []string{ReasonExpiredKey}},
		{name: "old key at expiry instant", sigs: []Signature{oldSig}, published: time.Date(2025, 1, 29, 0, 0, 0, 0, time.UTC), reasons: []string{ReasonExpiredKey}},
		{name: "old key without publish time", sigs: []Signature{oldSig}, reasons: []string{ReasonNoPublishTime}},
		{name: "both keys", sigs: []Signature{oldSig, good}, published: before, verified: []string{old.id, current.id}},
		{name: "unknown keyid", sigs: []Signature{stranger.sign(t, name, version, integ)}, published: before, reasons: []string{ReasonUnknownKey}},
		{name: "known keyid, other key's signature", sigs: []Signature{{KeyID: current.id, Sig: stranger.sign(t, name, version, integ).Sig}}, published: before, reasons: []string{ReasonBadSignature}},
		{name: "tampered integrity", integrity: "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 63)) + "AQ==", sigs: []Signature{good}, published: before, reasons: []string{ReasonBadSignature}},
		{name: "tampered version", version: "1.2.4", sigs: []Signature{good}, published: before, reasons: []string{ReasonBadSignature}},
		{name: "malformed sig base64", sigs: []Signature{{KeyID: current.id, Sig: "not base64!"}}, published: before, reasons: []string{ReasonBadSignature}},
		{name: "malformed sig DER", sigs: []Signature{{KeyID: current.id, Sig: base64.StdEncoding.EncodeToString([]byte("junk"))}}, published: before, reasons: []string{ReasonBadSignature}},
		{name: "good and bad: all must count", sigs: []Signature{good, {KeyID: stranger.id, Sig: good.Sig}}, published: before, verified: []string{current.id}, reasons: []string{ReasonUnknownKey}},
		{name: "no signature, upstream does not sign", published: before},
		{name: "no signature, upstream signs", published: before, opt: Options{UpstreamSigns: true}, reasons: []string{ReasonNoSignature}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, in := version, integ
			if tt.version != "" {
				v = tt.version
			}
			if tt.integrity != "" {
				in = tt.integrity
			}
			r, err := keys.Verify(name, v, in, tt.sigs, tt.published, tt.opt)
			if !reflect.DeepEqual(r.Verified, tt.verified) {
				t.Errorf("Verified = %v, want %v", r.Verified, tt.verified)
			}
			var reasons []string
			for _, f := range r.Findings {
				if f.Check != CheckSignature || f.Message == "" {
					t.Errorf("finding %+v", f)
				}
				if f.Evidence["reason"] != ReasonNoSignature && f.Evidence["keyid"] == "" {
					t.Errorf("finding without keyid: %+v", f)
				}
				reasons = append(reasons, f.Evidence["reason"])
			}
			if !reflect.DeepEqual(reasons, tt.reasons) {
				t.Errorf("reasons = %v, want %v", reasons, tt.reasons)
			}
			if (err != nil) != (len(tt.reasons) > 0) || (err != nil && !errors.Is(err, ErrSignature)) {
				t.Errorf("err = %v", err)
			}
			if r.OK() != (len(tt.verified) > 0 && len(tt.reasons) == 0) {
				t.Errorf("OK = %v", r.OK())
			}
		})
	}
}

func TestVerifyExpiredEvidence(t *testing.T) {
	old := newTestKey(t)
	keys, err := ParseKeys(keysJSON(t, entry(old, "2025-01-29T00:00:00.000Z")))
	if err != nil {
		t.Fatal(err)
	}
	pub := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	r, _ := keys.Verify("a", "1.0.0", "sha512-x", []Signature{old.sign(t, "a", "1.0.0", "sha512-x")}, pub, Options{})
	if len(r.Findings) != 1 {
		t.Fatalf("findings %+v", r.Findings)
	}
	ev := r.Findings[0].Evidence
	if ev["expires"] != "2025-01-29T00:00:00Z" || ev["published"] != "2025-02-01T00:00:00Z" || ev["keyid"] != old.id {
		t.Errorf("evidence %v", ev)
	}
}

func TestParseKeys(t *testing.T) {
	k := newTestKey(t)
	rsaLike := base64.StdEncoding.EncodeToString([]byte("not a key"))
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384der, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	with := func(field string, v any) map[string]any {
		e := entry(k, nil)
		e[field] = v
		return e
	}
	tests := []struct {
		name  string
		data  []byte
		ids   []string
		notes int
		err   bool
	}{
		{name: "one key", data: keysJSON(t, entry(k, nil)), ids: []string{k.id}},
		{name: "with expiry", data: keysJSON(t, entry(k, "2025-01-29T00:00:00.000Z")), ids: []string{k.id}},
		{name: "empty list", data: []byte(`{"keys":[]}`), ids: []string{}},
		{name: "unknown keytype skipped", data: keysJSON(t, with("keytype", "ssh-ed25519"), entry(newTestKey(t), nil)), ids: nil, notes: 1},
		{name: "unknown scheme skipped", data: keysJSON(t, with("scheme", "other")), ids: []string{}, notes: 1},
		{name: "unknown fields ignored", data: []byte(`{"keys":[],"extra":1}`), ids: []string{}},
		{name: "not JSON", data: []byte(`keys`), err: true},
		{name: "trailing data", data: []byte(`{"keys":[]} {}`), err: true},
		{name: "no keys field", data: []byte(`{}`), err: true},
		{name: "keys null", data: []byte(`{"keys":null}`), err: true},
		{name: "keys not array", data: []byte(`{"keys":{}}`), err: true},
		{name: "empty keyid", data: keysJSON(t, with("keyid", "")), err: true},
		{name: "duplicate keyid", data: keysJSON(t, entry(k, nil), entry(k, nil)), err: true},
		{name: "key not base64", data: keysJSON(t, with("key", "%%%")), err: true},
		{name: "key not SPKI", data: keysJSON(t, with("key", rsaLike)), err: true},
		{name: "key on P-384", data: keysJSON(t, with("key", base64.StdEncoding.EncodeToString(p384der))), err: true},
		{name: "bad expiry", data: keysJSON(t, with("expires", "tomorrow")), err: true},
		{name: "expiry not string", data: keysJSON(t, with("expires", 5)), err: true},
		{name: "too large", data: append([]byte(`{"keys":[]}`), make([]byte, MaxKeysSize)...), err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := ParseKeys(tt.data)
			if tt.err {
				if !errors.Is(err, ErrBadKeys) {
					t.Fatalf("err = %v, want ErrBadKeys", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.ids != nil && !reflect.DeepEqual(ks.IDs(), tt.ids) {
				t.Errorf("IDs = %v, want %v", ks.IDs(), tt.ids)
			}
			if len(ks.Notes) != tt.notes {
				t.Errorf("Notes = %v, want %d", ks.Notes, tt.notes)
			}
		})
	}
}

func TestParseKeysExpiry(t *testing.T) {
	k := newTestKey(t)
	ks, err := ParseKeys(keysJSON(t, entry(k, "2025-01-29T00:00:00.000Z")))
	if err != nil {
		t.Fatal(err)
	}
	key, ok := ks.Lookup(k.id)
	if !ok || !key.Expires.Equal(time.Date(2025, 1, 29, 0, 0, 0, 0, time.UTC)) || key.SPKI != k.spki {
		t.Errorf("key = %+v", key)
	}
}

func TestDefaultKeys(t *testing.T) {
	ks := DefaultKeys()
	want := map[string]string{
		"SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA": "2025-01-29T00:00:00Z",
		"SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U": "",
	}
	if ks.Len() != len(want) || len(ks.Notes) != 0 {
		t.Fatalf("keys %v notes %v", ks.IDs(), ks.Notes)
	}
	for id, exp := range want {
		k, ok := ks.Lookup(id)
		if !ok {
			t.Fatalf("missing %s", id)
		}
		got := ""
		if !k.Expires.IsZero() {
			got = k.Expires.UTC().Format(time.RFC3339)
		}
		if got != exp {
			t.Errorf("%s expires %q, want %q", id, got, exp)
		}
		if fp := Fingerprint(k.Public); fp != id {
			t.Errorf("fingerprint of %s is %s", id, fp)
		}
	}
	if !strings.Contains(string(DefaultKeysJSON()), `"keys"`) {
		t.Error("DefaultKeysJSON")
	}
}
