// Package cache stores what Airlock knows: metadata (decisions,
// observations, quarantine records, the audit log, checksum-database state)
// and the artifact bytes themselves in a content-addressed blob store.
//
// Both halves sit behind small interfaces, Meta and Blobs, so that a shared
// database and an object store can be added as drivers. The embedded
// drivers are bbolt (OpenBolt) and a local directory (OpenDisk).
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

// Errors returned by the drivers, to be inspected with errors.Is.
var (
	ErrNotFound       = errors.New("not found")
	ErrDigestMismatch = errors.New("digest mismatch")
	ErrConflict       = errors.New("conflict")
	ErrInvalidDigest  = errors.New("invalid digest")
)

// State is where a quarantine record stands.
type State string

// Held and Blocked both keep an artifact from being served; Held is set by
// a check, Blocked by an admin. Released lets it through again.
const (
	Held     State = "held"
	Blocked  State = "blocked"
	Released State = "released"
)

// Hides reports whether an artifact in this state must not be served.
func (s State) Hides() bool { return s == Held || s == Blocked }

// Quarantine is the record of one held (or once held) artifact.
type Quarantine struct {
	ID        string           `json:"id"`
	Artifact  verify.Artifact  `json:"artifact"`
	Findings  []verify.Finding `json:"findings"`
	State     State            `json:"state"`
	FirstSeen time.Time        `json:"first_seen"`
	Updated   time.Time        `json:"updated"`
	UpdatedBy string           `json:"updated_by"`
	Reason    string           `json:"reason,omitempty"`
}

// Status is everything stored about the decision on one artifact.
type Status struct {
	Decision   verify.Decision `json:"decision"`
	Decided    time.Time       `json:"decided"`
	Quarantine *Quarantine     `json:"quarantine,omitempty"`
}

// Hidden reports whether the artifact must be kept from clients: held,
// blocked or denied.
func (s Status) Hidden() bool {
	if s.Quarantine != nil {
		return s.Quarantine.State.Hides()
	}
	return s.Decision.Verdict == verify.Deny || s.Decision.Verdict == verify.Quarantine
}

// Observation is what Airlock saw of an artifact, field by field, the first
// time it saw each field. It is history: a field is never overwritten.
type Observation struct {
	Key       string               `json:"key"`
	FirstSeen time.Time            `json:"first_seen"`
	Fields    map[string]string    `json:"fields"`
	Seen      map[string]time.Time `json:"seen"`
}

// Change is a field whose newly observed value differs from the first one.
type Change struct {
	Field string `json:"field"`
	First string `json:"first"`
	Now   string `json:"now"`
}

