package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// Advisories (policy.advisories) load beside the malicious feed: their
// fixed versions are the fronts' fast-track, and they deny nothing.
func TestAdvisoriesFastTrack(t *testing.T) {
	ctx := context.Background()
	meta := openMeta(t)
	dir := t.TempDir()
	adv := `{"id":"GHSA-aaaa-bbbb-cccc","modified":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "GHSA-aaaa-bbbb-cccc.json"), []byte(adv), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := loadMalicious(ctx, nil, []string{dir}, meta, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fixed := verify.Artifact{Ecosystem: verify.NPM, Name: "lodash", Version: "4.17.21"}
	if got := m.Fixes(fixed); !slices.Equal(got, []string{"GHSA-aaaa-bbbb-cccc"}) {
		t.Errorf("Fixes = %v", got)
	}
	vulnerable := verify.Artifact{Ecosystem: verify.NPM, Name: "lodash", Version: "4.17.20"}
	if got := m.Fixes(vulnerable); got != nil {
		t.Errorf("Fixes(vulnerable) = %v", got)
	}
	if fs := m.Findings(vulnerable); len(fs) != 0 {
		t.Errorf("an advisory denied a version: %v", fs)
	}
}

// A denial the feed did not make (npm's own takedown: a known-malicious
// finding without a feed record id) is not lifted when the feed reloads.
func TestFeedLiftsOnlyItsOwn(t *testing.T) {
	ctx := context.Background()
	meta := openMeta(t)
	deny := func(name string, ev map[string]string) string {
		st, err := meta.Decide(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: name, Version: "1.0.0"},
			verify.Decision{Verdict: verify.Deny, Findings: []verify.Finding{{Check: "known-malicious", Message: "x", Evidence: ev}}}, "test")
		if err != nil {
			t.Fatal(err)
		}
		return st.Quarantine.ID
	}
	takedown := deny("taken-down", map[string]string{"source": "npm registry takedown", "placeholder": "0.0.1-security"})
	withdrawn := deny("was-in-feed", map[string]string{"id": "MAL-2026-1"})
	if _, err := loadMalicious(ctx, []string{t.TempDir()}, nil, meta, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if q, _ := meta.Quarantine(ctx, takedown); q.State != cache.Held {
		t.Errorf("the takedown was lifted: %+v", q)
	}
	if q, _ := meta.Quarantine(ctx, withdrawn); q.State != cache.Released {
		t.Errorf("a denial whose feed record is gone stayed: %+v", q)
	}
}
