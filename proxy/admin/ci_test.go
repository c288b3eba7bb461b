package admin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
)

// memRecords is cirecord.Records over a map, releasing the ids in lift
// on every Put, or failing the re-evaluation with liftErr.
type memRecords struct {
	rs      *cirecord.Records
	mu      sync.Mutex
	m       map[string][]byte
	lift    []string
	liftErr error
}

func newMemRecords() *memRecords {
	s := &memRecords{m: map[string][]byte{}}
	s.rs = cirecord.New(s, func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) })
	return s
}

func (s *memRecords) Load(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok, nil
}

func (s *memRecords) Swap(_ context.Context, key string, old, new []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[key]; ok != (old != nil) || string(cur) != string(old) {
		return false, nil
	}
	s.m[key] = new
	return true, nil
}

func (s *memRecords) Put(ctx context.Context, r cirecord.Record) (cirecord.Record, bool, error) {
	return s.rs.Put(ctx, r)
}

func (s *memRecords) Lift(context.Context, verify.Artifact) ([]string, error) {
	return s.lift, s.liftErr
}

func (s *memRecords) Get(ctx context.Context, a verify.Artifact) (cirecord.Record, error) {
	return s.rs.Get(ctx, a)
}

func h1Of(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "h1:" + base64.StdEncoding.EncodeToString(sum[:])
}

func ciFixture(t *testing.T) (*fixture, *memRecords) {
	f := newFixture(t)
	recs := newMemRecords()
	f.h = New(f.meta, testTokens(), slog.New(slog.NewTextHandler(f.logs, nil)), WithCIRecords(recs))
	return f, recs
}

func TestCIRecords(t *testing.T) {
	f, recs := ciFixture(t)
	recs.lift = []string{"q-000001"}
	body := func(version, digest string) string {
		return fmt.Sprintf(`{"ecosystem":"go","name":"github.com/acme/app","version":%q,"digest":%q,"builder":"https://github.com/acme/app/.github/workflows/release.yml","commit":"0123456789abcdef0123456789abcdef01234567"}`, version, digest)
	}
	w := f.do(t, "POST", "/admin/api/v1/ci/records", ciSecret, body("v1.0.0", h1Of("built")))
	if w.Code != http.StatusCreated {
		t.Fatalf("first record: %d %s", w.Code, w.Body)
	}
	res := decode[CIRecordResult](t, w)
	if !res.Created || res.Record.Digest != h1Of("built") || res.Record.Source != cirecord.SourceAPI || len(res.Released) != 1 {
		t.Errorf("first record = %+v", res)
	}
	// The same digest again: 200, the stored record, not a new one.
	if w := f.do(t, "POST", "/admin/api/v1/ci/records", ciSecret, body("v1.0.0", h1Of("built"))); w.Code != http.StatusOK || decode[CIRecordResult](t, w).Created {
		t.Errorf("repeat: %d %s", w.Code, w.Body)
	}
	// Another digest: 409 naming both, an audit event, an error log.
	w = f.do(t, "POST", "/admin/api/v1/ci/records", ciSecret, body("v1.0.0", h1Of("other")))
	if w.Code != http.StatusConflict {
		t.Fatalf("conflict: %d %s", w.Code, w.Body)
	}
	if msg := errorOf(t, w); !strings.Contains(msg, h1Of("built")) || !strings.Contains(msg, h1Of("other")) {
		t.Errorf("conflict message %q lacks a digest", msg)
	}
	events, _ := f.meta.Audit(context.Background(), 0, 0)
	var actions []string
	for _, e := range events {
		if strings.HasPrefix(e.Action, "ci-") {
			actions = append(actions, e.Action+" "+e.Actor+" "+e.Artifact)
		}
	}
	if want := []string{
		"ci-record token:ci go:github.com/acme/app@v1.0.0",
		"ci-record-conflict token:ci go:github.com/acme/app@v1.0.0",
	}; strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit = %q, want %q", actions, want)
	}
	if !strings.Contains(f.logs.String(), "conflicting CI record refused") {
		t.Errorf("no alert logged:\n%s", f.logs)
	}
	// Read back, with a read token too.
	for _, secret := range []string{ciSecret, readSecret} {
		w := f.do(t, "GET", "/admin/api/v1/ci/records/go:github.com/acme/app@v1.0.0", secret, "")
		if w.Code != 200 || decode[cirecord.Record](t, w).Digest != h1Of("built") {
			t.Errorf("GET with %s: %d %s", secret, w.Code, w.Body)
		}
	}
	if w := f.do(t, "GET", "/admin/api/v1/ci/records/go:github.com/acme/app@v1.9.0", ciSecret, ""); w.Code != 404 {
		t.Errorf("GET missing: %d %s", w.Code, w.Body)
	}
}

