package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors specific to the embedded drivers, to be inspected with errors.Is.
var (
	// ErrInUse is returned by OpenBolt when another process holds the
	// database: bbolt takes an exclusive lock on the file.
	ErrInUse = errors.New("database is in use by another process")
	// ErrReasonRequired is returned by Release and Block without a reason:
	// a manual override without a recorded why is not auditable.
	ErrReasonRequired = errors.New("a reason is required")
)

// The fixed buckets. Named values for other stores live in buckets created
// on demand under kvPrefix, so that no caller-chosen name can collide with
// (and overwrite) the audit log or the quarantine records.
var (
	bucketDecisions   = []byte("decisions")
	bucketQuarantine  = []byte("quarantine")
	bucketQuarantined = []byte("quarantine_by_artifact")
	bucketObservation = []byte("observations")
	bucketAudit       = []byte("audit")
)

const kvPrefix = "kv/"

// maxRecord bounds what is decoded from (and written to) the database. The
// records are ours, but a single runaway record would otherwise be copied
// into memory on every read of it.
const maxRecord = 4 << 20

// lockTimeout is how long OpenBolt waits for the file lock: long enough to
// ride out a restart in which the old process is still closing, short
// enough that a second airlock on the same data directory fails at once
// instead of hanging.
const lockTimeout = time.Second

// Bolt is the Meta driver on an embedded bbolt database file. Its methods
// are safe for concurrent use; bbolt serialises the writes.
type Bolt struct {
	db  *bolt.DB
	now func() time.Time
}

var _ Meta = (*Bolt)(nil)

// BoltOption configures OpenBolt.
type BoltOption func(*Bolt)

// WithClock makes the store read the time from now instead of time.Now,
// for tests that need to see which timestamps were written.
func WithClock(now func() time.Time) BoltOption {
	return func(b *Bolt) { b.now = now }
}

// OpenBolt opens (creating if needed) the metadata database at path. It
// fails with ErrInUse when another process has it open.
func OpenBolt(path string, opts ...BoltOption) (*Bolt, error) {
	b := &Bolt{now: time.Now}
	for _, o := range opts {
		o(b)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("metadata database %s: %w (is another airlock running on the same data directory?)", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("opening metadata database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDecisions, bucketQuarantine, bucketQuarantined, bucketObservation, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising metadata database %s: %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	b.db = db
	return b, nil
}

// batchDelay is how long a Put waits for others to share its transaction
// (bbolt's default is 10 ms). Every Put waits that long, alone or not: a
// cold image manifest makes three of them in a row before it is served.
// A couple of milliseconds still gathers the tiles the checksum-database
// client saves in parallel, and is about what one fsync costs.
const batchDelay = 2 * time.Millisecond

// Close releases the database file and its lock.
func (b *Bolt) Close() error { return b.db.Close() }

// clock is the time written into records. UTC and without a monotonic
// reading, so that a record compares equal to itself after a round trip.
func (b *Bolt) clock() time.Time { return b.now().UTC().Round(0) }

func (b *Bolt) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(fn)
}

func (b *Bolt) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(fn)
}

// getJSON decodes the record at key into v; false when there is none.
func getJSON(bk *bolt.Bucket, key []byte, v any) (bool, error) {
	data := bk.Get(key)
	if data == nil {
		return false, nil
	}
	if len(data) > maxRecord {
		return false, fmt.Errorf("record %q is %d bytes, over the %d limit", key, len(data), maxRecord)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decoding record %q: %w", key, err)
	}
	return true, nil
}

func putJSON(bk *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > maxRecord {
		return fmt.Errorf("record %q is %d bytes, over the %d limit", key, len(data), maxRecord)
	}
	return bk.Put(key, data)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// appendAudit writes e with the next sequence number, inside the caller's
// transaction, so that the event and the change it records commit together.
func appendAudit(tx *bolt.Tx, e *AuditEvent) error {
	bk := tx.Bucket(bucketAudit)
	seq, err := bk.NextSequence()
	if err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	e.Seq = seq
	return putJSON(bk, seqKey(seq), e)
}

// AppendAudit appends e to the audit log. The sequence number is always
// the store's: a caller-chosen one could overwrite history or go backwards.
// A zero Time is set to now.
func (b *Bolt) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	if e.Action == "" {
		return AuditEvent{}, errors.New("append audit: the event has no action")
	}
	if e.Time.IsZero() {
		e.Time = b.clock()
	}
	err := b.update(ctx, func(tx *bolt.Tx) error { return appendAudit(tx, &e) })
	if err != nil {
		return AuditEvent{}, fmt.Errorf("append audit: %w", err)
	}
	return e, nil
}

// Audit returns events with Seq > after, oldest first, at most limit
// (0 = no limit).
func (b *Bolt) Audit(ctx context.Context, after uint64, limit int) ([]AuditEvent, error) {
	if limit < 0 {
		return nil, fmt.Errorf("audit: negative limit %d", limit)
	}
	if after == math.MaxUint64 {
		return nil, nil
	}
	var events []AuditEvent
	err := b.view(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketAudit)
		c := bk.Cursor()
		for k, _ := c.Seek(seqKey(after + 1)); k != nil; k, _ = c.Next() {
			var e AuditEvent
			if _, err := getJSON(bk, k, &e); err != nil {
				return err
			}
			events = append(events, e)
			if limit > 0 && len(events) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return events, nil
}

// Observe merges fields into the observation of key; see Meta.
func (b *Bolt) Observe(ctx context.Context, key string, fields map[string]string) (Observation, []Change, error) {
	if key == "" {
		return Observation{}, nil, errors.New("observe: empty key")
	}
	if _, ok := fields[""]; ok {
		return Observation{}, nil, fmt.Errorf("observe %s: empty field name", key)
	}
	now := b.clock()
	var (
		obs     Observation
		changes []Change
	)
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketObservation)
		found, err := getJSON(bk, []byte(key), &obs)
		if err != nil {
			return err
		}
		dirty := !found
		if !found {
			obs = Observation{Key: key, FirstSeen: now}
		}
		if obs.Fields == nil {
			obs.Fields = map[string]string{}
		}
		if obs.Seen == nil {
			obs.Seen = map[string]time.Time{}
		}
		// Sorted, so that the changes come out in a stable order.
		for _, f := range slices.Sorted(maps.Keys(fields)) {
			v := fields[f]
			first, ok := obs.Fields[f]
			switch {
			case !ok:
				obs.Fields[f], obs.Seen[f] = v, now
				dirty = true
			case first != v:
				changes = append(changes, Change{Field: f, First: first, Now: v})
			}
		}
		if !dirty {
			return nil
		}
		return putJSON(bk, []byte(key), obs)
	})
	if err != nil {
		return Observation{}, nil, fmt.Errorf("observe %s: %w", key, err)
	}
	return obs, changes, nil
}

