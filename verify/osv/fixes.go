package osv

import (
	"slices"

	"github.com/airlock-proxy/airlock/verify"
)

// A vulnerability record (one that is not malware) names, in its ranges'
// "fixed" events, the versions that end a vulnerability: the releases a
// policy may let skip the cooldown, since holding a security fix for a
// day is its own risk.

// addFixes indexes the versions a vulnerability record names as fixed.
func (f *Feed) addFixes(r Record) {
	for _, a := range r.Affected {
		if a.Ecosystem == "" {
			continue
		}
		for _, rg := range a.Ranges {
			if rg.Type == "GIT" {
				continue
			}
			for _, ev := range rg.Events {
				if ev.Fixed == "" {
					continue
				}
				k := key{a.Ecosystem, a.Name}
				if f.fixes == nil {
					f.fixes = map[key]map[string][]string{}
				}
				if f.fixes[k] == nil {
					f.fixes[k] = map[string][]string{}
				}
				v := exactKey(a.Ecosystem, ev.Fixed)
				if !slices.Contains(f.fixes[k][v], r.ID) {
					f.fixes[k][v] = append(f.fixes[k][v], r.ID)
				}
			}
		}
	}
}

// Fixes returns the ids of the vulnerability records (not malware, not
// withdrawn) that name the artifact's version as the fix of a range: a
// release people need now, which a policy may let skip the cooldown.
func (f *Feed) Fixes(a verify.Artifact) []string {
	if f == nil {
		return nil
	}
	return slices.Clone(f.fixes[key{a.Ecosystem, a.Name}][exactKey(a.Ecosystem, a.Version)])
}
