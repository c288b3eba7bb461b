package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/admin"
	"github.com/airlock-proxy/airlock/verify"
)

func TestQuarantineList(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"all", nil,
			[]string{"ID", "STATE", "ARTIFACT", "FIRST SEEN", "FINDING",
				"q-000001  held", "go:example.com/evil@v1.0.0", "2025-03-01T12:01:00Z", "checksum mismatch: the module zip's h1: hash differs from t…",
				"q-000002", "npm:@scope/pkg@1.2.3", "registry signature does not verify"},
			[]string{"checksum database's record"}},
		{"by ecosystem", []string{"--ecosystem", "npm"}, []string{"q-000002"}, []string{"q-000001"}},
		{"by state", []string{"--state", "released"}, []string{"no quarantine records"}, []string{"q-0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			out, _, err := s.as(t, readSecret, append([]string{"quarantine", "list"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			mustContain(t, "list", out, tt.want...)
			for _, nw := range tt.notWant {
				if strings.Contains(out, nw) {
					t.Errorf("list has %q:\n%s", nw, out)
				}
			}
		})
	}
}

func TestQuarantineListJSON(t *testing.T) {
	s := newTestServer(t)
	out, stderr, err := s.as(t, readSecret, "quarantine", "list", "--json", "--state", "held")
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Errorf("stderr in JSON mode: %q", stderr)
	}
	var l admin.QuarantineList
	decodeJSON(t, out, &l)
	if len(l.Quarantines) != 2 || l.Quarantines[0].Findings[0].Evidence["record_id"] != "42" {
		t.Errorf("list = %+v", l)
	}
}

func TestQuarantineListBadFilter(t *testing.T) {
	s := newTestServer(t)
	_, _, err := s.as(t, readSecret, "quarantine", "list", "--state", "pending")
	if err == nil {
		t.Fatal("no error")
	}
	mustContain(t, "error", err.Error(), `airlock: 400 Bad Request: unknown state "pending"`)
}

func TestQuarantineShow(t *testing.T) {
	s := newTestServer(t)
	out, _, err := s.as(t, readSecret, "quarantine", "show", "q-000001")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "show", out,
		"ID:", "q-000001", "Artifact:", "go:example.com/evil@v1.0.0", "State:", "held",
		"First seen:", "2025-03-01T12:01:00Z", "Updated:", "by system",
		"Findings (1):", "1. [gosum] checksum mismatch: the module zip's h1: hash differs from the checksum database's record",
		"actual:     h1:BBB=", "expected:   h1:AAA=", "record_id:  42", "tree_size:  1000",
		"airlock quarantine release q-000001 --reason")
	// Evidence comes in sorted key order.
	order := []string{"actual:", "expected:", "record_id:", "tree_size:"}
	last := -1
	for _, k := range order {
		i := strings.Index(out, k)
		if i < last {
			t.Errorf("evidence not sorted: %s before the previous key:\n%s", k, out)
		}
		last = i
	}

	out, _, err = s.as(t, readSecret, "quarantine", "show", "q-000001", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var q cache.Quarantine
	decodeJSON(t, out, &q)
	if q.ID != "q-000001" || q.Findings[0].Evidence["actual"] != "h1:BBB=" {
		t.Errorf("record = %+v", q)
	}
}

