package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/airlock-proxy/airlock/verify"
)

// decisionRecord is the value in the decisions bucket.
type decisionRecord struct {
	Decision verify.Decision `json:"decision"`
	Decided  time.Time       `json:"decided"`
}

// maxFindings bounds a held record's findings, which grow each time the
// artifact fails a check again; the first ones are kept since they are the
// original evidence.
const maxFindings = 64

// CheckManualBlock is the Check of the finding that Block records.
const CheckManualBlock = "manual-block"

func checkArtifact(a verify.Artifact) error {
	if a.Ecosystem == "" || a.Name == "" || a.Version == "" {
		return fmt.Errorf("%w %q: ecosystem, name and version are required", verify.ErrInvalidArtifact, a.String())
	}
	return nil
}

func checkReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReasonRequired
	}
	return nil
}

// quarantineOf returns the artifact's quarantine record, if it has one.
func quarantineOf(tx *bolt.Tx, key string) (Quarantine, bool, error) {
	id := tx.Bucket(bucketQuarantined).Get([]byte(key))
	if id == nil {
		return Quarantine{}, false, nil
	}
	q, ok, err := quarantineByID(tx, string(id))
	if err == nil && !ok {
		err = fmt.Errorf("index names quarantine record %s, which does not exist", id)
	}
	return q, ok, err
}

func quarantineByID(tx *bolt.Tx, id string) (Quarantine, bool, error) {
	var q Quarantine
	ok, err := getJSON(tx.Bucket(bucketQuarantine), []byte(id), &q)
	return q, ok, err
}

func putQuarantine(tx *bolt.Tx, q *Quarantine) error {
	// An explicit empty list, so that clients iterate instead of meeting null.
	if q.Findings == nil {
		q.Findings = []verify.Finding{}
	}
	return putJSON(tx.Bucket(bucketQuarantine), []byte(q.ID), q)
}

// newQuarantine creates the artifact's record and indexes it.
func newQuarantine(tx *bolt.Tx, a verify.Artifact, state State, findings []verify.Finding, now time.Time, actor, reason string) (Quarantine, error) {
	seq, err := tx.Bucket(bucketQuarantine).NextSequence()
	if err != nil {
		return Quarantine{}, fmt.Errorf("quarantine sequence: %w", err)
	}
	q := Quarantine{
		ID:        quarantineID(seq),
		Artifact:  a,
		Findings:  slices.Clone(findings),
		State:     state,
		FirstSeen: now,
		Updated:   now,
		UpdatedBy: actor,
		Reason:    reason,
	}
	if err := putQuarantine(tx, &q); err != nil {
		return Quarantine{}, err
	}
	if err := tx.Bucket(bucketQuarantined).Put([]byte(a.Key()), []byte(q.ID)); err != nil {
		return Quarantine{}, err
	}
	return q, nil
}

// quarantineID is short enough to type into an admin command, and sorts
// by age among ids of the same length (see byID).
func quarantineID(seq uint64) string { return fmt.Sprintf("q-%06d", seq) }

// byID orders ids by their number: q-1000000 comes after q-999999.
func byID(a, b Quarantine) int {
	if len(a.ID) != len(b.ID) {
		return len(a.ID) - len(b.ID)
	}
	return strings.Compare(a.ID, b.ID)
}

// mergeFindings appends the findings not already recorded.
func mergeFindings(have, add []verify.Finding) []verify.Finding {
	for _, f := range add {
		if len(have) >= maxFindings {
			break
		}
		dup := slices.ContainsFunc(have, func(h verify.Finding) bool {
			return h.Check == f.Check && h.Message == f.Message
		})
		if !dup {
			have = append(have, f)
		}
	}
	return have
}

