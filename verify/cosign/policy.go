// Package cosign decides whether an OCI image or index digest is signed
// according to a policy: cosign signatures in the legacy tag layout
// (sha256-<hex>.sig), sigstore bundles attached as OCI 1.1 referrers or in
// the referrers fallback tag (sha256-<hex>), and in-toto attestations that
// a policy may require alongside the signature.
//
// Verification is offline: keys are configured, keyless signatures are
// checked against a sigstore trusted_root.json that is read from disk (no
// TUF, no Rekor or Fulcio calls). Only the registry holding the image is
// contacted, through the go-containerregistry options the caller passes.
package cosign

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Identity is a keyless signer: the subject (SAN) of its Fulcio
// certificate and the OIDC issuer that vouched for it. Exactly one of
// Subject and SubjectRegexp, and exactly one of Issuer and IssuerRegexp,
// must be set. Regular expressions are anchored: they must match the whole
// value (cosign's own flags match anywhere in it, which lets
// "https://github.com/acme/" accept "https://evil.example/?https://github.com/acme/").
type Identity struct{ Subject, SubjectRegexp, Issuer, IssuerRegexp string }

// Attestation is an in-toto attestation that must be attached to the image
// and signed by one of the policy's keys or identities. BuilderID and
// SourceRepository apply to SLSA provenance (v0.2 and v1) only; see
// checkProvenance for how they are matched.
type Attestation struct{ PredicateType, BuilderID, SourceRepository string }

// PolicyConfig is a signature policy as configured.
type PolicyConfig struct {
	// Keys are PEM-encoded public keys (ECDSA, RSA, ed25519).
	Keys [][]byte
	// Identities are keyless signers; they need a trusted root.
	Identities []Identity
	// IgnoreTlog accepts key signatures that have no transparency-log
	// entry (cosign sign --tlog-upload=false). Keyless signatures always
	// need one.
	IgnoreTlog bool
	// Attestations must also be present, signed by the same keys or
	// identities.
	Attestations []Attestation
}

// Policy is a compiled PolicyConfig. It is immutable and safe for
// concurrent use.
type Policy struct {
	keys         []keyRoot
	identities   []identityRoot
	ignoreTlog   bool
	attestations []Attestation
	// trusted is the configured trusted root, nil when none.
	trusted root.TrustedMaterial
	id      string
}

type keyRoot struct {
	fp       string // short fingerprint, sha256:<16 hex> of the DER key
	full     string // full hex sha256 of the DER key, for the ID
	verifier signature.Verifier
}

type identityRoot struct {
	label string
	// anchored regexps (or exact values) as handed to cosign/sigstore-go
	subject, subjectRE, issuer, issuerRE string
}

// The predicate types with a meaning of their own.
const (
	// PredicateCosignSign is what a sigstore-bundle signature (cosign
	// sign --new-bundle-format) carries; only it makes a bundle count as
	// a signature.
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
	PredicateSLSAv02    = "https://slsa.dev/provenance/v0.2"
	PredicateSLSAv1     = "https://slsa.dev/provenance/v1"
)

// idVersion is part of every Policy.ID: bump it when a change to this
// package changes which signatures pass, so cached verdicts are redone.
const idVersion = "airlock/verify/cosign v1"

// LoadTrustedRoot reads a sigstore trusted_root.json: offline, no TUF.
func LoadTrustedRoot(path string) (root.TrustedMaterial, error) {
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("cosign: trusted root %s: %w", path, err)
	}
	return tr, nil
}

// KeyFingerprint is how keys are named in results and evidence:
// "sha256:" and the first 16 hex digits of the SHA-256 of the DER
// (PKIX) public key.
func KeyFingerprint(pemKey []byte) (string, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
	if err != nil {
		return "", err
	}
	short, _, err := fingerprint(pub)
	return short, err
}

func fingerprint(pub crypto.PublicKey) (short, full string, err error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(der)
	full = hex.EncodeToString(sum[:])
	return "sha256:" + full[:16], full, nil
}

