package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

const (
	adminSecret = "alk_admin-secret"
	readSecret  = "alk_read-secret"
	ciSecret    = "alk_ci-secret"
)

func testTokens() []Token {
	return []Token{
		{Name: "alice", Scopes: []string{ScopeAdmin}, Hash: HashToken(adminSecret)},
		{Name: "reader", Scopes: []string{ScopeRead}, Hash: HashToken(readSecret)},
		{Name: "ci", Scopes: []string{ScopeCI}, Hash: HashToken(ciSecret)},
	}
}

// fixture is a handler over a store holding:
//
//	q-000001 held    go:example.com/evil@v1.0.0 (checksum mismatch)
//	q-000002 held    npm:@scope/pkg@1.2.3
//	q-000003 released go:example.com/old@v0.1.0
//
// and an allowed go:example.com/ok@v1.0.0.
type fixture struct {
	meta *fakeMeta
	h    http.Handler
	logs *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	m := newFakeMeta()
	mismatch := verify.Decision{Verdict: verify.Quarantine, Findings: []verify.Finding{{
		Check: "gosum", Message: "checksum mismatch for the module zip",
		Evidence: map[string]string{"expected": "h1:AAA=", "actual": "h1:BBB=", "record_id": "42"},
	}}}
	decide := func(name string, d verify.Decision) {
		a, err := verify.ParseArtifact(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Decide(ctx, a, d, "system"); err != nil {
			t.Fatal(err)
		}
	}
	decide("go:example.com/evil@v1.0.0", mismatch)
	decide("npm:@scope/pkg@1.2.3", verify.Decision{Verdict: verify.Deny, Findings: []verify.Finding{{Check: "npm-sig", Message: "bad signature"}}})
	decide("go:example.com/old@v0.1.0", mismatch)
	decide("go:example.com/ok@v1.0.0", verify.Decision{Verdict: verify.Allow})
	if _, err := m.Release(ctx, "q-000003", "token:bob", "false positive"); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	return &fixture{meta: m, h: New(m, testTokens(), log), logs: logs}
}

func (f *fixture) do(t *testing.T, method, path, secret, body string) *httptest.ResponseRecorder {
	t.Helper()
	return serve(t, f.h, method, path, "Bearer "+secret, body)
}

func serve(t *testing.T, h http.Handler, method, path, authorization, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// errorOf decodes an error response, failing the test if it is not one.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("not an error body (%v): %s", err, w.Body)
	}
	return e.Error
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T: %v", v, err)
	}
	return v
}

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t)
	paths := []struct{ method, path string }{
		{"GET", "/admin/api/v1/quarantine"},
		{"GET", "/admin/api/v1/quarantine/q-000001"},
		{"POST", "/admin/api/v1/quarantine/q-000001/release"},
		{"POST", "/admin/api/v1/quarantine"},
		{"GET", "/admin/api/v1/artifacts/go:example.com/evil@v1.0.0"},
		{"GET", "/admin/api/v1/audit"},
		{"GET", "/admin/api/v1/no-such-thing"},
		{"GET", "/admin/api/v2/quarantine"},
		{"DELETE", "/admin/api/"},
	}
	headers := []struct{ name, value string }{
		{"none", ""},
		{"wrong token", "Bearer alk_not-a-token"},
		{"scheme only", "Bearer"},
		{"empty token", "Bearer   "},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+adminSecret))},
		{"token without scheme", adminSecret},
		{"hash instead of secret", "Bearer " + string(func() []byte { h := HashToken(adminSecret); return h[:] }())},
	}
	for _, p := range paths {
		for _, hd := range headers {
			t.Run(p.method+" "+p.path+"/"+hd.name, func(t *testing.T) {
				w := serve(t, f.h, p.method, p.path, hd.value, `{"reason":"x","artifact":"go:example.com/a@v1.0.0"}`)
				if w.Code != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401: %s", w.Code, w.Body)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="airlock"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				errorOf(t, w)
			})
		}
	}
	// Nothing was changed by any of them.
	if q, _ := f.meta.Quarantine(context.Background(), "q-000001"); q.State != cache.Held {
		t.Errorf("q-000001 is %s after unauthenticated requests", q.State)
	}
}

