package npmsig

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadName and ErrBadVersion are wrapped by CheckName and CheckVersion.
var (
	ErrBadName    = errors.New("invalid npm package name")
	ErrBadVersion = errors.New("invalid npm version")
)

// MaxNameLength is npm's limit on a package name, scope included.
const MaxNameLength = 214

// SplitScoped splits "@scope/name" into "@scope" and "name". An unscoped
// name comes back as "" and the name. It does not validate.
func SplitScoped(name string) (scope, bare string) {
	if strings.HasPrefix(name, "@") {
		if s, b, ok := strings.Cut(name, "/"); ok {
			return s, b
		}
	}
	return "", name
}

// CheckName validates a package name, unscoped or "@scope/name".
//
// The rule is validate-npm-package-name's errors — the checks that hold
// for every name in the registry, old ones included — made path-safe, but
// not its warnings, which only new packages must satisfy. So accepted:
// uppercase letters (JSONStream), the characters ~ ' ! ( ) *, and names
// of Node built-in modules. Rejected: the empty name; more than 214 bytes
// (npm warns only, but no such name can be published today and the name
// ends up in paths and storage keys); any character that
// encodeURIComponent would escape, that is anything but ASCII letters,
// digits and - _ . ! ~ * ' ( ), so no space, control character, slash
// beyond the scope's, backslash, % or non-ASCII; a scope or a name that
// is empty, starts with "." or "_" (so "." and ".." are out); a scope
// without a name ("@scope", "@scope/"); and the reserved node_modules and
// favicon.ico in any case.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadName, len(name), MaxNameLength)
	}
	scope, bare := SplitScoped(name)
	if strings.HasPrefix(name, "@") {
		if scope == "" {
			return fmt.Errorf("%w %q: a scope needs a name, as in @scope/name", ErrBadName, name)
		}
		if err := checkPart(name, "scope", scope[1:]); err != nil {
			return err
		}
	}
	if err := checkPart(name, "name", bare); err != nil {
		return err
	}
	if l := strings.ToLower(bare); scope == "" && (l == "node_modules" || l == "favicon.ico") {
		return fmt.Errorf("%w %q: reserved name", ErrBadName, name)
	}
	return nil
}

func checkPart(full, what, p string) error {
	if p == "" {
		return fmt.Errorf("%w %q: empty %s", ErrBadName, clip(full), what)
	}
	if p[0] == '.' || p[0] == '_' {
		return fmt.Errorf("%w %q: %s cannot start with %q", ErrBadName, clip(full), what, p[:1])
	}
	for i := 0; i < len(p); i++ {
		if !urlSafe(p[i]) {
			return fmt.Errorf("%w %q: %s contains %q, not a URL-safe character", ErrBadName, clip(full), what, p[i])
		}
	}
	return nil
}

// urlSafe reports whether encodeURIComponent leaves c as is.
func urlSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()", c) >= 0
}

// maxVersionLength and maxSafeInteger are node-semver's limits.
const (
	maxVersionLength = 256
	maxSafeInteger   = 1<<53 - 1
)

// CheckVersion validates a version as the registry publishes it: strict
// SemVer 2.0.0 (MAJOR.MINOR.PATCH[-prerelease][+build]) with no "v" or
// "=" prefix, no leading zeros in numeric parts, non-empty identifiers of
// [0-9A-Za-z-], numeric parts at most 2^53-1 and at most 256 bytes, as
// node-semver's strict parser. (golang.org/x/mod/semver would need a "v"
// prefix and accepts shorthands like v1.2.)
func CheckVersion(v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty", ErrBadVersion)
	}
	if len(v) > maxVersionLength {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadVersion, len(v), maxVersionLength)
	}
	core, build, hasBuild := strings.Cut(v, "+")
	core, pre, hasPre := strings.Cut(core, "-")
	nums := strings.Split(core, ".")
	if len(nums) != 3 {
		return fmt.Errorf("%w %q: want MAJOR.MINOR.PATCH", ErrBadVersion, clip(v))
	}
	for _, n := range nums {
		if err := checkNumeric(v, n); err != nil {
			return err
		}
	}
	if hasPre {
		for _, id := range strings.Split(pre, ".") {
			if err := checkIdent(v, "prerelease", id); err != nil {
				return err
			}
			if allDigits(id) {
				if err := checkNumeric(v, id); err != nil {
					return err
				}
			}
		}
	}
	if hasBuild {
		for _, id := range strings.Split(build, ".") {
			if err := checkIdent(v, "build", id); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkNumeric(v, n string) error {
	if n == "" || !allDigits(n) {
		return fmt.Errorf("%w %q: %q is not a number", ErrBadVersion, clip(v), clip(n))
	}
	if len(n) > 1 && n[0] == '0' {
		return fmt.Errorf("%w %q: %q has a leading zero", ErrBadVersion, clip(v), clip(n))
	}
	if x, err := strconv.ParseUint(n, 10, 64); err != nil || x > maxSafeInteger {
		return fmt.Errorf("%w %q: %q is too large", ErrBadVersion, clip(v), clip(n))
	}
	return nil
}

func checkIdent(v, what, id string) error {
	if id == "" {
		return fmt.Errorf("%w %q: empty %s identifier", ErrBadVersion, clip(v), what)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("%w %q: %s identifier %q contains %q", ErrBadVersion, clip(v), what, clip(id), c)
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
