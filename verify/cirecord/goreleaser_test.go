package cirecord_test

import (
	"os"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
)

// testdata/goreleaser holds a release of "app" 1.2.3 shaped like
// goreleaser's dist/ output: artifacts.json as internal/artifact's
// Artifact marshals it (name, path, goos, goarch, goamd64, internal_type,
// type as Type.String(), extra; see goreleaser's
// internal/artifact/artifact.go, testdata/TestMarshalJSON.json.golden and
// www/docs/customization/artifacts.md), with binaries, archives (extra
// Checksum "sha256:<hex>"), the source archive, per-arch images pushed by
// the docker pipe ("Published Docker Image", extra Digest) and the
// docker_manifests index over them ("Docker Manifest", extra Digest), one
// more manifest on Docker Hub, the checksums file and an SBOM; and
// checksums.txt as goreleaser's checksum pipe writes it ("<hex>  <name>").
func fixture(t *testing.T) (artifacts, checksums []byte) {
	t.Helper()
	a, err := os.ReadFile("testdata/goreleaser/artifacts.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile("testdata/goreleaser/checksums.txt")
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

const (
	digestAMD64 = "sha256:450110b6d7772c7ebb3e5f0f12ab29b93c59794796cb90dea9bcc1ae747c1266"
	digestARM64 = "sha256:bf99cc48c70e7cb5e9eba2e8386e65185a262bf1dc46bbafce80fa28d7976fe5"
	digestIndex = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
	digestHub   = "sha256:08d33503ee27d4c13055d0cefec5e730be4ef2e41cd6cfce434936ec1e7c9d4b"
	builder     = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3"
)

func TestFromGoreleaser(t *testing.T) {
	arts, sums := fixture(t)
	opt := cirecord.GoreleaserOptions{Registries: map[string]string{"ghcr.io": "ghcr"}, Builder: builder, Commit: commit}
	imp, err := cirecord.ImportGoreleaser(arts, sums, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"oci:ghcr/acme/app:1.2.3-amd64": digestAMD64,
		"oci:ghcr/acme/app:1.2.3-arm64": digestARM64,
		"oci:ghcr/acme/app:1.2.3":       digestIndex,
		"oci:ghcr/acme/app:latest":      digestIndex,
	}
	if len(imp.Records) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(imp.Records), len(want), imp.Records)
	}
	for _, r := range imp.Records {
		if want[r.Artifact.Key()] != r.Digest {
			t.Errorf("record %s = %s, want %s", r.Artifact.Key(), r.Digest, want[r.Artifact.Key()])
		}
		if r.Builder != builder || r.Commit != commit || r.Source != cirecord.SourceGoreleaser || !r.Recorded.IsZero() {
			t.Errorf("record %+v", r)
		}
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
	}
	skipped := map[string]cirecord.Skipped{}
	for _, s := range imp.Skipped {
		skipped[s.Type+" "+s.Name] = s
	}
	for key, reason := range map[string]string{
		"Docker Manifest acme/app:1.2.3":             "registry docker.io is not mapped",
		"Source app_1.2.3_source.tar.gz":             "not the Go module zip",
		"Archive app_1.2.3_linux_amd64.tar.gz":       "no ecosystem",
		"Binary app":                                 "no ecosystem",
		"Checksum checksums.txt":                     "checksums file",
		"SBOM app_1.2.3_sbom.spdx.json":              "metadata",
		"Archive app_1.2.3_windows_arm64.zip":        "no ecosystem",
		"Published Docker Image nonexistent:1.2.3-x": "",
	} {
		s, ok := skipped[key]
		if reason == "" {
			if ok {
				t.Errorf("%s skipped", key)
			}
			continue
		}
		if !ok || !strings.Contains(s.Reason, reason) {
			t.Errorf("skipped[%s] = %+v, want reason with %q", key, s, reason)
		}
	}
	if s := skipped["Archive app_1.2.3_linux_amd64.tar.gz"]; s.Checksum != "88fb3a3a4327f864562c21b67baafac51a397b8e559839df51b458837a593716" {
		t.Errorf("skipped archive checksum %q", s.Checksum)
	}
	if n := len(imp.Records) + len(imp.Skipped); n != 20 {
		t.Errorf("%d artifacts accounted for, want all 20", n)
	}

	// Docker Hub mapped too, and a repository-prefix mapping wins over
	// the host one.
	opt.Registries = map[string]string{"ghcr.io": "ghcr", "ghcr.io/acme": "acme", "docker.io": "hub"}
	recs, err := cirecord.FromGoreleaser(arts, sums, opt)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, r := range recs {
		keys[r.Artifact.Key()] = r.Digest
	}
	if keys["oci:hub/acme/app:1.2.3"] != digestHub || keys["oci:acme/app:1.2.3"] != digestIndex || len(keys) != 5 {
		t.Errorf("records %v", keys)
	}

	// checksums.txt is optional.
	if _, err := cirecord.FromGoreleaser(arts, nil, opt); err != nil {
		t.Errorf("without checksums: %v", err)
	}
	// No registries: nothing maps, everything skipped, no error.
	imp, err = cirecord.ImportGoreleaser(arts, sums, cirecord.GoreleaserOptions{})
	if err != nil || len(imp.Records) != 0 {
		t.Errorf("no registries: %v, %+v", err, imp.Records)
	}
}