func TestCIRecordsRefused(t *testing.T) {
	tests := []struct {
		name, secret, body string
		want               int
		msg                string
	}{
		{"read token", readSecret, `{"ecosystem":"go","name":"github.com/acme/app","version":"v1.0.0","digest":"` + h1Of("x") + `"}`, 403, "scope"},
		{"bad digest", ciSecret, `{"ecosystem":"go","name":"github.com/acme/app","version":"v1.0.0","digest":"sha256:00"}`, 400, "digest"},
		{"bad version", ciSecret, `{"ecosystem":"npm","name":"left-pad","version":"latest","digest":"sha512-AAAA"}`, 400, "version"},
		{"bad ecosystem", ciSecret, `{"ecosystem":"pypi","name":"x","version":"1","digest":"x"}`, 400, "ecosystem"},
		{"bad source", ciSecret, `{"ecosystem":"go","name":"github.com/acme/app","version":"v1.0.0","digest":"` + h1Of("x") + `","source":"me"}`, 400, "source"},
		{"unknown field", ciSecret, `{"ecosystem":"go","nam":"x"}`, 400, "unknown field"},
		{"oversized", ciSecret, `{"builder":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, "larger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, recs := ciFixture(t)
			w := f.do(t, "POST", "/admin/api/v1/ci/records", tt.secret, tt.body)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if msg := errorOf(t, w); !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q lacks %q", msg, tt.msg)
			}
			if len(recs.m) != 0 {
				t.Errorf("stored %v", recs.m)
			}
		})
	}
}

// A record stored whose re-evaluation failed answers 500 (the client
// retries; the retry re-evaluates) but is stored and audited.
func TestCIRecordsLiftFails(t *testing.T) {
	f, recs := ciFixture(t)
	recs.liftErr = errors.New("disk on fire")
	w := f.do(t, "POST", "/admin/api/v1/ci/records", ciSecret, `{"ecosystem":"go","name":"github.com/acme/app","version":"v1.0.0","digest":"`+h1Of("x")+`"}`)
	if w.Code != 500 || strings.Contains(w.Body.String(), "fire") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if len(recs.m) != 1 {
		t.Errorf("not stored")
	}
	events, _ := f.meta.Audit(context.Background(), 0, 0)
	if events[len(events)-1].Action != ActionCIRecord {
		t.Errorf("last audit event %+v", events[len(events)-1])
	}
}

func TestCIRecordsNotConfigured(t *testing.T) {
	f := newFixture(t)
	if w := f.do(t, "POST", "/admin/api/v1/ci/records", ciSecret, `{}`); w.Code != http.StatusNotImplemented {
		t.Errorf("status %d: %s", w.Code, w.Body)
	}
}

// A ci token limited to namespaces records only there.
func TestCIRecordsNamespaces(t *testing.T) {
	f := newFixture(t)
	recs := newMemRecords()
	toks := append(testTokens(), Token{Name: "acme-release", Scopes: []string{ScopeCI}, Hash: HashToken("alk_acme"), Namespaces: []string{"go:github.com/acme/*"}})
	f.h = New(f.meta, toks, nil, WithCIRecords(recs))
	body := func(name string) string {
		return fmt.Sprintf(`{"ecosystem":"go","name":%q,"version":"v1.0.0","digest":%q}`, name, h1Of(name))
	}
	if w := f.do(t, "POST", "/admin/api/v1/ci/records", "alk_acme", body("github.com/acme/app")); w.Code != http.StatusCreated {
		t.Errorf("inside its namespace: %d %s", w.Code, w.Body)
	}
	w := f.do(t, "POST", "/admin/api/v1/ci/records", "alk_acme", body("github.com/other/app"))
	if w.Code != http.StatusForbidden || !strings.Contains(errorOf(t, w), "go:github.com/acme/*") {
		t.Errorf("outside its namespace: %d %s", w.Code, w.Body)
	}
	if len(recs.m) != 1 {
		t.Errorf("stored %d records", len(recs.m))
	}
}