// AuditEvent is one entry of the append-only audit log.
type AuditEvent struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Actor        string    `json:"actor"`
	Action       string    `json:"action"`
	Artifact     string    `json:"artifact,omitempty"`
	QuarantineID string    `json:"quarantine_id,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

// Audit actions written by the drivers.
const (
	ActionDecide  = "decide"
	ActionHold    = "hold"
	ActionRelease = "release"
	ActionBlock   = "block"
)

// QuarantineFilter selects quarantine records; zero values match all.
type QuarantineFilter struct {
	State     State
	Ecosystem verify.Ecosystem
	// Name selects one package's records (with Ecosystem); the fronts
	// ask this on every metadata request, so drivers answer it from an
	// index rather than a scan.
	Name string
}

// Meta is the metadata store. Every method that changes a decision writes
// its audit event in the same transaction.
type Meta interface {
	// Decide records the decision on an artifact by actor. A Quarantine or
	// Deny verdict creates (or re-opens) the artifact's quarantine record in
	// state Held, unless it is Released or Blocked already, in which case
	// the record keeps its state and only the decision is stored.
	Decide(ctx context.Context, a verify.Artifact, d verify.Decision, actor string) (Status, error)
	// Status returns the stored decision and quarantine record; ErrNotFound
	// when nothing was decided and nothing held.
	Status(ctx context.Context, a verify.Artifact) (Status, error)

	Quarantines(ctx context.Context, f QuarantineFilter) ([]Quarantine, error)
	Quarantine(ctx context.Context, id string) (Quarantine, error)
	// Release moves a held or blocked record to Released. The reason is
	// required. ErrConflict when it is already released.
	Release(ctx context.Context, id, actor, reason string) (Quarantine, error)
	// Block holds an artifact by hand. ErrConflict when it is already held
	// or blocked (the returned record is the existing one).
	Block(ctx context.Context, a verify.Artifact, actor, reason string) (Quarantine, error)

	// Observe merges fields into the artifact's observation: new fields
	// are recorded with the current time, known fields keep their first
	// value and are reported as a Change when the new value differs.
	Observe(ctx context.Context, key string, fields map[string]string) (Observation, []Change, error)
	Observation(ctx context.Context, key string) (Observation, error)
	// ObservedKeys lists the observed keys starting with prefix, in
	// order: every version of a package seen ("npm:lodash@"), to re-judge
	// them when a feed or policy changes.
	ObservedKeys(ctx context.Context, prefix string) ([]string, error)

	// Audit returns events with Seq > after, oldest first, at most limit
	// (0 = no limit).
	Audit(ctx context.Context, after uint64, limit int) ([]AuditEvent, error)
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)

	// Get and CompareAndSwap hold small named values for other stores'
	// state (the checksum database's latest signed tree, its tiles…).
	// CompareAndSwap replaces old with new atomically and returns
	// ErrConflict when the stored value is not old (nil old = absent).
	Get(ctx context.Context, bucket, key string) ([]byte, error)
	CompareAndSwap(ctx context.Context, bucket, key string, old, new []byte) error
	Put(ctx context.Context, bucket, key string, value []byte) error
	// Update calls fn with the stored value of each key in bucket (nil
	// when absent) and stores what it returns when change is true, all
	// in one transaction: every change is stored or, if fn fails, none.
	// One transaction is one fsync; a manifest with forty layers links
	// them at the cost of one, and an Update that changes nothing writes
	// nothing. fn runs inside the transaction: it must not call the
	// store.
	Update(ctx context.Context, bucket string, keys []string, fn func(key string, old []byte) (new []byte, change bool, err error)) error

	Close() error
}

// Blobs is the content-addressed byte store. Digests are "sha256:<hex>".
type Blobs interface {
	// Stage starts a new blob: bytes written to it go to a local
	// temporary file, which the caller may read to verify the content
	// before committing it, and are hashed from that file (Digest and
	// Commit wait until every byte written is).
	Stage(ctx context.Context) (Staged, error)
	// Open returns the blob's content and size; ErrNotFound when absent,
	// ErrDigestMismatch when the stored bytes no longer match the name
	// (such a blob is removed and never served).
	// On the disk driver the reader is an *os.File, so that
	// http.ServeContent can use sendfile.
	Open(ctx context.Context, digest string) (io.ReadSeekCloser, int64, error)
	Has(ctx context.Context, digest string) (bool, error)
}

// Staged is a blob being written.
type Staged interface {
	io.Writer
	// Name is a local file holding the bytes written so far, for
	// verifiers that need a file (zip checks).
	Name() string
	// Size and Digest describe the bytes written so far.
	Size() int64
	Digest() string
	// Commit fsyncs the bytes and makes them the blob want, or returns
	// ErrDigestMismatch and commits nothing.
	Commit(ctx context.Context, want string) error
	// Discard drops the bytes; it is safe to call after Commit.
	Discard() error
}

// Observer reads observations (Meta does).
type Observer interface {
	Observation(ctx context.Context, key string) (Observation, error)
}

// Opener opens stored blobs (Blobs does).
type Opener interface {
	Open(ctx context.Context, digest string) (io.ReadSeekCloser, int64, error)
}

// OpenObserved opens the blob that field of key's observation names (a
// front records where it stored an artifact's bytes that way), returning
// it with its digest. A missing observation, field or blob is
// ErrNotFound; a blob that fails its integrity check on open is that
// error (the store removed it), for the caller to log and fetch again.
func OpenObserved(ctx context.Context, m Observer, b Opener, key, field string) (io.ReadSeekCloser, string, error) {
	obs, err := m.Observation(ctx, key)
	if err != nil {
		return nil, "", err
	}
	d := obs.Fields[field]
	if d == "" {
		return nil, "", fmt.Errorf("%s has no %s: %w", key, field, ErrNotFound)
	}
	f, _, err := b.Open(ctx, d)
	if err != nil {
		return nil, d, err // the digest, for the caller's log
	}
	return f, d, nil
}
