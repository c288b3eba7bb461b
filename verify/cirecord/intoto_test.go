package cirecord_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
	"github.com/airlock-proxy/airlock/verify/npmprov/npmprovtest"
)

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

func hexSHA512(seed string) string {
	h := sha512.Sum512([]byte(seed))
	return hex.EncodeToString(h[:])
}

func hexSHA256(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(h[:])
}

// slsaV1 is a SLSA v1 statement as GitHub's generators write it.
func slsaV1(subjects ...subject) []byte {
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       subjects,
		"predicateType": cirecord.PredicateSLSAv1,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
				"externalParameters": map[string]any{
					"workflow": map[string]string{"ref": "refs/tags/v1.2.3", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"},
				},
				"resolvedDependencies": []any{map[string]any{
					"uri":    "git+https://github.com/acme/app@refs/tags/v1.2.3",
					"digest": map[string]string{"gitCommit": commit},
				}},
			},
			"runDetails": map[string]any{
				"builder": map[string]string{"id": "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3"},
			},
		},
	})
	return b
}

var (
	npmSubject = subject{"pkg:npm/%40acme/app@1.2.3", map[string]string{"sha512": hexSHA512("npm")}}
	goSubject  = subject{"pkg:golang/github.com/acme/app@v1.2.3", map[string]string{"goModuleH1": hexSHA256("go")}}
	ociSubject = subject{"ghcr.io/acme/app", map[string]string{"sha256": hexSHA256("oci")}}
	binSubject = subject{"app_1.2.3_linux_amd64.tar.gz", map[string]string{"sha256": hexSHA256("bin")}}
)

func dsse(t testing.TB, payload []byte, sign func(pae []byte) []byte) []byte {
	t.Helper()
	typ := "application/vnd.in-toto+json"
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(typ), typ, len(payload), payload)
	b, _ := json.Marshal(map[string]any{
		"payloadType": typ,
		"payload":     base64.StdEncoding.EncodeToString(payload),
		"signatures":  []any{map[string]string{"keyid": "ci", "sig": base64.StdEncoding.EncodeToString(sign(pae))}},
	})
	return b
}

