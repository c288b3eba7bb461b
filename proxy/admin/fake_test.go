package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// fakeMeta is an in-memory cache.Meta with the documented semantics, so
// that the API can be tested without the bbolt driver.
type fakeMeta struct {
	mu          sync.Mutex
	now         func() time.Time
	decisions   map[string]cache.Status // by artifact key; Quarantine unused
	quarantines map[string]cache.Quarantine
	byArtifact  map[string]string // artifact key → quarantine id
	audit       []cache.AuditEvent
	nextID      int
	kv          map[string][]byte
	observed    map[string]cache.Observation
	fail        error // when set, every call returns it
}

var _ cache.Meta = (*fakeMeta)(nil)

func newFakeMeta() *fakeMeta {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	n := 0
	return &fakeMeta{
		now: func() time.Time {
			n++
			return t0.Add(time.Duration(n) * time.Minute)
		},
		decisions:   map[string]cache.Status{},
		quarantines: map[string]cache.Quarantine{},
		byArtifact:  map[string]string{},
		kv:          map[string][]byte{},
		observed:    map[string]cache.Observation{},
	}
}

func (m *fakeMeta) appendAudit(e cache.AuditEvent) cache.AuditEvent {
	e.Seq = uint64(len(m.audit) + 1)
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	m.audit = append(m.audit, e)
	return e
}

func (m *fakeMeta) newRecord(a verify.Artifact, findings []verify.Finding, s cache.State, actor, reason string) cache.Quarantine {
	m.nextID++
	t := m.now()
	q := cache.Quarantine{
		ID: fmt.Sprintf("q-%06d", m.nextID), Artifact: a, Findings: findings, State: s,
		FirstSeen: t, Updated: t, UpdatedBy: actor, Reason: reason,
	}
	m.quarantines[q.ID] = q
	m.byArtifact[a.Key()] = q.ID
	return q
}

func (m *fakeMeta) Decide(_ context.Context, a verify.Artifact, d verify.Decision, actor string) (cache.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return cache.Status{}, m.fail
	}
	st := cache.Status{Decision: d, Decided: m.now()}
	m.decisions[a.Key()] = st
	m.appendAudit(cache.AuditEvent{Actor: actor, Action: cache.ActionDecide, Artifact: a.String(), Detail: string(d.Verdict)})
	if d.Verdict == verify.Quarantine || d.Verdict == verify.Deny {
		id, ok := m.byArtifact[a.Key()]
		switch {
		case !ok:
			q := m.newRecord(a, d.Findings, cache.Held, actor, "")
			m.appendAudit(cache.AuditEvent{Actor: actor, Action: cache.ActionHold, Artifact: a.String(), QuarantineID: q.ID, Detail: d.Summary()})
		case m.quarantines[id].State == cache.Held:
			q := m.quarantines[id]
			q.Findings, q.Updated, q.UpdatedBy = d.Findings, m.now(), actor
			m.quarantines[id] = q
		}
	}
	if id, ok := m.byArtifact[a.Key()]; ok {
		q := m.quarantines[id]
		st.Quarantine = &q
	}
	return st, nil
}

func (m *fakeMeta) Status(_ context.Context, a verify.Artifact) (cache.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return cache.Status{}, m.fail
	}
	st, decided := m.decisions[a.Key()]
	id, held := m.byArtifact[a.Key()]
	if !decided && !held {
		return cache.Status{}, cache.ErrNotFound
	}
	if held {
		q := m.quarantines[id]
		st.Quarantine = &q
	}
	return st, nil
}

