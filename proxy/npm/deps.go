package npm

import (
	"context"
	"fmt"
	"strconv"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/npmsig"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// Bounds on the packuments the new-dependency check reads: per release,
// and per packument (a package with many young releases, each adding
// dependencies, must not make one request fetch hundreds). What is over
// a bound is a finding: an unchecked new dependency is what the check
// exists to catch, and padding a release with harmless ones must not
// hide one.
const (
	maxNewDependencies   = 64
	maxDependencyLookups = 256
)

// newDependencyFindings checks the dependencies release i added: their
// packuments are read (through the cache, never judged) for the release
// each range resolves to and the package's creation. Findings are kept
// per packument once every lookup answered; a dependency whose packument
// cannot be read is logged and asked again next time (npm's own fetch of
// it fails closed meanwhile).
func (h *Handler) newDependencyFindings(ctx context.Context, d *doc, i int, e policy.Effective) []verify.Finding {
	if fs, ok := d.depFindings(i); ok {
		return fs
	}
	hist := d.history()
	r := hist[i]
	names := anomaly.AddedDependencies(hist, i, anomaly.DefaultSettled)
	var fs []verify.Finding
	complete := true
	if len(names) > maxNewDependencies {
		fs = append(fs, verify.Finding{Check: policy.CheckInstallScript,
			Message:  fmt.Sprintf("adds %d dependencies, more than the %d Airlock checks in one release", len(names), maxNewDependencies),
			Evidence: map[string]string{"added": strconv.Itoa(len(names)), "checked": strconv.Itoa(maxNewDependencies)}})
		names = names[:maxNewDependencies]
	}
	for _, name := range names {
		spec := r.Dependencies[name]
		target, rng, outside := anomaly.SplitSpec(name, spec)
		ev := map[string]string{"dependency": name, "range": clipSpec(spec)}
		switch {
		case outside:
			if f := anomaly.NewDependency(d.name, r, anomaly.Dependency{Name: name, Range: spec, Outside: true}, e.Cooldown); f != nil {
				fs = append(fs, *f)
			}
			continue
		case !d.takeLookup():
			fs = append(fs, verify.Finding{Check: policy.CheckInstallScript,
				Message:  fmt.Sprintf("adds dependency %s, not checked: the package's releases add more new dependencies than Airlock reads per package (%d)", name, maxDependencyLookups),
				Evidence: ev})
			continue
		}
		dep, err := h.resolveDependency(ctx, target, rng)
		if err != nil {
			complete = false
			h.o.Log.Warn("new dependency not checked", "package", d.name, "version", r.Version, "dependency", name, "err", err)
			continue
		}
		if target != name {
			dep.Name = name + " (npm:" + target + ")"
		}
		if f := anomaly.NewDependency(d.name, r, dep, e.Cooldown); f != nil {
			fs = append(fs, *f)
		}
	}
	if complete {
		d.keepDepFindings(i, fs)
	}
	return fs
}

func clipSpec(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// depFindings returns release i's new-dependency findings, if known.
func (d *doc) depFindings(i int) ([]verify.Finding, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fs, ok := d.deps[i]
	return fs, ok
}

// keepDepFindings keeps them for the packument's lifetime. The work runs
// outside the lock (it reads other packuments); two concurrent first
// callers may both do it.
func (d *doc) keepDepFindings(i int, fs []verify.Finding) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deps == nil {
		d.deps = map[int][]verify.Finding{}
	}
	d.deps[i] = fs
}

// takeLookup spends one of the packument's dependency lookups.
func (d *doc) takeLookup() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lookups >= maxDependencyLookups {
		return false
	}
	d.lookups++
	return true
}

// resolveDependency reads a dependency's packument (through the cache,
// never judged) and resolves spec in it (anomaly.ResolveDependency).
func (h *Handler) resolveDependency(ctx context.Context, name, spec string) (anomaly.Dependency, error) {
	if err := npmsig.CheckName(name); err != nil {
		return anomaly.Dependency{Name: name, Range: spec}, err
	}
	d, err := h.load(ctx, name)
	if err != nil {
		return anomaly.Dependency{Name: name, Range: spec}, err
	}
	created, _ := d.pk.PublishTime("created")
	return anomaly.ResolveDependency(name, spec, d.history(), d.pk.DistTags, created), nil
}
