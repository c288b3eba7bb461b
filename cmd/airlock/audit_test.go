package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/proxy/admin"
)

func TestAudit(t *testing.T) {
	s := newTestServer(t)
	if _, _, err := s.as(t, adminSecret, "quarantine", "release", "q-000001", "--reason", "reviewed the diff"); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := s.as(t, readSecret, "audit")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "audit", out,
		"SEQ", "TIME", "ACTOR", "ACTION", "ARTIFACT/ID", "REASON",
		"1    2025-03-01T12:02:00Z", "system", "hold", "go:example.com/evil@v1.0.0 (q-000001)", "quarantine: checksum mismatch",
		"3", "token:alice", "release", "reviewed the diff")
	if stderr != "" {
		t.Errorf("stderr: %q", stderr)
	}
	if lines := strings.Count(out, "\n"); lines != 4 {
		t.Errorf("want a header and 3 events, got %d lines:\n%s", lines, out)
	}
}

func TestAuditPaging(t *testing.T) {
	s := newTestServer(t)
	s.as(t, adminSecret, "quarantine", "release", "q-000001", "--reason", "r1")
	s.as(t, adminSecret, "quarantine", "release", "q-000002", "--reason", "r2")

	out, stderr, err := s.as(t, readSecret, "audit", "--after", "1", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "q-000001)  hold") || !strings.Contains(out, "npm:@scope/pkg@1.2.3") || strings.Contains(out, "r2") {
		t.Errorf("--after 1 --limit 2 shows the wrong events:\n%s", out)
	}
	mustContain(t, "stderr", stderr, "airlock audit --after 3")

	out, _, err = s.as(t, readSecret, "audit", "--after", "4", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var l admin.AuditLog
	decodeJSON(t, out, &l)
	if len(l.Events) != 0 {
		t.Errorf("events after 4: %+v", l.Events)
	}
	if !strings.Contains(out, `"events": []`) {
		t.Errorf("JSON mode does not pass the API's answer through:\n%s", out)
	}

	out, _, err = s.as(t, readSecret, "audit", "--after", "4")
	if err != nil || !strings.Contains(out, "no audit events") {
		t.Errorf("empty audit: %v\n%s", err, out)
	}
}

func TestAuditJSON(t *testing.T) {
	s := newTestServer(t)
	s.as(t, adminSecret, "quarantine", "block", "go:example.com/c@v1.1.0", "--reason", "suspicious release")
	out, _, err := s.as(t, readSecret, "audit", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var l admin.AuditLog
	decodeJSON(t, out, &l)
	if len(l.Events) != 3 {
		t.Fatalf("events = %+v", l.Events)
	}
	e := l.Events[2]
	if e.Action != "block" || e.Actor != "token:alice" || e.Reason != "suspicious release" || e.QuarantineID != "q-000003" {
		t.Errorf("block event = %+v", e)
	}
}

func TestAuditBadFlags(t *testing.T) {
	s := newTestServer(t)
	for _, args := range [][]string{
		{"audit", "--limit", "0"},
		{"audit", "--limit", "1001"},
		{"audit", "--after", "-1"},
		{"audit", "extra"},
	} {
		_, _, err := s.as(t, readSecret, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}
