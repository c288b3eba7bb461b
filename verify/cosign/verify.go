package cosign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/intoto"
)

// ErrUnavailable is returned (wrapped) when Verify could not decide: the
// registry was unreachable, answered 5xx, 429 or another error, or the
// context ended. Callers fail closed without quarantining.
var ErrUnavailable = errors.New("cosign: signatures could not be read from the registry")

// The formats a signature is found in.
const (
	// FormatLegacyTag is cosign's classic layout: a manifest tagged
	// sha256-<hex>.sig (.att for attestations) whose layers are signed
	// payloads.
	FormatLegacyTag = "legacy-tag"
	// FormatBundleReferrer is a sigstore bundle in a manifest whose
	// subject is the image, listed by the OCI 1.1 referrers API (cosign
	// --new-bundle-format, the default from cosign v3).
	FormatBundleReferrer = "bundle-referrer"
	// FormatBundleTag is the same, listed in the referrers fallback tag
	// (sha256-<hex>) of a registry without the referrers API.
	FormatBundleTag = "bundle-tag"
)

// Finding checks.
const (
	CheckSignature   = "signature"
	CheckAttestation = "attestation"
)

// Options configure a Verifier.
type Options struct {
	Log *slog.Logger
	// Now stamps the evidence (checked_at); time.Now when nil. Signature
	// validity itself is judged by the transparency-log time, or by the
	// wall clock inside sigstore-go where there is none.
	Now func() time.Time
}

// Verifier verifies images under policies. It holds no state between
// calls and is safe for concurrent use.
type Verifier struct {
	log *slog.Logger
	now func() time.Time
}

// New returns a Verifier.
func New(o Options) *Verifier {
	v := &Verifier{log: o.Log, now: o.Now}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

// Result is a decided outcome.
type Result struct {
	// Verified: at least one signature verified under the policy and
	// every attestation the policy requires is present and verified.
	Verified bool
	// Signatures are the signatures that verified (also when a required
	// attestation is what failed). Legacy signatures are read first; when
	// one verifies and the policy requires no attestation, bundles are not
	// read, so this need not list every valid signature.
	Signatures []Signature
	// Findings, when !Verified, hold one finding: Check "signature" when
	// no signature verified, "attestation" when a required attestation is
	// missing or does not verify. Its evidence names the keys and
	// identities tried, the signatures found (by format) and why each
	// failed.
	Findings []verify.Finding
}

// Signature is one signature that verified.
type Signature struct {
	// Format is FormatLegacyTag, FormatBundleReferrer or FormatBundleTag.
	Format string
	// Key is the key's fingerprint (KeyFingerprint), for key signatures.
	Key string
	// Subject and Issuer are the certificate identity, for keyless.
	Subject string
	Issuer  string
	// TlogTime is the integrated time of the transparency-log entry that
	// verified; zero when none was checked (IgnoreTlog).
	TlogTime time.Time
}

// Limits on what one Verify reads from the registry. Manifests are bounded
// by go-containerregistry itself; payloads and bundles are read here.
const (
	maxLegacyLayers   = 64       // layers of a .sig or .att manifest looked at
	maxReferrers      = 32       // referrer manifests fetched
	maxSigPayload     = 1 << 20  // a simple-signing payload (a few hundred bytes in practice)
	maxBundleSize     = 16 << 20 // a bundle or DSSE attestation (an SBOM can be large)
	maxBytesPerVerify = 48 << 20 // all payloads and bundles of one Verify
)

// Verify checks the image or index at ref (a digest reference into the
// upstream registry), reading signatures and attestations through opts
// (auth, transport). ctx bounds every request. It returns a Result for every
// decided outcome and an error wrapping ErrUnavailable only when it could
// not decide. A positive decision needs only the source that verified; a
// negative one needs every source read.
func (v *Verifier) Verify(ctx context.Context, ref name.Digest, p *Policy, opts ...remote.Option) (Result, error) {
	if p == nil {
		return Result{}, errors.New("cosign: no policy")
	}
	h, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return Result{}, fmt.Errorf("cosign: %s: %w", ref, err)
	}
	ropts := append(slices.Clone(opts), remote.WithContext(ctx))
	r := &run{v: v, p: p, ref: ref, hash: h, ropts: ropts, budget: maxBytesPerVerify, found: map[string]int{}}

	r.legacySignatures(ctx)
	if len(r.sigs) == 0 || len(p.attestations) > 0 {
		r.bundles(ctx)
	}
	if len(r.sigs) == 0 {
		if err := r.unavailableErr(); err != nil {
			return Result{}, err
		}
		f := r.signatureFinding()
		v.log.Debug("cosign: not verified", "digest", ref.DigestStr(), "policy", p.id, "reason", f.Message)
		return Result{Findings: []verify.Finding{f}}, nil
	}
	if len(p.attestations) > 0 {
		if len(r.unmet()) > 0 {
			r.legacyAttestations(ctx)
		}
		if len(r.unmet()) > 0 {
			if err := r.unavailableErr(); err != nil {
				return Result{}, err
			}
			f := r.attestationFinding()
			v.log.Debug("cosign: attestation missing", "digest", ref.DigestStr(), "policy", p.id, "reason", f.Message)
			return Result{Signatures: r.sigs, Findings: []verify.Finding{f}}, nil
		}
	}
	v.log.Debug("cosign: verified", "digest", ref.DigestStr(), "policy", p.id, "signatures", len(r.sigs))
	return Result{Verified: true, Signatures: r.sigs}, nil
}

