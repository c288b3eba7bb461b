package npmprov

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// trustedRootJSON is the sigstore public-good instance's trusted_root.json
// (Fulcio CAs, CT logs, rekor.sigstore.dev, the timestamp authority), as
// distributed by its TUF repository. This copy is the module cache's
// github.com/sigstore/sigstore-go@v1.4.0/examples/trusted-root-public-good.json,
// byte-identical to github.com/sigstore/sigstore@v1.10.3/pkg/tuf/repository/targets/trusted_root.json.
// It predates the Rekor v2 log (log2025-1): bundles logged only there do
// not verify against it.
//
// To refresh it, fetch the current trusted_root.json through sigstore's
// TUF repository (sigstore-go's root.FetchTrustedRoot, or `cosign
// initialize` and copy the trusted_root.json it caches under
// ~/.sigstore/root) over this file; TestDefaultTrustedRoot and
// TestRealAttestations check that it still verifies the real bundles in
// testdata.
//
//go:embed trusted_root.json
var trustedRootJSON []byte

// DefaultTrustedRootJSON returns the embedded public-good trusted root,
// e.g. to write into a config directory.
func DefaultTrustedRootJSON() []byte { return bytes.Clone(trustedRootJSON) }

// DefaultTrustedRoot parses the embedded public-good trusted root. Each
// call returns a fresh value.
func DefaultTrustedRoot() (root.TrustedMaterial, error) {
	tr, err := root.NewTrustedRootFromJSON(trustedRootJSON)
	if err != nil {
		return nil, fmt.Errorf("npmprov: embedded trusted root: %w", err)
	}
	return tr, nil
}

// LoadTrustedRoot reads a trusted_root.json (sigstore's
// application/vnd.dev.sigstore.trustedroot+json format).
func LoadTrustedRoot(path string) (root.TrustedMaterial, error) {
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("npmprov: loading trusted root %s: %w", path, err)
	}
	return tr, nil
}
