package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

// testClock is a clock that moves only when told, so that the suite can
// say which time each record must carry.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var (
	artA   = verify.Artifact{Ecosystem: verify.Go, Name: "example.com/a", Version: "v1.0.0"}
	artB   = verify.Artifact{Ecosystem: verify.Go, Name: "example.com/b", Version: "v1.0.0"}
	artNPM = verify.Artifact{Ecosystem: verify.NPM, Name: "@scope/c", Version: "1.2.3"}

	findSum  = verify.Finding{Check: "sumdb-zip", Message: "zip hash differs", Evidence: map[string]string{"want": "h1:x", "got": "h1:y"}}
	findZip  = verify.Finding{Check: "invalid-zip", Message: "malformed"}
	holdSum  = verify.Decision{Verdict: verify.Quarantine, Findings: []verify.Finding{findSum}}
	holdZip  = verify.Decision{Verdict: verify.Quarantine, Findings: []verify.Finding{findZip}}
	allow    = verify.Decision{Verdict: verify.Allow}
	denyPriv = verify.Decision{Verdict: verify.Deny, Findings: []verify.Finding{{Check: "private-module", Message: "denied by configuration"}}}
)

// testMeta is the conformance suite for Meta drivers. open must return an
// empty store that reads the time from now, and close it at the end of
// the test.
func testMeta(t *testing.T, open func(t *testing.T, now func() time.Time) Meta) {
	ctx := context.Background()
	setup := func(t *testing.T) (Meta, *testClock) {
		t.Helper()
		clk := newTestClock()
		return open(t, clk.Now), clk
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	actions := func(t *testing.T, m Meta) []string {
		t.Helper()
		events, err := m.Audit(ctx, 0, 0)
		must(t, err)
		var out []string
		for _, e := range events {
			out = append(out, e.Action+" "+e.QuarantineID)
		}
		return out
	}
	wantActions := func(t *testing.T, m Meta, want ...string) {
		t.Helper()
		if got := actions(t, m); !slices.Equal(got, want) {
			t.Errorf("audit actions:\n got %q\nwant %q", got, want)
		}
	}

	t.Run("StatusNotFound", func(t *testing.T) {
		m, _ := setup(t)
		if _, err := m.Status(ctx, artA); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Status of unknown artifact: %v, want ErrNotFound", err)
		}
		if _, err := m.Quarantine(ctx, "q-000001"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Quarantine of unknown id: %v, want ErrNotFound", err)
		}
		if _, err := m.Quarantine(ctx, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Quarantine of empty id: %v, want ErrNotFound", err)
		}
	})

	t.Run("DecideAllow", func(t *testing.T) {
		m, clk := setup(t)
		st, err := m.Decide(ctx, artA, allow, "proxy")
		must(t, err)
		if st.Decision.Verdict != verify.Allow || !st.Decided.Equal(clk.Now()) || st.Quarantine != nil || st.Hidden() {
			t.Fatalf("Decide returned %+v", st)
		}
		got, err := m.Status(ctx, artA)
		must(t, err)
		if got.Decision.Verdict != verify.Allow || !got.Decided.Equal(clk.Now()) || got.Quarantine != nil {
			t.Fatalf("Status = %+v", got)
		}
		events, err := m.Audit(ctx, 0, 0)
		must(t, err)
		if len(events) != 1 {
			t.Fatalf("audit = %+v, want one event", events)
		}
		e := events[0]
		if e.Seq != 1 || e.Action != ActionDecide || e.Actor != "proxy" || e.Artifact != artA.Key() || !e.Time.Equal(clk.Now()) || e.QuarantineID != "" {
			t.Fatalf("audit event = %+v", e)
		}
	})

	for _, d := range []verify.Decision{holdSum, denyPriv} {
		t.Run("DecideHolds/"+string(d.Verdict), func(t *testing.T) {
			m, clk := setup(t)
			st, err := m.Decide(ctx, artA, d, "proxy")
			must(t, err)
			q := st.Quarantine
			if q == nil || !st.Hidden() {
				t.Fatalf("Decide returned %+v, want a held record", st)
			}
			if q.ID != "q-000001" || q.State != Held || q.Artifact != artA || !q.FirstSeen.Equal(clk.Now()) || q.UpdatedBy != "proxy" {
				t.Fatalf("record = %+v", q)
			}
			if fmt.Sprint(q.Findings) != fmt.Sprint(d.Findings) {
				t.Fatalf("findings = %+v, want %+v", q.Findings, d.Findings)
			}
			got, err := m.Status(ctx, artA)
			must(t, err)
			if !got.Hidden() || got.Quarantine == nil || got.Quarantine.ID != q.ID || got.Decision.Verdict != d.Verdict {
				t.Fatalf("Status = %+v", got)
			}
			byID, err := m.Quarantine(ctx, q.ID)
			must(t, err)
			if byID.ID != q.ID || byID.State != Held {
				t.Fatalf("Quarantine(%s) = %+v", q.ID, byID)
			}
			wantActions(t, m, "hold q-000001")
		})
	}

	t.Run("HeldCollectsFindings", func(t *testing.T) {
		m, clk := setup(t)
		_, err := m.Decide(ctx, artA, holdSum, "proxy")
		must(t, err)
		first := clk.Now()
		clk.Advance(time.Minute)
		st, err := m.Decide(ctx, artA, holdZip, "proxy")
		must(t, err)
		_, err = m.Decide(ctx, artA, holdSum, "proxy") // the same evidence again
		must(t, err)
		q, err := m.Quarantine(ctx, st.Quarantine.ID)
		must(t, err)
		if q.ID != "q-000001" || q.State != Held || !q.FirstSeen.Equal(first) || !q.Updated.Equal(clk.Now()) {
			t.Fatalf("record = %+v", q)
		}
		if len(q.Findings) != 2 || q.Findings[0].Check != findSum.Check || q.Findings[1].Check != findZip.Check {
			t.Fatalf("findings = %+v, want sumdb-zip then invalid-zip", q.Findings)
		}
		if q.Findings[0].Evidence["got"] != "h1:y" {
			t.Fatalf("evidence lost: %+v", q.Findings[0])
		}
		wantActions(t, m, "hold q-000001", "hold q-000001", "hold q-000001")
	})

	t.Run("AllowKeepsHold", func(t *testing.T) {
		m, _ := setup(t)
		_, err := m.Decide(ctx, artA, holdSum, "proxy")
		must(t, err)
		st, err := m.Decide(ctx, artA, allow, "proxy")
		must(t, err)
		if !st.Hidden() || st.Quarantine.State != Held || st.Decision.Verdict != verify.Allow {
			t.Fatalf("allow after hold: %+v, want still held", st)
		}
		wantActions(t, m, "hold q-000001", "decide q-000001")
	})

	t.Run("ReleaseStands", func(t *testing.T) {
		m, clk := setup(t)
		st, err := m.Decide(ctx, artA, holdSum, "proxy")
		must(t, err)
		id := st.Quarantine.ID
		clk.Advance(time.Hour)
		q, err := m.Release(ctx, id, "alice", "verified with upstream")
		must(t, err)
		if q.State != Released || q.UpdatedBy != "alice" || q.Reason != "verified with upstream" || !q.Updated.Equal(clk.Now()) {
			t.Fatalf("released record = %+v", q)
		}
		clk.Advance(time.Hour)
		st, err = m.Decide(ctx, artA, holdZip, "proxy")
		must(t, err)
		if st.Hidden() || st.Quarantine.State != Released || st.Decision.Verdict != verify.Quarantine {
			t.Fatalf("hold after release: %+v, want still released with the new decision", st)
		}
		got, err := m.Status(ctx, artA)
		must(t, err)
		if got.Hidden() || got.Decision.Findings[0].Check != findZip.Check || !got.Decided.Equal(clk.Now()) {
			t.Fatalf("Status = %+v", got)
		}
		wantActions(t, m, "hold q-000001", "release q-000001", "decide q-000001")
	})

	t.Run("BlockStands", func(t *testing.T) {
		m, _ := setup(t)
		_, err := m.Block(ctx, artA, "alice", "typosquat")
		must(t, err)
		for _, d := range []verify.Decision{holdSum, allow} {
			st, err := m.Decide(ctx, artA, d, "proxy")
			must(t, err)
			if !st.Hidden() || st.Quarantine.State != Blocked || len(st.Quarantine.Findings) != 1 {
				t.Fatalf("%s after block: %+v, want still blocked, findings untouched", d.Verdict, st)
			}
		}
		wantActions(t, m, "block q-000001", "decide q-000001", "decide q-000001")
	})

	t.Run("BlockUndecided", func(t *testing.T) {
		m, clk := setup(t)
		q, err := m.Block(ctx, artNPM, "alice", "malware report")
		must(t, err)
		if q.ID != "q-000001" || q.State != Blocked || q.UpdatedBy != "alice" || q.Reason != "malware report" || !q.FirstSeen.Equal(clk.Now()) {
			t.Fatalf("record = %+v", q)
		}
		if len(q.Findings) != 1 || q.Findings[0].Check != "manual-block" || q.Findings[0].Message != "malware report" {
			t.Fatalf("findings = %+v", q.Findings)
		}
		st, err := m.Status(ctx, artNPM)
		must(t, err)
		if !st.Hidden() || st.Quarantine == nil || st.Quarantine.ID != q.ID || !st.Decided.IsZero() {
			t.Fatalf("Status = %+v, want hidden by the block", st)
		}
		wantActions(t, m, "block q-000001")
	})

	t.Run("BlockConflict", func(t *testing.T) {
		m, _ := setup(t)
		_, err := m.Decide(ctx, artA, holdSum, "proxy")
		must(t, err)
		_, err = m.Block(ctx, artB, "alice", "first")
		must(t, err)
		for _, a := range []verify.Artifact{artA, artB} {
			before, err := m.Status(ctx, a)
			must(t, err)
			q, err := m.Block(ctx, a, "bob", "again")
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Block of %s record: %v, want ErrConflict", before.Quarantine.State, err)
			}
			if q.ID != before.Quarantine.ID || q.State != before.Quarantine.State || q.UpdatedBy == "bob" {
				t.Fatalf("conflict returned %+v, want the existing record %+v", q, before.Quarantine)
			}
		}
		wantActions(t, m, "hold q-000001", "block q-000002")
	})

	t.Run("BlockReleased", func(t *testing.T) {
		m, _ := setup(t)
		st, err := m.Decide(ctx, artA, holdSum, "proxy")
		must(t, err)
		_, err = m.Release(ctx, st.Quarantine.ID, "alice", "false positive")
		must(t, err)
		q, err := m.Block(ctx, artA, "bob", "it was not")
		must(t, err)
		if q.ID != st.Quarantine.ID || q.State != Blocked || q.UpdatedBy != "bob" || q.Reason != "it was not" {
			t.Fatalf("record = %+v", q)
		}
		if len(q.Findings) != 2 || q.Findings[1].Check != "manual-block" {
			t.Fatalf("findings = %+v, want the original and the block", q.Findings)
		}
		// And released once more: blocked records can be released.
		q, err = m.Release(ctx, q.ID, "carol", "settled")
		must(t, err)
		if q.State != Released {
			t.Fatalf("record = %+v", q)
		}
		wantActions(t, m, "hold q-000001", "release q-000001", "block q-000001", "release q-000001")
	})

	t.Run("ReleaseErrors", func(t *testing.T) {
		m, _ := setup(t)
		st, err := m.Decide(ctx, artA, holdSum, "proxy")
		must(t, err)
		id := st.Quarantine.ID
		for _, reason := range []string{"", "  \t"} {
			_, err := m.Release(ctx, id, "alice", reason)
			if !errors.Is(err, ErrReasonRequired) || errors.Is(err, ErrConflict) {
				t.Fatalf("Release with reason %q: %v, want ErrReasonRequired", reason, err)
			}
		}
		if _, err := m.Block(ctx, artB, "alice", ""); !errors.Is(err, ErrReasonRequired) {
			t.Fatalf("Block without reason: %v, want ErrReasonRequired", err)
		}
		if _, err := m.Release(ctx, "q-999999", "alice", "why"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Release of unknown id: %v, want ErrNotFound", err)
		}
		if _, err := m.Release(ctx, "", "alice", "why"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Release of empty id: %v, want ErrNotFound", err)
		}
		_, err = m.Release(ctx, id, "alice", "fine")
		must(t, err)
		q, err := m.Release(ctx, id, "bob", "again")
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("second Release: %v, want ErrConflict", err)
		}
		if q.ID != id || q.UpdatedBy != "alice" {
			t.Fatalf("conflict returned %+v, want the existing record", q)
		}
		// Refused operations leave no trace in the log.
		wantActions(t, m, "hold q-000001", "release q-000001")
	})

	t.Run("InvalidInput", func(t *testing.T) {
		m, _ := setup(t)
		if _, err := m.Decide(ctx, verify.Artifact{Ecosystem: verify.Go}, allow, "proxy"); !errors.Is(err, verify.ErrInvalidArtifact) {
			t.Errorf("Decide of empty artifact: %v", err)
		}
		if _, err := m.Decide(ctx, artA, verify.Decision{Verdict: "maybe"}, "proxy"); err == nil {
			t.Error("Decide with unknown verdict succeeded")
		}
		if _, err := m.Block(ctx, verify.Artifact{}, "alice", "why"); !errors.Is(err, verify.ErrInvalidArtifact) {
			t.Errorf("Block of empty artifact: %v", err)
		}
		wantActions(t, m)
	})

	t.Run("Quarantines", func(t *testing.T) {
		m, _ := setup(t)
		var arts []verify.Artifact
		for i := range 12 {
			arts = append(arts, verify.Artifact{Ecosystem: verify.Go, Name: "example.com/m", Version: fmt.Sprintf("v1.0.%d", i)})
		}
		arts = append(arts, artNPM)
		for _, a := range arts {
			_, err := m.Decide(ctx, a, holdSum, "proxy")
			must(t, err)
		}
		_, err := m.Release(ctx, "q-000003", "alice", "ok")
		must(t, err)
		_, err = m.Block(ctx, artB, "alice", "no")
		must(t, err)
		ids := func(f QuarantineFilter) []string {
			qs, err := m.Quarantines(ctx, f)
			must(t, err)
			var out []string
			for _, q := range qs {
				out = append(out, q.ID)
			}
			return out
		}
		all := ids(QuarantineFilter{})
		if len(all) != 14 || !slices.IsSorted(all) || all[0] != "q-000001" || all[13] != "q-000014" {
			t.Fatalf("all = %v", all)
		}
		// A name that extends another must not show up in its records.
		_, err = m.Decide(ctx, verify.Artifact{Ecosystem: verify.Go, Name: "example.com/mx", Version: "v1.0.0"}, holdSum, "proxy")
		must(t, err)
		for _, tc := range []struct {
			f    QuarantineFilter
			want []string
		}{
			{QuarantineFilter{State: Released}, []string{"q-000003"}},
			{QuarantineFilter{State: Blocked}, []string{"q-000014"}},
			{QuarantineFilter{Ecosystem: verify.NPM}, []string{"q-000013"}},
			{QuarantineFilter{Ecosystem: verify.NPM, State: Released}, nil},
			{QuarantineFilter{Ecosystem: verify.OCI}, nil},
			{QuarantineFilter{Ecosystem: verify.Go, State: Held}, append(slices.DeleteFunc(slices.Clone(all[:12]), func(s string) bool { return s == "q-000003" }), "q-000015")},
			{QuarantineFilter{Ecosystem: verify.Go, Name: "example.com/m"}, all[:12]},
			{QuarantineFilter{Ecosystem: verify.Go, Name: "example.com/m", State: Released}, []string{"q-000003"}},
			{QuarantineFilter{Ecosystem: verify.Go, Name: "example.com/mx"}, []string{"q-000015"}},
			{QuarantineFilter{Ecosystem: verify.Go, Name: "example.com"}, nil},
			{QuarantineFilter{Ecosystem: verify.NPM, Name: "@scope/c"}, []string{"q-000013"}},
			{QuarantineFilter{Ecosystem: verify.NPM, Name: "@scope/c", State: Blocked}, nil},
		} {
			if got := ids(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("Quarantines(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		}
	})

	t.Run("AuditLog", func(t *testing.T) {
		m, clk := setup(t)
		steps := []struct {
			do   func() error
			want string
		}{
			{func() error { _, err := m.Decide(ctx, artA, allow, "proxy"); return err }, "decide "},
			{func() error { _, err := m.Decide(ctx, artB, holdSum, "proxy"); return err }, "hold q-000001"},
			{func() error { _, err := m.Release(ctx, "q-000001", "alice", "ok"); return err }, "release q-000001"},
			{func() error { _, err := m.Block(ctx, artB, "bob", "no"); return err }, "block q-000001"},
			{func() error { _, err := m.Block(ctx, artA, "bob", "no"); return err }, "block q-000002"},
			{func() error { _, err := m.Decide(ctx, artA, allow, "proxy"); return err }, "decide q-000002"},
			{func() error {
				_, err := m.AppendAudit(ctx, AuditEvent{Actor: "alice", Action: "login"})
				return err
			}, "login "},
		}
		var want []string
		for i, s := range steps {
			clk.Advance(time.Second)
			if err := s.do(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			want = append(want, s.want)
			// Each change is logged as it commits, not later.
			if got := actions(t, m); !slices.Equal(got, want) {
				t.Fatalf("after step %d audit = %q, want %q", i, got, want)
			}
		}
		events, err := m.Audit(ctx, 0, 0)
		must(t, err)
		for i, e := range events {
			if e.Seq != uint64(i+1) {
				t.Errorf("event %d has seq %d", i, e.Seq)
			}
			if i > 0 && !e.Time.After(events[i-1].Time) {
				t.Errorf("event %d time %v not after %v", i, e.Time, events[i-1].Time)
			}
		}
		if e := events[2]; e.Actor != "alice" || e.Reason != "ok" || e.Artifact != artB.Key() {
			t.Errorf("release event = %+v", e)
		}
		page, err := m.Audit(ctx, 2, 3)
		must(t, err)
		if len(page) != 3 || page[0].Seq != 3 || page[2].Seq != 5 {
			t.Errorf("Audit(2, 3) = %+v", page)
		}
		page, err = m.Audit(ctx, uint64(len(events)), 0)
		must(t, err)
		if len(page) != 0 {
			t.Errorf("Audit past the end = %+v", page)
		}
		page, err = m.Audit(ctx, ^uint64(0), 0)
		must(t, err)
		if len(page) != 0 {
			t.Errorf("Audit(max) = %+v", page)
		}
		if _, err := m.Audit(ctx, 0, -1); err == nil {
			t.Error("Audit with negative limit succeeded")
		}
	})

	t.Run("AppendAudit", func(t *testing.T) {
		m, clk := setup(t)
		at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		e, err := m.AppendAudit(ctx, AuditEvent{Seq: 77, Time: at, Actor: "alice", Action: "token-created", Detail: "ci"})
		must(t, err)
		if e.Seq != 1 || !e.Time.Equal(at) {
			t.Fatalf("appended %+v, want seq 1 (the store's) and the given time", e)
		}
		e, err = m.AppendAudit(ctx, AuditEvent{Actor: "alice", Action: "token-revoked"})
		must(t, err)
		if e.Seq != 2 || !e.Time.Equal(clk.Now()) {
			t.Fatalf("appended %+v, want seq 2 at now", e)
		}
		if _, err := m.AppendAudit(ctx, AuditEvent{Actor: "alice"}); err == nil {
			t.Fatal("AppendAudit without action succeeded")
		}
		events, err := m.Audit(ctx, 0, 0)
		must(t, err)
		if len(events) != 2 || events[0].Detail != "ci" || events[1].Action != "token-revoked" {
			t.Fatalf("audit = %+v", events)
		}
	})

	t.Run("ObservedKeys", func(t *testing.T) {
		m, _ := setup(t)
		for _, k := range []string{"npm:lodash@4.17.21", "npm:lodash@4.17.20", "npm:lodash-es@4.17.21", "npm:@s/lodash@1.0.0", "go:x.org/y@v1.0.0"} {
			_, _, err := m.Observe(ctx, k, map[string]string{"f": "v"})
			must(t, err)
		}
		got, err := m.ObservedKeys(ctx, "npm:lodash@")
		must(t, err)
		if !slices.Equal(got, []string{"npm:lodash@4.17.20", "npm:lodash@4.17.21"}) {
			t.Errorf("ObservedKeys(npm:lodash@) = %v", got)
		}
		got, err = m.ObservedKeys(ctx, "pypi:")
		must(t, err)
		if len(got) != 0 {
			t.Errorf("ObservedKeys(pypi:) = %v", got)
		}
	})

	t.Run("Observe", func(t *testing.T) {
		m, clk := setup(t)
		key := artA.Key()
		if _, err := m.Observation(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Observation of unknown key: %v, want ErrNotFound", err)
		}
		t0 := clk.Now()
		obs, changes, err := m.Observe(ctx, key, map[string]string{"zip": "h1:a", "mod": "h1:m"})
		must(t, err)
		if len(changes) != 0 || obs.Key != key || !obs.FirstSeen.Equal(t0) || obs.Fields["zip"] != "h1:a" || !obs.Seen["mod"].Equal(t0) {
			t.Fatalf("first Observe = %+v, %v", obs, changes)
		}
		t1 := clk.Advance(time.Hour)
		obs, changes, err = m.Observe(ctx, key, map[string]string{"zip": "h1:b", "mod": "h1:n", "info": "i", "same": ""})
		must(t, err)
		wantChanges := []Change{{Field: "mod", First: "h1:m", Now: "h1:n"}, {Field: "zip", First: "h1:a", Now: "h1:b"}}
		if !slices.Equal(changes, wantChanges) {
			t.Fatalf("changes = %+v, want %+v", changes, wantChanges)
		}
		if obs.Fields["zip"] != "h1:a" || obs.Fields["mod"] != "h1:m" || obs.Fields["info"] != "i" {
			t.Fatalf("fields = %v: first values must stay, new ones be added", obs.Fields)
		}
		if !obs.Seen["zip"].Equal(t0) || !obs.Seen["info"].Equal(t1) || !obs.FirstSeen.Equal(t0) {
			t.Fatalf("seen = %v, first seen %v", obs.Seen, obs.FirstSeen)
		}
		clk.Advance(time.Hour)
		_, changes, err = m.Observe(ctx, key, map[string]string{"info": "i", "same": ""})
		must(t, err)
		if len(changes) != 0 {
			t.Fatalf("unchanged fields reported %+v", changes)
		}
		got, err := m.Observation(ctx, key)
		must(t, err)
		if len(got.Fields) != 4 || !got.Seen["info"].Equal(t1) || got.Fields["same"] != "" {
			t.Fatalf("Observation = %+v", got)
		}
		if _, _, err := m.Observe(ctx, "", map[string]string{"a": "b"}); err == nil {
			t.Error("Observe with empty key succeeded")
		}
		if _, _, err := m.Observe(ctx, key, map[string]string{"": "b"}); err == nil {
			t.Error("Observe with empty field name succeeded")
		}
		// Observations are history, not decisions: the log stays empty.
		wantActions(t, m)
	})

	t.Run("GetPut", func(t *testing.T) {
		m, _ := setup(t)
		if _, err := m.Get(ctx, "sumdb", "latest"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get from unknown bucket: %v, want ErrNotFound", err)
		}
		must(t, m.Put(ctx, "sumdb", "latest", []byte("one")))
		must(t, m.Put(ctx, "other", "latest", []byte("two")))
		must(t, m.Put(ctx, "sumdb", "latest", []byte("three")))
		must(t, m.Put(ctx, "sumdb", "empty", nil))
		// Names of the driver's own buckets are just names here.
		must(t, m.Put(ctx, "audit", "x", []byte("not an event")))
		for _, tc := range []struct{ bucket, key, want string }{
			{"sumdb", "latest", "three"},
			{"other", "latest", "two"},
			{"sumdb", "empty", ""},
			{"audit", "x", "not an event"},
		} {
			v, err := m.Get(ctx, tc.bucket, tc.key)
			must(t, err)
			if string(v) != tc.want || v == nil {
				t.Errorf("Get(%s, %s) = %q (nil %v), want %q", tc.bucket, tc.key, v, v == nil, tc.want)
			}
		}
		if _, err := m.Get(ctx, "sumdb", "missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of missing key: %v, want ErrNotFound", err)
		}
		wantActions(t, m)
		for _, bk := range [][2]string{{"", "k"}, {"b", ""}} {
			if _, err := m.Get(ctx, bk[0], bk[1]); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q, %q): %v, want a validation error", bk[0], bk[1], err)
			}
			if err := m.Put(ctx, bk[0], bk[1], []byte("v")); err == nil {
				t.Errorf("Put(%q, %q) succeeded", bk[0], bk[1])
			}
			if err := m.CompareAndSwap(ctx, bk[0], bk[1], nil, []byte("v")); err == nil || errors.Is(err, ErrConflict) {
				t.Errorf("CompareAndSwap(%q, %q): %v, want a validation error", bk[0], bk[1], err)
			}
		}
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		m, _ := setup(t)
		steps := []struct {
			old, new []byte
			conflict bool
			want     string // stored value after the step; "-" = absent
		}{
			{[]byte("x"), []byte("a"), true, "-"}, // expects a value, none there
			{[]byte{}, []byte("a"), true, "-"},    // expects an empty value, none there
			{nil, []byte("a"), false, "a"},        // absent: created
			{nil, []byte("b"), true, "a"},         // must be absent: it is not
			{[]byte("z"), []byte("b"), true, "a"}, // wrong old
			{[]byte("a"), []byte("b"), false, "b"},
			{[]byte("b"), nil, false, ""}, // nil new stores an empty value
			{nil, []byte("c"), true, ""},  // empty is not absent
			{[]byte{}, []byte("c"), false, "c"},
		}
		for i, s := range steps {
			err := m.CompareAndSwap(ctx, "sumdb", "tree", s.old, s.new)
			if s.conflict != errors.Is(err, ErrConflict) || (!s.conflict && err != nil) {
				t.Fatalf("step %d: CompareAndSwap(%q, %q) = %v, conflict want %v", i, s.old, s.new, err, s.conflict)
			}
			v, err := m.Get(ctx, "sumdb", "tree")
			if s.want == "-" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("step %d: Get = %q, %v, want absent", i, v, err)
				}
				continue
			}
			if err != nil || string(v) != s.want {
				t.Fatalf("step %d: Get = %q, %v, want %q", i, v, err, s.want)
			}
		}
	})

	t.Run("Update", func(t *testing.T) {
		m, _ := setup(t)
		must(t, m.Put(ctx, "links", "a", []byte("1")))
		must(t, m.Put(ctx, "links", "e", nil))
		seen := map[string]string{}
		err := m.Update(ctx, "links", []string{"a", "b", "e", "keep"}, func(k string, old []byte) ([]byte, bool, error) {
			seen[k] = fmt.Sprintf("%q nil=%v", old, old == nil)
			switch k {
			case "keep":
				return []byte("never stored"), false, nil
			case "e":
				return nil, true, nil
			}
			return append(old, '+'), true, nil
		})
		must(t, err)
		// fn sees absent as nil and an empty value as empty, as Get does.
		wantSeen := map[string]string{"a": `"1" nil=false`, "b": `"" nil=true`, "e": `"" nil=false`, "keep": `"" nil=true`}
		for k, w := range wantSeen {
			if seen[k] != w {
				t.Errorf("fn saw %s as %s, want %s", k, seen[k], w)
			}
		}
		for k, want := range map[string]string{"a": "1+", "b": "+", "e": ""} {
			if v, err := m.Get(ctx, "links", k); err != nil || string(v) != want {
				t.Errorf("after Update: Get(%s) = %q, %v, want %q", k, v, err, want)
			}
		}
		if _, err := m.Get(ctx, "links", "keep"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a key fn did not change was stored: %v", err)
		}

		// All or nothing: a failure on the last key stores none of them.
		boom := errors.New("boom")
		err = m.Update(ctx, "links", []string{"a", "c", "b"}, func(k string, old []byte) ([]byte, bool, error) {
			if k == "b" {
				return nil, false, boom
			}
			return []byte("changed"), true, nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update with a failing fn = %v, want it wrapped", err)
		}
		if v, _ := m.Get(ctx, "links", "a"); string(v) != "1+" {
			t.Errorf("a failed Update changed a to %q", v)
		}
		if _, err := m.Get(ctx, "links", "c"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a failed Update created c: %v", err)
		}

		must(t, m.Update(ctx, "links", nil, func(string, []byte) ([]byte, bool, error) {
			t.Error("fn called with no keys")
			return nil, false, nil
		}))
		for _, bk := range [][2]string{{"", "k"}, {"b", ""}} {
			err := m.Update(ctx, bk[0], []string{"ok", bk[1]}, func(string, []byte) ([]byte, bool, error) { return []byte("v"), true, nil })
			if err == nil {
				t.Errorf("Update(%q, [ok %q]) succeeded", bk[0], bk[1])
			}
		}
		if _, err := m.Get(ctx, "b", "ok"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an Update refused for a bad key stored the good one: %v", err)
		}
	})

	t.Run("CompareAndSwapRace", func(t *testing.T) {
		m, _ := setup(t)
		const n = 16
		for round, old := range [][]byte{nil, []byte("start")} {
			key := fmt.Sprintf("k%d", round)
			if old != nil {
				must(t, m.Put(ctx, "race", key, old))
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { errs[i] = m.CompareAndSwap(ctx, "race", key, old, fmt.Appendf(nil, "g%d", i)) })
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: goroutines %d and %d both won", round, winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, ErrConflict):
					t.Fatalf("round %d: goroutine %d: %v", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody won", round)
			}
			v, err := m.Get(ctx, "race", key)
			must(t, err)
			if !bytes.Equal(v, fmt.Appendf(nil, "g%d", winner)) {
				t.Fatalf("round %d: stored %q, winner was %d", round, v, winner)
			}
		}
	})

	t.Run("CompareAndSwapCounter", func(t *testing.T) {
		// Read-modify-write loops lose no update when CAS is atomic.
		m, _ := setup(t)
		const workers, incs = 8, 20
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range incs {
					for {
						old, err := m.Get(ctx, "ctr", "n")
						n := 0
						if errors.Is(err, ErrNotFound) {
							old = nil
						} else if err != nil {
							t.Error(err)
							return
						} else {
							fmt.Sscan(string(old), &n)
						}
						err = m.CompareAndSwap(ctx, "ctr", "n", old, fmt.Append(nil, n+1))
						if err == nil {
							break
						}
						if !errors.Is(err, ErrConflict) {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		v, err := m.Get(ctx, "ctr", "n")
		must(t, err)
		if string(v) != fmt.Sprint(workers*incs) {
			t.Fatalf("counter = %s, want %d", v, workers*incs)
		}
	})

	t.Run("ConcurrentHolds", func(t *testing.T) {
		m, _ := setup(t)
		const n = 8
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				a := artA
				if i%2 == 1 {
					a = artB
				}
				if _, err := m.Decide(ctx, a, holdSum, "proxy"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		qs, err := m.Quarantines(ctx, QuarantineFilter{})
		must(t, err)
		if len(qs) != 2 {
			t.Fatalf("quarantines = %+v, want one record per artifact", qs)
		}
		if got := actions(t, m); len(got) != n {
			t.Fatalf("audit = %q, want %d events", got, n)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		m, _ := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		calls := map[string]func() error{
			"Decide":      func() error { _, err := m.Decide(cctx, artA, allow, "p"); return err },
			"Status":      func() error { _, err := m.Status(cctx, artA); return err },
			"Quarantines": func() error { _, err := m.Quarantines(cctx, QuarantineFilter{}); return err },
			"Quarantine":  func() error { _, err := m.Quarantine(cctx, "q-000001"); return err },
			"Release":     func() error { _, err := m.Release(cctx, "q-000001", "a", "r"); return err },
			"Block":       func() error { _, err := m.Block(cctx, artA, "a", "r"); return err },
			"Observe": func() error {
				_, _, err := m.Observe(cctx, "k", map[string]string{"a": "b"})
				return err
			},
			"Observation":    func() error { _, err := m.Observation(cctx, "k"); return err },
			"Audit":          func() error { _, err := m.Audit(cctx, 0, 0); return err },
			"AppendAudit":    func() error { _, err := m.AppendAudit(cctx, AuditEvent{Action: "x"}); return err },
			"Get":            func() error { _, err := m.Get(cctx, "b", "k"); return err },
			"Put":            func() error { return m.Put(cctx, "b", "k", nil) },
			"CompareAndSwap": func() error { return m.CompareAndSwap(cctx, "b", "k", nil, nil) },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with canceled context: %v", name, err)
			}
		}
		wantActions(t, m)
		if _, err := m.Get(ctx, "b", "k"); !errors.Is(err, ErrNotFound) {
			t.Errorf("canceled Put stored a value: %v", err)
		}
	})
}
