package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
	"github.com/airlock-proxy/airlock/verify/npmprov"
)

// maxImportFile bounds a file ci import reads: artifacts.json is the
// largest, and cirecord bounds it again.
const maxImportFile = 64 << 20

// importFlags are shared by the import subcommands.
type importFlags struct {
	registries []string // host[/prefix]=upstream
	dryRun     bool
}

func (f *importFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.registries, "registry", nil, "map a registry host (or host/prefix) to the Airlock OCI upstream that fronts it, e.g. ghcr.io=ghcr (repeatable)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the records without sending them")
}

func (f *importFlags) registryMap() (map[string]string, error) {
	m := map[string]string{}
	for _, s := range f.registries {
		host, up, ok := strings.Cut(s, "=")
		if !ok || host == "" || up == "" {
			return nil, usageError{fmt.Errorf("--registry %q: want host=upstream, e.g. ghcr.io=ghcr", s)}
		}
		m[host] = up
	}
	return m, nil
}

// run sends the records, or prints them with --dry-run.
func (f *importFlags) run(ctx context.Context, g *globalFlags, w io.Writer, recs []cirecord.Record) error {
	if f.dryRun {
		for _, r := range recs {
			fmt.Fprintf(w, "would record %s %s\n", clean(r.Artifact.String()), clean(r.Digest))
		}
		return nil
	}
	c, err := newClient(g)
	if err != nil {
		return err
	}
	return sendRecords(ctx, c, g, w, recs)
}

func newCIImportCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Record what a release built, from goreleaser's output or signed in-toto provenance",
	}
	cmd.AddCommand(newCIImportGoreleaserCmd(g), newCIImportDSSECmd(g), newCIImportBundleCmd(g))
	return cmd
}

