package cosign

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify/intoto"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

func TestParseStatement(t *testing.T) {
	tests := []struct {
		name, in, want string // want: predicate type, or "error: …" substring
	}{
		{"v1", `{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":[]}`, "p"},
		{"v0.1", `{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"p"}`, "p"},
		{"other type", `{"_type":"https://example.com/Statement","predicateType":"p"}`, "error: not an in-toto statement"},
		{"no predicate type", `{"_type":"https://in-toto.io/Statement/v1"}`, "error: no predicate type"},
		{"not json", `{"_type":`, "error: statement"},
		{"wrong shape", `{"_type":"https://in-toto.io/Statement/v1","predicateType":"p","subject":"x"}`, "error: statement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseStatement([]byte(tt.in))
			if want, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil || st.PredicateType != tt.want {
				t.Fatalf("parseStatement = %+v, %v", st, err)
			}
		})
	}
}

func TestParseProvenance(t *testing.T) {
	v1 := func(ext string, deps string) string {
		return `{"buildDefinition":{"externalParameters":` + ext + `,"resolvedDependencies":` + deps + `},"runDetails":{"builder":{"id":"B"}}}`
	}
	tests := []struct {
		name, ptype, predicate string
		builder, source        string
		err                    bool
	}{
		{"v0.2", PredicateSLSAv02, `{"builder":{"id":"B"},"invocation":{"configSource":{"uri":"git+https://x/y@refs/heads/main"}}}`, "B", "git+https://x/y@refs/heads/main", false},
		{"v0.2 without source", PredicateSLSAv02, `{"builder":{"id":"B"}}`, "B", "", false},
		{"v1 github workflow", PredicateSLSAv1, v1(`{"workflow":{"repository":"https://github.com/a/b"},"source":"https://github.com/c/d"}`, `[{"uri":"git+https://github.com/e/f"}]`), "B", "https://github.com/a/b", false},
		{"v1 source string", PredicateSLSAv1, v1(`{"source":"git+https://gitlab.com/a/b"}`, `[]`), "B", "git+https://gitlab.com/a/b", false},
		{"v1 source object", PredicateSLSAv1, v1(`{"source":{"uri":"https://x/a/b"}}`, `[]`), "B", "https://x/a/b", false},
		{"v1 repository", PredicateSLSAv1, v1(`{"repository":"https://x/r"}`, `[]`), "B", "https://x/r", false},
		{"v1 first resolved dependency", PredicateSLSAv1, v1(`{}`, `[{"uri":"git+https://x/first"},{"uri":"git+https://x/second"}]`), "B", "git+https://x/first", false},
		{"v1 nothing", PredicateSLSAv1, v1(`{}`, `[]`), "B", "", false},
		{"v1 wrong shape", PredicateSLSAv1, `{"runDetails":{"builder":{"id":3}}}`, "", "", true},
		{"no predicate", PredicateSLSAv1, `null`, "", "", true},
		{"not slsa", "https://spdx.dev/Document", `{}`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseProvenance(tt.ptype, []byte(tt.predicate))
			if tt.err {
				if err == nil {
					t.Fatalf("parseProvenance = %+v, want error", p)
				}
				return
			}
			if err != nil || p.BuilderID != tt.builder || p.Source != tt.source {
				t.Fatalf("parseProvenance = %+v, %v; want builder %q source %q", p, err, tt.builder, tt.source)
			}
		})
	}
}

