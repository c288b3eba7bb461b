// Package osv is the known-malicious feed: OSV records
// (https://ossf.github.io/osv-schema/) of malicious packages, as published
// by github.com/ossf/malicious-packages and re-exported by osv.dev, loaded
// from a directory tree or a zip of one and matched against artifacts.
//
// Only Go and npm records are matched; OCI images have no OSV ecosystem.
// Records of other ecosystems load (they share the zips) but never match.
//
// Which records count as malware is decided by Parse and documented on
// Record.Malware; everything else in an OSV feed (ordinary vulnerability
// advisories, which osv.dev's per-ecosystem zips mostly hold) is loaded and
// ignored, because a proxy that refused every version with a CVE would
// refuse most of the registry.
package osv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/airlock-proxy/airlock/verify"
)

// ErrInvalid is wrapped by Parse for records it refuses.
var ErrInvalid = errors.New("invalid OSV record")

// Record is one OSV record, reduced to what matching and reporting need.
type Record struct {
	ID                             string
	Modified, Published, Withdrawn time.Time
	Summary                        string
	Aliases                        []string
	// Malware is true for records that report malicious code rather than a
	// vulnerability: the id starts with "MAL-" (the malicious-packages
	// database, which is malware by definition), or the record is tagged
	// CWE-506 "Embedded Malicious Code", either in GitHub's place
	// (database_specific.cwe_ids, as on GHSA-9x64-5r7x-2q53 "Malicious
	// Package in flatmap-stream") or in malicious-packages' place
	// (affected[].database_specific.cwes[].cweId, as on its ghsa-malware
	// imports). The summary text ("Malware in …", "Malicious Package in …")
	// is deliberately not read: free text marks too little reliably and,
	// read loosely, would block on an advisory that merely mentions malware.
	Malware  bool
	Affected []Affected
	// Source is the file the record was loaded from, relative to the feed
	// path (or the zip entry name). Parse leaves it empty.
	Source string
}

// Affected is one affected package of a record.
type Affected struct {
	// Ecosystem is set for the ecosystems Airlock matches (OSV "Go" and
	// "npm"); for any other OSV ecosystem it is empty and Other holds the
	// OSV name, so the entry is kept but never matched.
	Ecosystem verify.Ecosystem
	Other     string
	Name      string
	Versions  []string
	Ranges    []Range
}

// Range is an OSV range. Type is SEMVER, ECOSYSTEM or GIT; GIT ranges name
// commits, which an artifact version is not, so they never match.
type Range struct {
	Type   string
	Events []Event
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	Introduced, Fixed, LastAffected, Limit string
}

// Limits on what Parse accepts. They are far above anything in the real
// feeds and keep a hostile or broken record from costing more than its
// bytes.
const (
	maxIDLength      = 256
	maxNameLength    = 1024
	maxVersionLength = 256
	malwareCWE       = "CWE-506"
)