func newCIImportGoreleaserCmd(g *globalFlags) *cobra.Command {
	var f importFlags
	var checksums, builder, commit string
	cmd := &cobra.Command{
		Use:   "goreleaser DIST",
		Short: "Record the container images a goreleaser release pushed (DIST/artifacts.json)",
		Long: `Record the images and manifests a goreleaser release pushed, from
DIST/artifacts.json, cross-checked with the checksums file (DIST/*checksums.txt
when there is exactly one, or --checksums). Each pushed image tag becomes a
record oci:<upstream>/<repository>:<tag> with the digest the registry gave it;
--registry says which Airlock upstream fronts which registry. The commit
defaults to DIST/metadata.json's.

Go modules are not in goreleaser's output (their zip is made by the module
proxy from the git tag): record them with "airlock ci record" and the h1: line
of go.sum, or import SLSA provenance that names them.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			regs, err := f.registryMap()
			if err != nil {
				return err
			}
			dist := args[0]
			arts, err := readLimited(filepath.Join(dist, "artifacts.json"))
			if err != nil {
				return err
			}
			var sums []byte
			if checksums == "" {
				checksums, err = findChecksums(dist)
				if err != nil {
					return err
				}
			}
			if checksums != "" {
				if sums, err = readLimited(checksums); err != nil {
					return err
				}
			}
			if commit == "" {
				commit = metadataCommit(dist)
			}
			imp, err := cirecord.ImportGoreleaser(arts, sums, cirecord.GoreleaserOptions{Registries: regs, Builder: builder, Commit: commit})
			if err != nil {
				return err
			}
			for _, s := range imp.Skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "skipped %s (%s): %s\n", clean(s.Name), clean(s.Type), clean(s.Reason))
			}
			if len(imp.Records) == 0 {
				return errors.New("no pushed image in artifacts.json maps to an Airlock upstream (see --registry)")
			}
			return f.run(cmd.Context(), g, cmd.OutOrStdout(), imp.Records)
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&checksums, "checksums", "", "goreleaser's checksums file (default: the one DIST/*checksums.txt)")
	cmd.Flags().StringVar(&builder, "builder", "", "who built it (a workflow identity)")
	cmd.Flags().StringVar(&commit, "commit", "", "the source commit (default: DIST/metadata.json's)")
	return cmd
}

// inTotoFlags are the import subcommands' mapping of subjects.
type inTotoFlags struct {
	importFlags
	ecosystem    string
	skipUnmapped bool
}

func (f *inTotoFlags) bind(cmd *cobra.Command) {
	f.importFlags.bind(cmd)
	cmd.Flags().StringVar(&f.ecosystem, "ecosystem", "", "only record subjects of this ecosystem: go, npm or oci")
	cmd.Flags().BoolVar(&f.skipUnmapped, "skip-unmapped", false, "ignore subjects that name no artifact of ours (binaries, archives) instead of failing")
}

func (f *inTotoFlags) options() (cirecord.InTotoOptions, error) {
	regs, err := f.registryMap()
	if err != nil {
		return cirecord.InTotoOptions{}, err
	}
	switch verify.Ecosystem(f.ecosystem) {
	case "", verify.Go, verify.NPM, verify.OCI:
	default:
		return cirecord.InTotoOptions{}, usageError{fmt.Errorf("--ecosystem %q: want go, npm or oci", f.ecosystem)}
	}
	return cirecord.InTotoOptions{Ecosystem: verify.Ecosystem(f.ecosystem), Registries: regs, SkipUnmapped: f.skipUnmapped}, nil
}

const subjectHelp = `Subjects map to artifacts by name: pkg:npm/… and pkg:golang/… package URLs,
npm tarball names, and image references (with --registry to name the upstream).`

func newCIImportDSSECmd(g *globalFlags) *cobra.Command {
	var f inTotoFlags
	var keyFiles []string
	cmd := &cobra.Command{
		Use:   "dsse ENVELOPE...",
		Short: "Record the subjects of SLSA provenance in DSSE envelopes signed with a key",
		Long: `Verify each DSSE envelope (in-toto statement, SLSA provenance v0.2 or v1)
with one of the public keys (--key, PEM; ECDSA, Ed25519 or RSA, as cosign and
in-toto sign) and record each subject. Nothing is sent unless every envelope
verifies.

` + subjectHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keyFiles) == 0 {
				return usageError{errors.New("--key is required: the public key the provenance is signed with")}
			}
			var keys []crypto.PublicKey
			for _, p := range keyFiles {
				pem, err := readLimited(p)
				if err != nil {
					return err
				}
				k, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
				if err != nil {
					return fmt.Errorf("--key %s: %w", p, err)
				}
				keys = append(keys, k)
			}
			opt, err := f.options()
			if err != nil {
				return err
			}
			var recs []cirecord.Record
			for _, p := range args {
				env, err := readLimited(p)
				if err != nil {
					return err
				}
				rs, err := cirecord.FromDSSE(env, keys, opt)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				recs = append(recs, rs...)
			}
			return f.run(cmd.Context(), g, cmd.OutOrStdout(), recs)
		},
	}
	f.bind(cmd)
	cmd.Flags().StringArrayVar(&keyFiles, "key", nil, "PEM public key the envelopes are signed with (repeatable)")
	return cmd
}

func newCIImportBundleCmd(g *globalFlags) *cobra.Command {
	var f inTotoFlags
	var trustedRoot string
	var id cirecord.Identity
	cmd := &cobra.Command{
		Use:   "bundle BUNDLE...",
		Short: "Record the subjects of SLSA provenance in sigstore bundles signed keylessly",
		Long: `Verify each sigstore bundle (a DSSE envelope signed with a Fulcio
certificate, as GitHub's actions/attest-build-provenance and npm publish
--provenance make) against the trusted root (--trusted-root, default the
sigstore public-good root built into Airlock) and the signer identity: the
certificate subject (--identity or --identity-regexp) and OIDC issuer
(--issuer or --issuer-regexp). Then record each subject. Nothing is sent
unless every bundle verifies.

` + subjectHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (id.Subject == "") == (id.SubjectRegexp == "") || (id.Issuer == "") == (id.IssuerRegexp == "") {
				return usageError{errors.New("give the signer: exactly one of --identity and --identity-regexp, and one of --issuer and --issuer-regexp")}
			}
			var tm root.TrustedMaterial
			var err error
			if trustedRoot != "" {
				tm, err = npmprov.LoadTrustedRoot(trustedRoot)
			} else {
				tm, err = npmprov.DefaultTrustedRoot()
			}
			if err != nil {
				return fmt.Errorf("trusted root: %w", err)
			}
			opt, err := f.options()
			if err != nil {
				return err
			}
			var recs []cirecord.Record
			for _, p := range args {
				b, err := readLimited(p)
				if err != nil {
					return err
				}
				rs, err := cirecord.FromBundle(b, tm, []cirecord.Identity{id}, opt)
				if err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				recs = append(recs, rs...)
			}
			return f.run(cmd.Context(), g, cmd.OutOrStdout(), recs)
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&trustedRoot, "trusted-root", "", "sigstore trusted_root.json (default: the public-good root built in)")
	cmd.Flags().StringVar(&id.Subject, "identity", "", "the certificate subject, e.g. https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3")
	cmd.Flags().StringVar(&id.SubjectRegexp, "identity-regexp", "", "the certificate subject, as a regular expression")
	cmd.Flags().StringVar(&id.Issuer, "issuer", "", "the OIDC issuer, e.g. https://token.actions.githubusercontent.com")
	cmd.Flags().StringVar(&id.IssuerRegexp, "issuer-regexp", "", "the OIDC issuer, as a regular expression")
	return cmd
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxImportFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if len(b) > maxImportFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxImportFile)
	}
	return b, nil
}

// findChecksums returns DIST's one *checksums.txt, or "" when there is
// none; several are ambiguous.
func findChecksums(dist string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dist, "*checksums.txt"))
	if err != nil {
		return "", err
	}
	switch len(m) {
	case 0:
		return "", nil
	case 1:
		return m[0], nil
	default:
		return "", usageError{fmt.Errorf("%d checksums files in %s: pick one with --checksums", len(m), dist)}
	}
}

// metadataCommit is the commit goreleaser wrote into DIST/metadata.json,
// or "".
func metadataCommit(dist string) string {
	b, err := readLimited(filepath.Join(dist, "metadata.json"))
	if err != nil {
		return ""
	}
	var md struct {
		Commit string `json:"commit"`
	}
	if json.Unmarshal(b, &md) != nil {
		return ""
	}
	return md.Commit
}
