package cosign

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify/cosign/cosigntest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"
)

const (
	ghIssuer  = "https://token.actions.githubusercontent.com"
	ghSubject = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	builderV1 = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0"
	repoURL   = "https://github.com/acme/app"
)

// env is one test's world: a registry with an image, two keys (one
// trusted by the policies below, one not), and two sigstores (the trusted
// one and a stranger).
type env struct {
	reg        *testRegistry
	d, other   name.Digest
	key, wrong testKey
	fs, fs2    *cosigntest.Sigstore
}

func (e *env) keySigner() signer     { return signer{sv: e.key.sv} }
func (e *env) keyTlogSigner() signer { return signer{sv: e.key.sv, fs: e.fs} }
func (e *env) wrongSigner() signer   { return signer{sv: e.wrong.sv} }
func (e *env) keyless(t *testing.T, subject string) signer {
	return keylessSigner(e.fs, e.fs.Issue(t, subject, ghIssuer))
}

// Policies used by the cases.
func (e *env) keyPolicy() (PolicyConfig, root.TrustedMaterial) {
	return PolicyConfig{Keys: [][]byte{e.key.pem}, IgnoreTlog: true}, nil
}
func (e *env) keyTlogPolicy() (PolicyConfig, root.TrustedMaterial) {
	return PolicyConfig{Keys: [][]byte{e.key.pem}}, e.fs.TrustedRoot()
}
func (e *env) identityPolicy(ids ...Identity) (PolicyConfig, root.TrustedMaterial) {
	if len(ids) == 0 {
		ids = []Identity{{Subject: ghSubject, Issuer: ghIssuer}}
	}
	return PolicyConfig{Identities: ids}, e.fs.TrustedRoot()
}

// fastRetry keeps failing registries from costing go-containerregistry's
// default backoff (seconds) in tests.
var fastRetry = remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2})