func TestNoTokensConfigured(t *testing.T) {
	h := New(newFakeMeta(), nil, nil)
	for _, auth := range []string{"", "Bearer ", "Bearer " + adminSecret} {
		if w := serve(t, h, "GET", "/admin/api/v1/quarantine", auth, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%q: status = %d, want 401", auth, w.Code)
		}
	}
}

func TestSchemeIsCaseInsensitive(t *testing.T) {
	f := newFixture(t)
	if w := serve(t, f.h, "GET", "/admin/api/v1/quarantine", "bearer "+readSecret, ""); w.Code != http.StatusOK {
		t.Errorf("status = %d: %s", w.Code, w.Body)
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		secret, method, path, body string
		want                       int
	}{
		{readSecret, "GET", "/admin/api/v1/quarantine", "", 200},
		{readSecret, "GET", "/admin/api/v1/quarantine/q-000001", "", 200},
		{readSecret, "GET", "/admin/api/v1/artifacts/go:example.com/evil@v1.0.0", "", 200},
		{readSecret, "GET", "/admin/api/v1/audit", "", 200},
		{readSecret, "POST", "/admin/api/v1/quarantine/q-000001/release", `{"reason":"ok"}`, 403},
		{readSecret, "POST", "/admin/api/v1/quarantine", `{"artifact":"go:example.com/a@v1.0.0","reason":"x"}`, 403},
		{ciSecret, "GET", "/admin/api/v1/quarantine", "", 403},
		{ciSecret, "GET", "/admin/api/v1/quarantine/q-000001", "", 403},
		{ciSecret, "GET", "/admin/api/v1/artifacts/go:example.com/evil@v1.0.0", "", 403},
		{ciSecret, "GET", "/admin/api/v1/audit", "", 403},
		{ciSecret, "POST", "/admin/api/v1/quarantine/q-000001/release", `{"reason":"ok"}`, 403},
		{ciSecret, "POST", "/admin/api/v1/quarantine", `{"artifact":"go:example.com/a@v1.0.0","reason":"x"}`, 403},
		// Scope is checked before the body or the record is looked at.
		{readSecret, "POST", "/admin/api/v1/quarantine/q-999999/release", `{"bogus":1}`, 403},
		{adminSecret, "POST", "/admin/api/v1/quarantine/q-000001/release", `{"reason":"ok"}`, 200},
	}
	for _, tt := range tests {
		f := newFixture(t)
		w := f.do(t, tt.method, tt.path, tt.secret, tt.body)
		if w.Code != tt.want {
			t.Errorf("%s %s with %s: status = %d, want %d: %s", tt.method, tt.path, tt.secret, w.Code, tt.want, w.Body)
			continue
		}
		if tt.want == 403 {
			if msg := errorOf(t, w); !strings.Contains(msg, "scope") {
				t.Errorf("403 message %q does not name the scope", msg)
			}
		}
	}
	f := newFixture(t)
	f.do(t, "POST", "/admin/api/v1/quarantine/q-000001/release", readSecret, `{"reason":"ok"}`)
	if q, _ := f.meta.Quarantine(context.Background(), "q-000001"); q.State != cache.Held {
		t.Errorf("a read token released q-000001")
	}
}

func TestUnknownEndpoint(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/admin/api/v1/nope", 404},
		{"GET", "/admin/api/v2/quarantine", 404},
		{"GET", "/admin/api/", 404},
		{"GET", "/admin/api/v1/quarantine/q-000001/release", 405},
		{"DELETE", "/admin/api/v1/quarantine/q-000001", 405},
	} {
		w := f.do(t, tt.method, tt.path, adminSecret, "")
		if w.Code != tt.want {
			t.Errorf("%s %s: status = %d, want %d: %s", tt.method, tt.path, w.Code, tt.want, w.Body)
			continue
		}
		errorOf(t, w)
	}
}

