package osv

import (
	"sort"

	"golang.org/x/mod/semver"

	"github.com/airlock-proxy/airlock/verify"
)

type eventKind uint8

const (
	introduced eventKind = iota
	fixed
	lastAffected
	limit
)

// event is a range event with its version normalised; v is "" for
// introduced "0" (before every version) and for limit "*" (after every
// version).
type event struct {
	kind eventKind
	v    string
}

// compiledRange is a SEMVER or ECOSYSTEM range ready to evaluate.
type compiledRange struct {
	events []event // sorted, limits removed
	limits []string
	// unlimited: a limit "*" is present, or there is no limit at all.
	unlimited bool
	// everything: the range is introduced "0" with nothing closing it, the
	// one case that covers a version which cannot be ordered.
	everything bool
}

// matcher is one affected entry of one record, for one package.
type matcher struct {
	rec      int // index into Feed.records
	versions map[string]bool
	ranges   []compiledRange
}

func compile(rec int, a Affected) *matcher {
	m := &matcher{rec: rec}
	for _, v := range a.Versions {
		if m.versions == nil {
			m.versions = make(map[string]bool, len(a.Versions))
		}
		m.versions[exactKey(a.Ecosystem, v)] = true
	}
	for _, r := range a.Ranges {
		if r.Type == "GIT" {
			continue
		}
		m.ranges = append(m.ranges, compileRange(a.Ecosystem, r))
	}
	return m
}

// exactKey is how versions[] entries and artifact versions are compared:
// npm versions as the exact strings the registry serves, Go versions with
// the "v" the record may have left out.
func exactKey(eco verify.Ecosystem, v string) string {
	if eco == verify.Go && len(v) > 0 && v[0] != 'v' {
		return "v" + v
	}
	return v
}

func compileRange(eco verify.Ecosystem, r Range) compiledRange {
	var c compiledRange
	closed := false
	for _, e := range r.Events {
		switch {
		case e.Introduced != "":
			v := ""
			if e.Introduced != "0" {
				v, _ = normVersion(eco, e.Introduced)
			}
			c.events = append(c.events, event{introduced, v})
		case e.Fixed != "":
			v, _ := normVersion(eco, e.Fixed)
			c.events = append(c.events, event{fixed, v})
			closed = true
		case e.LastAffected != "":
			v, _ := normVersion(eco, e.LastAffected)
			c.events = append(c.events, event{lastAffected, v})
			closed = true
		case e.Limit != "":
			if e.Limit == "*" {
				c.unlimited = true
			} else {
				v, _ := normVersion(eco, e.Limit)
				c.limits = append(c.limits, v)
				closed = true
			}
		}
	}
	if len(c.limits) == 0 {
		c.unlimited = true
	}
	for _, e := range c.events {
		if e.kind == introduced && e.v == "" && !closed {
			c.everything = true
		}
	}
	// The OSV evaluation walks events in version order. On a tie (an
	// introduced and a fixed at one version, which no sane record has) the
	// introduced goes last and wins: for a malware feed a doubtful version
	// is better blocked than admitted.
	sort.SliceStable(c.events, func(i, j int) bool {
		a, b := c.events[i], c.events[j]
		if a.v == "" || b.v == "" { // only introduced "0" has no version
			return a.v == "" && b.v != ""
		}
		if d := semver.Compare(a.v, b.v); d != 0 {
			return d < 0
		}
		return a.kind != introduced && b.kind == introduced
	})
	return c
}

// affects implements the OSV schema's evaluation of one range: the version
// must lie below some limit (if any limit is given), and walking the
// events in order, the last event at or below it must be an introduced
// (a fixed closes at its version, a last_affected just after it).
func (c *compiledRange) affects(v string, ok bool) bool {
	if !ok {
		return c.everything
	}
	if !c.unlimited {
		below := false
		for _, l := range c.limits {
			if semver.Compare(v, l) < 0 {
				below = true
				break
			}
		}
		if !below {
			return false
		}
	}
	affected := false
	for _, e := range c.events {
		switch e.kind {
		case introduced:
			if e.v == "" || semver.Compare(v, e.v) >= 0 {
				affected = true
			}
		case fixed:
			if semver.Compare(v, e.v) >= 0 {
				affected = false
			}
		case lastAffected:
			if semver.Compare(v, e.v) > 0 {
				affected = false
			}
		}
	}
	return affected
}

// affects reports whether the artifact version is in versions[] or in a
// range. A version that does not parse in its ecosystem can only match
// exactly or through a range that covers everything.
func (m *matcher) affects(eco verify.Ecosystem, version string) bool {
	if m.versions[exactKey(eco, version)] {
		return true
	}
	nv, ok := normVersion(eco, version)
	for i := range m.ranges {
		if m.ranges[i].affects(nv, ok) {
			return true
		}
	}
	return false
}