// Observation returns what was observed of key; ErrNotFound when nothing.
func (b *Bolt) Observation(ctx context.Context, key string) (Observation, error) {
	var obs Observation
	err := b.view(ctx, func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketObservation), []byte(key), &obs)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Observation{}, fmt.Errorf("observation %s: %w", key, err)
	}
	return obs, nil
}

// ObservedKeys returns the keys of observations that start with prefix,
// in order.
func (b *Bolt) ObservedKeys(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := b.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketObservation).Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			out = append(out, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observations under %q: %w", prefix, err)
	}
	return out, nil
}

func kvNames(bucket, key string) ([]byte, []byte, error) {
	switch {
	case bucket == "":
		return nil, nil, errors.New("empty bucket name")
	case key == "":
		return nil, nil, errors.New("empty key")
	}
	return []byte(kvPrefix + bucket), []byte(key), nil
}

// lookup tells an absent key from one holding an empty value, which
// Bucket.Get does not.
func lookup(bk *bolt.Bucket, key []byte) ([]byte, bool) {
	k, v := bk.Cursor().Seek(key)
	if !bytes.Equal(k, key) {
		return nil, false
	}
	return v, true
}

// Get returns the value stored under bucket/key; ErrNotFound when absent.
// An empty stored value comes back as a non-nil empty slice.
func (b *Bolt) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	bn, kn, err := kvNames(bucket, key)
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	var out []byte
	err = b.view(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bn)
		if bk == nil {
			return ErrNotFound
		}
		v, ok := lookup(bk, kn)
		if !ok {
			return ErrNotFound
		}
		// bbolt's slices are only valid inside the transaction.
		out = append([]byte{}, v...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return out, nil
}

// Put stores value under bucket/key, replacing any previous value.
func (b *Bolt) Put(ctx context.Context, bucket, key string, value []byte) error {
	bn, kn, err := kvNames(bucket, key)
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Batched: concurrent Puts (tiles the checksum database client fetches
	// in parallel, say) share one transaction and one fsync. The function
	// may run twice, which a plain put survives.
	err = b.db.Batch(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bn)
		if err != nil {
			return err
		}
		return bk.Put(kn, nonNil(value))
	})
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// CompareAndSwap stores new under bucket/key if the stored value is old,
// where a nil old means absent (and an empty non-nil old means an empty
// value). A nil new stores an empty value; nothing is ever deleted.
func (b *Bolt) CompareAndSwap(ctx context.Context, bucket, key string, old, new []byte) error {
	bn, kn, err := kvNames(bucket, key)
	if err != nil {
		return fmt.Errorf("compare-and-swap %s/%s: %w", bucket, key, err)
	}
	err = b.update(ctx, func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bn)
		if err != nil {
			return err
		}
		cur, ok := lookup(bk, kn)
		switch {
		case old == nil && ok:
			return fmt.Errorf("%w: value exists, expected none", ErrConflict)
		case old != nil && !ok:
			return fmt.Errorf("%w: no value, expected one", ErrConflict)
		case old != nil && !bytes.Equal(cur, old):
			return fmt.Errorf("%w: value changed", ErrConflict)
		}
		return bk.Put(kn, nonNil(new))
	})
	if err != nil {
		return fmt.Errorf("compare-and-swap %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Update runs fn on every key of bucket in one write transaction.
func (b *Bolt) Update(ctx context.Context, bucket string, keys []string, fn func(key string, old []byte) ([]byte, bool, error)) error {
	names := make([][]byte, len(keys))
	var bn []byte
	for i, k := range keys {
		var err error
		if bn, names[i], err = kvNames(bucket, k); err != nil {
			return fmt.Errorf("update %s/%s: %w", bucket, k, err)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	// A commit writes and syncs even when nothing changed: with no
	// change the transaction is rolled back instead.
	errUnchanged := errors.New("unchanged")
	err := b.update(ctx, func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bn)
		if err != nil {
			return err
		}
		changed := false
		for i, kn := range names {
			var old []byte
			if cur, ok := lookup(bk, kn); ok {
				// fn may keep it; bolt's memory is only valid in tx.
				old = bytes.Clone(cur)
			}
			nv, change, err := fn(keys[i], old)
			if err != nil {
				return fmt.Errorf("%s: %w", keys[i], err)
			}
			if change {
				if err := bk.Put(kn, nonNil(nv)); err != nil {
					return err
				}
				changed = true
			}
		}
		if !changed {
			return errUnchanged
		}
		return nil
	})
	if err != nil && err != errUnchanged {
		return fmt.Errorf("update %s: %w", bucket, err)
	}
	return nil
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