func TestNormalizeRepo(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/acme/app":                             "github.com/acme/app",
		"https://github.com/acme/app":                     "github.com/acme/app",
		"https://GitHub.com/acme/app/":                    "github.com/acme/app",
		"git+https://github.com/acme/app@refs/heads/main": "github.com/acme/app",
		"git+https://github.com/acme/app.git@v1.2.3":      "github.com/acme/app",
		"ssh://git@github.com/acme/app.git":               "github.com/acme/app",
		"https://github.com/acme/App":                     "github.com/acme/App",
		"https://github.com/acme/app-evil":                "github.com/acme/app-evil",
	} {
		if got := normalizeRepo(in); got != want {
			t.Errorf("normalizeRepo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBuilderMatches(t *testing.T) {
	const b = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml"
	tests := []struct {
		want, got string
		ok        bool
	}{
		{b + "@refs/tags/v2.1.0", b + "@refs/tags/v2.1.0", true},
		{b, b + "@refs/tags/v2.1.0", true},
		{b, b, true},
		{b + "@refs/tags/v2.1.0", b + "@refs/tags/v2.0.0", false},
		{b, b + "x@refs/tags/v2.1.0", false},
		{b, "https://evil.example/" + b, false},
	}
	for _, tt := range tests {
		if got := builderMatches(tt.want, tt.got); got != tt.ok {
			t.Errorf("builderMatches(%q, %q) = %v", tt.want, tt.got, got)
		}
	}
}

func TestStatementFromEnvelope(t *testing.T) {
	stmt := `{"_type":"https://in-toto.io/Statement/v1","predicateType":"p"}`
	env := func(pt, pl string) []byte {
		b, _ := json.Marshal(map[string]any{"payloadType": pt, "payload": pl, "signatures": []any{}})
		return b
	}
	if st, err := statementFromEnvelope(env(intoto.PayloadType, base64.StdEncoding.EncodeToString([]byte(stmt)))); err != nil || st.PredicateType != "p" {
		t.Fatalf("statementFromEnvelope = %+v, %v", st, err)
	}
	for name, in := range map[string][]byte{
		"payload type": env("application/json", base64.StdEncoding.EncodeToString([]byte(stmt))),
		"not base64":   env(intoto.PayloadType, "%%%"),
		"not json":     []byte("nope"),
	} {
		if _, err := statementFromEnvelope(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Payloads and evidence stay bounded however much the registry offers.
func TestBounds(t *testing.T) {
	t.Run("oversized payload", func(t *testing.T) {
		reg := newRegistry(t, true)
		k := newKey(t)
		d := reg.push(t, "acme/app")
		// A valid signature by the trusted key, over a payload above the
		// limit: it must not be read, so it cannot verify.
		big := payload.Cosign{Image: d, Annotations: map[string]any{"pad": strings.Repeat("a", maxSigPayload)}}
		signLegacyPayload(t, d, signer{sv: k.sv}, big)
		p, err := NewPolicy(PolicyConfig{Keys: [][]byte{k.pem}, IgnoreTlog: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := New(Options{}).Verify(context.Background(), d, p)
		if err != nil || res.Verified {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		if ev := res.Findings[0].Evidence["sig.1"]; !strings.Contains(ev, "larger than allowed") {
			t.Errorf("sig.1 = %q", ev)
		}
	})
	t.Run("many signatures", func(t *testing.T) {
		reg := newRegistry(t, true)
		k, wrong := newKey(t), newKey(t)
		d := reg.push(t, "acme/app")
		for range maxEntries + 5 {
			signLegacy(t, d, d, signer{sv: wrong.sv})
		}
		p, err := NewPolicy(PolicyConfig{Keys: [][]byte{k.pem}, IgnoreTlog: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := New(Options{}).Verify(context.Background(), d, p)
		if err != nil || res.Verified {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		ev := res.Findings[0].Evidence
		if ev["sig.more"] != "5 more not shown" || ev[fmt.Sprintf("sig.%d", maxEntries)] == "" || ev[fmt.Sprintf("sig.%d", maxEntries+1)] != "" {
			t.Errorf("evidence not bounded as expected: %v", ev)
		}
		if ev["found.legacy-tag"] != fmt.Sprint(maxEntries+5) {
			t.Errorf("found.legacy-tag = %q", ev["found.legacy-tag"])
		}
	})
	t.Run("read budget", func(t *testing.T) {
		layer := static.NewLayer([]byte(strings.Repeat("x", 100)), types.MediaType("text/plain"))
		h, _ := layer.Digest()
		r := &run{budget: 150}
		if _, err := r.readBlob(layer, h, 100, 1000); err != nil {
			t.Fatalf("first read: %v", err)
		}
		if _, err := r.readBlob(layer, h, 100, 1000); err == nil {
			t.Fatal("second read exceeded the budget without error")
		}
		r = &run{budget: 1000}
		if _, err := r.readBlob(layer, h, 10, 50); err == nil {
			t.Fatal("read past the limit (size declared smaller) without error")
		}
		if _, err := r.readBlob(layer, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}, 100, 1000); err == nil {
			t.Fatal("digest mismatch not detected")
		}
	})
	t.Run("clip", func(t *testing.T) {
		s := clip(strings.Repeat("é", 1000)+"\nline", 101)
		if len(s) > 101 || !strings.HasSuffix(s, "…") || strings.ContainsRune(s, '\uFFFD') {
			t.Errorf("clip = %q (%d bytes)", s, len(s))
		}
	})
}

func signLegacyPayload(t *testing.T, d name.Digest, s signer, p payload.Cosign) {
	t.Helper()
	signLegacyRaw(t, d, s, func() []byte {
		b, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}())
}

func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[{"digest":{"sha256":"ab"}}],"predicate":{"buildDefinition":{"externalParameters":{"workflow":{"repository":"https://github.com/a/b"}},"resolvedDependencies":[{"uri":"git+https://github.com/a/b@refs/heads/main"}]},"runDetails":{"builder":{"id":"https://b@v1"}}}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","predicate":{"builder":{"id":"B"},"invocation":{"configSource":{"uri":"git+ssh://git@x/y.git@main"}}}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"externalParameters":{"source":{"uri":"x"}}}}}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30="}`))
	f.Add([]byte(`null`))
	rules := []Attestation{
		{PredicateType: PredicateSLSAv1, BuilderID: "https://b", SourceRepository: "github.com/a/b"},
		{PredicateType: PredicateSLSAv02, BuilderID: "B", SourceRepository: "x/y"},
		{PredicateType: PredicateSLSAv1},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (*intoto.Statement, error){parseStatement, statementFromEnvelope} {
			st, err := parse(data)
			if err != nil {
				if st != nil {
					t.Fatalf("statement %+v with error %v", st, err)
				}
				continue
			}
			if st.PredicateType == "" {
				t.Fatal("parsed statement without predicate type")
			}
			for _, a := range rules {
				err := checkProvenance(a, st)
				if err == nil && st.PredicateType != a.PredicateType {
					t.Fatalf("rule %+v accepted predicate type %q", a, st.PredicateType)
				}
				if err == nil && a.SourceRepository != "" {
					p, perr := parseProvenance(st.PredicateType, st.Predicate)
					if perr != nil || normalizeRepo(p.Source) != normalizeRepo(a.SourceRepository) {
						t.Fatalf("rule %+v accepted source %q (%v)", a, p.Source, perr)
					}
				}
			}
		}
		n := normalizeRepo(string(data))
		if !strings.Contains(n, "/") {
			t.Fatalf("normalizeRepo(%q) = %q", data, n)
		}
	})
}