// Decide records the decision on a; see Meta. A Quarantine or Deny verdict
// creates a Held record when there is none and adds its findings to a Held
// one; a Released or Blocked record is left as the admin set it. An Allow
// verdict never changes a record: only an admin releases.
func (b *Bolt) Decide(ctx context.Context, a verify.Artifact, d verify.Decision, actor string) (Status, error) {
	if err := checkArtifact(a); err != nil {
		return Status{}, fmt.Errorf("decide: %w", err)
	}
	switch d.Verdict {
	case verify.Allow, verify.Quarantine, verify.Deny:
	default:
		return Status{}, fmt.Errorf("decide %s: unknown verdict %q", a, d.Verdict)
	}
	key := a.Key()
	now := b.clock()
	var st Status
	err := b.update(ctx, func(tx *bolt.Tx) error {
		st = Status{Decision: d, Decided: now}
		if err := putJSON(tx.Bucket(bucketDecisions), []byte(key), decisionRecord{d, now}); err != nil {
			return err
		}
		q, found, err := quarantineOf(tx, key)
		if err != nil {
			return err
		}
		ev := AuditEvent{
			Time: now, Actor: actor, Action: ActionDecide, Artifact: key,
			Detail: fmt.Sprintf("%s: %s", d.Verdict, d.Summary()),
		}
		hides := d.Verdict != verify.Allow
		switch {
		case hides && !found:
			if q, err = newQuarantine(tx, a, Held, d.Findings, now, actor, ""); err != nil {
				return err
			}
			found = true
			ev.Action = ActionHold
		case hides && q.State == Held:
			q.Findings = mergeFindings(q.Findings, d.Findings)
			q.Updated, q.UpdatedBy = now, actor
			if err := putQuarantine(tx, &q); err != nil {
				return err
			}
			ev.Action = ActionHold
		case found:
			// Said in the log, since the verdict alone reads as if it
			// took effect.
			ev.Detail += fmt.Sprintf(" (record stays %s)", q.State)
		}
		if found {
			ev.QuarantineID = q.ID
			st.Quarantine = &q
		}
		return appendAudit(tx, &ev)
	})
	if err != nil {
		return Status{}, fmt.Errorf("decide %s: %w", a, err)
	}
	return st, nil
}

// Status returns what is stored about a; ErrNotFound when nothing.
func (b *Bolt) Status(ctx context.Context, a verify.Artifact) (Status, error) {
	key := a.Key()
	var st Status
	err := b.view(ctx, func(tx *bolt.Tx) error {
		var rec decisionRecord
		decided, err := getJSON(tx.Bucket(bucketDecisions), []byte(key), &rec)
		if err != nil {
			return err
		}
		q, held, err := quarantineOf(tx, key)
		if err != nil {
			return err
		}
		if !decided && !held {
			return ErrNotFound
		}
		st = Status{Decision: rec.Decision, Decided: rec.Decided}
		if held {
			st.Quarantine = &q
		}
		return nil
	})
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", a, err)
	}
	return st, nil
}

