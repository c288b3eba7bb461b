package packument

import "strings"

// semver is a parsed strict semver 2.0.0 version (no leading "v", no
// loose forms); build metadata is kept but has no precedence.
type semver struct {
	major, minor, patch string // digits, no leading zeros
	pre                 []string
}

// parseSemver parses v strictly; ok is false for anything that is not
// MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] per semver 2.0.0.
func parseSemver(v string) (s semver, ok bool) {
	if i := strings.IndexByte(v, '+'); i >= 0 {
		if !validIdents(v[i+1:], false) {
			return s, false
		}
		v = v[:i]
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		if !validIdents(v[i+1:], true) {
			return s, false
		}
		s.pre = strings.Split(v[i+1:], ".")
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return s, false
	}
	for _, p := range parts {
		if !numeric(p) || (len(p) > 1 && p[0] == '0') {
			return s, false
		}
	}
	s.major, s.minor, s.patch = parts[0], parts[1], parts[2]
	return s, true
}

// validIdents reports whether s is a non-empty dot-separated list of
// non-empty [0-9A-Za-z-] identifiers; pre forbids leading zeros in
// numeric identifiers.
func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && numeric(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

func numeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cmpNum compares two digit strings without leading zeros, of any length.
func cmpNum(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compare returns -1, 0 or 1 by semver 2.0.0 precedence.
func (a semver) compare(b semver) int {
	if c := cmpNum(a.major, b.major); c != 0 {
		return c
	}
	if c := cmpNum(a.minor, b.minor); c != 0 {
		return c
	}
	if c := cmpNum(a.patch, b.patch); c != 0 {
		return c
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		xn, yn := numeric(x), numeric(y)
		var c int
		switch {
		case xn && yn:
			c = cmpNum(x, y)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1
	case len(a.pre) > len(b.pre):
		return 1
	}
	return 0
}

// CompareVersions compares two npm versions by semver 2.0.0 precedence.
// ok is false when either is not a strict semver version.
func CompareVersions(a, b string) (c int, ok bool) {
	x, ok1 := parseSemver(a)
	y, ok2 := parseSemver(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	return x.compare(y), true
}

// Line is the release line a caret range keeps a version in: its major
// version, or "0.<minor>" below 1.0.0 (^0.3.1 means >=0.3.1 <0.4.0). pre
// reports a prerelease; ok is false for a version that is not strict
// semver.
func Line(v string) (line string, pre, ok bool) {
	s, ok := parseSemver(v)
	if !ok {
		return "", false, false
	}
	if s.major == "0" {
		return "0." + s.minor, len(s.pre) > 0, true
	}
	return s.major, len(s.pre) > 0, true
}
