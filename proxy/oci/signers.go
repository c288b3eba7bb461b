package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// bucketSigners maps a repository to the identities whose signatures let
// its images in: what new-publisher compares a new image's signers with.
const bucketSigners = "oci-signers"

// maxSigners bounds a repository's list; a repository signed by more
// identities than that has no usual signer to compare with.
const maxSigners = 32

// signerID is a verifier's signer without its signature format: the same
// key or identity signs legacy tags and bundles alike.
func signerID(s string) string {
	if _, id, ok := strings.Cut(s, ": "); ok {
		return id
	}
	return s
}

// newSigner is the new-publisher finding of an image whose verified
// signers include none of the identities earlier images of the
// repository were admitted with: with a policy that trusts several keys,
// or identities by regexp (any workflow of an organisation), a signature
// from one never used before is how a compromised neighbour would sign.
// nil for the first signed image of a repository, or a known signer.
func (h *Handler) newSigner(ctx context.Context, t target, signers []string) (*verify.Finding, error) {
	if h.o.Checks.Mode == "" || len(signers) == 0 {
		return nil, nil
	}
	var known []string
	if _, err := h.getJSON(ctx, bucketSigners, t.key, &known); err != nil {
		return nil, err
	}
	if len(known) == 0 || len(known) >= maxSigners {
		return nil, nil // the first signed image, or no usual signer
	}
	var ids []string
	for _, s := range signers {
		id := signerID(s)
		if slices.Contains(known, id) {
			return nil, nil
		}
		ids = append(ids, id)
	}
	return &verify.Finding{Check: policy.CheckNewPublisher,
		Message:  fmt.Sprintf("signed by %s; earlier images of %s were signed by %s", strings.Join(ids, ", "), t.key, strings.Join(known, ", ")),
		Evidence: map[string]string{"signers": strings.Join(ids, ","), "previous_signers": strings.Join(known, ",")}}, nil
}

// rememberSigners adds the signers of an admitted image to its
// repository's list.
func (h *Handler) rememberSigners(ctx context.Context, t target, signers []string) error {
	if len(signers) == 0 {
		return nil
	}
	return h.update(ctx, bucketSigners, t.key, func(old []byte) ([]byte, bool, error) {
		var known []string
		if old != nil {
			if err := json.Unmarshal(old, &known); err != nil {
				known = nil // rebuilt from here on
			}
		}
		changed := false
		for _, s := range signers {
			if id := signerID(s); !slices.Contains(known, id) && len(known) < maxSigners {
				known, changed = append(known, id), true
			}
		}
		if !changed {
			return nil, false, nil
		}
		b, err := json.Marshal(known)
		return b, true, err
	})
}
