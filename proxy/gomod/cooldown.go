package gomod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// A Go version carries no publish time anyone vouches for: .info's Time is
// the commit time, which the author chooses, so it can prove a version
// young but never old. What cannot be backdated is the checksum database:
// it gives every version a record id as it first appears. So Airlock
// samples the database's tree size as it verifies content, and a version
// whose record id is at or above the size it saw cooldown ago appeared
// within the cooldown.

// bucketTree holds the sampled tree sizes, per database.
const bucketTree = "sumdb-tree"

// Sampling bounds: one sample per interval, kept for the horizon (longer
// than any sane cooldown).
const (
	sampleEvery   = 10 * time.Minute
	sampleHorizon = 60 * 24 * time.Hour
)

type treeSample struct {
	At   int64 `json:"t"` // unix seconds
	Size int64 `json:"n"`
}

// sampler records tree sizes, at most one per sampleEvery.
type sampler struct {
	mu   sync.Mutex
	last time.Time
}

// sampleTree records the tree size a verification saw.
func (h *Handler) sampleTree(ctx context.Context, size int64) {
	if size <= 0 {
		return
	}
	now := h.o.Now()
	h.samples.mu.Lock()
	defer h.samples.mu.Unlock()
	if now.Sub(h.samples.last) < sampleEvery {
		return
	}
	samples, _ := h.treeSamples(ctx)
	if n := len(samples); n > 0 && now.Unix()-samples[n-1].At < int64(sampleEvery/time.Second) {
		h.samples.last = time.Unix(samples[n-1].At, 0)
		return
	}
	samples = append(samples, treeSample{At: now.Unix(), Size: size})
	cut := now.Add(-sampleHorizon).Unix()
	samples = slices.DeleteFunc(samples, func(s treeSample) bool { return s.At < cut })
	raw, _ := json.Marshal(samples)
	if err := h.o.Meta.Put(ctx, bucketTree, h.o.Verifier.Name(), raw); err != nil {
		h.o.Log.Warn("recording the checksum database's tree size", "err", err)
		return
	}
	h.samples.last = now
}

func (h *Handler) treeSamples(ctx context.Context) ([]treeSample, error) {
	raw, err := h.o.Meta.Get(ctx, bucketTree, h.o.Verifier.Name())
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s []treeSample
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, nil // rewritten by the next sample
	}
	return s, nil
}

// appearedBy bounds when record rec entered the log: by the first sample
// whose tree contains it, or by firstSeen (when Airlock first got the
// record id from the database, so it was in the log then), whichever is
// earlier. A sample taken after a long pause (Airlock stopped, or no
// verification for days) must not make a record Airlock saw long before
// look new. ok is false when the record predates the first sample: then
// the samples say nothing of its age.
func appearedBy(samples []treeSample, rec int64, firstSeen time.Time) (time.Time, bool) {
	if len(samples) == 0 || rec < samples[0].Size {
		return time.Time{}, false
	}
	var by time.Time
	for _, s := range samples {
		if s.Size > rec {
			by = time.Unix(s.At, 0)
			break
		}
	}
	if !firstSeen.IsZero() && (by.IsZero() || firstSeen.Before(by)) {
		by = firstSeen
	}
	return by, !by.IsZero()
}