// NewPolicy compiles a policy: it parses the keys and checks the
// identities. trusted may be nil when there are no identities and
// IgnoreTlog is set (a transparency-log entry is verified against the
// Rekor keys of the trusted root).
func NewPolicy(c PolicyConfig, trusted root.TrustedMaterial) (*Policy, error) {
	p := &Policy{ignoreTlog: c.IgnoreTlog, trusted: trusted}
	if len(c.Keys) == 0 && len(c.Identities) == 0 {
		return nil, errors.New("cosign: policy has neither keys nor identities")
	}
	seen := map[string]bool{}
	for i, k := range c.Keys {
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("cosign: key %d: %w", i, err)
		}
		if err := cryptoutils.ValidatePubKey(pub); err != nil {
			return nil, fmt.Errorf("cosign: key %d: %w", i, err)
		}
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("cosign: key %d: %w", i, err)
		}
		short, full, err := fingerprint(pub)
		if err != nil {
			return nil, fmt.Errorf("cosign: key %d: %w", i, err)
		}
		if seen[full] {
			continue
		}
		seen[full] = true
		p.keys = append(p.keys, keyRoot{fp: short, full: full, verifier: v})
	}
	sort.Slice(p.keys, func(i, j int) bool { return p.keys[i].full < p.keys[j].full })

	for i, id := range c.Identities {
		r, err := compileIdentity(id)
		if err != nil {
			return nil, fmt.Errorf("cosign: identity %d: %w", i, err)
		}
		if !slices.ContainsFunc(p.identities, func(o identityRoot) bool { return o.label == r.label }) {
			p.identities = append(p.identities, r)
		}
	}
	sort.Slice(p.identities, func(i, j int) bool { return p.identities[i].label < p.identities[j].label })

	if len(p.identities) > 0 {
		if trusted == nil {
			return nil, errors.New("cosign: identities need a trusted root (trusted_root.json)")
		}
		// Keyless signatures are only accepted with a Fulcio chain, an
		// SCT and a tlog entry, all checked against the trusted root: a
		// root that lacks one of them can never verify anything.
		switch {
		case len(trusted.FulcioCertificateAuthorities()) == 0:
			return nil, errors.New("cosign: identities need a trusted root with a certificate authority")
		case len(trusted.CTLogs()) == 0:
			return nil, errors.New("cosign: identities need a trusted root with a CT log (certificates must carry an SCT)")
		case len(trusted.RekorLogs()) == 0:
			return nil, errors.New("cosign: identities need a trusted root with a transparency log")
		}
	}
	if len(p.keys) > 0 && !c.IgnoreTlog && (trusted == nil || len(trusted.RekorLogs()) == 0) {
		return nil, errors.New("cosign: key signatures must have a transparency-log entry, which needs a trusted root with a transparency log; configure one or set ignore_tlog")
	}

	for i, a := range c.Attestations {
		if a.PredicateType == "" {
			return nil, fmt.Errorf("cosign: attestation %d: predicate type is required", i)
		}
		if (a.BuilderID != "" || a.SourceRepository != "") && !isSLSA(a.PredicateType) {
			return nil, fmt.Errorf("cosign: attestation %d: builder id and source repository apply to SLSA provenance (%s, %s), not %s",
				i, PredicateSLSAv02, PredicateSLSAv1, a.PredicateType)
		}
		if !slices.Contains(p.attestations, a) {
			p.attestations = append(p.attestations, a)
		}
	}
	sort.Slice(p.attestations, func(i, j int) bool {
		a, b := p.attestations[i], p.attestations[j]
		return a.PredicateType+"\x00"+a.BuilderID+"\x00"+a.SourceRepository < b.PredicateType+"\x00"+b.BuilderID+"\x00"+b.SourceRepository
	})

	tdig, err := trustedDigest(trusted)
	if err != nil {
		return nil, fmt.Errorf("cosign: trusted root: %w", err)
	}
	h := sha256.New()
	field := func(s string) { writeField(h, s) }
	field(idVersion)
	for _, k := range p.keys {
		field("key")
		field(k.full)
	}
	for _, id := range p.identities {
		field("identity")
		field(id.label)
	}
	field(fmt.Sprint("ignore-tlog=", p.ignoreTlog))
	for _, a := range p.attestations {
		field("attestation")
		field(a.PredicateType)
		field(a.BuilderID)
		field(a.SourceRepository)
	}
	field("trusted-root")
	field(tdig)
	p.id = "cosign:" + hex.EncodeToString(h.Sum(nil))[:32]
	return p, nil
}

// ID is a stable hash of everything that decides the outcome: the keys,
// identities, tlog flag, attestation rules and the trusted root's content.
// Verdicts cached under (digest, ID) are redone when any of them changes.
func (p *Policy) ID() string { return p.id }