// Quarantines returns the records matching f, oldest first.
func (b *Bolt) Quarantines(ctx context.Context, f QuarantineFilter) ([]Quarantine, error) {
	match := func(q Quarantine) bool {
		return (f.State == "" || q.State == f.State) && (f.Ecosystem == "" || q.Artifact.Ecosystem == f.Ecosystem) &&
			(f.Name == "" || q.Artifact.Name == f.Name)
	}
	var out []Quarantine
	err := b.view(ctx, func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketQuarantine)
		if f.Name != "" && f.Ecosystem != "" {
			// Artifact keys start with "<ecosystem>:<name>", so the
			// index by artifact holds one package's records together
			// (with those of longer names sharing the prefix).
			prefix := []byte(string(f.Ecosystem) + ":" + f.Name)
			c := tx.Bucket(bucketQuarantined).Cursor()
			for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
				var q Quarantine
				if _, err := getJSON(bk, id, &q); err != nil {
					return err
				}
				if match(q) {
					out = append(out, q)
				}
			}
			return nil
		}
		return bk.ForEach(func(k, _ []byte) error {
			var q Quarantine
			if _, err := getJSON(bk, k, &q); err != nil {
				return err
			}
			if match(q) {
				out = append(out, q)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing quarantine: %w", err)
	}
	slices.SortFunc(out, byID)
	return out, nil
}

// Quarantine returns the record id; ErrNotFound when there is none.
func (b *Bolt) Quarantine(ctx context.Context, id string) (Quarantine, error) {
	var q Quarantine
	err := b.view(ctx, func(tx *bolt.Tx) error {
		if id == "" {
			return ErrNotFound
		}
		var ok bool
		var err error
		q, ok, err = quarantineByID(tx, id)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Quarantine{}, fmt.Errorf("quarantine %s: %w", id, err)
	}
	return q, nil
}

// Release moves record id to Released; see Meta. On ErrConflict the
// returned record is the stored one.
func (b *Bolt) Release(ctx context.Context, id, actor, reason string) (Quarantine, error) {
	if err := checkReason(reason); err != nil {
		return Quarantine{}, fmt.Errorf("release %s: %w", id, err)
	}
	now := b.clock()
	var q Quarantine
	err := b.update(ctx, func(tx *bolt.Tx) error {
		var ok bool
		var err error
		if id != "" {
			q, ok, err = quarantineByID(tx, id)
		}
		switch {
		case err != nil:
			return err
		case !ok:
			return ErrNotFound
		case q.State == Released:
			return fmt.Errorf("%w: already released by %s at %s", ErrConflict, q.UpdatedBy, q.Updated.Format(time.RFC3339))
		}
		q.State, q.Updated, q.UpdatedBy, q.Reason = Released, now, actor, reason
		if err := putQuarantine(tx, &q); err != nil {
			return err
		}
		return appendAudit(tx, &AuditEvent{
			Time: now, Actor: actor, Action: ActionRelease,
			Artifact: q.Artifact.Key(), QuarantineID: q.ID, Reason: reason,
		})
	})
	if errors.Is(err, ErrConflict) {
		return q, fmt.Errorf("release %s: %w", id, err)
	}
	if err != nil {
		return Quarantine{}, fmt.Errorf("release %s: %w", id, err)
	}
	return q, nil
}

// Block holds a by hand; see Meta. A released record is blocked again
// (keeping its id and history), otherwise a new record is created.
func (b *Bolt) Block(ctx context.Context, a verify.Artifact, actor, reason string) (Quarantine, error) {
	if err := checkArtifact(a); err != nil {
		return Quarantine{}, fmt.Errorf("block: %w", err)
	}
	if err := checkReason(reason); err != nil {
		return Quarantine{}, fmt.Errorf("block %s: %w", a, err)
	}
	key := a.Key()
	now := b.clock()
	finding := verify.Finding{Check: CheckManualBlock, Message: reason}
	var q Quarantine
	err := b.update(ctx, func(tx *bolt.Tx) error {
		var found bool
		var err error
		q, found, err = quarantineOf(tx, key)
		switch {
		case err != nil:
			return err
		case found && q.State.Hides():
			return fmt.Errorf("%w: already %s as %s", ErrConflict, q.State, q.ID)
		case found:
			q.State, q.Updated, q.UpdatedBy, q.Reason = Blocked, now, actor, reason
			q.Findings = mergeFindings(q.Findings, []verify.Finding{finding})
			err = putQuarantine(tx, &q)
		default:
			q, err = newQuarantine(tx, a, Blocked, []verify.Finding{finding}, now, actor, reason)
		}
		if err != nil {
			return err
		}
		return appendAudit(tx, &AuditEvent{
			Time: now, Actor: actor, Action: ActionBlock,
			Artifact: key, QuarantineID: q.ID, Reason: reason,
		})
	})
	if errors.Is(err, ErrConflict) {
		return q, fmt.Errorf("block %s: %w", a, err)
	}
	if err != nil {
		return Quarantine{}, fmt.Errorf("block %s: %w", a, err)
	}
	return q, nil
}
