package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// bucketStore keeps a verify-layer store's values in one bucket of the
// metadata store, which the verify layer may not import: ErrNotFound is
// absent, ErrConflict a lost swap.
type bucketStore struct {
	meta   cache.Meta
	bucket string
}

func (s bucketStore) Load(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.meta.Get(ctx, s.bucket, key)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (s bucketStore) Swap(ctx context.Context, key string, old, new []byte) (bool, error) {
	err := s.meta.CompareAndSwap(ctx, s.bucket, key, old, new)
	if errors.Is(err, cache.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

func (s bucketStore) Save(ctx context.Context, key string, v []byte) error {
	return s.meta.Put(ctx, s.bucket, key, v)
}

// ciRecords is the admin API's CI record store: a new record also lifts
// the ci-digest holds of its package that it now satisfies.
type ciRecords struct {
	records *cirecord.Records
	meta    cache.Meta
	policy  policy.Policy
	now     func() time.Time
	log     *slog.Logger
}

func newCIRecords(meta cache.Meta, pol policy.Policy, now func() time.Time, log *slog.Logger) *ciRecords {
	return &ciRecords{
		records: cirecord.New(bucketStore{meta, cirecord.Bucket}, now),
		meta:    meta, policy: pol, now: now, log: log,
	}
}

// Check is the fronts' ci-digest check.
func (c *ciRecords) Check(ctx context.Context, a verify.Artifact, digest string) (*verify.Finding, error) {
	return c.records.Check(ctx, a, digest)
}

func (c *ciRecords) Get(ctx context.Context, a verify.Artifact) (cirecord.Record, error) {
	return c.records.Get(ctx, a)
}

// Put stores r (cirecord.Records.Put).
func (c *ciRecords) Put(ctx context.Context, r cirecord.Record) (cirecord.Record, bool, error) {
	return c.records.Put(ctx, r)
}

// Lift re-evaluates the holds of a's package: a ci-digest hold whose
// upstream digest a record now matches is released. When that fails the
// record stays stored: a retry (a no-op Put) lifts again, and so does the
// next start.
func (c *ciRecords) Lift(ctx context.Context, a verify.Artifact) ([]string, error) {
	f := cache.QuarantineFilter{Ecosystem: a.Ecosystem, Name: a.Name}
	return reevaluate(ctx, c.meta, c.policy, c.now(), c.Check, f, c.log)
}