type rawRecord struct {
	ID               string          `json:"id"`
	Modified         string          `json:"modified"`
	Published        string          `json:"published"`
	Withdrawn        string          `json:"withdrawn"`
	Summary          string          `json:"summary"`
	Aliases          []string        `json:"aliases"`
	Affected         []rawAffected   `json:"affected"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type rawAffected struct {
	Package *struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Versions         []string        `json:"versions"`
	Ranges           []rawRange      `json:"ranges"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type rawRange struct {
	Type   string     `json:"type"`
	Events []rawEvent `json:"events"`
}

// rawEvent uses pointers so that a present-but-empty field is told apart
// from an absent one.
type rawEvent struct {
	Introduced   *string `json:"introduced"`
	Fixed        *string `json:"fixed"`
	LastAffected *string `json:"last_affected"`
	Limit        *string `json:"limit"`
}

// Parse decodes and validates one OSV record. It refuses what the OSV
// schema forbids and anything Match could not evaluate safely: a missing
// id or modified time, bad timestamps, affected packages without an
// ecosystem or name, events with zero or several fields, ranges of an
// unknown type or without an introduced event or with both fixed and
// last_affected, and — for Go and npm — range bounds that are not versions
// of that ecosystem (a bound that cannot be compared would silently make a
// range match nothing).
func Parse(data []byte) (Record, error) {
	var raw rawRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: trailing data after the record", ErrInvalid)
	}
	if err := checkText("id", raw.ID, maxIDLength); err != nil {
		return Record{}, err
	}
	r := Record{ID: raw.ID, Summary: raw.Summary}
	var err error
	if raw.Modified == "" {
		return Record{}, fmt.Errorf("%w %s: no modified time", ErrInvalid, raw.ID)
	}
	if r.Modified, err = parseTime(raw.ID, "modified", raw.Modified); err != nil {
		return Record{}, err
	}
	if r.Published, err = parseTime(raw.ID, "published", raw.Published); err != nil {
		return Record{}, err
	}
	if r.Withdrawn, err = parseTime(raw.ID, "withdrawn", raw.Withdrawn); err != nil {
		return Record{}, err
	}
	for _, a := range raw.Aliases {
		if err := checkText("alias", a, maxIDLength); err != nil {
			return Record{}, fmt.Errorf("%s: %w", raw.ID, err)
		}
	}
	if len(raw.Aliases) > 0 {
		r.Aliases = raw.Aliases
	}
	r.Malware = strings.HasPrefix(r.ID, "MAL-") || topLevelCWE(raw.DatabaseSpecific)
	for i, ra := range raw.Affected {
		a, err := parseAffected(ra)
		if err != nil {
			return Record{}, fmt.Errorf("%w %s: affected[%d]: %v", ErrInvalid, raw.ID, i, err)
		}
		r.Affected = append(r.Affected, a)
		if affectedCWE(ra.DatabaseSpecific) {
			r.Malware = true
		}
	}
	return r, nil
}

func parseAffected(ra rawAffected) (Affected, error) {
	var a Affected
	if ra.Package != nil && (ra.Package.Ecosystem != "" || ra.Package.Name != "") {
		if ra.Package.Ecosystem == "" || ra.Package.Name == "" {
			return a, errors.New("package needs both an ecosystem and a name")
		}
		if err := checkText("package name", ra.Package.Name, maxNameLength); err != nil {
			return a, err
		}
		if err := checkText("ecosystem", ra.Package.Ecosystem, maxNameLength); err != nil {
			return a, err
		}
		a.Name = ra.Package.Name
		// OSV ecosystem names are case-sensitive: "Go" and "npm" exactly.
		switch ra.Package.Ecosystem {
		case "Go":
			a.Ecosystem = verify.Go
		case "npm":
			a.Ecosystem = verify.NPM
		default:
			a.Other = ra.Package.Ecosystem
		}
	}
	// Without a package the entry can only describe GIT ranges; it is kept
	// for completeness and matches nothing.
	for _, v := range ra.Versions {
		if err := checkText("version", v, maxVersionLength); err != nil {
			return a, err
		}
	}
	if len(ra.Versions) > 0 {
		a.Versions = ra.Versions
	}
	for j, rr := range ra.Ranges {
		rg, err := parseRange(a.Ecosystem, rr)
		if err != nil {
			return a, fmt.Errorf("ranges[%d]: %v", j, err)
		}
		a.Ranges = append(a.Ranges, rg)
	}
	return a, nil
}

func parseRange(eco verify.Ecosystem, rr rawRange) (Range, error) {
	rg := Range{Type: rr.Type}
	switch rr.Type {
	case "SEMVER", "ECOSYSTEM", "GIT":
	default:
		return rg, fmt.Errorf("range type %q is not SEMVER, ECOSYSTEM or GIT", clip(rr.Type))
	}
	var introduced, fixed, lastAffected bool
	for k, re := range rr.Events {
		var e Event
		n := 0
		var val string
		if re.Introduced != nil {
			n, val, e.Introduced, introduced = n+1, *re.Introduced, *re.Introduced, true
		}
		if re.Fixed != nil {
			n, val, e.Fixed, fixed = n+1, *re.Fixed, *re.Fixed, true
		}
		if re.LastAffected != nil {
			n, val, e.LastAffected, lastAffected = n+1, *re.LastAffected, *re.LastAffected, true
		}
		if re.Limit != nil {
			n, val, e.Limit = n+1, *re.Limit, *re.Limit
		}
		if n != 1 {
			return rg, fmt.Errorf("events[%d] has %d of introduced, fixed, last_affected, limit; want exactly one", k, n)
		}
		if err := checkText("event version", val, maxVersionLength); err != nil {
			return rg, fmt.Errorf("events[%d]: %v", k, err)
		}
		if rr.Type != "GIT" && eco != "" {
			special := (re.Introduced != nil && val == "0") || (re.Limit != nil && val == "*")
			if _, ok := normVersion(eco, val); !special && !ok {
				return rg, fmt.Errorf("events[%d]: %q is not a %s version", k, clip(val), eco)
			}
		}
		rg.Events = append(rg.Events, e)
	}
	if !introduced {
		return rg, errors.New("range has no introduced event")
	}
	if fixed && lastAffected {
		return rg, errors.New("range has both fixed and last_affected events")
	}
	return rg, nil
}