type want struct {
	verified bool
	err      error
	sig      *Signature // Format, Key, Subject, Issuer compared; TlogTime only zero / non-zero
	tlog     bool
	check    string
	message  string            // substring of the finding's message
	evidence map[string]string // key → substring of the value
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name      string
		noRefAPI  bool // registry without the referrers API
		setup     func(t *testing.T, e *env)
		policy    func(e *env) (PolicyConfig, root.TrustedMaterial)
		fail      func(r *http.Request) int // registry faults, set after setup
		closeReg  bool
		want      want
		wantCount int // number of verified signatures, when > 0
	}{
		// --- legacy .sig tag, keys ---
		{
			name:   "key legacy signature, tlog not required",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keySigner()) },
			policy: (*env).keyPolicy,
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name:   "key legacy signature with tlog entry",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keyTlogSigner()) },
			policy: (*env).keyTlogPolicy,
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}, tlog: true},
		},
		{
			name:   "key legacy signature without tlog entry when tlog required",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keySigner()) },
			policy: (*env).keyTlogPolicy,
			want: want{check: CheckSignature, evidence: map[string]string{
				"sig.1": "no transparency-log entry", "tlog": "required", "found.legacy-tag": "1"}},
		},
		{
			name: "tlog entry from an untrusted rekor",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, signer{sv: e.key.sv, fs: e.fs2})
			},
			policy: (*env).keyTlogPolicy,
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "key " + "sha256:"}},
		},
		{
			name:   "unsigned",
			setup:  func(t *testing.T, e *env) {},
			policy: (*env).keyPolicy,
			want: want{check: CheckSignature, message: "no cosign signature found",
				evidence: map[string]string{"keys": "sha256:", "identities": "none"}},
		},
		{
			name:   "signed by an untrusted key",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.wrongSigner()) },
			policy: (*env).keyPolicy,
			want: want{check: CheckSignature, message: "none of the 1 signature",
				evidence: map[string]string{"found.legacy-tag": "1", "sig.1": "legacy-tag .sig layer sha256:"}},
		},
		{
			name:   "payload names another digest",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.other, e.keySigner()) },
			policy: (*env).keyPolicy,
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "invalid or missing digest in claim"}},
		},
		{
			name: "signature copied from another image",
			setup: func(t *testing.T, e *env) {
				// A valid signature of e.other, placed at e.d's .sig tag.
				signLegacy(t, e.other, e.other, e.keySigner())
				copyTag(t, e.other, e.d, "sig")
			},
			policy: (*env).keyPolicy,
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "invalid or missing digest in claim"}},
		},
		{
			name: "index signed",
			setup: func(t *testing.T, e *env) {
				e.d = e.reg.pushIndex(t, "acme/app")
				signLegacy(t, e.d, e.d, e.keySigner())
			},
			policy: (*env).keyPolicy,
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name: "one good signature among bad ones",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.wrongSigner())
				signLegacy(t, e.d, e.other, e.keySigner())
				signLegacy(t, e.d, e.d, e.keySigner())
			},
			policy: (*env).keyPolicy,
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name: "second key of the policy",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.wrongSigner())
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				return PolicyConfig{Keys: [][]byte{e.key.pem, e.wrong.pem}, IgnoreTlog: true}, nil
			},
			want: want{verified: true, sig: &Signature{Format: FormatLegacyTag, Key: "wrong"}},
		},

		// --- legacy .sig tag, keyless ---
		{
			name:   "keyless legacy signature, matching identity",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keyless(t, ghSubject)) },
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want: want{verified: true, tlog: true,
				sig: &Signature{Format: FormatLegacyTag, Subject: ghSubject, Issuer: ghIssuer}},
		},
		{
			name: "keyless legacy signature, other identity",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keyless(t, "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main"))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want: want{check: CheckSignature, evidence: map[string]string{
				"identities": "subject=" + ghSubject, "sig.1": "identity subject=" + ghSubject}},
		},
		{
			name:  "keyless legacy signature, other issuer",
			setup: func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keyless(t, ghSubject)) },
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				return e.identityPolicy(Identity{Subject: ghSubject, Issuer: "https://accounts.google.com"})
			},
			want: want{check: CheckSignature},
		},
		{
			name:  "subject regexp must match the whole subject",
			setup: func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keyless(t, ghSubject)) },
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				return e.identityPolicy(Identity{SubjectRegexp: `github\.com/acme/app`, Issuer: ghIssuer})
			},
			want: want{check: CheckSignature},
		},
		{
			name:  "subject regexp matching",
			setup: func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keyless(t, ghSubject)) },
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				return e.identityPolicy(Identity{SubjectRegexp: `https://github\.com/acme/app/\.github/workflows/.*`, IssuerRegexp: `https://token\.actions\.githubusercontent\.com`})
			},
			want: want{verified: true, tlog: true, sig: &Signature{Format: FormatLegacyTag, Subject: ghSubject, Issuer: ghIssuer}},
		},
		{
			name: "keyless certificate without SCT",
			setup: func(t *testing.T, e *env) {
				id := e.fs.Issue(t, ghSubject, ghIssuer, cosigntest.WithoutSCT())
				signLegacy(t, e.d, e.d, keylessSigner(e.fs, id))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "SCT"}},
		},
		{
			name: "keyless signature without tlog entry",
			setup: func(t *testing.T, e *env) {
				s := e.keyless(t, ghSubject)
				s.noTlog = true
				signLegacy(t, e.d, e.d, s)
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want:   want{check: CheckSignature},
		},
		{
			name: "keyless certificate from another CA",
			setup: func(t *testing.T, e *env) {
				id := e.fs2.Issue(t, ghSubject, ghIssuer)
				signLegacy(t, e.d, e.d, keylessSigner(e.fs2, id))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want:   want{check: CheckSignature},
		},
		{
			name:  "keyless signature does not pass a key-only policy",
			setup: func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keyless(t, ghSubject)) },
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				return PolicyConfig{Keys: [][]byte{e.key.pem}}, e.fs.TrustedRoot()
			},
			want: want{check: CheckSignature, evidence: map[string]string{"sig.1": "key sha256:"}},
		},

		// --- sigstore bundles ---
		{
			name: "key bundle referrer",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: (*env).keyPolicy,
			want:   want{verified: true, sig: &Signature{Format: FormatBundleReferrer}},
		},
		{
			name:     "key bundle in the fallback tag",
			noRefAPI: true,
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: (*env).keyPolicy,
			want:   want{verified: true, sig: &Signature{Format: FormatBundleTag}},
		},
		{
			name: "key bundle with tlog entry",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keyTlogSigner(), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: (*env).keyTlogPolicy,
			want:   want{verified: true, tlog: true, sig: &Signature{Format: FormatBundleReferrer}},
		},
		{
			name: "key bundle without tlog entry when tlog required",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: (*env).keyTlogPolicy,
			want:   want{check: CheckSignature, evidence: map[string]string{"found.bundle-referrer": "1", "sig.1": "bundle-referrer manifest"}},
		},
		{
			name: "signed attestation bundle is not a signature",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: (*env).keyPolicy,
			want: want{check: CheckSignature, evidence: map[string]string{
				"sig.1": "it is an attestation (predicate " + PredicateSLSAv1}},
		},
		{
			name: "bundle whose statement names another digest",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.other, PredicateCosignSign, nil))
			},
			policy: (*env).keyPolicy,
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "digest"}},
		},
		{
			name: "bundle signed by an untrusted key",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.wrongSigner(), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: (*env).keyPolicy,
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "key sha256:"}},
		},
		{
			name: "keyless bundle, matching identity",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keyless(t, ghSubject), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want: want{verified: true, tlog: true,
				sig: &Signature{Format: FormatBundleReferrer, Subject: ghSubject, Issuer: ghIssuer}},
		},
		{
			name: "keyless bundle, other identity",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keyless(t, "dev@evil.example"), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "identity subject=" + ghSubject}},
		},
		{
			name: "keyless bundle, second identity matches",
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keyless(t, "release@acme.example"), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				return e.identityPolicy(Identity{Subject: ghSubject, Issuer: ghIssuer}, Identity{Subject: "release@acme.example", Issuer: ghIssuer})
			},
			want: want{verified: true, tlog: true,
				sig: &Signature{Format: FormatBundleReferrer, Subject: "release@acme.example", Issuer: ghIssuer}},
		},
		{
			name: "keyless bundle without SCT",
			setup: func(t *testing.T, e *env) {
				id := e.fs.Issue(t, ghSubject, ghIssuer, cosigntest.WithoutSCT())
				attachBundle(t, e.d, keylessSigner(e.fs, id), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) { return e.identityPolicy() },
			want:   want{check: CheckSignature, evidence: map[string]string{"sig.1": "certificate timestamp"}},
		},
		{
			name: "legacy and bundle signatures together",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.wrongSigner())
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateCosignSign, nil))
			},
			policy: (*env).keyPolicy,
			want:   want{verified: true, sig: &Signature{Format: FormatBundleReferrer}},
		},

		// --- required attestations ---
		{
			name: "legacy attestation satisfies SLSA v1 rule",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attestLegacy(t, e.d, e.keySigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1, BuilderID: builderV1, SourceRepository: "github.com/acme/app"}),
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name: "builder id without version matches any version",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attestLegacy(t, e.d, e.keySigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1, BuilderID: strings.Split(builderV1, "@")[0]}),
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name: "attestation from another builder",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attestLegacy(t, e.d, e.keySigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1("https://evil.example/builder@v1", repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1, BuilderID: builderV1}),
			want: want{check: CheckAttestation, message: PredicateSLSAv1, sig: &Signature{Format: FormatLegacyTag},
				evidence: map[string]string{"att.1": "builder id", "verified_predicate_types": PredicateSLSAv1}},
		},
		{
			name: "attestation from another source repository",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attestLegacy(t, e.d, e.keySigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, "https://github.com/evil/app")))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1, SourceRepository: repoURL}),
			want:   want{check: CheckAttestation, evidence: map[string]string{"att.1": "source repository"}},
		},
		{
			name:   "required attestation missing",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keySigner()) },
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1}),
			want: want{check: CheckAttestation, message: "required attestation " + PredicateSLSAv1,
				evidence: map[string]string{"required.1": "predicate " + PredicateSLSAv1}},
		},
		{
			name: "attestation signed by an untrusted key",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attestLegacy(t, e.d, e.wrongSigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1}),
			want:   want{check: CheckAttestation, evidence: map[string]string{"att.1": "legacy-tag .att layer", "found.legacy-tag-att": "1"}},
		},
		{
			name: "attestation about another image",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attestLegacy(t, e.d, e.keySigner(), PredicateSLSAv1, statementFor(t, e.other, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1}),
			want:   want{check: CheckAttestation, evidence: map[string]string{"att.1": "no matching subject digest"}},
		},
		{
			name: "keyless legacy attestation satisfies the rule",
			setup: func(t *testing.T, e *env) {
				s := e.keyless(t, ghSubject)
				signLegacy(t, e.d, e.d, s)
				attestLegacy(t, e.d, s, PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				c, tm := e.identityPolicy()
				c.Attestations = []Attestation{{PredicateType: PredicateSLSAv1, SourceRepository: repoURL}}
				return c, tm
			},
			want: want{verified: true, tlog: true, sig: &Signature{Format: FormatLegacyTag, Subject: ghSubject, Issuer: ghIssuer}},
		},
		{
			name: "keyless legacy attestation by another identity",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keyless(t, ghSubject))
				attestLegacy(t, e.d, e.keyless(t, "mallory@evil.example"), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				c, tm := e.identityPolicy()
				c.Attestations = []Attestation{{PredicateType: PredicateSLSAv1}}
				return c, tm
			},
			want: want{check: CheckAttestation, evidence: map[string]string{"att.1": "mallory@evil.example"}},
		},
		{
			name: "key legacy attestation with tlog entry",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keyTlogSigner())
				attestLegacy(t, e.d, e.keyTlogSigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				c, tm := e.keyTlogPolicy()
				c.Attestations = []Attestation{{PredicateType: PredicateSLSAv1}}
				return c, tm
			},
			want: want{verified: true, tlog: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name: "key legacy attestation without tlog entry when tlog required",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keyTlogSigner())
				attestLegacy(t, e.d, e.keySigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				c, tm := e.keyTlogPolicy()
				c.Attestations = []Attestation{{PredicateType: PredicateSLSAv1}}
				return c, tm
			},
			want: want{check: CheckAttestation, evidence: map[string]string{"att.1": "no transparency-log entry"}},
		},
		{
			name: "bundle attestation satisfies SLSA v0.2 rule",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateSLSAv02, slsaV02(builderV1, repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv02, BuilderID: builderV1, SourceRepository: repoURL + ".git"}),
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name:     "bundle signature and attestation in the fallback tag",
			noRefAPI: true,
			setup: func(t *testing.T, e *env) {
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateCosignSign, nil))
				attachBundle(t, e.d, e.keySigner(), statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1, SourceRepository: repoURL}),
			want:   want{verified: true, sig: &Signature{Format: FormatBundleTag}},
		},
		{
			name: "keyless attestation bundle satisfies the rule",
			setup: func(t *testing.T, e *env) {
				s := e.keyless(t, ghSubject)
				attachBundle(t, e.d, s, statementFor(t, e.d, PredicateCosignSign, nil))
				attachBundle(t, e.d, s, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: func(e *env) (PolicyConfig, root.TrustedMaterial) {
				c, tm := e.identityPolicy()
				c.Attestations = []Attestation{{PredicateType: PredicateSLSAv1, BuilderID: builderV1}}
				return c, tm
			},
			want: want{verified: true, tlog: true, sig: &Signature{Format: FormatBundleReferrer, Subject: ghSubject, Issuer: ghIssuer}},
		},

		// --- the registry failing ---
		{
			name:     "registry down",
			setup:    func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keySigner()) },
			policy:   (*env).keyPolicy,
			closeReg: true,
			want:     want{err: ErrUnavailable},
		},
		{
			name:   "signature tag answers 503",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keySigner()) },
			policy: (*env).keyPolicy,
			fail:   failPath(".sig", http.StatusServiceUnavailable),
			want:   want{err: ErrUnavailable},
		},
		{
			name:   "rate limited",
			setup:  func(t *testing.T, e *env) {},
			policy: (*env).keyPolicy,
			fail:   failPath("/referrers/", http.StatusTooManyRequests),
			want:   want{err: ErrUnavailable},
		},
		{
			name:   "signature blob answers 500",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keySigner()) },
			policy: (*env).keyPolicy,
			fail:   failPath("/blobs/", http.StatusInternalServerError),
			want:   want{err: ErrUnavailable},
		},
		{
			name:   "referrers failing does not matter once a signature verified",
			setup:  func(t *testing.T, e *env) { signLegacy(t, e.d, e.d, e.keySigner()) },
			policy: (*env).keyPolicy,
			fail:   failPath("/referrers/", http.StatusBadGateway),
			want:   want{verified: true, sig: &Signature{Format: FormatLegacyTag}},
		},
		{
			name: "attestation tag failing when an attestation is required",
			setup: func(t *testing.T, e *env) {
				signLegacy(t, e.d, e.d, e.keySigner())
				attestLegacy(t, e.d, e.keySigner(), PredicateSLSAv1, statementFor(t, e.d, PredicateSLSAv1, slsaV1(builderV1, repoURL)))
			},
			policy: attPolicy(Attestation{PredicateType: PredicateSLSAv1}),
			fail:   failPath(".att", http.StatusInternalServerError),
			want:   want{err: ErrUnavailable},
		},
		{
			name:   "unknown repository is unsigned, not unavailable",
			setup:  func(t *testing.T, e *env) { e.d = e.d.Context().Registry.Repo("nobody/here").Digest(e.d.DigestStr()) },
			policy: (*env).keyPolicy,
			want:   want{check: CheckSignature, message: "no cosign signature found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := &env{reg: newRegistry(t, !tt.noRefAPI), key: newKey(t), wrong: newKey(t), fs: cosigntest.New(t), fs2: cosigntest.New(t)}
			e.d = e.reg.push(t, "acme/app")
			e.other = e.reg.push(t, "acme/other")
			tt.setup(t, e)
			cfg, tm := tt.policy(e)
			p, err := NewPolicy(cfg, tm)
			if err != nil {
				t.Fatal(err)
			}
			if tt.fail != nil {
				e.reg.fail = tt.fail
			}
			if tt.closeReg {
				e.reg.srv.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := New(Options{}).Verify(ctx, e.d, p, fastRetry)
			checkResult(t, e, res, err, tt.want)
		})
	}
}

