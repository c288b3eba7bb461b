package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy"
	"github.com/airlock-proxy/airlock/proxy/admin"
	"github.com/airlock-proxy/airlock/verify"
)

const (
	adminSecret = "alk_test-admin"
	readSecret  = "alk_test-read"
)

// testServer is an admin API over a fake store holding
//
//	q-000001 held go:example.com/evil@v1.0.0 (checksum mismatch, with evidence)
//	q-000002 held npm:@scope/pkg@1.2.3
type testServer struct {
	meta *fakeMeta
	url  string
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	// The client reads these; the developer's own must not leak in.
	t.Setenv("AIRLOCK_URL", "")
	t.Setenv("AIRLOCK_TOKEN", "")
	m := newFakeMeta()
	m.hold("go:example.com/evil@v1.0.0", verify.Finding{
		Check:   "gosum",
		Message: "checksum mismatch: the module zip's h1: hash differs from the checksum database's record",
		Evidence: map[string]string{
			"record_id": "42", "expected": "h1:AAA=", "actual": "h1:BBB=", "tree_size": "1000",
		},
	})
	m.hold("npm:@scope/pkg@1.2.3", verify.Finding{Check: "npm-sig", Message: "registry signature does not verify"})
	h := admin.New(m, []admin.Token{
		{Name: "alice", Scopes: []string{admin.ScopeAdmin}, Hash: admin.HashToken(adminSecret)},
		{Name: "reader", Scopes: []string{admin.ScopeRead}, Hash: admin.HashToken(readSecret)},
	}, nil)
	// Through the main router, as serve mounts it.
	srv := httptest.NewServer(proxy.New(proxy.Options{Admin: h}))
	t.Cleanup(srv.Close)
	return &testServer{meta: m, url: srv.URL}
}

// run executes the airlock command line in-process.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// as runs a command against s with the admin token.
func (s *testServer) as(t *testing.T, secret string, args ...string) (string, string, error) {
	t.Helper()
	return run(t, append(args, "--server", s.url, "--token", secret)...)
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func TestTokenFromDataDir(t *testing.T) {
	s := newTestServer(t)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "admin-token"), []byte("  "+adminSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "quarantine", "list", "--server", s.url, "--data", data)
	if err != nil {
		t.Fatalf("with the token file: %v", err)
	}
	mustContain(t, "list", out, "q-000001")

	// The environment comes before the file, the flag before both.
	t.Setenv("AIRLOCK_TOKEN", "alk_wrong")
	if _, _, err := run(t, "quarantine", "list", "--server", s.url, "--data", data); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("AIRLOCK_TOKEN did not take precedence over the file: %v", err)
	}
	if _, _, err := run(t, "quarantine", "list", "--server", s.url, "--data", data, "--token", readSecret); err != nil {
		t.Errorf("--token did not take precedence over AIRLOCK_TOKEN: %v", err)
	}
}

func TestNoToken(t *testing.T) {
	s := newTestServer(t)
	_, _, err := run(t, "audit", "--server", s.url, "--data", t.TempDir())
	if err == nil {
		t.Fatal("no error without any token")
	}
	mustContain(t, "error", err.Error(), "no admin token", "--token", "AIRLOCK_TOKEN", "admin-token")
}

func TestServerFromEnv(t *testing.T) {
	s := newTestServer(t)
	t.Setenv("AIRLOCK_URL", s.url)
	t.Setenv("AIRLOCK_TOKEN", readSecret)
	out, _, err := run(t, "quarantine", "list")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "list", out, "q-000002")
}

func TestWrongToken(t *testing.T) {
	s := newTestServer(t)
	for _, args := range [][]string{{"quarantine", "list"}, {"audit"}, {"quarantine", "release", "q-000001", "--reason", "x"}} {
		_, _, err := s.as(t, "alk_wrong", args...)
		if err == nil {
			t.Fatalf("%v: no error with a wrong token", args)
		}
		mustContain(t, "error", err.Error(), "airlock: 401 Unauthorized: missing or invalid bearer token", "AIRLOCK_TOKEN")
	}
	if q, _ := s.meta.Quarantine(context.Background(), "q-000001"); q.State != cache.Held {
		t.Error("released with a wrong token")
	}
}

func TestUnreachableServer(t *testing.T) {
	newTestServer(t)
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	_, _, err := run(t, "quarantine", "list", "--server", url, "--token", adminSecret)
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("err = %v", err)
	}
	_, _, err = run(t, "quarantine", "list", "--server", "127.0.0.1:8080", "--token", adminSecret)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Errorf("a server without a scheme: err = %v, want a usage error", err)
	}
}

// A server that is not the admin API (or a proxy in front of it) answers
// in plain text; its first line becomes the message.
func TestNonJSONError(t *testing.T) {
	s := newTestServer(t)
	_, _, err := run(t, "quarantine", "list", "--server", s.url+"/elsewhere", "--token", adminSecret)
	if err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "error", err.Error(), "airlock: 404 Not Found: airlock: no such endpoint")
}

func TestErrorMessage(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"error":"boom"}`, "boom"},
		{"", "(no message)"},
		{"first line\nsecond", "first line"},
		{strings.Repeat("x", 300), strings.Repeat("x", 199) + "…"},
	} {
		if got := errorMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("errorMessage(%.20q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestCleanOutput(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain", "plain"},
		{"red\x1b[31mtext", `red\x1b[31mtext`},
		{"a\tb\nc", `a\tb\nc`},
		{"naïve ✓", "naïve ✓"},
	} {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if !strings.Contains(out, "\n  ") {
		t.Errorf("JSON output is not indented:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, out)
	}
}