func ecdsaSigner(t testing.TB, k *ecdsa.PrivateKey) func([]byte) []byte {
	return func(pae []byte) []byte {
		h := sha256.Sum256(pae)
		sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func newECDSA(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var reg = map[string]string{"ghcr.io": "ghcr"}

func keysOf(rs []cirecord.Record) map[string]string {
	m := map[string]string{}
	for _, r := range rs {
		m[r.Artifact.Key()] = r.Digest
	}
	return m
}

func TestFromDSSE(t *testing.T) {
	key, other := newECDSA(t), newECDSA(t)
	good := dsse(t, slsaV1(npmSubject, goSubject, ociSubject), ecdsaSigner(t, key))
	recs, err := cirecord.FromDSSE(good, []crypto.PublicKey{&other.PublicKey, &key.PublicKey}, cirecord.InTotoOptions{Registries: reg})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"npm:@acme/app@1.2.3":             sri("npm"),
		"go:github.com/acme/app@v1.2.3":   h1("go"),
		"oci:ghcr/acme/app@" + sha("oci"): sha("oci"),
	}
	if got := keysOf(recs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	for _, r := range recs {
		if r.Builder != builder || r.Commit != commit || r.Source != cirecord.SourceInToto {
			t.Errorf("record %+v", r)
		}
	}

	tampered := func() []byte {
		var e map[string]any
		_ = json.Unmarshal(good, &e)
		p, _ := base64.StdEncoding.DecodeString(e["payload"].(string))
		p = []byte(strings.Replace(string(p), hexSHA512("npm"), hexSHA512("evil"), 1))
		e["payload"] = base64.StdEncoding.EncodeToString(p)
		b, _ := json.Marshal(e)
		return b
	}()
	sign := ecdsaSigner(t, key)
	pub := []crypto.PublicKey{&key.PublicKey}
	tests := []struct {
		name    string
		env     []byte
		keys    []crypto.PublicKey
		opt     cirecord.InTotoOptions
		want    map[string]string
		wantErr string
	}{
		{"wrong key", good, []crypto.PublicKey{&other.PublicKey}, cirecord.InTotoOptions{Registries: reg}, nil, "no signature verifies"},
		{"no keys", good, nil, cirecord.InTotoOptions{Registries: reg}, nil, "no keys"},
		{"tampered payload", tampered, pub, cirecord.InTotoOptions{Registries: reg}, nil, "no signature verifies"},
		{"unknown subject form", dsse(t, slsaV1(npmSubject, binSubject), sign), pub, cirecord.InTotoOptions{}, nil, "maps to no artifact"},
		{"unknown subject skipped", dsse(t, slsaV1(npmSubject, binSubject), sign), pub, cirecord.InTotoOptions{SkipUnmapped: true},
			map[string]string{"npm:@acme/app@1.2.3": sri("npm")}, ""},
		{"nothing maps", dsse(t, slsaV1(binSubject), sign), pub, cirecord.InTotoOptions{SkipUnmapped: true}, nil, "no subject maps"},
		{"unmapped registry", dsse(t, slsaV1(ociSubject), sign), pub, cirecord.InTotoOptions{}, nil, "maps to no artifact"},
		{"ecosystem filter", dsse(t, slsaV1(npmSubject, goSubject), sign), pub, cirecord.InTotoOptions{Ecosystem: verify.Go, SkipUnmapped: true},
			map[string]string{"go:github.com/acme/app@v1.2.3": h1("go")}, ""},
		{"unscoped at-sign scope", dsse(t, slsaV1(subject{"pkg:npm/@acme/app@1.2.3", map[string]string{"sha512": hexSHA512("npm")}}), sign), pub, cirecord.InTotoOptions{},
			map[string]string{"npm:@acme/app@1.2.3": sri("npm")}, ""},
		{"npm without sha512", dsse(t, slsaV1(subject{"pkg:npm/app@1.2.3", map[string]string{"sha256": hexSHA256("x")}}), sign), pub, cirecord.InTotoOptions{}, nil, "without a sha512"},
		{"npm bad version", dsse(t, slsaV1(subject{"pkg:npm/app@v1", map[string]string{"sha512": hexSHA512("x")}}), sign), pub, cirecord.InTotoOptions{}, nil, "artifact.version"},
		{"npm qualifiers", dsse(t, slsaV1(subject{"pkg:npm/app@1.0.0?arch=x", map[string]string{"sha512": hexSHA512("x")}}), sign), pub, cirecord.InTotoOptions{}, nil, "qualifiers"},
		{"go dirHash only", dsse(t, slsaV1(subject{"pkg:golang/github.com/acme/app@v1.2.3", map[string]string{"dirHash": hexSHA256("x")}}), sign), pub, cirecord.InTotoOptions{}, nil, "dirHash"},
		{"go bare module@version", dsse(t, slsaV1(subject{"github.com/acme/app@v1.2.3", map[string]string{"goModuleH1": hexSHA256("go")}}), sign), pub, cirecord.InTotoOptions{},
			map[string]string{"go:github.com/acme/app@v1.2.3": h1("go")}, ""},
		{"go bad version", dsse(t, slsaV1(subject{"pkg:golang/github.com/acme/app@1.2.3", map[string]string{"goModuleH1": hexSHA256("go")}}), sign), pub, cirecord.InTotoOptions{}, nil, "artifact"},
		{"oci tagged", dsse(t, slsaV1(subject{"ghcr.io/acme/app:1.2.3", map[string]string{"sha256": hexSHA256("oci")}}), sign), pub, cirecord.InTotoOptions{Registries: reg},
			map[string]string{"oci:ghcr/acme/app:1.2.3": sha("oci")}, ""},
		{"oci purl", dsse(t, slsaV1(subject{"pkg:oci/app@sha256%3A" + hexSHA256("oci") + "?repository_url=ghcr.io/acme/app&tag=1.2.3", map[string]string{"sha256": hexSHA256("oci")}}), sign), pub, cirecord.InTotoOptions{Registries: reg},
			map[string]string{"oci:ghcr/acme/app:1.2.3": sha("oci")}, ""},
		{"oci purl digest disagrees", dsse(t, slsaV1(subject{"pkg:oci/app@sha256%3A" + hexSHA256("oci") + "?repository_url=ghcr.io/acme/app", map[string]string{"sha256": hexSHA256("evil")}}), sign), pub, cirecord.InTotoOptions{Registries: reg}, nil, "differs"},
		{"oci purl without repository_url", dsse(t, slsaV1(subject{"pkg:oci/app@sha256%3A" + hexSHA256("oci"), nil}), sign), pub, cirecord.InTotoOptions{Registries: reg}, nil, "repository_url"},
		{"image subject with malformed digest", dsse(t, slsaV1(subject{"ghcr.io/acme/app:1.2.3", map[string]string{"sha256": "abc"}}), sign), pub, cirecord.InTotoOptions{Registries: reg, SkipUnmapped: true}, nil, "not sha256"},
		{"module-like subject with sha256 is unmapped", dsse(t, slsaV1(npmSubject, subject{"github.com/acme/app@v1.2.3", map[string]string{"sha256": hexSHA256("x")}}), sign), pub, cirecord.InTotoOptions{SkipUnmapped: true},
			map[string]string{"npm:@acme/app@1.2.3": sri("npm")}, ""},
		{"same artifact two digests", dsse(t, slsaV1(npmSubject, subject{npmSubject.Name, map[string]string{"sha512": hexSHA512("evil")}}), sign), pub, cirecord.InTotoOptions{}, nil, "two digests"},
		{"custom map", dsse(t, slsaV1(binSubject), sign), pub, cirecord.InTotoOptions{Map: func(name string, d map[string]string) (verify.Artifact, string, bool) {
			return verify.Artifact{Ecosystem: verify.OCI, Name: "ghcr/acme/bin", Version: "1.2.3"}, "sha256:" + d["sha256"], name == binSubject.Name
		}}, map[string]string{"oci:ghcr/acme/bin:1.2.3": sha("bin")}, ""},
		{"custom map invalid result", dsse(t, slsaV1(binSubject), sign), pub, cirecord.InTotoOptions{Map: func(string, map[string]string) (verify.Artifact, string, bool) {
			return verify.Artifact{Ecosystem: verify.NPM, Name: "app", Version: "1.2.3"}, "sha256:nope", true
		}}, nil, "digest"},
		{"not provenance", dsse(t, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"pkg:npm/app@1.0.0","digest":{"sha512":"`+hexSHA512("x")+`"}}],"predicateType":"https://spdx.dev/Document","predicate":{}}`), sign), pub, cirecord.InTotoOptions{}, nil, "not SLSA provenance"},
		{"not in-toto", dsse(t, []byte(`{"_type":"x","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`), sign), pub, cirecord.InTotoOptions{}, nil, "not an in-toto statement"},
		{"ambiguous payload", dsse(t, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"Subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`), sign), pub, cirecord.InTotoOptions{}, nil, "appears twice"},
		{"no subjects", dsse(t, slsaV1(), sign), pub, cirecord.InTotoOptions{}, nil, "no subjects"},
		{"v0.2 provenance", dsse(t, []byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"pkg:npm/app@1.0.0","digest":{"sha512":"`+hexSHA512("x")+`"}}],"predicateType":"https://slsa.dev/provenance/v0.2","predicate":{"builder":{"id":"https://gitlab.com/acme/app/-/runners/1"},"invocation":{"configSource":{"uri":"git+https://gitlab.com/acme/app","digest":{"sha1":"`+commit+`"}}}}}`), sign), pub, cirecord.InTotoOptions{},
			map[string]string{"npm:app@1.0.0": sri("x")}, ""},
		{"bad commit", dsse(t, []byte(strings.Replace(string(slsaV1(npmSubject)), commit, "main", 1)), sign), pub, cirecord.InTotoOptions{}, nil, "not a git commit"},
		{"not JSON", []byte("nope"), pub, cirecord.InTotoOptions{}, nil, "DSSE envelope"},
		{"wrong payload type", []byte(`{"payloadType":"text/plain","payload":"","signatures":[]}`), pub, cirecord.InTotoOptions{}, nil, "payload type"},
		{"unsupported key type", good, []crypto.PublicKey{"a string"}, cirecord.InTotoOptions{Registries: reg}, nil, "unsupported key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := cirecord.FromDSSE(tt.env, tt.keys, tt.opt)
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
			if got := keysOf(recs); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("records %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFromDSSEKeyTypes(t *testing.T) {
	payload := slsaV1(npmSubject)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		name string
		pub  crypto.PublicKey
		sign func([]byte) []byte
	}{
		{"ed25519", edPub, func(pae []byte) []byte { return ed25519.Sign(edKey, pae) }},
		{"rsa pkcs1v15", &rsaKey.PublicKey, func(pae []byte) []byte {
			h := sha256.Sum256(pae)
			s, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, h[:])
			return s
		}},
		{"rsa pss", &rsaKey.PublicKey, func(pae []byte) []byte {
			h := sha256.Sum256(pae)
			s, _ := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, h[:], nil)
			return s
		}},
		{"ecdsa p384 sha384", &p384.PublicKey, func(pae []byte) []byte {
			h := sha512.Sum384(pae)
			s, _ := ecdsa.SignASN1(rand.Reader, p384, h[:])
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := cirecord.FromDSSE(dsse(t, payload, tt.sign), []crypto.PublicKey{tt.pub}, cirecord.InTotoOptions{})
			if err != nil || len(recs) != 1 {
				t.Fatalf("FromDSSE = %v, %v", recs, err)
			}
			// And the same signature does not verify another payload.
			env := dsse(t, payload, tt.sign)
			env = []byte(strings.Replace(string(env), `"payload":"`, `"payload":"e30K`, 1))
			if _, err := cirecord.FromDSSE(env, []crypto.PublicKey{tt.pub}, cirecord.InTotoOptions{}); err == nil {
				t.Fatal("altered payload verified")
			}
		})
	}
}

var src = npmprovtest.Source{
	Repository: "github.com/acme/app",
	Workflow:   ".github/workflows/release.yml",
	Ref:        "refs/tags/v1.2.3",
	Commit:     commit,
}

func TestFromBundle(t *testing.T) {
	s := npmprovtest.New(t)
	good, err := s.SignProvenance(slsaV1(npmSubject, ociSubject, binSubject), src)
	if err != nil {
		t.Fatal(err)
	}
	otherCommit, err := s.SignProvenance([]byte(strings.Replace(string(slsaV1(npmSubject)), commit, strings.Repeat("f", 40), 1)), src)
	if err != nil {
		t.Fatal(err)
	}
	san := "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3"
	exact := cirecord.Identity{Subject: san, Issuer: npmprovtest.GitHubIssuer}
	byRegexp := cirecord.Identity{SubjectRegexp: `^https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/tags/v.*$`, Issuer: npmprovtest.GitHubIssuer}
	wrong := cirecord.Identity{Subject: "https://github.com/evil/app/.github/workflows/release.yml@refs/tags/v1.2.3", Issuer: npmprovtest.GitHubIssuer}
	wrongIssuer := cirecord.Identity{Subject: san, Issuer: "https://accounts.google.com"}
	opt := cirecord.InTotoOptions{Registries: reg, SkipUnmapped: true}
	untrusted := npmprovtest.New(t).TrustedMaterial()

	tests := []struct {
		name    string
		bundle  []byte
		ids     []cirecord.Identity
		trusted bool
		want    int
		wantErr string
	}{
		{"good identity", good, []cirecord.Identity{exact}, true, 2, ""},
		{"good by regexp, among others", good, []cirecord.Identity{wrong, byRegexp}, true, 2, ""},
		{"wrong identity", good, []cirecord.Identity{wrong}, true, 0, "verification failed"},
		{"wrong issuer", good, []cirecord.Identity{wrongIssuer}, true, 0, "verification failed"},
		{"untrusted root", good, []cirecord.Identity{exact}, false, 0, "verification failed"},
		{"no identities", good, nil, true, 0, "no identities"},
		{"identity without subject", good, []cirecord.Identity{{Issuer: npmprovtest.GitHubIssuer}}, true, 0, "identity 0"},
		{"identity with subject and regexp", good, []cirecord.Identity{{Subject: san, SubjectRegexp: ".*", Issuer: npmprovtest.GitHubIssuer}}, true, 0, "exactly one"},
		{"commit disagrees with certificate", otherCommit, []cirecord.Identity{exact}, true, 0, "differs from the certificate"},
		{"not a bundle", []byte(`{}`), []cirecord.Identity{exact}, true, 0, "sigstore bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := s.TrustedMaterial()
			if !tt.trusted {
				tm = untrusted
			}
			recs, err := cirecord.FromBundle(tt.bundle, tm, tt.ids, opt)
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
			if len(recs) != tt.want {
				t.Fatalf("records %+v", recs)
			}
			got := keysOf(recs)
			if got["npm:@acme/app@1.2.3"] != sri("npm") || got["oci:ghcr/acme/app@"+sha("oci")] != sha("oci") {
				t.Errorf("records %v", got)
			}
			for _, r := range recs {
				if r.Commit != commit || r.Builder != builder || r.Source != cirecord.SourceInToto {
					t.Errorf("record %+v", r)
				}
			}
		})
	}

	// A tampered bundle payload does not verify.
	var b map[string]any
	_ = json.Unmarshal(good, &b)
	env := b["dsseEnvelope"].(map[string]any)
	p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(p), hexSHA512("npm"), hexSHA512("evil"), 1)))
	tampered, _ := json.Marshal(b)
	if recs, err := cirecord.FromBundle(tampered, s.TrustedMaterial(), []cirecord.Identity{exact}, opt); err == nil || !strings.Contains(err.Error(), "verification failed") {
		t.Fatalf("tampered bundle gave %+v, %v", recs, err)
	} else {
		t.Log(err)
	}
}
