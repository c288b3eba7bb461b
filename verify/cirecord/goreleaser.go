package cirecord

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// goreleaser's dist/artifacts.json is a JSON array of the artifacts of a
// run: {"name", "path", "goos", "goarch", …, "type", "extra"}, where type
// is the String of goreleaser's internal/artifact.Type ("Archive",
// "Binary", "Docker Image", "Published Docker Image", "Docker Manifest",
// "Checksum", "Source", …) and extra a map whose "Digest" is the digest a
// pushed image or manifest got from the registry. The shape is
// goreleaser's internal/artifact/artifact.go and its documentation page
// www/docs/customization/artifacts.md; the docker pipes (internal/pipe/
// docker, buildkit, docker/v2) set extra.Digest from the push output.
// checksums.txt is "<hex>  <name>" per line, sha256 unless the project
// configures another algorithm.

// Limits on the inputs. A real artifacts.json is a few hundred entries.
const (
	maxArtifactsJSON = 32 << 20
	maxChecksums     = 4 << 20
)

// Goreleaser artifact types this package reads.
const (
	TypePublishedDockerImage = "Published Docker Image"
	TypeDockerManifest       = "Docker Manifest"
	typeDockerImage          = "Docker Image"
)

// GoreleaserOptions says how goreleaser's artifacts become records.
type GoreleaserOptions struct {
	// Registries maps a registry host, or a host and repository prefix,
	// to the Airlock OCI upstream name that fronts it: {"ghcr.io":
	// "ghcr"} turns ghcr.io/acme/app:1.2.3 into oci:ghcr/acme/app:1.2.3.
	// The longest matching prefix wins; Docker Hub images are
	// "docker.io/…". Images on unmapped registries are skipped.
	Registries map[string]string
	// Builder and Commit go into every record: artifacts.json names
	// neither (the commit is in dist/metadata.json, the workflow in the
	// CI's environment), so the caller supplies them.
	Builder, Commit string
	// ImageTypes are the artifact types read as pushed images; nil means
	// TypePublishedDockerImage and TypeDockerManifest. "Docker Image" is
	// not among them: in current goreleaser it is an image built but not
	// pushed, whose Digest (when set at all) is a local build's, not
	// the manifest digest a registry serves; goreleaser before the
	// "Published Docker Image" type (v1.x) used "Docker Image" for both,
	// and a caller who knows its version pushes may add it here. The
	// dockers_v2 pipe's type can be added the same way.
	ImageTypes []string
}

// Skipped is an artifact that gave no record, and why.
type Skipped struct {
	Name, Type, Reason string
	// Checksum is checksums.txt's hex digest of the artifact, if listed.
	Checksum string
}

// GoreleaserImport is the outcome of ImportGoreleaser.
type GoreleaserImport struct {
	Records []Record
	Skipped []Skipped
}

type grArtifact struct {
	Name  string                     `json:"name"`
	Path  string                     `json:"path"`
	Type  string                     `json:"type"`
	Extra map[string]json.RawMessage `json:"extra"`
}

// FromGoreleaser reads goreleaser's dist/artifacts.json and checksums.txt
// into records: ImportGoreleaser without the list of what was skipped.
func FromGoreleaser(artifactsJSON, checksums []byte, opt GoreleaserOptions) ([]Record, error) {
	imp, err := ImportGoreleaser(artifactsJSON, checksums, opt)
	if err != nil {
		return nil, err
	}
	return imp.Records, nil
}

