// Package verify produces evidence about artifacts: checksum-database
// lookups, signatures, anomaly checks, and the policy that turns the
// findings into a decision. It also defines the shared vocabulary for that
// evidence (Artifact, Finding, Decision) which storage and the HTTP fronts
// use, so that every ecosystem reports in the same terms.
package verify

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/module"
)

// Ecosystem names one of the package worlds Airlock fronts.
type Ecosystem string

// The ecosystems, spelled as they appear in artifact names ("go:…").
const (
	Go  Ecosystem = "go"
	NPM Ecosystem = "npm"
	OCI Ecosystem = "oci"
)

// Artifact identifies one version of one package in one ecosystem.
// Digest is optional: it is set where the bytes are known.
type Artifact struct {
	Ecosystem Ecosystem `json:"ecosystem"`
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	Digest    string    `json:"digest,omitempty"`
}

// String renders the artifact the way people type it: go:path@version,
// npm:@scope/name@1.2.3, oci:repo:tag or oci:repo@sha256:….
func (a Artifact) String() string {
	if a.Ecosystem == OCI && !strings.HasPrefix(a.Version, "sha256:") {
		return fmt.Sprintf("%s:%s:%s", a.Ecosystem, a.Name, a.Version)
	}
	return fmt.Sprintf("%s:%s@%s", a.Ecosystem, a.Name, a.Version)
}

// Key is the storage key of the artifact: its String without a digest.
func (a Artifact) Key() string { return a.String() }

// ErrInvalidArtifact is returned (wrapped) for names that do not parse.
var ErrInvalidArtifact = errors.New("invalid artifact name")

// ParseArtifact parses an artifact name as written by String. Names and
// versions are validated with each ecosystem's own rules so that a parsed
// artifact is safe to use as a storage key.
func ParseArtifact(s string) (Artifact, error) {
	eco, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Artifact{}, fmt.Errorf("%w %q: want ecosystem:name@version, e.g. go:github.com/gorilla/mux@v1.8.1", ErrInvalidArtifact, s)
	}
	switch Ecosystem(eco) {
	case Go:
		path, version, ok := strings.Cut(rest, "@")
		if !ok {
			return Artifact{}, fmt.Errorf("%w %q: missing @version", ErrInvalidArtifact, s)
		}
		if err := CheckGoModule(path, version); err != nil {
			return Artifact{}, fmt.Errorf("%w %q: %w", ErrInvalidArtifact, s, err)
		}
		return Artifact{Ecosystem: Go, Name: path, Version: version}, nil
	case NPM:
		// A scoped name starts with @, so the version separator is the last @.
		i := strings.LastIndex(rest, "@")
		if i <= 0 || i == len(rest)-1 {
			return Artifact{}, fmt.Errorf("%w %q: missing @version", ErrInvalidArtifact, s)
		}
		return Artifact{Ecosystem: NPM, Name: rest[:i], Version: rest[i+1:]}, nil
	case OCI:
		if name, dig, ok := strings.Cut(rest, "@"); ok {
			return Artifact{Ecosystem: OCI, Name: name, Version: dig, Digest: dig}, nil
		}
		i := strings.LastIndex(rest, ":")
		if i <= 0 || i == len(rest)-1 || strings.Contains(rest[i:], "/") {
			return Artifact{}, fmt.Errorf("%w %q: missing :tag or @digest", ErrInvalidArtifact, s)
		}
		return Artifact{Ecosystem: OCI, Name: rest[:i], Version: rest[i+1:]}, nil
	default:
		return Artifact{}, fmt.Errorf("%w %q: unknown ecosystem %q (want go, npm or oci)", ErrInvalidArtifact, s, eco)
	}
}

// CheckGoModule validates a module path and a canonical version exactly as
// the go command does.
func CheckGoModule(path, version string) error {
	if err := module.CheckPath(path); err != nil {
		return err
	}
	if err := module.Check(path, version); err != nil {
		return err
	}
	if module.CanonicalVersion(version) != version {
		return fmt.Errorf("version %q is not canonical", version)
	}
	return nil
}