func TestListQuarantine(t *testing.T) {
	tests := []struct {
		query   string
		wantIDs []string
		wantErr int
	}{
		{"", []string{"q-000001", "q-000002", "q-000003"}, 0},
		{"?state=held", []string{"q-000001", "q-000002"}, 0},
		{"?state=released", []string{"q-000003"}, 0},
		{"?state=blocked", []string{}, 0},
		{"?ecosystem=npm", []string{"q-000002"}, 0},
		{"?state=held&ecosystem=go", []string{"q-000001"}, 0},
		{"?ecosystem=oci", []string{}, 0},
		{"?state=HELD", nil, 400},
		{"?state=pending", nil, 400},
		{"?ecosystem=pypi", nil, 400},
	}
	f := newFixture(t)
	for _, tt := range tests {
		w := f.do(t, "GET", "/admin/api/v1/quarantine"+tt.query, readSecret, "")
		if tt.wantErr != 0 {
			if w.Code != tt.wantErr {
				t.Errorf("%s: status = %d, want %d", tt.query, w.Code, tt.wantErr)
			}
			errorOf(t, w)
			continue
		}
		if w.Code != 200 {
			t.Fatalf("%s: status = %d: %s", tt.query, w.Code, w.Body)
		}
		if !strings.Contains(w.Body.String(), `"quarantines":[`) {
			t.Errorf("%s: want a JSON array, even empty: %s", tt.query, w.Body)
		}
		l := decode[QuarantineList](t, w)
		ids := []string{}
		for _, q := range l.Quarantines {
			ids = append(ids, q.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
			t.Errorf("%s: ids = %v, want %v", tt.query, ids, tt.wantIDs)
		}
	}
}

func TestShowQuarantine(t *testing.T) {
	f := newFixture(t)
	w := f.do(t, "GET", "/admin/api/v1/quarantine/q-000001", readSecret, "")
	if w.Code != 200 {
		t.Fatalf("status = %d: %s", w.Code, w.Body)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
	q := decode[cache.Quarantine](t, w)
	if q.ID != "q-000001" || q.State != cache.Held || q.Artifact.String() != "go:example.com/evil@v1.0.0" ||
		len(q.Findings) != 1 || q.Findings[0].Evidence["actual"] != "h1:BBB=" {
		t.Errorf("record = %+v", q)
	}

	w = f.do(t, "GET", "/admin/api/v1/quarantine/q-424242", readSecret, "")
	if w.Code != 404 || !strings.Contains(errorOf(t, w), "q-424242") {
		t.Errorf("unknown id: %d %s", w.Code, w.Body)
	}
}

func TestRelease(t *testing.T) {
	tests := []struct {
		name, id, body string
		want           int
		wantMsg        string
	}{
		{"ok", "q-000001", `{"reason":"reviewed the diff"}`, 200, ""},
		{"already released", "q-000003", `{"reason":"again"}`, 409, "q-000003 is already released (by token:bob at 2025-"},
		{"unknown id", "q-000099", `{"reason":"x"}`, 404, "q-000099"},
		{"empty reason", "q-000001", `{"reason":""}`, 400, "reason is required"},
		{"blank reason", "q-000001", `{"reason":" \t\n"}`, 400, "reason is required"},
		{"no reason", "q-000001", `{}`, 400, "reason is required"},
		{"misspelt field", "q-000001", `{"reason":"x","reasn":"y"}`, 400, `unknown field "reasn"`},
		{"no body", "q-000001", ``, 400, "empty"},
		{"not JSON", "q-000001", `reason=x`, 400, "invalid"},
		{"wrong type", "q-000001", `{"reason":7}`, 400, "invalid"},
		{"trailing data", "q-000001", `{"reason":"x"} {"reason":"y"}`, 400, "after the JSON object"},
		{"too large", "q-000001", `{"reason":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := len(f.meta.audit)
			w := f.do(t, "POST", "/admin/api/v1/quarantine/"+tt.id+"/release", adminSecret, tt.body)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want != 200 {
				if msg := errorOf(t, w); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("error %q lacks %q", msg, tt.wantMsg)
				}
				if len(f.meta.audit) != before {
					t.Errorf("a failed release was audited")
				}
				return
			}
			q := decode[cache.Quarantine](t, w)
			if q.State != cache.Released || q.UpdatedBy != "token:alice" || q.Reason != "reviewed the diff" {
				t.Errorf("record = %+v", q)
			}
			last := f.meta.audit[len(f.meta.audit)-1]
			if last.Action != cache.ActionRelease || last.Actor != "token:alice" || last.QuarantineID != "q-000001" {
				t.Errorf("audit event = %+v", last)
			}
			for _, want := range []string{"quarantine released", "actor=token:alice", "id=q-000001", "go:example.com/evil@v1.0.0"} {
				if !strings.Contains(f.logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, f.logs)
				}
			}
		})
	}
}

func TestBlock(t *testing.T) {
	tests := []struct {
		name, body string
		want       int
		wantMsg    string
	}{
		{"go", `{"artifact":"go:github.com/x/y@v1.2.3","reason":"suspicious release"}`, 201, ""},
		{"npm scoped", `{"artifact":"npm:@evil/pkg@2.0.0","reason":"typosquat"}`, 201, ""},
		{"oci digest", `{"artifact":"oci:library/nginx@sha256:abcd","reason":"cve"}`, 201, ""},
		{"released before", `{"artifact":"go:example.com/old@v0.1.0","reason":"changed my mind"}`, 201, ""},
		{"already held", `{"artifact":"go:example.com/evil@v1.0.0","reason":"x"}`, 409, "go:example.com/evil@v1.0.0 is already held as q-000001"},
		{"no version", `{"artifact":"go:github.com/x/y","reason":"x"}`, 400, "missing @version"},
		{"non-canonical version", `{"artifact":"go:github.com/x/y@1.2.3","reason":"x"}`, 400, "invalid artifact name"},
		{"unknown ecosystem", `{"artifact":"pypi:requests@2.0","reason":"x"}`, 400, `unknown ecosystem "pypi"`},
		{"no artifact", `{"reason":"x"}`, 400, "invalid artifact name"},
		{"empty reason", `{"artifact":"go:github.com/x/y@v1.2.3","reason":"  "}`, 400, "reason is required to block go:github.com/x/y@v1.2.3"},
		{"unknown field", `{"artifact":"go:github.com/x/y@v1.2.3","reason":"x","force":true}`, 400, `unknown field "force"`},
		{"too large", `{"artifact":"go:github.com/x/y@v1.2.3","reason":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			w := f.do(t, "POST", "/admin/api/v1/quarantine", adminSecret, tt.body)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want != 201 {
				if msg := errorOf(t, w); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("error %q lacks %q", msg, tt.wantMsg)
				}
				return
			}
			var req BlockRequest
			json.Unmarshal([]byte(tt.body), &req)
			q := decode[cache.Quarantine](t, w)
			if q.State != cache.Blocked || q.Artifact.String() != req.Artifact || q.UpdatedBy != "token:alice" || q.Reason != req.Reason || q.ID == "" {
				t.Errorf("record = %+v", q)
			}
			if !strings.Contains(f.logs.String(), "artifact blocked") || !strings.Contains(f.logs.String(), "id="+q.ID) {
				t.Errorf("block not logged:\n%s", f.logs)
			}
			// It is now hidden, and the status says so.
			st, err := f.meta.Status(context.Background(), q.Artifact)
			if err != nil || !st.Hidden() {
				t.Errorf("status after block = %+v, %v", st, err)
			}
		})
	}
}

func TestArtifactStatus(t *testing.T) {
	tests := []struct {
		path    string
		want    int
		verdict verify.Verdict
		qid     string
		wantMsg string
	}{
		{"go:example.com/evil@v1.0.0", 200, verify.Quarantine, "q-000001", ""},
		{"go:example.com/ok@v1.0.0", 200, verify.Allow, "", ""},
		{"npm:@scope/pkg@1.2.3", 200, verify.Deny, "q-000002", ""},
		// Clients may escape the slashes; the name is matched decoded.
		{"go:example.com%2Fevil@v1.0.0", 200, verify.Quarantine, "q-000001", ""},
		{"npm:%40scope%2Fpkg%401.2.3", 200, verify.Deny, "q-000002", ""},
		{"go:example.com/unknown@v1.0.0", 404, "", "", "nothing is known about go:example.com/unknown@v1.0.0"},
		{"go:example.com/evil", 400, "", "", "missing @version"},
		{"example.com/evil@v1.0.0", 400, "", "", "invalid artifact name"},
	}
	f := newFixture(t)
	for _, tt := range tests {
		w := f.do(t, "GET", "/admin/api/v1/artifacts/"+tt.path, readSecret, "")
		if w.Code != tt.want {
			t.Errorf("%s: status = %d, want %d: %s", tt.path, w.Code, tt.want, w.Body)
			continue
		}
		if tt.want != 200 {
			if msg := errorOf(t, w); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("%s: error %q lacks %q", tt.path, msg, tt.wantMsg)
			}
			continue
		}
		st := decode[cache.Status](t, w)
		if st.Decision.Verdict != tt.verdict {
			t.Errorf("%s: verdict = %q, want %q", tt.path, st.Decision.Verdict, tt.verdict)
		}
		if got := ""; st.Quarantine != nil {
			got = st.Quarantine.ID
			if got != tt.qid {
				t.Errorf("%s: quarantine = %q, want %q", tt.path, got, tt.qid)
			}
		} else if tt.qid != "" {
			t.Errorf("%s: no quarantine record, want %s", tt.path, tt.qid)
		}
	}
}