// ImportGoreleaser reads goreleaser's dist/artifacts.json and (optional,
// may be nil) checksums.txt into records, and lists what it skipped.
//
// Only pushed container images and manifests become records (OCI, named
// by Registries, versioned by tag, with the pushed digest). Go modules
// are not in artifacts.json at all: a module version is a git tag whose
// zip the go command and the module proxy make, and goreleaser neither
// makes that zip nor records its h1 hash (its "Source" archive is a git
// archive, another file). Archives, binaries, packages and the like have
// no ecosystem Airlock fronts. Those are listed in Skipped, with their
// checksums.txt digest where listed.
//
// checksums.txt is cross-checked with the artifacts' extra.Checksum
// ("algo:hex"): an artifact whose two digests differ makes the whole
// import fail, as do malformed inputs, a pushed image with a malformed
// reference or digest, and two digests for one tag. No partial result is
// returned with an error.
func ImportGoreleaser(artifactsJSON, checksums []byte, opt GoreleaserOptions) (GoreleaserImport, error) {
	if len(artifactsJSON) > maxArtifactsJSON {
		return GoreleaserImport{}, fmt.Errorf("goreleaser artifacts.json: %d bytes, limit %d", len(artifactsJSON), maxArtifactsJSON)
	}
	sums, err := parseChecksums(checksums)
	if err != nil {
		return GoreleaserImport{}, err
	}
	var arts []grArtifact
	if err := json.Unmarshal(artifactsJSON, &arts); err != nil {
		return GoreleaserImport{}, fmt.Errorf("goreleaser artifacts.json: %w", err)
	}
	if arts == nil {
		return GoreleaserImport{}, errors.New("goreleaser artifacts.json: not an array of artifacts")
	}
	imageTypes := opt.ImageTypes
	if imageTypes == nil {
		imageTypes = []string{TypePublishedDockerImage, TypeDockerManifest}
	}
	var imp GoreleaserImport
	byKey := map[string]int{}
	for i, a := range arts {
		if a.Name == "" {
			return GoreleaserImport{}, fmt.Errorf("goreleaser artifacts.json: artifact %d has no name", i)
		}
		sum := sums[a.Name]
		if err := crossCheck(a, sum); err != nil {
			return GoreleaserImport{}, err
		}
		if !slices.Contains(imageTypes, a.Type) {
			imp.Skipped = append(imp.Skipped, Skipped{Name: a.Name, Type: a.Type, Reason: skipReason(a.Type), Checksum: sum})
			continue
		}
		digest, err := extraString(a, "Digest")
		if err != nil {
			return GoreleaserImport{}, err
		}
		ref, err := parseImageRef(a.Name, true)
		if err != nil {
			return GoreleaserImport{}, fmt.Errorf("goreleaser artifact %q (%s): %w", clip(a.Name), a.Type, err)
		}
		if digest == "" && ref.digest == "" {
			imp.Skipped = append(imp.Skipped, Skipped{Name: a.Name, Type: a.Type, Reason: "no digest: not pushed"})
			continue
		}
		art, d, err := imageArtifact(opt.Registries, ref, digest)
		if errors.Is(err, errUnmappedRegistry) {
			imp.Skipped = append(imp.Skipped, Skipped{Name: a.Name, Type: a.Type, Reason: "registry " + ref.registry + " is not mapped to an Airlock upstream"})
			continue
		}
		if err != nil {
			return GoreleaserImport{}, fmt.Errorf("goreleaser artifact %q (%s): %w", clip(a.Name), a.Type, err)
		}
		r := Record{Artifact: art, Digest: d, Builder: opt.Builder, Commit: opt.Commit, Source: SourceGoreleaser}
		if err := r.Validate(); err != nil {
			return GoreleaserImport{}, fmt.Errorf("goreleaser artifact %q (%s): %w", clip(a.Name), a.Type, err)
		}
		key := art.Key()
		if j, ok := byKey[key]; ok {
			// One tag can appear twice (two docker configs or pipes
			// naming it): agreeing entries are one record, disagreeing
			// ones mean the tag moved during the run.
			if imp.Records[j].Digest != d {
				return GoreleaserImport{}, fmt.Errorf("goreleaser artifacts.json: %s has two digests, %s and %s", key, imp.Records[j].Digest, d)
			}
			continue
		}
		byKey[key] = len(imp.Records)
		imp.Records = append(imp.Records, r)
	}
	return imp, nil
}

func skipReason(typ string) string {
	switch typ {
	case typeDockerImage:
		return "image not known to be pushed: its digest, if any, may be a local build's rather than the registry manifest's (see GoreleaserOptions.ImageTypes)"
	case "Source":
		return "a git archive of the tag, not the Go module zip: its digest is not the module's h1"
	case "Checksum":
		return "checksums file"
	case "NPM Package":
		return "npm package: artifacts.json gives neither the package name and version nor the sha512 dist.integrity"
	case "Signature", "Certificate", "SBOM":
		return "metadata about other artifacts"
	}
	return "no ecosystem Airlock fronts for this artifact type"
}

// extraString returns extra[key] as a string ("" when absent or null).
func extraString(a grArtifact, key string) (string, error) {
	raw, ok := a.Extra[key]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("goreleaser artifact %q: extra.%s is not a string", clip(a.Name), key)
	}
	return s, nil
}

// crossCheck compares an artifact's extra.Checksum ("sha256:hex") with
// its checksums.txt line, when both exist and use the same algorithm
// (judged by length: checksums.txt does not say which it used).
func crossCheck(a grArtifact, sum string) error {
	c, err := extraString(a, "Checksum")
	if err != nil || c == "" || sum == "" {
		return err
	}
	_, h, ok := strings.Cut(c, ":")
	if !ok {
		return fmt.Errorf("goreleaser artifact %q: extra.Checksum %q is not algorithm:hex", clip(a.Name), clip(c))
	}
	h = strings.ToLower(h)
	if len(h) == len(sum) && h != sum {
		return fmt.Errorf("goreleaser artifact %q: artifacts.json says %s, checksums.txt %s", clip(a.Name), clip(c), sum)
	}
	return nil
}

// parseChecksums reads checksums.txt: "<hex>  <name>" lines, as
// goreleaser and sha256sum write them (a "*" before the name is
// sha256sum's binary-mode mark).
func parseChecksums(data []byte) (map[string]string, error) {
	if len(data) > maxChecksums {
		return nil, fmt.Errorf("goreleaser checksums.txt: %d bytes, limit %d", len(data), maxChecksums)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxChecksums)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		h, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		if !ok || name == "" || strings.TrimSpace(name) != name {
			return nil, fmt.Errorf("goreleaser checksums.txt line %d: want \"<hex>  <name>\"", n)
		}
		h = strings.ToLower(h)
		switch len(h) {
		case 8, 32, 40, 56, 64, 96, 128: // crc32, md5, sha1, sha224, sha256, sha384, sha512 (and sha3/blake2 of those sizes)
		default:
			return nil, fmt.Errorf("goreleaser checksums.txt line %d: %d hex digits is no known digest size", n, len(h))
		}
		if !isLowerHex(h) {
			return nil, fmt.Errorf("goreleaser checksums.txt line %d: digest is not hex", n)
		}
		if old, dup := sums[name]; dup && old != h {
			return nil, fmt.Errorf("goreleaser checksums.txt line %d: %q listed twice with different digests", n, clip(name))
		}
		sums[name] = h
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("goreleaser checksums.txt: %w", err)
	}
	return sums, nil
}
