package anomaly

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/airlock-proxy/airlock/verify"
)

// AddedDependencies returns the dependencies release i has that its
// baseline (the release before it that had been public for settled, see
// baseline) did not, in name order. The first release has none:
// everything is new there, and nothing is news.
func AddedDependencies(h History, i int, settled time.Duration) []string {
	prev, ok := h.baseline(i, settled)
	if !ok {
		return nil
	}
	var added []string
	for _, name := range slices.Sorted(maps.Keys(h[i].Dependencies)) {
		if _, had := prev.Dependencies[name]; !had {
			added = append(added, name)
		}
	}
	return added
}

// Dependency is what the checks know of a dependency a release added:
// its package's first publish time and the release its range resolves to
// (npm takes the highest that satisfies it).
type Dependency struct {
	Name, Range string
	// Outside is a dependency npm installs from outside the registry (a
	// URL, git, a file, GitHub's owner/repo): nothing of it can be
	// checked, which is a finding in itself.
	Outside bool
	// Created is when the package was first published; zero if unknown.
	Created time.Time
	// Resolved is the release the range resolves to; its Version is
	// empty when none does.
	Resolved Release
}

// SplitSpec reads a dependency's spec as npm does: "npm:<name>@<range>"
// is an alias for another registry package (target); a URL, a git or
// file spec, or GitHub's "owner/repo" shorthand installs from outside the
// registry (outside); anything else is a range or dist-tag of name.
func SplitSpec(name, spec string) (target, rng string, outside bool) {
	if rest, ok := strings.CutPrefix(spec, "npm:"); ok {
		if i := strings.LastIndex(rest, "@"); i > 0 {
			return rest[:i], rest[i+1:], false
		}
		return rest, "", false
	}
	if strings.Contains(spec, ":") || strings.Contains(spec, "/") {
		return name, spec, true
	}
	return name, spec, false
}

// ResolveDependency describes the dependency name@spec from its package's
// history, dist-tags and "created" time (zero if the registry gave none),
// resolving spec as npm would: a dist-tag names its version, a semver
// range takes the highest release that satisfies it. Other specs (git
// URLs, aliases, files) resolve to nothing, and only the package's age
// counts.
func ResolveDependency(name, spec string, h History, distTags map[string]string, created time.Time) Dependency {
	dep := Dependency{Name: name, Range: spec, Created: created}
	for _, r := range h {
		if !r.Published.IsZero() && (dep.Created.IsZero() || r.Published.Before(dep.Created)) {
			dep.Created = r.Published
		}
	}
	if v, ok := distTags[spec]; ok {
		if j := h.Index(v); j >= 0 {
			dep.Resolved = h[j]
		}
		return dep
	}
	if spec == "" {
		spec = "*"
	}
	c, err := semver.NewConstraint(spec)
	if err != nil {
		return dep
	}
	for j := len(h) - 1; j >= 0; j-- {
		v, err := semver.StrictNewVersion(h[j].Version)
		if err == nil && c.Check(v) {
			dep.Resolved = h[j]
			break
		}
	}
	return dep
}

// NewDependency finds a dependency a release added that carries what the
// release itself would be held for: an install script (event-stream's
// flatmap-stream, axios's plain-crypto-js), or a package created shortly
// before the release that pulls it in, within cooldown of it (a payload
// package made for the attack). A package created long ago and merely
// updated recently is not news; its own versions face the cooldown when
// they are fetched. Nor is a new package of pkg's own npm scope: a
// monorepo that splits out @acme/util publishes it together with the
// @acme/widget that starts depending on it.
func NewDependency(pkg string, r Release, dep Dependency, cooldown time.Duration) *verify.Finding {
	// The range comes from upstream's packument: bounded for messages.
	rng := clipCommand(dep.Range)
	ev := map[string]string{"dependency": dep.Name, "range": rng}
	if dep.Outside {
		return &verify.Finding{Check: "install-script-added",
			Message:  fmt.Sprintf("adds dependency %s from outside the registry (%s): what it installs, install scripts included, bypasses every check", dep.Name, rng),
			Evidence: ev}
	}
	var why []string
	if v := dep.Resolved.Version; v != "" && len(dep.Resolved.InstallScripts) > 0 {
		ev["resolved"] = v
		ev["dependency_scripts"] = strings.Join(dep.Resolved.InstallScripts, ",")
		why = append(why, fmt.Sprintf("%s@%s runs %s on install", dep.Name, v, strings.Join(dep.Resolved.InstallScripts, ", ")))
	}
	sameScope := npmScope(pkg) != "" && npmScope(pkg) == npmScope(dep.Name)
	if cooldown > 0 && !sameScope && !dep.Created.IsZero() && !r.Published.IsZero() && r.Published.Sub(dep.Created) < cooldown {
		ev["dependency_created"] = dep.Created.UTC().Format(time.RFC3339)
		ev["published"] = r.Published.UTC().Format(time.RFC3339)
		gap := r.Published.Sub(dep.Created)
		if gap < 0 {
			why = append(why, fmt.Sprintf("%s was first published %s after this release", dep.Name, roundAge(-gap)))
		} else {
			why = append(why, fmt.Sprintf("%s was first published %s before this release, within the %s cooldown", dep.Name, roundAge(gap), cooldown))
		}
	}
	if len(why) == 0 {
		return nil
	}
	return &verify.Finding{
		Check:    "install-script-added",
		Message:  "adds dependency " + dep.Name + "@" + rng + ": " + strings.Join(why, "; "),
		Evidence: ev,
	}
}
