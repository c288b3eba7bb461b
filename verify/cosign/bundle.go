package cosign

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// Sigstore bundles (cosign --new-bundle-format, the default from cosign
// v3): a manifest whose subject is the image and whose one layer is a
// bundle holding a DSSE envelope around an in-toto statement. A signature
// is a statement of predicate type PredicateCosignSign; any other
// predicate type is an attestation, whoever signed it.

const (
	bundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	emptyMediaType        = "application/vnd.oci.empty.v1+json"
)

// bundles lists the image's referrers (the referrers API, or the fallback
// tag where the registry has none), fetches the sigstore bundles among
// them and verifies each under the policy.
func (r *run) bundles(ctx context.Context) {
	descs, format, ok := r.listReferrers()
	if !ok {
		return
	}
	// Referrers that say they are something else (an SBOM, a signature
	// in another scheme) are passed over. Registries that report the
	// config media type instead of the artifact type say "empty" for
	// cosign's bundles, so that is looked at too.
	var cands []v1.Descriptor
	for _, d := range descs {
		if d.MediaType != types.OCIManifestSchema1 && d.MediaType != types.DockerManifestSchema2 {
			continue
		}
		if d.ArtifactType != "" && !strings.HasPrefix(d.ArtifactType, bundleMediaTypePrefix) && d.ArtifactType != emptyMediaType {
			continue
		}
		cands = append(cands, d)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		return strings.HasPrefix(cands[i].ArtifactType, bundleMediaTypePrefix) && !strings.HasPrefix(cands[j].ArtifactType, bundleMediaTypePrefix)
	})
	if len(cands) > maxReferrers {
		r.sigTrace.add(format, fmt.Sprintf("only the first %d of %d referrers were examined", maxReferrers, len(cands)))
		cands = cands[:maxReferrers]
	}
	for _, d := range cands {
		where := fmt.Sprintf("%s manifest %s", format, shortDigest(d.Digest))
		b, err := r.fetchBundle(d)
		switch {
		case errors.Is(err, errNotBundle):
			continue
		case err != nil && classify(err) == kindUnavailable:
			r.markUnavailable(where, err)
			continue
		case err != nil:
			r.found[format]++
			r.sigTrace.add(where, err.Error())
			continue
		}
		r.found[format]++
		r.checkBundle(ctx, where, format, b)
	}
}

// listReferrers returns the descriptors referring to the image and where
// they were listed. ok is false when they could not be listed.
func (r *run) listReferrers() (descs []v1.Descriptor, format string, ok bool) {
	opts := append(slices.Clone(r.ropts), remote.WithReferrersTagFallback(false))
	idx, err := remote.Referrers(r.ref, opts...)
	if err == nil {
		im, err := idx.IndexManifest()
		if err != nil {
			r.sigTrace.add(FormatBundleReferrer, "unreadable referrers list: "+err.Error())
			return nil, "", false
		}
		r.found[FormatBundleReferrer] += 0 // looked, even if there is nothing
		return im.Manifests, FormatBundleReferrer, true
	}
	if !referrersUnsupported(err) {
		if classify(err) == kindUnavailable {
			r.markUnavailable("referrers", err)
		} else {
			r.sigTrace.add(FormatBundleReferrer, "unreadable referrers list: "+err.Error())
		}
		return nil, "", false
	}
	// No referrers API: the fallback tag sha256-<hex> holds an index of
	// the referrers (OCI distribution spec, "referrers tag schema").
	tag := r.ref.Context().Tag(r.hash.Algorithm + "-" + r.hash.Hex)
	r.found[FormatBundleTag] += 0
	desc, err := remote.Get(tag, r.ropts...)
	if err != nil {
		switch classify(err) {
		case kindNotFound:
			return nil, FormatBundleTag, true
		case kindUnavailable:
			r.markUnavailable(tag.TagStr(), err)
		default:
			r.sigTrace.add(FormatBundleTag+" "+tag.TagStr(), err.Error())
		}
		return nil, "", false
	}
	if !desc.MediaType.IsIndex() {
		r.sigTrace.add(FormatBundleTag+" "+tag.TagStr(), "not an image index: "+string(desc.MediaType))
		return nil, FormatBundleTag, true
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		r.sigTrace.add(FormatBundleTag+" "+tag.TagStr(), err.Error())
		return nil, FormatBundleTag, true
	}
	return im.Manifests, FormatBundleTag, true
}

// referrersUnsupported tells go-containerregistry's "this registry has no
// referrers API" (it answered 404, 400 or 406, or not an index) from a
// failure to reach it. go-containerregistry has no error value for it.
func referrersUnsupported(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return false
	}
	return strings.Contains(err.Error(), "does not support the Referrers API")
}

var errNotBundle = errors.New("not a sigstore bundle")

