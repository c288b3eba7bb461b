package anomaly

import (
	"fmt"
	"strings"

	"github.com/airlock-proxy/airlock/verify"
)

// minSquatLength is the shortest name the typosquat check judges: below it
// one edit joins unrelated names (ms and md, uid and uuid).
const minSquatLength = 5

// Typosquat finds a package name one keystroke away from a name in known
// (the packages this organisation already uses): one character added,
// removed, changed or two swapped (crossenv for cross-env, lodahs for
// lodash), or the same name with other separators (lodash_merge for
// lodash.merge). It is a score, never proof: color and colors are both
// real. known may hold name itself, which is skipped.
func Typosquat(name string, known []string) *verify.Finding {
	if len(name) < minSquatLength {
		return nil
	}
	for _, k := range known {
		if k == name || len(k) < minSquatLength {
			continue
		}
		kind := ""
		switch {
		case squash(k) == squash(name):
			kind = "the same name with other separators"
		case oneEdit(k, name):
			kind = "one character apart"
		default:
			continue
		}
		return &verify.Finding{Check: "typosquat",
			Message:  fmt.Sprintf("%s is %s from %s, a package already in use here", name, kind, k),
			Evidence: map[string]string{"name": name, "similar": k, "kind": kind}}
	}
	return nil
}

// squash drops the separators npm names use alike.
func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' {
			return -1
		}
		return r
	}, s)
}

// oneEdit reports whether a and b differ by exactly one insertion,
// deletion, substitution or transposition of adjacent characters.
func oneEdit(a, b string) bool {
	if a == b {
		return false
	}
	la, lb := len(a), len(b)
	switch {
	case la == lb:
		i := 0
		for i < la && a[i] == b[i] {
			i++
		}
		if a[i+1:] == b[i+1:] {
			return true // substitution
		}
		return i+1 < la && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:] // transposition
	case la == lb+1:
		return deletes(a, b)
	case lb == la+1:
		return deletes(b, a)
	}
	return false
}

// deletes reports whether removing one character of long gives short.
func deletes(long, short string) bool {
	i := 0
	for i < len(short) && long[i] == short[i] {
		i++
	}
	return long[i+1:] == short[i:]
}