func compileIdentity(id Identity) (identityRoot, error) {
	if (id.Subject == "") == (id.SubjectRegexp == "") {
		return identityRoot{}, errors.New("set exactly one of subject and subject regexp")
	}
	if (id.Issuer == "") == (id.IssuerRegexp == "") {
		return identityRoot{}, errors.New("set exactly one of issuer and issuer regexp")
	}
	r := identityRoot{subject: id.Subject, issuer: id.Issuer}
	var label []string
	if id.Subject != "" {
		label = append(label, "subject="+id.Subject)
	} else {
		r.subjectRE = anchor(id.SubjectRegexp)
		if _, err := regexp.Compile(r.subjectRE); err != nil {
			return identityRoot{}, fmt.Errorf("subject regexp: %w", err)
		}
		label = append(label, "subject~"+r.subjectRE)
	}
	if id.Issuer != "" {
		label = append(label, "issuer="+id.Issuer)
	} else {
		r.issuerRE = anchor(id.IssuerRegexp)
		if _, err := regexp.Compile(r.issuerRE); err != nil {
			return identityRoot{}, fmt.Errorf("issuer regexp: %w", err)
		}
		label = append(label, "issuer~"+r.issuerRE)
	}
	r.label = strings.Join(label, " ")
	return r, nil
}

func anchor(re string) string { return "^(?:" + re + ")$" }

func isSLSA(predicateType string) bool {
	return predicateType == PredicateSLSAv02 || predicateType == PredicateSLSAv1
}

func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// trustedDigest hashes the content of a trusted root: its certificate
// authorities, transparency and CT logs (keys, ids, validity) and
// timestamping authorities. It reads them through the TrustedMaterial
// interface, so it is the same for a root loaded from JSON and for one
// built in code, and it does not depend on a JSON encoder's whitespace.
func trustedDigest(tm root.TrustedMaterial) (string, error) {
	if tm == nil {
		return "none", nil
	}
	h := sha256.New()
	field := func(s string) { writeField(h, s) }
	certs := func(cs ...*x509.Certificate) {
		for _, c := range cs {
			if c != nil {
				field(hex.EncodeToString(c.Raw))
			} else {
				field("-")
			}
		}
	}
	field(fmt.Sprintf("%T", tm))
	for _, ca := range tm.FulcioCertificateAuthorities() {
		switch ca := ca.(type) {
		case *root.FulcioCertificateAuthority:
			field("fulcio")
			field(ca.URI)
			field(ca.ValidityPeriodStart.UTC().Format(time.RFC3339Nano))
			field(ca.ValidityPeriodEnd.UTC().Format(time.RFC3339Nano))
			certs(ca.Root)
			certs(ca.Intermediates...)
		default:
			return "", fmt.Errorf("unsupported certificate authority type %T", ca)
		}
	}
	for _, ta := range tm.TimestampingAuthorities() {
		switch ta := ta.(type) {
		case *root.SigstoreTimestampingAuthority:
			field("tsa")
			field(ta.URI)
			field(ta.ValidityPeriodStart.UTC().Format(time.RFC3339Nano))
			field(ta.ValidityPeriodEnd.UTC().Format(time.RFC3339Nano))
			certs(ta.Root, ta.Leaf)
			certs(ta.Intermediates...)
		default:
			return "", fmt.Errorf("unsupported timestamping authority type %T", ta)
		}
	}
	logs := func(kind string, m map[string]*root.TransparencyLog) error {
		ids := make([]string, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			l := m[id]
			field(kind)
			field(id)
			if l == nil {
				field("-")
				continue
			}
			der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
			if err != nil {
				return fmt.Errorf("%s %s: %w", kind, id, err)
			}
			field(hex.EncodeToString(der))
			field(hex.EncodeToString(l.ID))
			field(l.BaseURL)
			field(l.ValidityPeriodStart.UTC().Format(time.RFC3339Nano))
			field(l.ValidityPeriodEnd.UTC().Format(time.RFC3339Nano))
			field(fmt.Sprint(l.HashFunc, l.SignatureHashFunc))
		}
		return nil
	}
	if err := logs("rekor", tm.RekorLogs()); err != nil {
		return "", err
	}
	if err := logs("ct", tm.CTLogs()); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