// topLevelCWE reads GitHub's database_specific.cwe_ids. A database_specific
// of another shape is not an error: the field is free-form by the schema.
func topLevelCWE(ds json.RawMessage) bool {
	var v struct {
		CWEIDs []string `json:"cwe_ids"`
	}
	if len(ds) == 0 || json.Unmarshal(ds, &v) != nil {
		return false
	}
	for _, c := range v.CWEIDs {
		if c == malwareCWE {
			return true
		}
	}
	return false
}

// affectedCWE reads malicious-packages' affected[].database_specific.cwes.
func affectedCWE(ds json.RawMessage) bool {
	var v struct {
		CWEs []struct {
			CWEID string `json:"cweId"`
		} `json:"cwes"`
	}
	if len(ds) == 0 || json.Unmarshal(ds, &v) != nil {
		return false
	}
	for _, c := range v.CWEs {
		if c.CWEID == malwareCWE {
			return true
		}
	}
	return false
}

func parseTime(id, field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %s: %s time %q is not RFC 3339", ErrInvalid, clip(id), field, clip(s))
	}
	return t.UTC(), nil
}

// checkText refuses empty, oversized and control-character strings: ids,
// names and versions end up in log lines, findings and map keys.
func checkText(what, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrInvalid, what, len(s), max)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\uFFFD' {
			return fmt.Errorf("%w: %s %q contains %q", ErrInvalid, what, clip(s), c)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// normVersion turns a version of the ecosystem into a golang.org/x/mod/semver
// string so that both ecosystems compare with one function.
//
// npm versions are strict SemVer 2.0.0 as the registry publishes them
// (MAJOR.MINOR.PATCH, no "v"); x/mod/semver implements the same precedence,
// prereleases included, once given a "v", but also accepts the shorthands
// v1 and v1.2, which npm does not have, so three parts are required.
//
// Go versions are module versions, which OSV records write with or without
// the "v" (the Go vulnerability database drops it; the malicious-packages
// ones vary), so a missing "v" is supplied.
func normVersion(eco verify.Ecosystem, v string) (string, bool) {
	switch eco {
	case verify.NPM:
		core, _, _ := strings.Cut(v, "+")
		core, _, _ = strings.Cut(core, "-")
		if strings.Count(core, ".") != 2 || !semver.IsValid("v"+v) {
			return "", false
		}
		return "v" + v, true
	case verify.Go:
		if !strings.HasPrefix(v, "v") {
			v = "v" + v
		}
		if !semver.IsValid(v) {
			return "", false
		}
		return v, true
	}
	return "", false
}

// clone copies the record so that callers cannot change the feed's copy.
func (r Record) clone() Record {
	c := r
	if r.Aliases != nil {
		c.Aliases = append([]string(nil), r.Aliases...)
	}
	if r.Affected != nil {
		c.Affected = make([]Affected, len(r.Affected))
		for i, a := range r.Affected {
			ca := a
			if a.Versions != nil {
				ca.Versions = append([]string(nil), a.Versions...)
			}
			if a.Ranges != nil {
				ca.Ranges = make([]Range, len(a.Ranges))
				for j, rg := range a.Ranges {
					ca.Ranges[j] = Range{Type: rg.Type, Events: append([]Event(nil), rg.Events...)}
				}
			}
			c.Affected[i] = ca
		}
	}
	return c
}

// sortedKeys is a small helper for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
