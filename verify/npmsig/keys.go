package npmsig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

// Errors returned by ParseKeys and Keys.Verify, to be inspected with
// errors.Is.
var (
	// ErrBadKeys: a /-/npm/v1/keys document is malformed or too large.
	ErrBadKeys = errors.New("malformed npm registry keys")
	// ErrSignature: the version's registry signatures did not all verify,
	// or are missing from an upstream that signs. The Result says why.
	ErrSignature = errors.New("npm registry signature check failed")
)

// MaxKeysSize bounds a /-/npm/v1/keys document.
const MaxKeysSize = 1 << 20

// KeyType is the only key type (and scheme) npm uses and this package
// verifies.
const KeyType = "ecdsa-sha2-nistp256"

// Key is one registry signing key.
type Key struct {
	KeyID string
	// Expires is the zero time for a key that does not expire.
	Expires time.Time
	Public  *ecdsa.PublicKey
	// SPKI is the key as published: base64 of its DER SubjectPublicKeyInfo.
	SPKI string
}

// Keys is a set of registry signing keys by keyid. The zero value holds
// no keys.
type Keys struct {
	byID map[string]Key
	// Notes says what ParseKeys skipped (keys of other types).
	Notes []string
}

// Len is the number of usable keys.
func (k Keys) Len() int { return len(k.byID) }

// Lookup returns the key with that keyid.
func (k Keys) Lookup(keyid string) (Key, bool) {
	key, ok := k.byID[keyid]
	return key, ok
}

// IDs lists the keyids, sorted.
func (k Keys) IDs() []string {
	ids := make([]string, 0, len(k.byID))
	for id := range k.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Fingerprint is the keyid npm gives a P-256 key: its OpenSSH
// fingerprint, "SHA256:" and the unpadded base64 of the SHA-256 of the
// key's SSH wire form (string "ecdsa-sha2-nistp256", string "nistp256",
// string uncompressed point). ParseKeys does not require keyids to follow
// it (other registries may not).
func Fingerprint(pub *ecdsa.PublicKey) string {
	pt, err := pub.Bytes()
	if err != nil {
		return ""
	}
	var blob []byte
	for _, f := range [][]byte{[]byte(KeyType), []byte("nistp256"), pt} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(f)))
		blob = append(blob, f...)
	}
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

type keysDoc struct {
	Keys *[]struct {
		Expires *string `json:"expires"`
		KeyID   string  `json:"keyid"`
		KeyType string  `json:"keytype"`
		Scheme  string  `json:"scheme"`
		Key     string  `json:"key"`
	} `json:"keys"`
}

// ParseKeys parses the registry's /-/npm/v1/keys document. Documents over
// MaxKeysSize, that are not JSON, lack "keys", or hold a malformed
// ecdsa-sha2-nistp256 key (empty or duplicate keyid, key that is not a
// P-256 SPKI, unparseable expiry) are rejected with ErrBadKeys. Keys of
// another type or scheme are skipped and named in Notes. A document with
// no usable key parses to an empty set: the caller decides what an
// upstream without keys means.
func ParseKeys(data []byte) (Keys, error) {
	if len(data) > MaxKeysSize {
		return Keys{}, fmt.Errorf("%w: %d bytes, limit %d", ErrBadKeys, len(data), MaxKeysSize)
	}
	var doc keysDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return Keys{}, fmt.Errorf("%w: %w", ErrBadKeys, err)
	}
	if dec.More() {
		return Keys{}, fmt.Errorf("%w: trailing data after the document", ErrBadKeys)
	}
	if doc.Keys == nil {
		return Keys{}, fmt.Errorf("%w: no \"keys\" array", ErrBadKeys)
	}
	ks := Keys{byID: map[string]Key{}}
	for i, k := range *doc.Keys {
		if k.KeyType != KeyType || k.Scheme != KeyType {
			ks.Notes = append(ks.Notes, fmt.Sprintf("key %d (%q): keytype %q, scheme %q not supported, skipped", i, clip(k.KeyID), clip(k.KeyType), clip(k.Scheme)))
			continue
		}
		if k.KeyID == "" {
			return Keys{}, fmt.Errorf("%w: key %d has no keyid", ErrBadKeys, i)
		}
		if _, dup := ks.byID[k.KeyID]; dup {
			return Keys{}, fmt.Errorf("%w: keyid %q appears twice", ErrBadKeys, clip(k.KeyID))
		}
		der, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return Keys{}, fmt.Errorf("%w: key %q is not base64: %w", ErrBadKeys, clip(k.KeyID), err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return Keys{}, fmt.Errorf("%w: key %q: %w", ErrBadKeys, clip(k.KeyID), err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return Keys{}, fmt.Errorf("%w: key %q is not an ECDSA P-256 key", ErrBadKeys, clip(k.KeyID))
		}
		key := Key{KeyID: k.KeyID, Public: ec, SPKI: k.Key}
		if k.Expires != nil {
			t, err := time.Parse(time.RFC3339Nano, *k.Expires)
			if err != nil {
				return Keys{}, fmt.Errorf("%w: key %q: expires %q: %w", ErrBadKeys, clip(k.KeyID), clip(*k.Expires), err)
			}
			key.Expires = t
		}
		ks.byID[k.KeyID] = key
	}
	return ks, nil
}