func (r *run) fetchBundle(d v1.Descriptor) (*sgbundle.Bundle, error) {
	img, err := remote.Image(r.ref.Context().Digest(d.Digest.String()), r.ropts...)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), bundleMediaTypePrefix) {
		return nil, errNotBundle
	}
	ld := m.Layers[0]
	l, err := img.LayerByDigest(ld.Digest)
	if err != nil {
		return nil, err
	}
	raw, err := r.readBlob(l, ld.Digest, ld.Size, maxBundleSize)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	b := &sgbundle.Bundle{}
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	// cosign reads nothing older either (ociremote.Bundle).
	if !b.MinVersion("v0.3") {
		return nil, errors.New("bundle: version older than v0.3")
	}
	return b, nil
}

// checkBundle verifies one bundle with each key and each identity in turn
// (cosign takes one identity per CheckOpts) and files it as a signature or
// an attestation by its verified predicate type.
func (r *run) checkBundle(ctx context.Context, where, format string, b *sgbundle.Bundle) {
	claimed := ""
	if env := b.GetDsseEnvelope(); env != nil {
		if st, err := parseStatement(env.GetPayload()); err == nil {
			claimed = st.PredicateType
		}
	}
	digest, err := hex.DecodeString(r.hash.Hex)
	if err != nil {
		r.sigTrace.add(where, err.Error())
		return
	}
	artifact := sgverify.WithArtifactDigest(r.hash.Algorithm, digest)

	var fails []string
	for _, k := range r.p.keys {
		co := &cosign.CheckOpts{SigVerifier: k.verifier, IgnoreTlog: r.p.ignoreTlog, TrustedMaterial: r.keyTrusted()}
		res, err := cosign.VerifyNewBundle(ctx, co, artifact, b)
		if err == nil {
			s := Signature{Format: format, Key: k.fp}
			if !r.p.ignoreTlog {
				s.TlogTime = tlogTime(res, b)
			}
			r.acceptBundle(where, b, s)
			return
		}
		fails = append(fails, "key "+k.fp+": "+clip(err.Error(), maxReason))
	}
	for _, id := range r.p.identities {
		co := &cosign.CheckOpts{Identities: []cosign.Identity{id.cosign()}, TrustedMaterial: r.p.trusted}
		res, err := cosign.VerifyNewBundle(ctx, co, artifact, b)
		if err == nil {
			s := Signature{Format: format, TlogTime: tlogTime(res, b)}
			if res.Signature != nil && res.Signature.Certificate != nil {
				s.Subject, s.Issuer = res.Signature.Certificate.SubjectAlternativeName, res.Signature.Certificate.Issuer
			}
			r.acceptBundle(where, b, s)
			return
		}
		fails = append(fails, "identity "+id.label+": "+clip(err.Error(), maxReason))
	}
	why := strings.Join(fails, "; ")
	if claimed == PredicateCosignSign || claimed == "" {
		r.sigTrace.add(where, why)
		return
	}
	r.sigTrace.add(where, "an attestation (predicate "+claimed+"), not a signature")
	r.attTrace.add(where, "predicate "+claimed+": "+why)
}

// acceptBundle files a verified bundle. Only PredicateCosignSign makes it
// a signature: cosign's own verify --new-bundle-format accepts any
// verified bundle, so an attestation signed by a trusted key would pass
// as a signature there.
func (r *run) acceptBundle(where string, b *sgbundle.Bundle, s Signature) {
	env := b.GetDsseEnvelope()
	if env == nil {
		r.sigTrace.add(where, "verified by "+s.signer()+" but holds a message signature, not an in-toto statement")
		return
	}
	st, err := parseStatement(env.GetPayload())
	if err != nil {
		r.sigTrace.add(where, "verified by "+s.signer()+" but "+err.Error())
		return
	}
	if st.PredicateType == PredicateCosignSign {
		r.sigs = append(r.sigs, s)
		return
	}
	r.sigTrace.add(where, "verified by "+s.signer()+" but it is an attestation (predicate "+st.PredicateType+"), not a signature ("+PredicateCosignSign+")")
	r.statements = append(r.statements, attested{where: where, signer: s.signer(), stmt: st})
}

// keyTrusted is the trusted material for key-signed bundles: cosign's
// bundle path wants one even when only the key and no tlog is checked.
func (r *run) keyTrusted() root.TrustedMaterial {
	if r.p.trusted != nil {
		return r.p.trusted
	}
	return &root.BaseTrustedMaterial{}
}

// tlogTime is the earliest transparency-log time sigstore-go verified, or
// for key signatures (whose verification does not collect it) the
// integrated time of the bundle's entry.
func tlogTime(res *sgverify.VerificationResult, b *sgbundle.Bundle) time.Time {
	var t time.Time
	if res != nil {
		for _, ts := range res.VerifiedTimestamps {
			if ts.Type == "Tlog" && (t.IsZero() || ts.Timestamp.Before(t)) {
				t = ts.Timestamp
			}
		}
	}
	if t.IsZero() {
		if entries, err := b.TlogEntries(); err == nil {
			for _, e := range entries {
				if it := e.IntegratedTime(); !it.IsZero() && (t.IsZero() || it.Before(t)) {
					t = it
				}
			}
		}
	}
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
