package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
)

// fakeMeta holds quarantine records and the audit log in memory: the part
// of cache.Meta the admin API uses. Other methods are not implemented (the
// embedded nil interface panics if one is called).
type fakeMeta struct {
	cache.Meta
	mu      sync.Mutex
	clock   time.Time
	records []cache.Quarantine
	audit   []cache.AuditEvent
	facts   map[string]cache.Observation
}

func newFakeMeta() *fakeMeta {
	return &fakeMeta{clock: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (m *fakeMeta) now() time.Time {
	m.clock = m.clock.Add(time.Minute)
	return m.clock
}

func (m *fakeMeta) log(e cache.AuditEvent) {
	e.Seq, e.Time = uint64(len(m.audit)+1), m.now()
	m.audit = append(m.audit, e)
}

// hold records a check's quarantine of name, as Decide would.
func (m *fakeMeta) hold(name string, findings ...verify.Finding) cache.Quarantine {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := verify.ParseArtifact(name)
	if err != nil {
		panic(err)
	}
	t := m.now()
	q := cache.Quarantine{
		ID: fmt.Sprintf("q-%06d", len(m.records)+1), Artifact: a, Findings: findings,
		State: cache.Held, FirstSeen: t, Updated: t, UpdatedBy: "system",
	}
	m.records = append(m.records, q)
	m.log(cache.AuditEvent{Actor: "system", Action: cache.ActionHold, Artifact: a.String(), QuarantineID: q.ID, Detail: "quarantine: " + findings[0].Message})
	return q
}

func (m *fakeMeta) find(pred func(cache.Quarantine) bool) int {
	return slices.IndexFunc(m.records, pred)
}

func (m *fakeMeta) Status(_ context.Context, a verify.Artifact) (cache.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.find(func(q cache.Quarantine) bool { return q.Artifact.Key() == a.Key() })
	if i < 0 {
		return cache.Status{}, cache.ErrNotFound
	}
	q := m.records[i]
	return cache.Status{Decision: verify.Decision{Verdict: verify.Quarantine, Findings: q.Findings}, Decided: q.FirstSeen, Quarantine: &q}, nil
}

func (m *fakeMeta) Quarantines(_ context.Context, f cache.QuarantineFilter) ([]cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []cache.Quarantine
	for _, q := range m.records {
		if (f.State == "" || q.State == f.State) && (f.Ecosystem == "" || q.Artifact.Ecosystem == f.Ecosystem) && (f.Name == "" || q.Artifact.Name == f.Name) {
			out = append(out, q)
		}
	}
	return out, nil
}

func (m *fakeMeta) Quarantine(_ context.Context, id string) (cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.find(func(q cache.Quarantine) bool { return q.ID == id })
	if i < 0 {
		return cache.Quarantine{}, cache.ErrNotFound
	}
	return m.records[i], nil
}

func (m *fakeMeta) Release(_ context.Context, id, actor, reason string) (cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if strings.TrimSpace(reason) == "" {
		panic("fake: release without a reason")
	}
	i := m.find(func(q cache.Quarantine) bool { return q.ID == id })
	if i < 0 {
		return cache.Quarantine{}, cache.ErrNotFound
	}
	q := &m.records[i]
	if q.State == cache.Released {
		return *q, cache.ErrConflict
	}
	q.State, q.Updated, q.UpdatedBy, q.Reason = cache.Released, m.now(), actor, reason
	m.log(cache.AuditEvent{Actor: actor, Action: cache.ActionRelease, Artifact: q.Artifact.String(), QuarantineID: id, Reason: reason})
	return *q, nil
}

func (m *fakeMeta) Block(_ context.Context, a verify.Artifact, actor, reason string) (cache.Quarantine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := m.find(func(q cache.Quarantine) bool { return q.Artifact.Key() == a.Key() }); i >= 0 {
		// Enough for these tests: re-blocking a released record is the
		// admin package's concern.
		return m.records[i], cache.ErrConflict
	}
	t := m.now()
	q := cache.Quarantine{
		ID: fmt.Sprintf("q-%06d", len(m.records)+1), Artifact: a,
		Findings: []verify.Finding{{Check: "manual-block", Message: reason}},
		State:    cache.Blocked, FirstSeen: t, Updated: t, UpdatedBy: actor, Reason: reason,
	}
	m.records = append(m.records, q)
	m.log(cache.AuditEvent{Actor: actor, Action: cache.ActionBlock, Artifact: a.String(), QuarantineID: q.ID, Reason: reason})
	return q, nil
}

func (m *fakeMeta) Audit(_ context.Context, after uint64, limit int) ([]cache.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []cache.AuditEvent
	for _, e := range m.audit {
		if e.Seq > after && (limit == 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *fakeMeta) Observe(_ context.Context, key string, fields map[string]string) (cache.Observation, []cache.Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.facts == nil {
		m.facts = map[string]cache.Observation{}
	}
	o, ok := m.facts[key]
	if !ok {
		o = cache.Observation{Key: key, FirstSeen: m.clock, Fields: map[string]string{}, Seen: map[string]time.Time{}}
	}
	for k, v := range fields {
		if _, ok := o.Fields[k]; !ok {
			o.Fields[k], o.Seen[k] = v, m.clock
		}
	}
	m.facts[key] = o
	return o, nil, nil
}

func (m *fakeMeta) Observation(_ context.Context, key string) (cache.Observation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.facts[key]
	if !ok {
		return cache.Observation{}, cache.ErrNotFound
	}
	return o, nil
}