func attPolicy(a ...Attestation) func(e *env) (PolicyConfig, root.TrustedMaterial) {
	return func(e *env) (PolicyConfig, root.TrustedMaterial) {
		c, tm := e.keyPolicy()
		c.Attestations = a
		return c, tm
	}
}

func failPath(substr string, code int) func(r *http.Request) int {
	return func(r *http.Request) int {
		if strings.Contains(r.URL.Path, substr) {
			return code
		}
		return 0
	}
}

func checkResult(t *testing.T, e *env, res Result, err error, w want) {
	t.Helper()
	if w.err != nil {
		if !errors.Is(err, w.err) {
			t.Fatalf("err = %v, want %v (result %+v)", err, w.err, res)
		}
		return
	}
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Verified != w.verified {
		t.Fatalf("Verified = %v, want %v; findings %+v", res.Verified, w.verified, res.Findings)
	}
	if w.sig != nil {
		if len(res.Signatures) == 0 {
			t.Fatalf("no signatures in %+v", res)
		}
		got := res.Signatures[0]
		wantKey := w.sig.Key
		switch {
		case wantKey == "wrong":
			wantKey = e.wrong.fp
		case wantKey == "" && w.sig.Subject == "":
			wantKey = e.key.fp
		}
		if got.Format != w.sig.Format || got.Key != wantKey || got.Subject != w.sig.Subject || got.Issuer != w.sig.Issuer {
			t.Errorf("signature = %+v, want %+v (key %s)", got, *w.sig, wantKey)
		}
		if got.TlogTime.IsZero() == w.tlog {
			t.Errorf("TlogTime = %v, want set: %v", got.TlogTime, w.tlog)
		}
		if w.tlog && time.Since(got.TlogTime) > time.Hour {
			t.Errorf("TlogTime = %v, not recent", got.TlogTime)
		}
	}
	if w.verified {
		if len(res.Findings) != 0 {
			t.Errorf("verified with findings %+v", res.Findings)
		}
		return
	}
	if len(res.Findings) != 1 {
		t.Fatalf("findings = %+v, want one", res.Findings)
	}
	f := res.Findings[0]
	t.Logf("finding: %s: %s", f.Check, f.Message)
	for _, k := range sortedKeys(f.Evidence) {
		t.Logf("  %s = %s", k, f.Evidence[k])
	}
	if f.Check != w.check {
		t.Errorf("check = %q, want %q", f.Check, w.check)
	}
	if !strings.Contains(f.Message, w.message) {
		t.Errorf("message = %q, want it to contain %q", f.Message, w.message)
	}
	for k, sub := range w.evidence {
		if !strings.Contains(f.Evidence[k], sub) {
			t.Errorf("evidence[%q] = %q, want it to contain %q\nall evidence: %v", k, f.Evidence[k], sub, f.Evidence)
		}
	}
	for _, k := range []string{"digest", "policy", "keys", "identities", "checked_at"} {
		if f.Evidence[k] == "" {
			t.Errorf("evidence lacks %q: %v", k, f.Evidence)
		}
	}
	if f.Evidence["digest"] != e.d.DigestStr() {
		t.Errorf("evidence digest = %q, want %q", f.Evidence["digest"], e.d.DigestStr())
	}
	for k, v := range f.Evidence {
		if len(v) > maxEvidenceValue || strings.Contains(v, "\n") {
			t.Errorf("evidence[%q] is not one bounded line: %q", k, v)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
