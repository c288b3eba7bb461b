package cosign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify/intoto"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// The legacy layout: signatures at <alg>-<hex>.sig, attestations at
// <alg>-<hex>.att, one signed payload per layer with the signature, the
// certificate and the Rekor bundle in the layer's annotations.

func (r *run) legacyTag(suffix string) name.Tag {
	return r.ref.Context().Tag(fmt.Sprintf("%s-%s.%s", r.hash.Algorithm, r.hash.Hex, suffix))
}

// loaded is a signature whose payload has been read: verifying it makes
// no further requests.
type loaded struct {
	where string
	sig   oci.Signature
}

// withPayload hands static.Copy the payload read here (bounded and
// digest-checked) instead of letting the layer read it unbounded.
type withPayload struct {
	layerSig // the embedded field cannot be named Signature: that is a method
	payload  []byte
}

type layerSig interface{ oci.Signature }

func (w withPayload) Payload() ([]byte, error) { return w.payload, nil }

// legacyLayers reads the manifest at the .sig or .att tag and the payloads
// of its layers. skip, when set, passes over layers by their (unsigned)
// annotations before their payload is fetched.
func (r *run) legacyLayers(suffix string, limit int64, tr *trace, skip func(map[string]string) bool) []loaded {
	tag := r.legacyTag(suffix)
	source := FormatLegacyTag + " ." + suffix // for evidence entries
	counter := FormatLegacyTag                // for found.*
	if suffix != "sig" {
		counter += "-" + suffix
	}
	sigs, err := ociremote.Signatures(tag, ociremote.WithRemoteOptions(r.ropts...))
	if err != nil {
		switch classify(err) {
		case kindNotFound:
		case kindUnavailable:
			r.markUnavailable(tag.TagStr(), err)
		default:
			tr.add(source+" "+tag.TagStr(), "unreadable: "+err.Error())
		}
		return nil
	}
	m, err := sigs.Manifest()
	if err != nil {
		if classify(err) == kindUnavailable {
			r.markUnavailable(tag.TagStr(), err)
		} else {
			tr.add(source+" "+tag.TagStr(), "unreadable manifest: "+err.Error())
		}
		return nil
	}
	r.found[counter] += len(m.Layers)
	if len(m.Layers) == 0 {
		return nil
	}
	list, err := sigs.Get()
	if err != nil {
		tr.add(source+" "+tag.TagStr(), err.Error())
		return nil
	}
	if len(list) > maxLegacyLayers {
		tr.add(source+" "+tag.TagStr(), fmt.Sprintf("only the first %d of %d layers were examined", maxLegacyLayers, len(list)))
		list = list[:maxLegacyLayers]
	}
	var out []loaded
	for i, s := range list {
		desc := m.Layers[i]
		where := fmt.Sprintf("%s layer %s", source, shortDigest(desc.Digest))
		if skip != nil && skip(desc.Annotations) {
			continue
		}
		payload, err := r.readBlob(s, desc.Digest, desc.Size, limit)
		if err != nil {
			if classify(err) == kindUnavailable {
				r.markUnavailable(where, err)
			} else {
				tr.add(where, "payload: "+err.Error())
			}
			continue
		}
		cp, err := static.Copy(withPayload{layerSig: s, payload: payload})
		if err != nil {
			tr.add(where, err.Error())
			continue
		}
		out = append(out, loaded{where: where, sig: cp})
	}
	return out
}

var (
	errTooLarge = errors.New("larger than allowed")
	errBudget   = errors.New("read budget of this verification exhausted")
)

// readBlob reads a layer's bytes, at most limit, checking the digest.
func (r *run) readBlob(l v1.Layer, want v1.Hash, declared, limit int64) ([]byte, error) {
	if declared > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, declared, limit)
	}
	if declared > r.budget {
		return nil, errBudget
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, min(limit, r.budget)+1))
	r.budget -= int64(len(b))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
	}
	if r.budget < 0 {
		return nil, errBudget
	}
	if want.Algorithm == "sha256" {
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != want.Hex {
			return nil, fmt.Errorf("content does not match digest %s", want)
		}
	}
	return b, nil
}

func (r *run) legacySignatures(ctx context.Context) {
	for _, l := range r.legacyLayers("sig", maxSigPayload, &r.sigTrace, nil) {
		s, fails := r.verifyLegacy(ctx, l.sig, false)
		if s != nil {
			r.sigs = append(r.sigs, *s)
			continue
		}
		r.sigTrace.add(l.where, strings.Join(fails, "; "))
	}
}