func TestQuarantineShowErrors(t *testing.T) {
	s := newTestServer(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"q-000099"}, "airlock: 404 Not Found: no quarantine record q-000099"},
		// An id is one path segment: it cannot reach another endpoint.
		{[]string{"../audit"}, "airlock: 404 Not Found: "},
		{[]string{}, "accepts 1 arg(s)"},
		{[]string{"q-1", "q-2"}, "accepts 1 arg(s)"},
	} {
		_, _, err := s.as(t, readSecret, append([]string{"quarantine", "show"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("show %v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestQuarantineRelease(t *testing.T) {
	s := newTestServer(t)
	out, _, err := s.as(t, adminSecret, "quarantine", "release", "q-000001", "--reason", "reviewed the diff")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "release", out, "released q-000001 (go:example.com/evil@v1.0.0)")
	q, _ := s.meta.Quarantine(context.Background(), "q-000001")
	if q.State != cache.Released || q.UpdatedBy != "token:alice" || q.Reason != "reviewed the diff" {
		t.Errorf("record after release = %+v", q)
	}

	_, _, err = s.as(t, adminSecret, "quarantine", "release", "q-000001", "--reason", "again")
	if err == nil {
		t.Fatal("a second release succeeded")
	}
	mustContain(t, "error", err.Error(), "airlock: 409 Conflict: q-000001 is already released (by token:alice")

	out, _, err = s.as(t, adminSecret, "quarantine", "release", "q-000002", "--reason", "ok", "--json")
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, out, &q)
	if q.ID != "q-000002" || q.State != cache.Released {
		t.Errorf("--json record = %+v", q)
	}
}

func TestReasonRequired(t *testing.T) {
	for _, args := range [][]string{
		{"quarantine", "release", "q-000001"},
		{"quarantine", "release", "q-000001", "--reason", "  "},
		{"quarantine", "block", "go:example.com/x@v1.0.0"},
		{"quarantine", "block", "go:example.com/x@v1.0.0", "--reason="},
	} {
		s := newTestServer(t)
		before := len(s.meta.audit)
		_, _, err := s.as(t, adminSecret, args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--reason is required") {
			t.Errorf("%v: err = %v, want a usage error about --reason", args, err)
		}
		if len(s.meta.audit) != before {
			t.Errorf("%v: changed the store", args)
		}
	}
}

func TestReleaseNeedsAdminScope(t *testing.T) {
	s := newTestServer(t)
	_, _, err := s.as(t, readSecret, "quarantine", "release", "q-000001", "--reason", "x")
	if err == nil {
		t.Fatal("a read token released")
	}
	mustContain(t, "error", err.Error(), "airlock: 403 Forbidden: token reader lacks the admin scope")
}

func TestQuarantineBlock(t *testing.T) {
	s := newTestServer(t)
	out, _, err := s.as(t, adminSecret, "quarantine", "block", "go:github.com/x/y@v1.2.3", "--reason", "suspicious release")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "block", out, "blocked go:github.com/x/y@v1.2.3 as q-000003")
	st, err := s.meta.Status(context.Background(), verify.Artifact{Ecosystem: verify.Go, Name: "github.com/x/y", Version: "v1.2.3"})
	if err != nil || st.Quarantine.State != cache.Blocked || st.Quarantine.UpdatedBy != "token:alice" {
		t.Errorf("status after block = %+v, %v", st, err)
	}

	out, _, err = s.as(t, adminSecret, "quarantine", "block", "npm:@evil/pkg@1.0.0", "--reason", "typosquat", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var q cache.Quarantine
	decodeJSON(t, out, &q)
	if q.State != cache.Blocked || q.Artifact.Name != "@evil/pkg" {
		t.Errorf("--json record = %+v", q)
	}

	for _, tt := range []struct{ artifact, want string }{
		{"go:example.com/evil@v1.0.0", "airlock: 409 Conflict: go:example.com/evil@v1.0.0 is already held as q-000001"},
		{"go:github.com/x/y", `airlock: 400 Bad Request: invalid artifact name "go:github.com/x/y": missing @version`},
		{"github.com/x/y@v1.2.3", "400 Bad Request: invalid artifact name"},
	} {
		_, _, err := s.as(t, adminSecret, "quarantine", "block", tt.artifact, "--reason", "x")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("block %s: err = %v, want %q", tt.artifact, err, tt.want)
		}
	}
}

// Names and findings come from upstreams; they must not drive the terminal.
func TestListEscapesControlCharacters(t *testing.T) {
	s := newTestServer(t)
	s.meta.hold("npm:evil@1.0.0", verify.Finding{Check: "x", Message: "bad\x1b[2J\ttabbed\nnewline"})
	out, _, err := s.as(t, readSecret, "quarantine", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "\x1b") || strings.Count(out, "\n") != 4 {
		t.Errorf("control characters reached the output:\n%q", out)
	}
	mustContain(t, "list", out, `bad\x1b[2J\ttabbed\nnewline`)
}
