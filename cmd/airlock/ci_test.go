package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/airlock-proxy/airlock/proxy"
	"github.com/airlock-proxy/airlock/proxy/admin"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
	"github.com/airlock-proxy/airlock/verify/npmprov/npmprovtest"
	"github.com/airlock-proxy/airlock/verify/policy"
)

const ciSecret = "alk_test-ci"

// ciServer is the admin API with the real CI record store over bolt.
func ciServer(t *testing.T) (string, *ciRecords) {
	t.Helper()
	t.Setenv("AIRLOCK_URL", "")
	t.Setenv("AIRLOCK_TOKEN", "")
	meta := openMeta(t)
	ci := newCIRecords(meta, policy.Default(), time.Now, slog.New(slog.DiscardHandler))
	h := admin.New(meta, []admin.Token{{Name: "release", Scopes: []string{admin.ScopeCI}, Hash: admin.HashToken(ciSecret)}}, nil, admin.WithCIRecords(ci))
	srv := httptest.NewServer(proxy.New(proxy.Options{Admin: h}))
	t.Cleanup(srv.Close)
	return srv.URL, ci
}

// statement is SLSA v1 provenance for an npm tarball and a Go module,
// built from commit abab…; it returns the two subjects' digests in record
// form.
func statement() (stmt []byte, npmDigest, goDigest string) {
	tgz := sha512.Sum512([]byte("tarball"))
	zip := sha256.Sum256([]byte("zip"))
	stmt, _ = json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v1",
		"subject": []any{
			map[string]any{"name": "pkg:npm/%40acme/app@1.2.3", "digest": map[string]string{"sha512": hex.EncodeToString(tgz[:])}},
			map[string]any{"name": "pkg:golang/github.com/acme/app@v1.2.3", "digest": map[string]string{"goModuleH1": hex.EncodeToString(zip[:])}},
		},
		"predicateType": cirecord.PredicateSLSAv1,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
				"resolvedDependencies": []any{map[string]any{
					"uri": "git+https://github.com/acme/app@refs/tags/v1.2.3", "digest": map[string]string{"gitCommit": strings.Repeat("ab", 20)},
				}},
			},
			"runDetails": map[string]any{"builder": map[string]string{"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3"}},
		},
	})
	return stmt, "sha512-" + base64.StdEncoding.EncodeToString(tgz[:]), "h1:" + base64.StdEncoding.EncodeToString(zip[:])
}

