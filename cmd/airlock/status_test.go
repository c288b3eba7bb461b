package main

import (
	"context"
	"testing"
)

func TestStatus(t *testing.T) {
	s := newTestServer(t)
	if _, _, err := s.meta.Observe(context.Background(), "npm:@scope/pkg@1.2.3", map[string]string{
		"publisher": "mallory", "provenance": "none",
	}); err != nil {
		t.Fatal(err)
	}
	out, _, err := s.as(t, readSecret, "status", "npm:@scope/pkg@1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "status", out, "npm:@scope/pkg@1.2.3", "Decision:", "quarantine", "q-000002 held",
		"Observed (first seen):", "publisher", "mallory", "provenance", "none")

	if _, _, err := s.as(t, readSecret, "status", "npm:@scope/unknown@1.0.0"); err == nil {
		t.Error("status of an unknown artifact succeeded")
	}
}