func TestFromGoreleaserCases(t *testing.T) {
	reg := map[string]string{"ghcr.io": "ghcr", "docker.io": "hub", "localhost:5000": "local"}
	d := digestIndex
	tests := []struct {
		name      string
		artifacts string
		checksums string
		opt       cirecord.GoreleaserOptions
		want      map[string]string // key → digest; nil with wantErr
		wantErr   string
	}{
		{"name with tag and digest",
			`[{"name":"ghcr.io/acme/app:1.0.0@` + d + `","type":"Docker Manifest","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{},
			map[string]string{"oci:ghcr/acme/app:1.0.0": d}, ""},
		{"name by digest only (ko)",
			`[{"name":"ghcr.io/acme/app@` + d + `","type":"Docker Manifest"}]`, "", cirecord.GoreleaserOptions{},
			map[string]string{"oci:ghcr/acme/app@" + d: d}, ""},
		{"name digest disagrees with extra",
			`[{"name":"ghcr.io/acme/app:1.0.0@` + d + `","type":"Docker Manifest","extra":{"Digest":"` + digestHub + `"}}]`, "", cirecord.GoreleaserOptions{},
			nil, "image names digest"},
		{"docker hub official image",
			`[{"name":"alpine:3.20","type":"Published Docker Image","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{},
			map[string]string{"oci:hub/library/alpine:3.20": d}, ""},
		{"registry with port",
			`[{"name":"localhost:5000/acme/app:1.0.0","type":"Published Docker Image","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{},
			map[string]string{"oci:local/acme/app:1.0.0": d}, ""},
		{"unpushed image skipped",
			`[{"name":"ghcr.io/acme/app:1.0.0","type":"Docker Image","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{},
			map[string]string{}, ""},
		{"Docker Image opted in (goreleaser v1)",
			`[{"name":"ghcr.io/acme/app:1.0.0","type":"Docker Image","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{ImageTypes: []string{"Docker Image"}},
			map[string]string{"oci:ghcr/acme/app:1.0.0": d}, ""},
		{"published without digest skipped",
			`[{"name":"ghcr.io/acme/app:1.0.0","type":"Published Docker Image","extra":{}}]`, "", cirecord.GoreleaserOptions{},
			map[string]string{}, ""},
		{"same tag twice agreeing",
			`[{"name":"ghcr.io/acme/app:1","type":"Docker Manifest","extra":{"Digest":"` + d + `"}},{"name":"ghcr.io/acme/app:1","type":"Docker Manifest","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{},
			map[string]string{"oci:ghcr/acme/app:1": d}, ""},
		{"same tag two digests",
			`[{"name":"ghcr.io/acme/app:1","type":"Docker Manifest","extra":{"Digest":"` + d + `"}},{"name":"ghcr.io/acme/app:1","type":"Docker Manifest","extra":{"Digest":"` + digestHub + `"}}]`, "", cirecord.GoreleaserOptions{},
			nil, "two digests"},
		{"malformed digest",
			`[{"name":"ghcr.io/acme/app:1","type":"Docker Manifest","extra":{"Digest":"sha256:abc"}}]`, "", cirecord.GoreleaserOptions{},
			nil, "not sha256"},
		{"digest not a string",
			`[{"name":"ghcr.io/acme/app:1","type":"Docker Manifest","extra":{"Digest":42}}]`, "", cirecord.GoreleaserOptions{},
			nil, "not a string"},
		{"uppercase repository",
			`[{"name":"ghcr.io/Acme/app:1","type":"Docker Manifest","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{},
			nil, "not a valid OCI repository"},
		{"image without tag or digest",
			`[{"name":"ghcr.io/acme/app","type":"Docker Manifest","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{},
			nil, "neither tag nor digest"},
		{"bad commit option",
			`[{"name":"ghcr.io/acme/app:1","type":"Docker Manifest","extra":{"Digest":"` + d + `"}}]`, "", cirecord.GoreleaserOptions{Commit: "HEAD"},
			nil, "commit"},
		{"checksum disagrees with artifacts.json",
			`[{"name":"a.tar.gz","type":"Archive","extra":{"Checksum":"sha256:` + strings.Repeat("a", 64) + `"}}]`, strings.Repeat("b", 64) + "  a.tar.gz\n", cirecord.GoreleaserOptions{},
			nil, "checksums.txt"},
		{"checksum of another algorithm not compared",
			`[{"name":"a.tar.gz","type":"Archive","extra":{"Checksum":"sha256:` + strings.Repeat("a", 64) + `"}}]`, strings.Repeat("b", 128) + "  a.tar.gz\n", cirecord.GoreleaserOptions{},
			map[string]string{}, ""},
		{"checksums line malformed", `[]`, "abc a.tar.gz\n", cirecord.GoreleaserOptions{}, nil, "checksums.txt line 1"},
		{"checksums not hex", `[]`, strings.Repeat("z", 64) + "  a\n", cirecord.GoreleaserOptions{}, nil, "not hex"},
		{"checksums name twice", `[]`, strings.Repeat("a", 64) + "  a\n" + strings.Repeat("b", 64) + "  a\n", cirecord.GoreleaserOptions{}, nil, "listed twice"},
		{"checksums sha256sum binary mark", `[]`, strings.Repeat("a", 64) + " *a\n\n", cirecord.GoreleaserOptions{}, map[string]string{}, ""},
		{"not an array", `{}`, "", cirecord.GoreleaserOptions{}, nil, "artifacts.json"},
		{"null", `null`, "", cirecord.GoreleaserOptions{}, nil, "not an array"},
		{"artifact without name", `[{"type":"Archive"}]`, "", cirecord.GoreleaserOptions{}, nil, "no name"},
		{"empty array", `[]`, "", cirecord.GoreleaserOptions{}, map[string]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := tt.opt
			opt.Registries = reg
			recs, err := cirecord.FromGoreleaser([]byte(tt.artifacts), []byte(tt.checksums), opt)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				t.Log(err)
				if recs != nil {
					t.Fatalf("records with an error: %+v", recs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range recs {
				got[r.Artifact.Key()] = r.Digest
				if r.Artifact.Ecosystem != verify.OCI {
					t.Errorf("record %+v", r)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("records %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("record %s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}