func (m *fakeMeta) Quarantines(_ context.Context, f cache.QuarantineFilter) ([]cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []cache.Quarantine
	for _, q := range m.quarantines {
		if (f.State == "" || q.State == f.State) && (f.Ecosystem == "" || q.Artifact.Ecosystem == f.Ecosystem) && (f.Name == "" || q.Artifact.Name == f.Name) {
			out = append(out, q)
		}
	}
	slices.SortFunc(out, func(a, b cache.Quarantine) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (m *fakeMeta) Quarantine(_ context.Context, id string) (cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return cache.Quarantine{}, m.fail
	}
	q, ok := m.quarantines[id]
	if !ok {
		return cache.Quarantine{}, cache.ErrNotFound
	}
	return q, nil
}

func (m *fakeMeta) Release(_ context.Context, id, actor, reason string) (cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return cache.Quarantine{}, m.fail
	}
	if strings.TrimSpace(reason) == "" {
		return cache.Quarantine{}, errors.New("fake: release without a reason")
	}
	q, ok := m.quarantines[id]
	if !ok {
		return cache.Quarantine{}, cache.ErrNotFound
	}
	if q.State == cache.Released {
		return q, cache.ErrConflict
	}
	q.State, q.Updated, q.UpdatedBy, q.Reason = cache.Released, m.now(), actor, reason
	m.quarantines[id] = q
	m.appendAudit(cache.AuditEvent{Actor: actor, Action: cache.ActionRelease, Artifact: q.Artifact.String(), QuarantineID: id, Reason: reason})
	return q, nil
}

func (m *fakeMeta) Block(_ context.Context, a verify.Artifact, actor, reason string) (cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return cache.Quarantine{}, m.fail
	}
	finding := []verify.Finding{{Check: "admin", Message: "blocked by an admin: " + reason}}
	var q cache.Quarantine
	if id, ok := m.byArtifact[a.Key()]; ok {
		q = m.quarantines[id]
		if q.State.Hides() {
			return q, cache.ErrConflict
		}
		q.State, q.Findings, q.Updated, q.UpdatedBy, q.Reason = cache.Blocked, finding, m.now(), actor, reason
		m.quarantines[id] = q
	} else {
		q = m.newRecord(a, finding, cache.Blocked, actor, reason)
	}
	m.appendAudit(cache.AuditEvent{Actor: actor, Action: cache.ActionBlock, Artifact: a.String(), QuarantineID: q.ID, Reason: reason})
	return q, nil
}

func (m *fakeMeta) Observe(_ context.Context, key string, fields map[string]string) (cache.Observation, []cache.Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.observed[key]
	if !ok {
		o = cache.Observation{Key: key, FirstSeen: m.now(), Fields: map[string]string{}, Seen: map[string]time.Time{}}
	}
	var changes []cache.Change
	for k, v := range fields {
		if first, ok := o.Fields[k]; ok {
			if first != v {
				changes = append(changes, cache.Change{Field: k, First: first, Now: v})
			}
			continue
		}
		o.Fields[k], o.Seen[k] = v, m.now()
	}
	m.observed[key] = o
	return o, changes, nil
}

func (m *fakeMeta) Observation(_ context.Context, key string) (cache.Observation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.observed[key]
	if !ok {
		return cache.Observation{}, cache.ErrNotFound
	}
	return o, nil
}

func (m *fakeMeta) Audit(_ context.Context, after uint64, limit int) ([]cache.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []cache.AuditEvent
	for _, e := range m.audit {
		if e.Seq > after && (limit == 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *fakeMeta) AppendAudit(_ context.Context, e cache.AuditEvent) (cache.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appendAudit(e), nil
}

func (m *fakeMeta) Get(_ context.Context, bucket, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[bucket+"/"+key]
	if !ok {
		return nil, cache.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (m *fakeMeta) CompareAndSwap(_ context.Context, bucket, key string, old, new []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.kv[bucket+"/"+key]
	if (old == nil && ok) || (old != nil && (!ok || !bytes.Equal(cur, old))) {
		return cache.ErrConflict
	}
	m.kv[bucket+"/"+key] = bytes.Clone(new)
	return nil
}

func (m *fakeMeta) Update(_ context.Context, bucket string, keys []string, fn func(string, []byte) ([]byte, bool, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[string][]byte{}
	for _, k := range keys {
		old, ok := next[k]
		if !ok {
			old = bytes.Clone(m.kv[bucket+"/"+k])
		}
		nv, change, err := fn(k, old)
		if err != nil {
			return err
		}
		if change {
			next[k] = bytes.Clone(nv)
		}
	}
	for k, v := range next {
		m.kv[bucket+"/"+k] = v
	}
	return nil
}

func (m *fakeMeta) Put(_ context.Context, bucket, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[bucket+"/"+key] = bytes.Clone(value)
	return nil
}

func (m *fakeMeta) Close() error { return nil }

func (m *fakeMeta) ObservedKeys(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.observed {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}
