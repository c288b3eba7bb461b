package cache

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/airlock-proxy/airlock/verify"
)

func openTestBolt(t *testing.T, path string, opts ...BoltOption) *Bolt {
	t.Helper()
	b, err := OpenBolt(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBolt(t *testing.T) {
	testMeta(t, func(t *testing.T, now func() time.Time) Meta {
		return openTestBolt(t, filepath.Join(t.TempDir(), "airlock.db"), WithClock(now))
	})
}

func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "airlock.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Decide(ctx, artA, holdSum, "proxy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Release(ctx, st.Quarantine.ID, "alice", "ok"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Observe(ctx, artA.Key(), map[string]string{"zip": "h1:a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "sumdb", "latest", []byte("tree 1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openTestBolt(t, path)
	got, err := b.Status(ctx, artA)
	if err != nil {
		t.Fatal(err)
	}
	if got.Decision.Verdict != verify.Quarantine || got.Quarantine == nil || got.Quarantine.State != Released || got.Quarantine.Reason != "ok" {
		t.Fatalf("Status after reopen = %+v", got)
	}
	obs, err := b.Observation(ctx, artA.Key())
	if err != nil || obs.Fields["zip"] != "h1:a" {
		t.Fatalf("Observation after reopen = %+v, %v", obs, err)
	}
	if err := b.CompareAndSwap(ctx, "sumdb", "latest", []byte("tree 1"), []byte("tree 2")); err != nil {
		t.Fatalf("CompareAndSwap against the value from before the reopen: %v", err)
	}
	// Sequences continue: no id or audit number is handed out twice.
	q, err := b.Block(ctx, artB, "alice", "no")
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != "q-000002" {
		t.Fatalf("first id after reopen = %s, want q-000002", q.ID)
	}
	events, err := b.Audit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range events {
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) != 3 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 || events[2].Action != ActionBlock {
		t.Fatalf("audit after reopen = %+v", events)
	}
}

func TestBoltInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "airlock.db")
	openTestBolt(t, path)
	start := time.Now()
	b, err := OpenBolt(path)
	if err == nil {
		b.Close()
		t.Fatal("second OpenBolt on an open database succeeded")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("second OpenBolt took %v to fail", elapsed)
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "database is in use by another process") || !strings.Contains(err.Error(), path) {
		t.Errorf("second OpenBolt: %v, want ErrInUse naming the file", err)
	}
}

func TestBoltOpenError(t *testing.T) {
	_, err := OpenBolt(filepath.Join(t.TempDir(), "missing", "airlock.db"))
	if err == nil || errors.Is(err, ErrInUse) {
		t.Fatalf("OpenBolt in a missing directory: %v", err)
	}
}

func TestQuarantineIDOrder(t *testing.T) {
	qs := []Quarantine{{ID: quarantineID(1000000)}, {ID: quarantineID(999999)}, {ID: quarantineID(2)}}
	var ids []string
	for _, q := range qs {
		ids = append(ids, q.ID)
	}
	if ids[2] != "q-000002" || ids[0] != "q-1000000" {
		t.Fatalf("ids = %v", ids)
	}
	slices.SortFunc(qs, byID)
	if qs[0].ID != "q-000002" || qs[1].ID != "q-999999" || qs[2].ID != "q-1000000" {
		t.Fatalf("sorted = %v", qs)
	}
}

// An Update that changes nothing commits nothing: a bbolt commit writes
// and syncs the meta page even when empty, and a publisher log or a blob
// link already there is the common case.
func TestBoltUpdateUnchangedCommitsNothing(t *testing.T) {
	ctx := context.Background()
	b := openTestBolt(t, filepath.Join(t.TempDir(), "airlock.db"))
	txid := func() int {
		var id int
		if err := b.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	set := func(string, []byte) ([]byte, bool, error) { return []byte("v"), true, nil }
	keep := func(string, []byte) ([]byte, bool, error) { return nil, false, nil }
	before := txid()
	if err := b.Update(ctx, "links", []string{"a", "b"}, set); err != nil {
		t.Fatal(err)
	}
	if got := txid(); got != before+1 {
		t.Fatalf("a changing Update moved the transaction id %d → %d, want one commit", before, got)
	}
	if err := b.Update(ctx, "links", []string{"a", "b", "new"}, keep); err != nil {
		t.Fatal(err)
	}
	if got := txid(); got != before+1 {
		t.Errorf("an Update that changed nothing committed (transaction id %d → %d)", before+1, got)
	}
	if _, err := b.Get(ctx, "links", "new"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unchanged key was stored: %v", err)
	}
}
