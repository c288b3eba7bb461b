package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/admin"
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

// Put stores r, then re-evaluates the holds of its package. When that
// fails the record stays stored: a retry is a no-op Put that re-evaluates
// again, and so is the next start.
func (c *ciRecords) Put(ctx context.Context, r cirecord.Record) (admin.CIRecordResult, error) {
	rec, created, err := c.records.Put(ctx, r)
	if err != nil {
		return admin.CIRecordResult{}, err
	}
	res := admin.CIRecordResult{Record: rec, Created: created}
	f := cache.QuarantineFilter{Ecosystem: rec.Artifact.Ecosystem, Name: rec.Artifact.Name}
	res.Released, err = reevaluate(ctx, c.meta, c.policy, c.now(), c.Check, f, c.log)
	return res, err
}
