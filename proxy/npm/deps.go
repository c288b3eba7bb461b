package npm

import (
	"context"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/npmsig"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// maxNewDependencies bounds the packuments one release's new
// dependencies cost to check: a release adding more is unusual enough to
// be looked at anyway, and the rest still face their own checks when
// they are fetched.
const maxNewDependencies = 16

// newDependencyFindings checks the dependencies release i added: their
// packuments are read (through the cache, never judged) for the release
// each range resolves to and the package's creation. Resolved once per
// packument; a dependency that cannot be read is logged and left to its
// own checks when npm fetches it, which fail closed.
func (h *Handler) newDependencyFindings(ctx context.Context, d *doc, i int, e policy.Effective) []verify.Finding {
	hist := d.history()
	deps := d.dependencies(i, func() []anomaly.Dependency {
		names := anomaly.AddedDependencies(hist, i, anomaly.DefaultSettled)
		if len(names) > maxNewDependencies {
			h.o.Log.Warn("release adds many dependencies; checking the first few", "package", d.name, "version", hist[i].Version,
				"added", len(names), "checked", maxNewDependencies)
			names = names[:maxNewDependencies]
		}
		var out []anomaly.Dependency
		for _, name := range names {
			spec := hist[i].Dependencies[name]
			dep, err := h.resolveDependency(ctx, name, spec)
			if err != nil {
				h.o.Log.Warn("new dependency not checked", "package", d.name, "version", hist[i].Version, "dependency", name, "err", err)
				continue
			}
			out = append(out, dep)
		}
		return out
	})
	var fs []verify.Finding
	for _, dep := range deps {
		if f := anomaly.NewDependency(d.name, hist[i], dep, e.Cooldown); f != nil {
			fs = append(fs, *f)
		}
	}
	return fs
}

// dependencies caches release i's resolved new dependencies. The work
// runs outside the lock (it reads other packuments); two concurrent first
// callers may both do it.
func (d *doc) dependencies(i int, resolve func() []anomaly.Dependency) []anomaly.Dependency {
	d.mu.Lock()
	deps, ok := d.deps[i]
	d.mu.Unlock()
	if ok {
		return deps
	}
	deps = resolve()
	d.mu.Lock()
	if d.deps == nil {
		d.deps = map[int][]anomaly.Dependency{}
	}
	d.deps[i] = deps
	d.mu.Unlock()
	return deps
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