func TestArtifactStatusShowsObservation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, _, err := f.meta.Observe(ctx, "npm:seen@1.0.0", map[string]string{"publisher": "alice"}); err != nil {
		t.Fatal(err)
	}
	w := f.do(t, "GET", "/admin/api/v1/artifacts/npm:seen@1.0.0", readSecret, "")
	if w.Code != 200 {
		t.Fatalf("observed, undecided artifact: %d %s", w.Code, w.Body)
	}
	var got struct {
		Observation *cache.Observation `json:"observation"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Observation == nil || got.Observation.Fields["publisher"] != "alice" {
		t.Errorf("observation = %+v (%v) in %s", got.Observation, err, w.Body)
	}
	w = f.do(t, "GET", "/admin/api/v1/artifacts/go:example.com/evil@v1.0.0", readSecret, "")
	if strings.Contains(w.Body.String(), `"observation"`) {
		t.Errorf("observation shown where none was recorded: %s", w.Body)
	}
}

func TestAudit(t *testing.T) {
	f := newFixture(t)
	total := len(f.meta.audit) // decide+hold ×3, decide, release = 8
	tests := []struct {
		query     string
		want      int
		firstSeq  uint64
		n         int
		wantError string
	}{
		{"", 200, 1, total, ""},
		{"?after=2", 200, 3, total - 2, ""},
		{"?limit=3", 200, 1, 3, ""},
		{"?after=3&limit=2", 200, 4, 2, ""},
		{"?after=1000", 200, 0, 0, ""},
		{"?limit=1000", 200, 1, total, ""},
		{"?limit=0", 400, 0, 0, "limit"},
		{"?limit=1001", 400, 0, 0, "1 to 1000"},
		{"?limit=ten", 400, 0, 0, "limit"},
		{"?after=-1", 400, 0, 0, "after"},
	}
	for _, tt := range tests {
		w := f.do(t, "GET", "/admin/api/v1/audit"+tt.query, readSecret, "")
		if w.Code != tt.want {
			t.Errorf("%s: status = %d, want %d: %s", tt.query, w.Code, tt.want, w.Body)
			continue
		}
		if tt.want != 200 {
			if msg := errorOf(t, w); !strings.Contains(msg, tt.wantError) {
				t.Errorf("%s: error %q lacks %q", tt.query, msg, tt.wantError)
			}
			continue
		}
		if !strings.Contains(w.Body.String(), `"events":[`) {
			t.Errorf("%s: want a JSON array, even empty: %s", tt.query, w.Body)
		}
		l := decode[AuditLog](t, w)
		if len(l.Events) != tt.n || (tt.n > 0 && l.Events[0].Seq != tt.firstSeq) {
			t.Errorf("%s: got %d events from %+v, want %d from seq %d", tt.query, len(l.Events), l.Events, tt.n, tt.firstSeq)
		}
	}
}

func TestAuditDefaultLimit(t *testing.T) {
	f := newFixture(t)
	for range 150 {
		f.meta.AppendAudit(context.Background(), cache.AuditEvent{Actor: "x", Action: "test"})
	}
	l := decode[AuditLog](t, f.do(t, "GET", "/admin/api/v1/audit", readSecret, ""))
	if len(l.Events) != defaultAuditLimit {
		t.Errorf("got %d events, want %d", len(l.Events), defaultAuditLimit)
	}
}

func TestStorageErrorIsNotLeaked(t *testing.T) {
	f := newFixture(t)
	f.meta.fail = errors.New("bolt: /var/lib/airlock/airlock.db: input/output error")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/admin/api/v1/quarantine", ""},
		{"GET", "/admin/api/v1/quarantine/q-000001", ""},
		{"POST", "/admin/api/v1/quarantine/q-000001/release", `{"reason":"x"}`},
		{"POST", "/admin/api/v1/quarantine", `{"artifact":"go:example.com/a@v1.0.0","reason":"x"}`},
		{"GET", "/admin/api/v1/artifacts/go:example.com/a@v1.0.0", ""},
		{"GET", "/admin/api/v1/audit", ""},
	} {
		w := f.do(t, r.method, r.path, adminSecret, r.body)
		if w.Code != 500 {
			t.Errorf("%s %s: status = %d, want 500", r.method, r.path, w.Code)
		}
		if msg := errorOf(t, w); strings.Contains(msg, "airlock.db") {
			t.Errorf("%s %s: error leaks internals: %q", r.method, r.path, msg)
		}
	}
	if !strings.Contains(f.logs.String(), "input/output error") {
		t.Errorf("storage error not logged:\n%s", f.logs)
	}
}

// The handler works behind the main router, which hands it full paths.
func TestMountedOnRouter(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(proxy.New(proxy.Options{Admin: f.h}))
	defer srv.Close()
	for _, tt := range []struct {
		path, secret string
		want         int
	}{
		{"/admin/api/v1/quarantine", readSecret, 200},
		{"/admin/api/v1/artifacts/npm:@scope/pkg@1.2.3", readSecret, 200},
		{"/admin/api/v1/quarantine", "", 401},
		{"/admin/api/v9/anything", "", 401},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
		if tt.secret != "" {
			req.Header.Set("Authorization", "Bearer "+tt.secret)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status = %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
}

func TestTokens(t *testing.T) {
	a, err := GenerateToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateToken()
	if a == b || !strings.HasPrefix(a, "alk_") {
		t.Errorf("tokens %q, %q", a, b)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, "alk_"))
	if err != nil || len(raw) != 32 {
		t.Errorf("token %q: %d bytes, %v", a, len(raw), err)
	}
	if HashToken(a) != sha256.Sum256([]byte(a)) {
		t.Error("HashToken is not the SHA-256 of the secret")
	}
	// A generated token authenticates.
	h := New(newFakeMeta(), []Token{{Name: "gen", Scopes: []string{ScopeAdmin}, Hash: HashToken(a)}}, nil)
	if w := serve(t, h, "GET", "/admin/api/v1/quarantine", "Bearer "+a, ""); w.Code != 200 {
		t.Errorf("generated token: status = %d", w.Code)
	}
}

// Two tokens may share a secret by mistake; the first configured wins and
// the comparison still looks at all of them.
func TestTokenOrder(t *testing.T) {
	h := New(newFakeMeta(), []Token{
		{Name: "first", Scopes: []string{ScopeRead}, Hash: HashToken("same")},
		{Name: "second", Scopes: []string{ScopeAdmin}, Hash: HashToken("same")},
	}, nil)
	w := serve(t, h, "POST", "/admin/api/v1/quarantine", "Bearer same", `{"artifact":"go:example.com/a@v1.0.0","reason":"x"}`)
	if w.Code != 403 || !strings.Contains(errorOf(t, w), "first") {
		t.Errorf("status = %d: %s", w.Code, w.Body)
	}
}

type statusErr struct{ code int }

func (e statusErr) Error() string   { return "no such version" }
func (e statusErr) StatusCode() int { return e.code }

func TestExplain(t *testing.T) {
	m := newFakeMeta()
	var asked verify.Artifact
	h := New(m, testTokens(), nil, WithExplainer(verify.NPM, func(_ context.Context, a verify.Artifact) (policy.Explanation, error) {
		asked = a
		if a.Version == "9.9.9" {
			return policy.Explanation{}, statusErr{404}
		}
		return policy.Explanation{Artifact: a, Verdict: verify.Quarantine, Checks: []policy.Checked{{Check: "cooldown", Result: policy.Found}}}, nil
	}))
	w := serve(t, h, "GET", "/admin/api/v1/explain/npm:%40scope%2Fpkg@1.2.3", "Bearer "+readSecret, "")
	if w.Code != 200 {
		t.Fatalf("explain = %d %s", w.Code, w.Body)
	}
	x := decode[policy.Explanation](t, w)
	if asked.Name != "@scope/pkg" || x.Verdict != verify.Quarantine || len(x.Checks) != 1 {
		t.Errorf("explain = %+v (asked %+v)", x, asked)
	}
	for _, tc := range []struct {
		path, secret string
		want         int
	}{
		{"/admin/api/v1/explain/npm:pkg@9.9.9", readSecret, 404},
		{"/admin/api/v1/explain/go:example.com/a@v1.0.0", readSecret, 501},
		{"/admin/api/v1/explain/pkg@1.0.0", readSecret, 400},
		{"/admin/api/v1/explain/npm:pkg@1.0.0", "wrong", 401},
		{"/admin/api/v1/explain/npm:pkg@1.0.0", ciSecret, 403},
	} {
		if w := serve(t, h, "GET", tc.path, "Bearer "+tc.secret, ""); w.Code != tc.want {
			t.Errorf("GET %s = %d %s, want %d", tc.path, w.Code, w.Body, tc.want)
		}
	}
}

func TestReleaseKnownMaliciousNeedsOverride(t *testing.T) {
	f := newFixture(t)
	a := verify.Artifact{Ecosystem: verify.NPM, Name: "evil", Version: "1.0.0"}
	st, err := f.meta.Decide(context.Background(), a, verify.Decision{Verdict: verify.Deny, Findings: []verify.Finding{{Check: "known-malicious", Message: "MAL-2025-1: malware"}}}, "feed")
	if err != nil {
		t.Fatal(err)
	}
	id := st.Quarantine.ID
	w := f.do(t, "POST", "/admin/api/v1/quarantine/"+id+"/release", adminSecret, `{"reason":"looks fine"}`)
	if w.Code != http.StatusConflict || !strings.Contains(errorOf(t, w), "override") {
		t.Errorf("release without override = %d %s, want 409 asking for an override", w.Code, w.Body)
	}
	w = f.do(t, "POST", "/admin/api/v1/quarantine/"+id+"/release", adminSecret, `{"reason":"false positive confirmed with the feed maintainers","override":true}`)
	if w.Code != 200 {
		t.Errorf("release with override = %d %s", w.Code, w.Body)
	}
}
