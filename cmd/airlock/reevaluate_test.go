package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// openMeta is a metadata store in a temporary directory, closed with the
// test.
func openMeta(t *testing.T) *cache.Bolt {
	t.Helper()
	meta, err := cache.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	return meta
}

func TestReevaluate(t *testing.T) {
	ctx := context.Background()
	meta := openMeta(t)
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
	if _, err := reevaluate(ctx, meta, pol, now, nil, cache.QuarantineFilter{}, slog.New(slog.DiscardHandler)); err != nil {
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
	if _, err := reevaluate(ctx, meta, pol, now, nil, cache.QuarantineFilter{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if q, _ := meta.Quarantine(ctx, ids["script"]); q.State != cache.Released {
		t.Errorf("script after loosening: %s", q.State)
	}
	// Dry-run makes no policy judgement, but an ended cooldown is a fact.
	id := hold("later", script)
	aged := hold("aged-later", cool)
	pol = policy.Default()
	pol.Mode = policy.DryRun
	if _, err := reevaluate(ctx, meta, pol, now, nil, cache.QuarantineFilter{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if q, _ := meta.Quarantine(ctx, id); q.State != cache.Held {
		t.Errorf("dry-run released %s", id)
	}
	if q, _ := meta.Quarantine(ctx, aged); q.State != cache.Released {
		t.Errorf("dry-run kept %s, whose cooldown ended", aged)
	}
}

// A CI record that matches the digest a ci-digest hold saw lifts it; one
// that does not, or a hold with other findings the policy keeps, stays.
func TestReevaluateCIRecords(t *testing.T) {
	ctx := context.Background()
	meta := openMeta(t)
	ci := newCIRecords(meta, policy.Default(), time.Now, slog.New(slog.DiscardHandler))
	h1 := func(seed string) string {
		sum := sha256.Sum256([]byte(seed))
		return "h1:" + base64.StdEncoding.EncodeToString(sum[:])
	}
	mod := func(v string) verify.Artifact {
		return verify.Artifact{Ecosystem: verify.Go, Name: "github.com/acme/app", Version: v}
	}
	hold := func(a verify.Artifact, fs ...verify.Finding) string {
		st, err := meta.Decide(ctx, a, verify.Decision{Verdict: verify.Quarantine, Findings: fs}, "airlock/go")
		if err != nil {
			t.Fatal(err)
		}
		return st.Quarantine.ID
	}
	// The findings the front records, from the record store itself.
	finding := func(a verify.Artifact, digest string) verify.Finding {
		f, err := ci.Check(ctx, a, digest)
		if err != nil || f == nil {
			t.Fatalf("Check(%s) = %v, %v; want a finding", a, f, err)
		}
		return *f
	}
	script := verify.Finding{Check: policy.CheckInstallScript, Message: "postinstall"}
	ids := map[string]string{
		"match":    hold(mod("v1.0.0"), finding(mod("v1.0.0"), h1("built"))),
		"mismatch": hold(mod("v1.1.0"), finding(mod("v1.1.0"), h1("tampered"))),
		"other":    hold(mod("v1.2.0"), finding(mod("v1.2.0"), h1("built 1.2")), script),
		"norecord": hold(mod("v1.3.0"), finding(mod("v1.3.0"), h1("built 1.3"))),
		"noev":     hold(mod("v1.4.0"), verify.Finding{Check: policy.CheckCIDigest, Message: "not built by our CI"}),
		"oldci":    hold(mod("v1.5.0"), finding(mod("v1.5.0"), h1("built 1.5"))),
	}
	// A record already there when the server starts: lifted at start.
	if _, _, err := ci.records.Put(ctx, cirecord.Record{Artifact: mod("v1.5.0"), Digest: h1("built 1.5"), Source: cirecord.SourceAPI}); err != nil {
		t.Fatal(err)
	}
	released, err := reevaluate(ctx, meta, policy.Default(), time.Now(), ci.Check, cache.QuarantineFilter{}, slog.New(slog.DiscardHandler))
	if err != nil || !slices.Equal(released, []string{ids["oldci"]}) {
		t.Fatalf("start: released %v, %v; want %s", released, err, ids["oldci"])
	}
	for v, seed := range map[string]string{"v1.0.0": "built", "v1.1.0": "built 1.1", "v1.2.0": "built 1.2", "v1.4.0": "built 1.4"} {
		if _, created, err := ci.Put(ctx, cirecord.Record{Artifact: mod(v), Digest: h1(seed), Source: cirecord.SourceAPI}); err != nil || !created {
			t.Fatalf("Put %s = %v, %v", v, created, err)
		}
		released, err := ci.Lift(ctx, mod(v))
		if err != nil {
			t.Fatal(err)
		}
		want := v == "v1.0.0"
		if got := slices.Contains(released, ids["match"]); got != want || (!want && len(released) > 0) {
			t.Errorf("Put %s released %v", v, released)
		}
	}
	want := map[string]cache.State{"match": cache.Released, "mismatch": cache.Held, "other": cache.Held, "norecord": cache.Held, "noev": cache.Held, "oldci": cache.Released}
	for name, id := range ids {
		q, err := meta.Quarantine(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if q.State != want[name] {
			t.Errorf("%s: %s, want %s", name, q.State, want[name])
		}
		if q.State == cache.Released && (q.UpdatedBy != actorPolicy || !strings.Contains(q.Reason, "CI record")) {
			t.Errorf("%s released by %s: %q", name, q.UpdatedBy, q.Reason)
		}
	}
	// Loosened so install scripts only warn: "other" goes, its CI record
	// matching and the rest no longer held.
	pol := policy.Default()
	pol.Actions = map[string]policy.Action{policy.CheckInstallScript: policy.Warn}
	if released, err := reevaluate(ctx, meta, pol, time.Now(), ci.Check, cache.QuarantineFilter{}, slog.New(slog.DiscardHandler)); err != nil || !slices.Equal(released, []string{ids["other"]}) {
		t.Errorf("loosened: released %v, %v; want %s", released, err, ids["other"])
	}
}

// A policy tightened in the file reaches what was already served: an
// allowed artifact whose decision carries findings the policy now holds.
func TestTighten(t *testing.T) {
	ctx := context.Background()
	meta := openMeta(t)
	now := time.Now()
	served := func(a verify.Artifact, fs ...verify.Finding) {
		t.Helper()
		if _, _, err := meta.Observe(ctx, a.Key(), map[string]string{"integrity": "sha512-x"}); err != nil {
			t.Fatal(err)
		}
		if _, err := meta.Decide(ctx, a, verify.Decision{Verdict: verify.Allow, Findings: fs}, "airlock/npm"); err != nil {
			t.Fatal(err)
		}
	}
	npmArt := func(name string) verify.Artifact {
		return verify.Artifact{Ecosystem: verify.NPM, Name: name, Version: "1.0.0"}
	}
	script := verify.Finding{Check: policy.CheckInstallScript, Message: "postinstall"}
	ended := verify.Finding{Check: policy.CheckCooldown, Message: "young", Evidence: map[string]string{"until": now.Add(-time.Hour).UTC().Format(time.RFC3339)}}
	served(npmArt("script"), script)
	served(npmArt("maintainer"), verify.Finding{Check: policy.CheckMaintainerAdded, Message: "new maintainer"})
	served(npmArt("aged"), ended)
	served(npmArt("clean"))
	served(verify.Artifact{Ecosystem: verify.OCI, Name: "up/app", Version: "sha256:" + strings.Repeat("a", 64)}, verify.Finding{Check: "admission", Message: "signature verified"})
	log := slog.New(slog.DiscardHandler)

	dry := policy.Default()
	dry.Mode = policy.DryRun
	if held, err := tighten(ctx, meta, dry, now, nil, log); err != nil || len(held) != 0 {
		t.Fatalf("dry-run held %v, %v", held, err)
	}
	held, err := tighten(ctx, meta, policy.Default(), now, nil, log)
	if err != nil || len(held) != 1 {
		t.Fatalf("held %v, %v; want one", held, err)
	}
	st, _ := meta.Status(ctx, npmArt("script"))
	if st.Quarantine == nil || st.Quarantine.ID != held[0] || st.Quarantine.State != cache.Held || st.Quarantine.Findings[0].Check != policy.CheckInstallScript {
		t.Errorf("script: %+v", st)
	}
	// Run again: nothing new.
	if again, err := tighten(ctx, meta, policy.Default(), now, nil, log); err != nil || len(again) != 0 {
		t.Errorf("second pass held %v, %v", again, err)
	}
}

// tighten reads every observation, so a start runs it only when the
// policy changed since it last did.
func TestTightenOnChange(t *testing.T) {
	ctx := context.Background()
	meta := openMeta(t)
	log := slog.New(slog.DiscardHandler)
	now := time.Now()
	serve := func(name string) verify.Artifact {
		a := verify.Artifact{Ecosystem: verify.NPM, Name: name, Version: "1.0.0"}
		if _, _, err := meta.Observe(ctx, a.Key(), map[string]string{"integrity": "sha512-x"}); err != nil {
			t.Fatal(err)
		}
		// Served with a warning, as under a policy where it only warned.
		if _, err := meta.Decide(ctx, a, verify.Decision{Verdict: verify.Allow, Findings: []verify.Finding{{Check: policy.CheckInstallScript, Message: "postinstall"}}}, "airlock/npm"); err != nil {
			t.Fatal(err)
		}
		return a
	}
	held := func(a verify.Artifact) bool {
		st, _ := meta.Status(ctx, a)
		return st.Quarantine != nil
	}
	cfg := config.DefaultPolicy()
	first := serve("first")
	if err := tightenOnChange(ctx, meta, cfg, policy.Default(), now, nil, log); err != nil || !held(first) {
		t.Fatalf("first start: %v, held %v", err, held(first))
	}
	second := serve("second")
	if err := tightenOnChange(ctx, meta, cfg, policy.Default(), now, nil, log); err != nil || held(second) {
		t.Errorf("a start under the same policy scanned again: %v, held %v", err, held(second))
	}
	cfg.Cooldown = config.Duration(48 * time.Hour)
	if err := tightenOnChange(ctx, meta, cfg, policy.Default(), now, nil, log); err != nil || !held(second) {
		t.Errorf("a changed policy: %v, held %v", err, held(second))
	}
}