// cooldown returns the finding of a version younger than the policy's
// cooldown, by either proof; nil when neither shows it young. fetch allows
// asking upstream for .info and the checksum database for the record when
// Airlock has not seen them.
func (h *Handler) cooldown(ctx context.Context, req request, version string, fetch bool) *verify.Finding {
	a := req.artifact(version)
	e := h.o.Checks.For(a)
	if h.o.Checks.Mode == "" || e.Cooldown <= 0 || e.FastTrack || len(h.fixes(a)) > 0 {
		return nil
	}
	now := h.o.Now()
	obs, _ := h.o.Meta.Observation(ctx, a.Key())
	infoTime := obs.Fields[fieldInfoTime]
	if infoTime == "" && fetch {
		ev, _ := module.EscapeVersion(version)
		if data, err := h.get(ctx, req.epath+"/@v/"+ev+".info", h.o.MaxInfo); err == nil {
			if i, err := parseInfo(data); err == nil && i.Version == version && !i.Time.IsZero() {
				infoTime = i.Time.UTC().Format(time.RFC3339)
				h.o.Meta.Observe(ctx, a.Key(), map[string]string{fieldInfoTime: infoTime})
			}
		}
	}
	if t, err := time.Parse(time.RFC3339, infoTime); err == nil && now.Sub(t) < e.Cooldown {
		until := t.Add(e.Cooldown)
		return &verify.Finding{Check: policy.CheckCooldown,
			Message:  fmt.Sprintf("committed %s ago (.info Time), younger than the %s cooldown (served from %s)", now.Sub(t).Round(time.Minute), e.Cooldown, until.UTC().Format(time.RFC3339)),
			Evidence: map[string]string{"info_time": infoTime, "until": until.UTC().Format(time.RFC3339), "cooldown": e.Cooldown.String()}}
	}
	if obs.Fields[fieldRecord] == "" && fetch {
		if _, private := h.private(req.path); !private {
			if ev, err := h.o.Verifier.Record(ctx, req.path, version); err == nil && ev.RecordID >= 0 {
				h.sampleTree(ctx, ev.TreeSize)
				obs, _, _ = h.o.Meta.Observe(ctx, a.Key(), map[string]string{fieldRecord: strconv.FormatInt(ev.RecordID, 10)})
			}
		}
	}
	rec, err := strconv.ParseInt(obs.Fields[fieldRecord], 10, 64)
	if err != nil {
		return nil
	}
	samples, err := h.treeSamples(ctx)
	if err != nil {
		return nil
	}
	by, ok := appearedBy(samples, rec, obs.Seen[fieldRecord])
	if !ok || now.Sub(by) >= e.Cooldown {
		return nil
	}
	// It appeared by then, so it is old enough once the cooldown has
	// passed since: at most one sampling interval later than exact.
	until := by.Add(e.Cooldown)
	return &verify.Finding{Check: policy.CheckCooldown,
		Message: fmt.Sprintf("entered the checksum database within the %s cooldown (record %d, not yet in the tree Airlock saw before %s; served from %s)",
			e.Cooldown, rec, by.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)),
		Evidence: map[string]string{"record_id": strconv.FormatInt(rec, 10), "appeared_by": by.UTC().Format(time.RFC3339),
			"until": until.UTC().Format(time.RFC3339), "cooldown": e.Cooldown.String()}}
}

// fixes are the advisories that name a's version as the fix of a
// vulnerability: such a version skips the cooldown.
func (h *Handler) fixes(a verify.Artifact) []string {
	if h.o.FastTrack == nil {
		return nil
	}
	return h.o.FastTrack(a)
}

// youngRefusal applies the policy to a cooldown finding: the refusal to
// send, or nil when the policy serves the version (dry-run, allow, warn).
func (h *Handler) youngRefusal(a verify.Artifact, f *verify.Finding) error {
	if f == nil {
		return nil
	}
	o := h.o.Checks.For(a).Decide([]verify.Finding{*f})
	if o.Verdict == verify.Allow {
		h.o.Log.Warn("finding", "artifact", a.String(), "check", f.Check, "finding", f.Message, "dry_run", o.DryRun)
		return nil
	}
	return errorf(http.StatusForbidden, "airlock: %s is withheld: %s: %s\nit is served once it is old enough; to take it now, add a fast_track rule for it", a, f.Check, f.Message)
}

// withoutYoung drops the newest versions that are within the cooldown:
// those @latest and a version query would pick. Only the newest few are
// judged, since each may cost an .info fetch.
func (h *Handler) withoutYoung(ctx context.Context, req request, versions []string) []string {
	if h.o.Checks.Mode == "" {
		return versions
	}
	sorted := slices.Clone(versions)
	semver.Sort(sorted)
	young := map[string]bool{}
	for i := len(sorted) - 1; i >= 0 && i >= len(sorted)-youngCandidates; i-- {
		v := sorted[i]
		if h.youngRefusal(req.artifact(v), h.cooldown(ctx, req, v, true)) != nil {
			young[v] = true
		}
	}
	if len(young) == 0 {
		return versions
	}
	return slices.DeleteFunc(slices.Clone(versions), func(v string) bool { return young[v] })
}

// youngCandidates is how many of the newest versions a listing judges.
const youngCandidates = 3
