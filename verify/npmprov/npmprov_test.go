package npmprov_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify/npmprov"
	"github.com/airlock-proxy/airlock/verify/npmprov/npmprovtest"
	"github.com/airlock-proxy/airlock/verify/npmsig"
)

var src = npmprovtest.Source{
	Repository: "github.com/acme/app",
	Workflow:   ".github/workflows/release.yml",
	Ref:        "refs/tags/v1.2.3",
	Commit:     "0123456789abcdef0123456789abcdef01234567",
}

type fixture struct {
	s       *npmprovtest.Sigstore
	key     *ecdsa.PrivateKey
	keyid   string
	keys    npmsig.Keys
	v       *npmprov.Verifier
	sum     []byte
	now     time.Time
	name    string
	version string
}

func newFixture(t *testing.T, name string) *fixture {
	t.Helper()
	f := &fixture{s: npmprovtest.New(t), name: name, version: "1.2.3", now: time.Now()}
	f.key, f.keyid = npmprovtest.RegistryKey(t)
	f.keys = keysFor(t, f.key, f.keyid, time.Time{})
	f.v = npmprov.New(f.s.TrustedMaterial(), f.keys)
	s := sha512.Sum512([]byte("tarball of " + name))
	f.sum = s[:]
	return f
}

func keysFor(t *testing.T, k *ecdsa.PrivateKey, keyid string, expires time.Time) npmsig.Keys {
	t.Helper()
	doc, err := npmprovtest.KeysJSON(&k.PublicKey, keyid, expires)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := npmsig.ParseKeys(doc)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func (f *fixture) doc(t *testing.T) []byte {
	t.Helper()
	d, err := f.s.Attestations(f.name, f.version, f.sum, src, f.key, f.keyid)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestVerifyGood(t *testing.T) {
	for _, name := range []string{"app", "@acme/app"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, name)
			r, err := f.v.Verify(context.Background(), f.name, f.version, f.sum, f.doc(t), f.now)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Findings) != 0 {
				t.Fatalf("findings: %+v", r.Findings)
			}
			if !r.Publish {
				t.Error("publish attestation did not verify")
			}
			want := npmprov.Provenance{
				PredicateType:    npmprov.PredicateSLSAProvenanceV1,
				SourceRepository: "github.com/acme/app",
				Workflow:         ".github/workflows/release.yml",
				Ref:              "refs/tags/v1.2.3",
				Commit:           src.Commit,
				Builder:          "https://github.com/actions/runner/github-hosted",
				Issuer:           npmprovtest.GitHubIssuer,
				Identity:         "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3",
			}
			if r.Provenance == nil || *r.Provenance != want {
				t.Fatalf("provenance %+v, want %+v", r.Provenance, want)
			}
		})
	}
}

