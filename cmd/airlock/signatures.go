package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/proxy/oci"
	"github.com/airlock-proxy/airlock/verify/cosign"
)

// signatures holds the compiled signature policy of each oci.policies
// entry (nil where none is required) and verifies with cosign.
type signatures struct {
	v        *cosign.Verifier
	policies []oci.SignaturePolicy
}

func newSignatures(cfg config.OCI) (*signatures, error) {
	var trusted root.TrustedMaterial
	if cfg.TrustedRoot != "" {
		tr, err := cosign.LoadTrustedRoot(cfg.TrustedRoot)
		if err != nil {
			return nil, fmt.Errorf("oci.trusted_root: %w", err)
		}
		trusted = tr
	}
	s := &signatures{v: cosign.New(cosign.Options{}), policies: make([]oci.SignaturePolicy, len(cfg.Policies))}
	for i, p := range cfg.Policies {
		if p.Require != "signature" {
			continue
		}
		pc := cosign.PolicyConfig{IgnoreTlog: p.IgnoreTlog}
		for j, k := range p.Keys {
			pem, err := os.ReadFile(k)
			if err != nil {
				return nil, fmt.Errorf("oci.policies[%d].keys[%d]: %w", i, j, err)
			}
			pc.Keys = append(pc.Keys, pem)
		}
		for _, id := range p.Identities {
			pc.Identities = append(pc.Identities, cosign.Identity{
				Subject: id.Subject, SubjectRegexp: id.SubjectRegexp, Issuer: id.Issuer, IssuerRegexp: id.IssuerRegexp,
			})
		}
		for _, a := range p.Attestations {
			pc.Attestations = append(pc.Attestations, cosign.Attestation{
				PredicateType: a.PredicateType, BuilderID: a.BuilderID, SourceRepository: a.SourceRepository,
			})
		}
		cp, err := cosign.NewPolicy(pc, trusted)
		if err != nil {
			return nil, fmt.Errorf("oci.policies[%d]: %w", i, err)
		}
		s.policies[i] = cp
	}
	return s, nil
}

// Verify adapts cosign's answer to the front's. Only a cosign policy built
// here is accepted, so a policy from elsewhere cannot pass unchecked.
func (s *signatures) Verify(ctx context.Context, ref name.Digest, p oci.SignaturePolicy, opts ...remote.Option) (oci.VerifyResult, error) {
	cp, ok := p.(*cosign.Policy)
	if !ok || cp == nil {
		return oci.VerifyResult{}, fmt.Errorf("no signature policy for %s", ref)
	}
	res, err := s.v.Verify(ctx, ref, cp, opts...)
	if err != nil {
		return oci.VerifyResult{}, err
	}
	out := oci.VerifyResult{Verified: res.Verified, Findings: res.Findings}
	for _, sig := range res.Signatures {
		signer := sig.Key
		if sig.Subject != "" {
			signer = sig.Subject + " (" + sig.Issuer + ")"
		}
		out.Signers = append(out.Signers, sig.Format+": "+signer)
		if !sig.TlogTime.IsZero() && (out.SignedAt.IsZero() || sig.TlogTime.Before(out.SignedAt)) {
			out.SignedAt = sig.TlogTime
		}
	}
	return out, nil
}
