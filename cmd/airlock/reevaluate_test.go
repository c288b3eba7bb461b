package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

func TestReevaluate(t *testing.T) {
	ctx := context.Background()
	meta, err := cache.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	now := time.Now()
	until := now.Add(-time.Hour).UTC().Format(time.RFC3339)
	hold := func(name string, fs ...verify.Finding) string {
		st, err := meta.Decide(ctx, verify.Artifact{Ecosystem: verify.NPM, Name: name, Version: "1.0.0"}, verify.Decision{Verdict: verify.Quarantine, Findings: fs}, "airlock/npm")
		if err != nil {
			t.Fatal(err)
		}
		return st.Quarantine.ID
	}
	cool := verify.Finding{Check: policy.CheckCooldown, Message: "young", Evidence: map[string]string{"until": until}}
	script := verify.Finding{Check: policy.CheckInstallScript, Message: "postinstall"}
	ids := map[string]string{
		"aged":      hold("aged", cool),
		"script":    hold("script", cool, script),
		"integrity": hold("integrity", verify.Finding{Check: "npm-integrity", Message: "bytes differ"}),
		"warned":    hold("warned", verify.Finding{Check: policy.CheckMaintainerAdded, Message: "new maintainer"}),
	}
	pol := policy.Default()
	if err := reevaluate(ctx, meta, pol, now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	want := map[string]cache.State{"aged": cache.Released, "script": cache.Held, "integrity": cache.Held, "warned": cache.Released}
	for name, id := range ids {
		q, err := meta.Quarantine(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if q.State != want[name] {
			t.Errorf("%s: %s, want %s", name, q.State, want[name])
		}
		if q.State == cache.Released && q.UpdatedBy != actorPolicy {
			t.Errorf("%s released by %s", name, q.UpdatedBy)
		}
	}
	// Loosened: install scripts only warn now.
	pol.Actions = map[string]policy.Action{policy.CheckInstallScript: policy.Warn}
	if err := reevaluate(ctx, meta, pol, now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if q, _ := meta.Quarantine(ctx, ids["script"]); q.State != cache.Released {
		t.Errorf("script after loosening: %s", q.State)
	}
	// Dry-run releases nothing.
	id := hold("later", script)
	pol = policy.Default()
	pol.Mode = policy.DryRun
	if err := reevaluate(ctx, meta, pol, now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if q, _ := meta.Quarantine(ctx, id); q.State != cache.Held {
		t.Errorf("dry-run released %s", id)
	}
}