// editBundle rewrites attestation i of doc through fn on its bundle's
// decoded JSON.
func editBundle(t *testing.T, doc []byte, i int, fn func(b map[string]any)) []byte {
	t.Helper()
	var d struct {
		Attestations []map[string]any `json:"attestations"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	fn(d.Attestations[i]["bundle"].(map[string]any))
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// editPayload rewrites the DSSE payload (the statement) of attestation i
// without re-signing it.
func editPayload(t *testing.T, doc []byte, i int, old, new string) []byte {
	t.Helper()
	return editBundle(t, doc, i, func(b map[string]any) {
		env := b["dsseEnvelope"].(map[string]any)
		p, err := base64.StdEncoding.DecodeString(env["payload"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(p, []byte(old)) {
			t.Fatalf("payload has no %q: %s", old, p)
		}
		env["payload"] = base64.StdEncoding.EncodeToString(bytes.Replace(p, []byte(old), []byte(new), 1))
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyFailures(t *testing.T) {
	const (
		pub  = 0 // index of the publish attestation in Attestations' document
		prov = 1
	)
	other := sha512.Sum512([]byte("another tarball"))
	type call struct {
		name, version string
		sum           []byte
		doc           []byte
		published     time.Time
		v             *npmprov.Verifier
	}
	cases := []struct {
		name string
		// edit changes the good call.
		edit func(t *testing.T, f *fixture, c *call)
		// reasons are the findings' reasons, in document order.
		reasons     []string
		provenance  bool
		publish     bool
		wantFinding string // a substring of some finding's message
	}{
		{name: "wrong sha512", edit: func(t *testing.T, f *fixture, c *call) { c.sum = other[:] },
			reasons: []string{npmprov.ReasonSubject, npmprov.ReasonSubject}},
		{name: "wrong name", edit: func(t *testing.T, f *fixture, c *call) { c.name = "app2" },
			reasons: []string{npmprov.ReasonSubject, npmprov.ReasonSubject}},
		{name: "wrong version", edit: func(t *testing.T, f *fixture, c *call) { c.version = "1.2.4" },
			reasons: []string{npmprov.ReasonSubject, npmprov.ReasonSubject}},
		{name: "attestations of another package", edit: func(t *testing.T, f *fixture, c *call) {
			d, err := f.s.Attestations("evil", "1.2.3", f.sum, src, f.key, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = d
		}, reasons: []string{npmprov.ReasonSubject, npmprov.ReasonSubject}},
		{name: "tampered provenance payload", edit: func(t *testing.T, f *fixture, c *call) {
			c.doc = editPayload(t, c.doc, prov, "github-hosted", "self-hosted")
		}, reasons: []string{npmprov.ReasonVerification}, publish: true},
		{name: "tampered publish payload", edit: func(t *testing.T, f *fixture, c *call) {
			c.doc = editPayload(t, c.doc, pub, `"registry":"https://registry.npmjs.org"`, `"registry":"https://evil.example"`)
		}, reasons: []string{npmprov.ReasonVerification}, provenance: true},
		{name: "untrusted sigstore", edit: func(t *testing.T, f *fixture, c *call) {
			d, err := npmprovtest.New(t).Attestations(f.name, f.version, f.sum, src, f.key, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = d
		}, reasons: []string{npmprov.ReasonVerification, npmprov.ReasonVerification}},
		{name: "unknown registry key", edit: func(t *testing.T, f *fixture, c *call) {
			k, id := npmprovtest.RegistryKey(t)
			d, err := f.s.Attestations(f.name, f.version, f.sum, src, k, id)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = d
		}, reasons: []string{npmprov.ReasonUnknownKey}, provenance: true},
		{name: "known keyid, other key", edit: func(t *testing.T, f *fixture, c *call) {
			k, _ := npmprovtest.RegistryKey(t)
			d, err := f.s.Attestations(f.name, f.version, f.sum, src, k, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = d
		}, reasons: []string{npmprov.ReasonVerification}, provenance: true},
		{name: "key expired before publish", edit: func(t *testing.T, f *fixture, c *call) {
			c.v = npmprov.New(f.s.TrustedMaterial(), keysFor(t, f.key, f.keyid, f.now.Add(-time.Hour)))
		}, reasons: []string{npmprov.ReasonExpiredKey}, provenance: true},
		{name: "key expired after publish, before logging", edit: func(t *testing.T, f *fixture, c *call) {
			c.published = f.now.Add(-2 * time.Hour)
			c.v = npmprov.New(f.s.TrustedMaterial(), keysFor(t, f.key, f.keyid, f.now.Add(-time.Hour)))
		}, reasons: []string{npmprov.ReasonVerification}, provenance: true},
		{name: "expiring key, no publish time", edit: func(t *testing.T, f *fixture, c *call) {
			c.published = time.Time{}
			c.v = npmprov.New(f.s.TrustedMaterial(), keysFor(t, f.key, f.keyid, f.now.Add(time.Hour)))
		}, reasons: []string{npmprov.ReasonNoPublishTime}, provenance: true},
		{name: "publish attestation signed keylessly", edit: func(t *testing.T, f *fixture, c *call) {
			b, err := f.s.SignProvenance(npmprovtest.PublishStatement(f.name, f.version, f.sum), src)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateNPMPublish, Bundle: b})
		}, reasons: []string{npmprov.ReasonBadBundle}},
		{name: "provenance signed with the registry key", edit: func(t *testing.T, f *fixture, c *call) {
			st, err := npmprovtest.ProvenanceStatement(f.name, f.version, f.sum, src)
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.s.SignPublish(st, f.key, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateSLSAProvenanceV1, Bundle: b})
		}, reasons: []string{npmprov.ReasonVerification}},
		{name: "statement claims another repository than the certificate", edit: func(t *testing.T, f *fixture, c *call) {
			claimed := src
			claimed.Repository = "github.com/victim/app"
			st, err := npmprovtest.ProvenanceStatement(f.name, f.version, f.sum, claimed)
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.s.SignProvenance(st, src)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateSLSAProvenanceV1, Bundle: b})
		}, reasons: []string{npmprov.ReasonInconsistent}},
		{name: "statement claims another commit than the certificate", edit: func(t *testing.T, f *fixture, c *call) {
			claimed := src
			claimed.Commit = strings.Repeat("f", 40)
			st, err := npmprovtest.ProvenanceStatement(f.name, f.version, f.sum, claimed)
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.s.SignProvenance(st, src)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateSLSAProvenanceV1, Bundle: b})
		}, reasons: []string{npmprov.ReasonInconsistent}},
		{name: "declared predicate type is not the signed one", edit: func(t *testing.T, f *fixture, c *call) {
			c.doc = bytes.Replace(c.doc, []byte(`"predicateType":"`+npmprov.PredicateSLSAProvenanceV1+`"`),
				[]byte(`"predicateType":"`+npmprov.PredicateSLSAProvenanceV02+`"`), 1)
		}, reasons: []string{npmprov.ReasonPredicateMismatch}, publish: true},
		{name: "unsupported predicate type", edit: func(t *testing.T, f *fixture, c *call) {
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: "https://example.com/other", Bundle: []byte(`{}`)})
		}, reasons: []string{npmprov.ReasonUnsupportedPredicate}},
		{name: "bundle is not a sigstore bundle", edit: func(t *testing.T, f *fixture, c *call) {
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateSLSAProvenanceV1, Bundle: []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=9"}`)},
				npmprovtest.Entry{PredicateType: npmprov.PredicateNPMPublish, Bundle: []byte(`"x"`)})
		}, reasons: []string{npmprov.ReasonBadBundle, npmprov.ReasonBadBundle}},
		{name: "publish predicate for another version", edit: func(t *testing.T, f *fixture, c *call) {
			st := bytes.Replace(npmprovtest.PublishStatement(f.name, f.version, f.sum), []byte(`"version":"1.2.3"`), []byte(`"version":"6.6.6"`), 1)
			b, err := f.s.SignPublish(st, f.key, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateNPMPublish, Bundle: b})
		}, reasons: []string{npmprov.ReasonBadPredicate}},
		{name: "second subject", edit: func(t *testing.T, f *fixture, c *call) {
			var st map[string]any
			if err := json.Unmarshal(npmprovtest.PublishStatement(f.name, f.version, f.sum), &st); err != nil {
				t.Fatal(err)
			}
			subj := st["subject"].([]any)
			st["subject"] = append(subj, map[string]any{"name": "pkg:npm/evil@1.0.0", "digest": map[string]string{"sha512": "00"}})
			b, err := f.s.SignPublish(mustJSON(t, st), f.key, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateNPMPublish, Bundle: b})
		}, reasons: []string{npmprov.ReasonSubject}},
		{name: "statement with a key that two JSON parsers read differently", edit: func(t *testing.T, f *fixture, c *call) {
			st := npmprovtest.PublishStatement(f.name, f.version, f.sum)
			st = bytes.Replace(st, []byte(`"subject":`), []byte(`"Subject":[{"name":"pkg:npm/evil@1.0.0","digest":{"sha512":"00"}}],"subject":`), 1)
			b, err := f.s.SignPublish(st, f.key, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			c.doc = npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateNPMPublish, Bundle: b})
		}, reasons: []string{npmprov.ReasonBadBundle}},
		{name: "DSSE keyid differs from the key hint", edit: func(t *testing.T, f *fixture, c *call) {
			c.doc = editBundle(t, c.doc, pub, func(b map[string]any) {
				b["dsseEnvelope"].(map[string]any)["signatures"].([]any)[0].(map[string]any)["keyid"] = "SHA256:other"
			})
		}, reasons: []string{npmprov.ReasonBadBundle}, provenance: true},
		{name: "empty document", edit: func(t *testing.T, f *fixture, c *call) {
			c.doc = []byte(`{"attestations":[]}`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "app")
			c := call{name: f.name, version: f.version, sum: f.sum, doc: f.doc(t), published: f.now, v: f.v}
			tc.edit(t, f, &c)
			r, err := c.v.Verify(context.Background(), c.name, c.version, c.sum, c.doc, c.published)
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, fd := range r.Findings {
				if fd.Check != npmprov.CheckProvenance || fd.Message == "" || fd.Evidence["predicate_type"] == "" && tc.name != "bundle is not a sigstore bundle" {
					t.Errorf("finding %+v", fd)
				}
				reasons = append(reasons, fd.Evidence["reason"])
			}
			if strings.Join(reasons, ",") != strings.Join(tc.reasons, ",") {
				t.Errorf("reasons %q, want %q; findings %+v", reasons, tc.reasons, r.Findings)
			}
			if (r.Provenance != nil) != tc.provenance {
				t.Errorf("provenance %+v, want present=%v", r.Provenance, tc.provenance)
			}
			if r.Publish != tc.publish {
				t.Errorf("publish %v, want %v", r.Publish, tc.publish)
			}
		})
	}
}

