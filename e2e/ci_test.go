package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/proxy/gomod/gomodtest"
)

// ciAirlock starts Airlock with an admin token and a token of scope ci
// (returned), and the given config after the admin section.
func ciAirlock(t *testing.T, config string) (*instance, string) {
	t.Helper()
	data := t.TempDir()
	secrets := t.TempDir()
	const adminSecret, ciSecret = "alk_e2e-admin", "alk_e2e-release-job"
	if err := os.WriteFile(filepath.Join(data, "admin-token"), []byte(adminSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "ci-token"), []byte(ciSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startAirlockOn(t, fmt.Sprintf(`
admin:
  tokens:
    - {name: ops, scopes: [admin], file: %q}
    - {name: release-job, scopes: [ci], file: %q, namespaces: ["go:example.com/acme/*", "oci:up/acme/*"]}
%s`, filepath.Join(data, "admin-token"), filepath.Join(secrets, "ci-token"), config), data), ciSecret
}

// ciCLI runs `airlock ci …` with the ci token.
func (inst *instance) ciCLI(t *testing.T, token string, args ...string) (string, error) {
	t.Helper()
	return inst.cli(t, append(append([]string{"ci"}, args...), "--token", token)...)
}

// zipHash is the h1: hash of a module version's zip, from its go.sum lines.
func zipHash(t *testing.T, up *gomodtest.Upstream, path, version string) string {
	t.Helper()
	for _, line := range strings.Split(up.GoSum(path, version), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[1] == version {
			return f[2]
		}
	}
	t.Fatalf("no zip hash for %s@%s in %q", path, version, up.GoSum(path, version))
	return ""
}

// TestCIRecordsGo: in a namespace built by CI, the go command gets only
// what CI recorded. A version whose zip differs from its record is held
// with both hashes; one with no record is held until its record arrives,
// which releases it.
func TestCIRecordsGo(t *testing.T) {
	up := gomodtest.New(t,
		lib("example.com/acme/lib", "v1.0.0", "func V() int { return 1 }\n"),
		lib("example.com/acme/lib", "v1.1.0", "func V() int { return 2 }\n"),
		lib("example.com/acme/lib", "v1.2.0", "func V() int { return 3 }\n"),
	)
	inst, ciToken := ciAirlock(t, fmt.Sprintf(`
go:
  upstream: %s
  sumdb: {key: %s}
  list_ttl: 0s
policy:
  cooldown: 0s
  rules:
    - {match: "go:example.com/acme/*", ci: true}
`, up.URL, up.VerifierKey))

	// CI built v1.0.0 and v1.1.0; what upstream serves as v1.1.0 is not
	// what CI built (a rebuilt tag, a compromised proxy…).
	if out, err := inst.ciCLI(t, ciToken, "record", "go:example.com/acme/lib@v1.0.0", zipHash(t, up, "example.com/acme/lib", "v1.0.0"),
		"--builder", "https://github.com/acme/lib/.github/workflows/release.yml@refs/tags/v1.0.0"); err != nil || !strings.Contains(out, "recorded go:example.com/acme/lib@v1.0.0") {
		t.Fatalf("ci record v1.0.0: %v\n%s", err, out)
	}
	built := "h1:" + strings.Repeat("A", 43) + "="
	if out, err := inst.ciCLI(t, ciToken, "record", "go:example.com/acme/lib@v1.1.0", built); err != nil {
		t.Fatalf("ci record v1.1.0: %v\n%s", err, out)
	}
	// The token records its own namespaces only.
	if out, err := inst.ciCLI(t, ciToken, "record", "go:example.com/other/lib@v1.0.0", built); err == nil || !strings.Contains(out, "may record CI builds of") {
		t.Errorf("a record outside the token's namespaces: %v\n%s", err, out)
	}
	// The ci token cannot release anything.
	if out, err := inst.ciCLI(t, ciToken, "show", "go:example.com/acme/lib@v1.0.0"); err != nil || !strings.Contains(out, "release.yml") {
		t.Errorf("ci show: %v\n%s", err, out)
	}
	if out, err := inst.cli(t, "quarantine", "list", "--token", ciToken); err == nil || !strings.Contains(out, "scope") {
		t.Errorf("a ci token listed the quarantine: %v\n%s", err, out)
	}

	g := newGoClient(t, inst, up)
	dir := mainModule(t, []string{"example.com/acme/lib v1.0.0"}, "example.com/acme/lib")
	if out, err := g.run(dir, "build", "./..."); err != nil {
		t.Fatalf("go build with the recorded v1.0.0: %v\n%s", err, out)
	}
	out, err := g.run(dir, "get", "example.com/acme/lib@v1.1.0")
	if err == nil || !strings.Contains(out, "ci-digest") || !strings.Contains(out, "differs from the one our CI built") {
		t.Errorf("go get v1.1.0 (digest differs from its record): %v\n%s", err, out)
	}
	q := recordFor(t, inst, "example.com/acme/lib", "v1.1.0")
	if !hasFinding(q, "ci-digest") || q.Findings[0].Evidence["expected"] != built || q.Findings[0].Evidence["actual"] != zipHash(t, up, "example.com/acme/lib", "v1.1.0") {
		t.Errorf("v1.1.0 record lacks both hashes: %+v", q)
	}

	// explain shows the same, from the checksum database's hash, without
	// downloading anything.
	if out, err := inst.cli(t, "explain", "go:example.com/acme/lib@v1.1.0"); err != nil ||
		!strings.Contains(out, "ci-digest") || !strings.Contains(out, "differs from the one our CI built") || !strings.Contains(out, built) {
		t.Errorf("airlock explain go:…@v1.1.0: %v\n%s", err, out)
	}

	// v1.2.0 is fetched before CI recorded it: held, then released by
	// its record.
	out, err = g.run(dir, "get", "example.com/acme/lib@v1.2.0")
	if err == nil || !strings.Contains(out, "not built by our CI") {
		t.Fatalf("go get v1.2.0 without a record: %v\n%s", err, out)
	}
	held := recordFor(t, inst, "example.com/acme/lib", "v1.2.0")
	out, err = inst.ciCLI(t, ciToken, "record", "go:example.com/acme/lib@v1.2.0", zipHash(t, up, "example.com/acme/lib", "v1.2.0"))
	if err != nil || !strings.Contains(out, "released "+held.ID) {
		t.Fatalf("ci record v1.2.0 did not release %s: %v\n%s", held.ID, err, out)
	}
	if out, err := g.run(dir, "get", "example.com/acme/lib@v1.2.0"); err != nil {
		t.Errorf("go get v1.2.0 after its record: %v\n%s", err, out)
	}

	// Records are immutable: another digest is refused and audited.
	out, err = inst.ciCLI(t, ciToken, "record", "go:example.com/acme/lib@v1.1.0", zipHash(t, up, "example.com/acme/lib", "v1.1.0"))
	if err == nil || !strings.Contains(out, "REFUSED") || !strings.Contains(out, built) {
		t.Errorf("conflicting record: %v\n%s", err, out)
	}
	if out, err := inst.cli(t, "audit", "--json"); err != nil || !strings.Contains(out, "ci-record-conflict") || !strings.Contains(out, "token:release-job") {
		t.Errorf("audit lacks the conflict: %v\n%s", err, out)
	}
	if q, _ := json.Marshal(recordFor(t, inst, "example.com/acme/lib", "v1.1.0")); !strings.Contains(string(q), `"held"`) {
		t.Errorf("v1.1.0 released by a refused record: %s", q)
	}
}

// TestCIRecordsOCI: an image tag of a CI namespace must resolve to the
// digest CI pushed; records come from goreleaser's artifacts.json.
func TestCIRecordsOCI(t *testing.T) {
	up := newOCIUpstream(t)
	built, rebuilt, late := ociImage(t), ociImage(t), ociImage(t)
	up.push(t, "acme/app:1.0", built)
	up.push(t, "acme/app:1.1", rebuilt)
	up.push(t, "acme/app:1.2", late)
	inst, ciToken := ciAirlock(t, fmt.Sprintf(`
oci:
  upstreams: [{name: up, url: "http://%s"}]
  tag_ttl: 0s
  policies:
    - {match: "**", require: none}
policy:
  cooldown: 0s
  rules:
    - {match: "oci:up/acme/*", ci: true}
`, up.Host))

	// goreleaser pushed 1.0 and 1.1; upstream's 1.1 is not what it pushed.
	dist := t.TempDir()
	other := ociImage(t)
	arts := []map[string]any{
		{"name": up.Host + "/acme/app:1.0", "path": up.Host + "/acme/app:1.0", "type": "Published Docker Image", "extra": map[string]string{"Digest": digestOf(t, built)}},
		{"name": up.Host + "/acme/app:1.1", "path": up.Host + "/acme/app:1.1", "type": "Published Docker Image", "extra": map[string]string{"Digest": digestOf(t, other)}},
		{"name": "app_1.0_linux_amd64.tar.gz", "path": "dist/app_1.0_linux_amd64.tar.gz", "type": "Archive"},
	}
	b, _ := json.Marshal(arts)
	if err := os.WriteFile(filepath.Join(dist, "artifacts.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, "metadata.json"), []byte(`{"project_name":"app","tag":"v1.0","commit":"0123456789abcdef0123456789abcdef01234567"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := inst.ciCLI(t, ciToken, "import", "goreleaser", dist, "--registry", up.Host+"=up")
	if err != nil || !strings.Contains(out, "recorded oci:up/acme/app:1.0 "+digestOf(t, built)) || !strings.Contains(out, "skipped app_1.0_linux_amd64.tar.gz") {
		t.Fatalf("ci import goreleaser: %v\n%s", err, out)
	}
	if out, err := inst.ciCLI(t, ciToken, "show", "oci:up/acme/app:1.0"); err != nil || !strings.Contains(out, "0123456789abcdef") || !strings.Contains(out, "goreleaser") {
		t.Errorf("ci show: commit or source missing: %v\n%s", err, out)
	}

	ref := inst.host() + "/up/acme/app"
	dirOut, out, err := cranePull(t, ref+":1.0")
	if err != nil {
		t.Fatalf("crane pull of the recorded 1.0: %v\n%s", err, out)
	}
	sameLayers(t, "crane", up, "acme/app", built, dirOut)
	_, out, err = skopeoCopy(t, ref+":1.1")
	if err == nil || !strings.Contains(strings.ToLower(out), "denied") || !strings.Contains(out, "differs from the one our CI built") {
		t.Errorf("skopeo copy of 1.1 (digest differs from the record): %v\n%s", err, out)
	}
	q := recordFor(t, inst, "up/acme/app", digestOf(t, rebuilt))
	if !hasFinding(q, "ci-digest") || q.Findings[0].Evidence["expected"] != digestOf(t, other) {
		t.Errorf("1.1 record lacks the recorded digest: %+v", q)
	}

	if out, err := inst.cli(t, "explain", "oci:up/acme/app:1.1"); err != nil ||
		!strings.Contains(out, "ci-digest") || !strings.Contains(out, digestOf(t, rebuilt)) || !regexp.MustCompile(`Verdict:\s+quarantine`).MatchString(out) {
		t.Errorf("airlock explain oci:up/acme/app:1.1: %v\n%s", err, out)
	}

	// 1.2 is pulled before its record: held, then released by it.
	_, out, err = cranePull(t, ref+":1.2")
	if err == nil || !strings.Contains(out, "not built by our CI") {
		t.Fatalf("crane pull of 1.2 without a record: %v\n%s", err, out)
	}
	held := recordFor(t, inst, "up/acme/app", digestOf(t, late))
	out, err = inst.ciCLI(t, ciToken, "record", "oci:up/acme/app:1.2", digestOf(t, late))
	if err != nil || !strings.Contains(out, "released "+held.ID) {
		t.Fatalf("ci record 1.2 did not release %s: %v\n%s", held.ID, err, out)
	}
	if _, out, err := cranePull(t, ref+":1.2"); err != nil {
		t.Errorf("crane pull of 1.2 after its record: %v\n%s", err, out)
	}
}