// defaultKeysJSON is the public npm registry's /-/npm/v1/keys as published
// (https://registry.npmjs.org/-/npm/v1/keys). The key bytes were taken from
// stored public sources that quote the document and cross-checked: each
// keyid is the Fingerprint of its key (TestDefaultKeys), and each key
// verifies real registry signatures (TestRealSignatures).
const defaultKeysJSON = `{"keys":[` +
	`{"expires":"2025-01-29T00:00:00.000Z","keyid":"SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg=="},` +
	`{"expires":null,"keyid":"SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g=="}` +
	`]}`

// DefaultKeysJSON returns the embedded /-/npm/v1/keys document of the
// public npm registry, e.g. to serve or to write into a config file.
func DefaultKeysJSON() []byte { return []byte(defaultKeysJSON) }

// DefaultKeys returns the public npm registry's published signing keys,
// with their expiry.
func DefaultKeys() Keys {
	ks, err := ParseKeys([]byte(defaultKeysJSON))
	if err != nil {
		panic("npmsig: embedded keys: " + err.Error())
	}
	return ks
}

// Signature is one entry of dist.signatures.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// Options tune Keys.Verify.
type Options struct {
	// UpstreamSigns says that the upstream registry signs its versions (it
	// publishes keys), so a version without signatures is a finding.
	UpstreamSigns bool
}

// Reasons a signature did not count, as Finding evidence "reason".
const (
	ReasonUnknownKey    = "unknown-key"
	ReasonExpiredKey    = "expired-key"
	ReasonNoPublishTime = "no-publish-time"
	ReasonBadSignature  = "bad-signature"
	ReasonNoSignature   = "no-signature"
)

// CheckSignature is the verify.Finding Check of signature findings.
const CheckSignature = "npm-registry-signature"

// Result is the outcome of Keys.Verify.
type Result struct {
	// Verified lists the keyids whose signatures verified, in input order.
	Verified []string
	// Findings has one entry per signature that did not count, or one
	// no-signature finding.
	Findings []verify.Finding
}

// OK reports that at least one signature verified and none failed.
func (r Result) OK() bool { return len(r.Verified) > 0 && len(r.Findings) == 0 }

// Message is what npm signs for a version: "name@version:integrity".
func Message(name, version, integrity string) []byte {
	return []byte(name + "@" + version + ":" + integrity)
}

// Verify checks a version's dist.signatures. As npm's own client does,
// every signature must count: a signature counts only if its keyid is
// known, the key does not expire or expired after published (the
// version's publish time from the packument's "time", not the clock), and
// the ECDSA P-256/SHA-256 signature over Message(name, version, integrity)
// verifies. integrity is dist.integrity exactly as served, not
// re-encoded. With no signatures, the result is a no-signature finding if
// opt.UpstreamSigns and empty (and no error) otherwise. The error wraps
// ErrSignature exactly when Result has findings.
func (k Keys) Verify(name, version, integrity string, sigs []Signature, published time.Time, opt Options) (Result, error) {
	var r Result
	pkg := name + "@" + version
	if len(sigs) == 0 {
		if !opt.UpstreamSigns {
			return r, nil
		}
		r.Findings = append(r.Findings, verify.Finding{
			Check:    CheckSignature,
			Message:  fmt.Sprintf("%s has no registry signature but the upstream signs its packages", pkg),
			Evidence: map[string]string{"reason": ReasonNoSignature},
		})
		return r, fmt.Errorf("%w: %s", ErrSignature, r.Findings[0].Message)
	}
	digest := sha256.Sum256(Message(name, version, integrity))
	for _, s := range sigs {
		ev := map[string]string{"keyid": s.KeyID, "signature": clipN(s.Sig, 1024)}
		fail := func(reason, msg string) {
			ev["reason"] = reason
			r.Findings = append(r.Findings, verify.Finding{Check: CheckSignature, Message: msg, Evidence: ev})
		}
		key, ok := k.byID[s.KeyID]
		if !ok {
			fail(ReasonUnknownKey, fmt.Sprintf("%s is signed with unknown registry key %q", pkg, clip(s.KeyID)))
			continue
		}
		if !key.Expires.IsZero() {
			ev["expires"] = key.Expires.UTC().Format(time.RFC3339)
			if published.IsZero() {
				fail(ReasonNoPublishTime, fmt.Sprintf("%s: registry key %s expires but the version has no publish time", pkg, s.KeyID))
				continue
			}
			ev["published"] = published.UTC().Format(time.RFC3339)
			if !published.Before(key.Expires) {
				fail(ReasonExpiredKey, fmt.Sprintf("%s was published %s, after registry key %s expired %s", pkg, ev["published"], s.KeyID, ev["expires"]))
				continue
			}
		}
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Sig))
		if err != nil || !ecdsa.VerifyASN1(key.Public, digest[:], der) {
			ev["signed"] = clipN(string(Message(name, version, integrity)), 1024)
			fail(ReasonBadSignature, fmt.Sprintf("%s has an invalid registry signature with key %s", pkg, s.KeyID))
			continue
		}
		r.Verified = append(r.Verified, s.KeyID)
	}
	if len(r.Findings) > 0 {
		return r, fmt.Errorf("%w: %s", ErrSignature, r.Findings[0].Message)
	}
	return r, nil
}