func TestSubjectForms(t *testing.T) {
	for _, subj := range []string{"pkg:npm/%40acme/app@1.2.3", "pkg:npm/@acme/app@1.2.3"} {
		t.Run(subj, func(t *testing.T) {
			f := newFixture(t, "@acme/app")
			st := bytes.Replace(npmprovtest.PublishStatement(f.name, f.version, f.sum), []byte(npmprovtest.SubjectName(f.name, f.version)), []byte(subj), 1)
			b, err := f.s.SignPublish(st, f.key, f.keyid)
			if err != nil {
				t.Fatal(err)
			}
			doc := npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateNPMPublish, Bundle: b})
			r, err := f.v.Verify(context.Background(), f.name, f.version, f.sum, doc, f.now)
			if err != nil || !r.Publish || len(r.Findings) != 0 {
				t.Fatalf("%+v %v", r, err)
			}
		})
	}
	if got := npmprov.SubjectName("@acme/app", "1.0.0"); got != "pkg:npm/%40acme/app@1.0.0" {
		t.Errorf("SubjectName = %q", got)
	}
	if got := npmprov.SubjectName("left-pad", "1.3.0"); got != "pkg:npm/left-pad@1.3.0" {
		t.Errorf("SubjectName = %q", got)
	}
}

func TestBadDocument(t *testing.T) {
	f := newFixture(t, "app")
	huge := append([]byte(`{"attestations":[],"pad":"`), bytes.Repeat([]byte("x"), npmprov.MaxAttestationsSize)...)
	huge = append(huge, `"}`...)
	many := []byte(`{"attestations":[` + strings.TrimSuffix(strings.Repeat(`{"predicateType":"x","bundle":{}},`, 17), ",") + `]}`)
	for name, doc := range map[string][]byte{
		"empty": nil, "not json": []byte("<html>"), "no attestations": []byte(`{}`),
		"attestations not an array": []byte(`{"attestations":{}}`), "null": []byte(`null`),
		"trailing data": []byte(`{"attestations":[]} {}`), "oversize": huge, "too many": many,
	} {
		t.Run(name, func(t *testing.T) {
			r, err := f.v.Verify(context.Background(), f.name, f.version, f.sum, doc, f.now)
			if !errors.Is(err, npmprov.ErrBadDocument) {
				t.Fatalf("err %v, want ErrBadDocument", err)
			}
			if r.Provenance != nil || r.Publish {
				t.Fatalf("result %+v", r)
			}
		})
	}
	t.Run("bad sha512 argument", func(t *testing.T) {
		if _, err := f.v.Verify(context.Background(), f.name, f.version, f.sum[:32], f.doc(t), f.now); err == nil {
			t.Fatal("no error for a 32-byte sha512")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := f.v.Verify(ctx, f.name, f.version, f.sum, f.doc(t), f.now); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestTrustedRootFile(t *testing.T) {
	f := newFixture(t, "app")
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, f.s.TrustedRootJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := npmprov.LoadTrustedRoot(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := npmprov.New(tr, f.keys).Verify(context.Background(), f.name, f.version, f.sum, f.doc(t), f.now)
	if err != nil || r.Provenance == nil || !r.Publish || len(r.Findings) != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := npmprov.LoadTrustedRoot(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
}

func TestDefaultTrustedRoot(t *testing.T) {
	tr, err := npmprov.DefaultTrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 || len(tr.RekorLogs()) == 0 || len(tr.CTLogs()) == 0 {
		t.Fatalf("public-good root lacks CAs or logs: %d CAs, %d Rekor logs, %d CT logs",
			len(tr.FulcioCertificateAuthorities()), len(tr.RekorLogs()), len(tr.CTLogs()))
	}
	if !bytes.Contains(npmprov.DefaultTrustedRootJSON(), []byte("https://rekor.sigstore.dev")) {
		t.Error("DefaultTrustedRootJSON is not the public-good root")
	}
	j := npmprov.DefaultTrustedRootJSON()
	j[0] = 'x' // the embedded copy must not be shared
	if _, err := npmprov.DefaultTrustedRoot(); err != nil {
		t.Fatal(err)
	}
}

func TestMatchRepository(t *testing.T) {
	for _, tc := range []struct {
		pattern, repo string
		want          bool
	}{
		{"github.com/acme/*", "github.com/acme/app", true},
		{"github.com/acme/*", "https://github.com/acme/app.git", true},
		{"github.com/acme/*", "git+https://github.com/Acme/App@refs/heads/main", true},
		{"github.com/acme/app", "github.com/acme/app", true},
		{"github.com/acme/*", "github.com/acme", false},
		{"github.com/acme/*", "github.com/acme/app/sub", false},
		{"github.com/acme/*", "github.com/acmex/app", false},
		{"github.com/acme/*", "gitlab.com/acme/app", false},
		{"github.com/*/*", "github.com/evil/app", true},
		{"*", "github.com/acme/app", false},
		{"github.com/acme/app-[a-c]", "github.com/acme/app-b", true},
		{"github.com/acme/[", "github.com/acme/[", false},
		{"", "github.com/acme/app", false},
		{"github.com/acme/*", "", false},
		{"gitlab.com/group/sub/*", "gitlab.com/group/sub/proj", true},
	} {
		if got := npmprov.MatchRepository(tc.pattern, tc.repo); got != tc.want {
			t.Errorf("MatchRepository(%q, %q) = %v, want %v", tc.pattern, tc.repo, got, tc.want)
		}
	}
}

func TestNormalizeRepository(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/acme/app":                     "github.com/acme/app",
		"https://GitHub.com/acme/app/":                    "github.com/acme/app",
		"git+https://github.com/acme/app.git":             "github.com/acme/app",
		"git+https://github.com/acme/app@refs/heads/main": "github.com/acme/app",
		"git@github.com:acme/app.git":                     "github.com/acme/app",
		"ssh://git@github.com/acme/app":                   "github.com/acme/app",
		"https://gitlab.com/group/sub/proj":               "gitlab.com/group/sub/proj",
		"github.com/acme/app":                             "github.com/acme/app",
		"":                                                "",
		"https://github.com":                              "",
		"https://github.com/":                             "",
	} {
		if got := npmprov.NormalizeRepository(in); got != want {
			t.Errorf("NormalizeRepository(%q) = %q, want %q", in, got, want)
		}
	}
}

// SLSA v0.2 is what npm wrote before SLSA v1 and still writes on GitLab.
func TestProvenanceV02(t *testing.T) {
	f := newFixture(t, "app")
	stmt := func(uri, commit string) []byte {
		return mustJSON(t, map[string]any{
			"_type":         "https://in-toto.io/Statement/v0.1",
			"subject":       []any{map[string]any{"name": npmprov.SubjectName(f.name, f.version), "digest": map[string]string{"sha512": hexOf(f.sum)}}},
			"predicateType": npmprov.PredicateSLSAProvenanceV02,
			"predicate": map[string]any{
				"buildType": "https://github.com/npm/cli/gha@v1",
				"builder":   map[string]string{"id": "https://github.com/actions/runner"},
				"invocation": map[string]any{"configSource": map[string]any{
					"uri": uri, "digest": map[string]string{"sha1": commit}, "entryPoint": ".github/workflows/release.yml",
				}},
			},
		})
	}
	for _, tc := range []struct {
		name, uri, commit, reason string
	}{
		{"consistent", "git+https://github.com/acme/app@refs/tags/v1.2.3", src.Commit, ""},
		{"other ref", "git+https://github.com/acme/app@refs/heads/evil", src.Commit, npmprov.ReasonInconsistent},
		{"other repository", "git+https://github.com/victim/app@refs/tags/v1.2.3", src.Commit, npmprov.ReasonInconsistent},
		{"other commit", "git+https://github.com/acme/app@refs/tags/v1.2.3", strings.Repeat("e", 40), npmprov.ReasonInconsistent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := f.s.SignProvenance(stmt(tc.uri, tc.commit), src)
			if err != nil {
				t.Fatal(err)
			}
			doc := npmprovtest.Document(npmprovtest.Entry{PredicateType: npmprov.PredicateSLSAProvenanceV02, Bundle: b})
			r, err := f.v.Verify(context.Background(), f.name, f.version, f.sum, doc, f.now)
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason != "" {
				if r.Provenance != nil || len(r.Findings) != 1 || r.Findings[0].Evidence["reason"] != tc.reason {
					t.Fatalf("%+v", r)
				}
				return
			}
			want := npmprov.Provenance{
				PredicateType: npmprov.PredicateSLSAProvenanceV02, SourceRepository: "github.com/acme/app",
				Workflow: ".github/workflows/release.yml", Ref: "refs/tags/v1.2.3", Commit: src.Commit,
				Builder: "https://github.com/actions/runner", Issuer: npmprovtest.GitHubIssuer,
				Identity: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3",
			}
			if len(r.Findings) != 0 || r.Provenance == nil || *r.Provenance != want {
				t.Fatalf("%+v %+v", r, r.Provenance)
			}
		})
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