// run is the state of one Verify call.
type run struct {
	v     *Verifier
	p     *Policy
	ref   name.Digest
	hash  v1.Hash
	ropts []remote.Option

	budget int64

	sigs       []Signature
	statements []attested
	// found counts what was looked at, per source ("legacy-tag",
	// "legacy-tag .att", "bundle-referrer", "bundle-tag").
	found map[string]int
	// sigTrace and attTrace explain each candidate that did not count.
	sigTrace, attTrace trace
	unavailable        []error
}

// attested is an in-toto statement whose signature verified.
type attested struct {
	where  string // format and location, for evidence
	signer string
	stmt   *intoto.Statement
}

func (r *run) markUnavailable(what string, err error) {
	r.unavailable = append(r.unavailable, fmt.Errorf("%s: %w", what, err))
	r.v.log.Debug("cosign: registry unavailable", "digest", r.ref.DigestStr(), "what", what, "err", err)
}

func (r *run) unavailableErr() error {
	if len(r.unavailable) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, r.ref, errors.Join(r.unavailable...))
}

// errKind sorts registry errors into what they mean for a decision.
type errKind int

const (
	kindInvalid     errKind = iota // the content is wrong: a finding
	kindNotFound                   // nothing there: a finding
	kindUnavailable                // could not read: no decision
)

func classify(err error) errKind {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return kindNotFound
		}
		// 5xx, 429, 401/403 (auth trouble), and any other refusal: the
		// registry did not say there is nothing, it said it won't tell.
		return kindUnavailable
	}
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne), errors.As(err, &ue),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET):
		return kindUnavailable
	}
	return kindInvalid
}

func (r *run) keysEvidence() string {
	if len(r.p.keys) == 0 {
		return "none"
	}
	fps := make([]string, len(r.p.keys))
	for i, k := range r.p.keys {
		fps[i] = k.fp
	}
	return clip(strings.Join(fps, ", "), maxEvidenceValue)
}

func (r *run) identitiesEvidence() string {
	if len(r.p.identities) == 0 {
		return "none"
	}
	ls := make([]string, len(r.p.identities))
	for i, id := range r.p.identities {
		ls[i] = id.label
	}
	return clip(strings.Join(ls, "; "), maxEvidenceValue)
}

func (r *run) baseEvidence() map[string]string {
	ev := map[string]string{
		"digest":     r.ref.DigestStr(),
		"policy":     r.p.id,
		"keys":       r.keysEvidence(),
		"identities": r.identitiesEvidence(),
		"checked_at": r.v.now().UTC().Format(time.RFC3339),
	}
	if len(r.p.keys) > 0 {
		if r.p.ignoreTlog {
			ev["tlog"] = "not required for key signatures"
		} else {
			ev["tlog"] = "required"
		}
	}
	for src, n := range r.found {
		ev["found."+src] = fmt.Sprint(n)
	}
	return ev
}

func (r *run) signatureFinding() verify.Finding {
	ev := r.baseEvidence()
	r.sigTrace.into(ev, "sig")
	total := 0
	for _, n := range r.found {
		total += n
	}
	msg := "no cosign signature found for " + r.ref.DigestStr()
	if total > 0 {
		msg = fmt.Sprintf("none of the %d signature(s) and bundle(s) found for %s verifies under policy %s (%d key(s), %d identity(ies))",
			total, r.ref.DigestStr(), r.p.id, len(r.p.keys), len(r.p.identities))
	}
	return verify.Finding{Check: CheckSignature, Message: msg, Evidence: ev}
}

func (r *run) attestationFinding() verify.Finding {
	ev := r.baseEvidence()
	unmet := r.unmet()
	var types []string
	for i, a := range unmet {
		types = append(types, a.PredicateType)
		if i < maxEntries {
			ev[fmt.Sprintf("required.%d", i+1)] = clip(describeRule(a), maxEvidenceValue)
		}
	}
	r.explainUnmet(ev)
	r.attTrace.into(ev, "att")
	msg := fmt.Sprintf("required attestation %s not found or not verified for %s", strings.Join(types, ", "), r.ref.DigestStr())
	return verify.Finding{Check: CheckAttestation, Message: clip(msg, maxEvidenceValue), Evidence: ev}
}

// Evidence bounds: entries per trace and characters per value.
const (
	maxEntries       = 12
	maxEvidenceValue = 600
	maxReason        = 240
)

// trace records, per candidate signature or attestation, why it did not
// count. It keeps the first maxEntries and counts the rest.
type trace struct {
	entries []string
	more    int
}

func (t *trace) add(where, why string) {
	if len(t.entries) >= maxEntries {
		t.more++
		return
	}
	t.entries = append(t.entries, clip(where+": "+why, maxEvidenceValue))
}

func (t *trace) into(ev map[string]string, prefix string) {
	for i, e := range t.entries {
		ev[fmt.Sprintf("%s.%d", prefix, i+1)] = e
	}
	if t.more > 0 {
		ev[prefix+".more"] = fmt.Sprintf("%d more not shown", t.more)
	}
}

// clip flattens s to one line of at most n bytes (on a rune boundary).
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// shortDigest is sha256:<12 hex>… for evidence.
func shortDigest(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}