// provenance writes the statement as a DSSE envelope signed by k, and k's
// public key; it returns their paths and the subjects' digests.
func provenance(t *testing.T, k *ecdsa.PrivateKey) (env, pub string, npmDigest, goDigest string) {
	t.Helper()
	stmt, npmDigest, goDigest := statement()
	typ := "application/vnd.in-toto+json"
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(typ), typ, len(stmt), stmt)
	h := sha256.Sum256(pae)
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"payloadType": typ, "payload": base64.StdEncoding.EncodeToString(stmt),
		"signatures": []any{map[string]string{"sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	dir := t.TempDir()
	env, pub = filepath.Join(dir, "provenance.intoto.jsonl"), filepath.Join(dir, "cosign.pub")
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	return env, pub, npmDigest, goDigest
}

// TestCIImportBundle: a sigstore bundle signed keylessly by the release
// workflow, verified against a trusted_root.json and the identity given
// on the command line.
func TestCIImportBundle(t *testing.T) {
	url, ci := ciServer(t)
	s := npmprovtest.New(t)
	stmt, _, goDigest := statement()
	b, err := s.SignProvenance(stmt, npmprovtest.Source{Repository: "github.com/acme/app", Workflow: ".github/workflows/release.yml",
		Ref: "refs/tags/v1.2.3", Commit: strings.Repeat("ab", 20)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bundle, rootFile := filepath.Join(dir, "attestation.sigstore.json"), filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(bundle, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootFile, s.TrustedRootJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"ci", "import", "bundle", bundle, "--trusted-root", rootFile, "--issuer", npmprovtest.GitHubIssuer, "--server", url, "--token", ciSecret}
	// Another organisation's identity: refused, nothing sent.
	if _, _, err := run(t, append(base, "--identity", "https://github.com/evil/app/.github/workflows/release.yml@refs/tags/v1.2.3")...); err == nil {
		t.Fatal("a bundle by another identity was imported")
	}
	if _, err := ci.Get(t.Context(), verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/app", Version: "v1.2.3"}); err == nil {
		t.Fatal("a record was stored from a bundle by another identity")
	}
	out, _, err := run(t, append(base, "--identity-regexp", `^https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v`)...)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	mustContain(t, "import", out, "recorded go:github.com/acme/app@v1.2.3 "+goDigest, "recorded npm:@acme/app@1.2.3")
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCIImportDSSE(t *testing.T) {
	url, ci := ciServer(t)
	k := newKey(t)
	env, pub, npmDigest, goDigest := provenance(t, k)
	ctx := t.Context()

	// --dry-run shows what would be recorded, with no server or token.
	out, _, err := run(t, "ci", "import", "dsse", env, "--key", pub, "--dry-run", "--server", "http://127.0.0.1:1")
	mustContain(t, "dry run", out, "would record npm:@acme/app@1.2.3 "+npmDigest, "would record go:github.com/acme/app@v1.2.3 "+goDigest)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}

	// Signed by another key: nothing is sent.
	_, otherPub, _, _ := provenance(t, newKey(t))
	if _, _, err := run(t, "ci", "import", "dsse", env, "--key", otherPub, "--server", url, "--token", ciSecret); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("import with the wrong key: %v", err)
	}
	if _, err := ci.Get(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: "@acme/app", Version: "1.2.3"}); err == nil {
		t.Fatal("a record was stored from an envelope that did not verify")
	}

	out, _, err = run(t, "ci", "import", "dsse", env, "--key", pub, "--server", url, "--token", ciSecret)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	mustContain(t, "import", out, "recorded npm:@acme/app@1.2.3 "+npmDigest, "recorded go:github.com/acme/app@v1.2.3 "+goDigest)
	r, err := ci.Get(ctx, verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/app", Version: "v1.2.3"})
	if err != nil || r.Source != cirecord.SourceInToto || r.Commit != strings.Repeat("ab", 20) || !strings.Contains(r.Builder, "release.yml") {
		t.Errorf("stored record %+v, %v", r, err)
	}
	out, _, err = run(t, "ci", "import", "dsse", env, "--key", pub, "--server", url, "--token", ciSecret)
	if err != nil || strings.Count(out, "already recorded") != 2 {
		t.Errorf("second import: %v\n%s", err, out)
	}

	// A conflicting record is refused, and the command fails.
	other := sha256.Sum256([]byte("another zip"))
	out, _, err = run(t, "ci", "record", "go:github.com/acme/app@v1.2.3", "h1:"+base64.StdEncoding.EncodeToString(other[:]), "--server", url, "--token", ciSecret)
	if err == nil || !strings.Contains(out, "REFUSED go:github.com/acme/app@v1.2.3") || !strings.Contains(out, goDigest) {
		t.Errorf("conflicting record: %v\n%s", err, out)
	}
}

func TestCIImportUsage(t *testing.T) {
	tests := [][]string{
		{"ci", "import", "dsse", "env.json"},                                                               // no --key
		{"ci", "import", "bundle", "b.json", "--identity", "x"},                                            // no issuer
		{"ci", "import", "bundle", "b.json", "--identity", "x", "--identity-regexp", "y", "--issuer", "z"}, // both subject forms
		{"ci", "import", "goreleaser", t.TempDir(), "--registry", "ghcr.io"},                               // no =upstream
		{"ci", "record", "go:example.com/a", "h1:x"},                                                       // no version
	}
	for _, args := range tests {
		_, _, err := run(t, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