func (r *run) legacyAttestations(ctx context.Context) {
	wanted := map[string]bool{}
	for _, a := range r.unmet() {
		wanted[a.PredicateType] = true
	}
	// cosign attest records the predicate type in a layer annotation. It
	// is not signed, so it only serves to skip fetching attestations of
	// types nobody asked for; what counts is the signed statement.
	skip := func(ann map[string]string) bool {
		pt := ann["predicateType"]
		return pt != "" && !wanted[pt]
	}
	for _, l := range r.legacyLayers("att", maxBundleSize, &r.attTrace, skip) {
		s, fails := r.verifyLegacy(ctx, l.sig, true)
		if s == nil {
			r.attTrace.add(l.where, strings.Join(fails, "; "))
			continue
		}
		payload, _ := l.sig.Payload()
		st, err := statementFromEnvelope(payload)
		if err != nil {
			r.attTrace.add(l.where, "signature verified but "+err.Error())
			continue
		}
		r.statements = append(r.statements, attested{where: l.where, signer: s.signer(), stmt: st})
	}
}

// verifyLegacy tries every key and identity of the policy on one legacy
// signature (or attestation) and returns the first that verifies, or why
// each failed. The payload must name the image (SimpleClaimVerifier for
// signatures, the in-toto subject for attestations): without a claim
// verifier cosign accepts a signature copied from another image.
func (r *run) verifyLegacy(ctx context.Context, sig oci.Signature, att bool) (*Signature, []string) {
	claim := cosign.SimpleClaimVerifier
	if att {
		claim = cosign.IntotoSubjectClaimVerifier
	}
	check := func(co *cosign.CheckOpts) error {
		co.ClaimVerifier = claim
		// Never look anything up online: a signature without an
		// embedded Rekor bundle fails when the tlog is required.
		co.Offline = true
		var err error
		if att {
			_, err = cosign.VerifyBlobAttestation(ctx, sig, r.hash, co)
		} else {
			_, err = cosign.VerifyImageSignature(ctx, sig, r.hash, co)
		}
		return err
	}
	rb, _ := sig.Bundle()
	var fails []string
	for _, k := range r.p.keys {
		err := check(&cosign.CheckOpts{
			SigVerifier:     k.verifier,
			IgnoreTlog:      r.p.ignoreTlog,
			TrustedMaterial: r.p.trusted,
		})
		if err == nil {
			s := &Signature{Format: FormatLegacyTag, Key: k.fp}
			if !r.p.ignoreTlog && rb != nil {
				s.TlogTime = time.Unix(rb.Payload.IntegratedTime, 0).UTC()
			}
			return s, nil
		}
		why := err.Error()
		if !r.p.ignoreTlog && rb == nil {
			why = "no transparency-log entry on the signature and the policy requires one: " + why
		}
		fails = append(fails, "key "+k.fp+": "+clip(why, maxReason))
	}
	if len(r.p.identities) > 0 {
		cert, err := sig.Cert()
		switch {
		case err != nil:
			fails = append(fails, "identities: "+clip(err.Error(), maxReason))
		case cert == nil:
			fails = append(fails, "identities: no certificate on the signature (not keyless)")
		default:
			for _, id := range r.p.identities {
				err := check(&cosign.CheckOpts{
					Identities:      []cosign.Identity{id.cosign()},
					TrustedMaterial: r.p.trusted,
				})
				if err == nil {
					s := &Signature{Format: FormatLegacyTag}
					if sum, err := certificate.SummarizeCertificate(cert); err == nil {
						s.Subject, s.Issuer = sum.SubjectAlternativeName, sum.Issuer
					}
					if rb != nil {
						s.TlogTime = time.Unix(rb.Payload.IntegratedTime, 0).UTC()
					}
					return s, nil
				}
				fails = append(fails, "identity "+id.label+": "+clip(err.Error(), maxReason))
			}
		}
	}
	return nil, fails
}

func (id identityRoot) cosign() cosign.Identity {
	return cosign.Identity{Subject: id.subject, SubjectRegExp: id.subjectRE, Issuer: id.issuer, IssuerRegExp: id.issuerRE}
}

// signer names who made a signature, for evidence.
func (s *Signature) signer() string {
	if s.Key != "" {
		return "key " + s.Key
	}
	return "identity " + s.Subject + " (" + s.Issuer + ")"
}

// statementFromEnvelope extracts the in-toto statement from a DSSE
// envelope (the payload of a legacy .att layer).
func statementFromEnvelope(envelope []byte) (*intoto.Statement, error) {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
	}
	if err := json.NewDecoder(bytes.NewReader(envelope)).Decode(&env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if env.PayloadType != intoto.PayloadType {
		return nil, fmt.Errorf("envelope payload type %q, want %q", env.PayloadType, intoto.PayloadType)
	}
	raw, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("envelope payload: %w", err)
	}
	return parseStatement(raw)
}
