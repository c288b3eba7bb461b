package npmsig

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	ok := []string{
		"express", "lodash.merge", "a", "@types/node", "@babel/core", "JSONStream", "Base64",
		"left-pad", "http", "fs", "@scope/a", "with~tilde", "it's", "(paren)", "star*",
		"a_b", "@a/b-c.d", strings.Repeat("a", 214), "@" + strings.Repeat("s", 100) + "/" + strings.Repeat("n", 112),
	}
	bad := []string{
		"", ".", "..", ".hidden", "_private", "@scope", "@scope/", "@/name", "@", "@@x/y", "@scope/..", "@scope/.x",
		"@./x", "@../x", "@_s/x", "@scope/_x", "a/b", "@a/b/c", "..\\x", "a\\b", "a b", " a", "a ", "a\x00", "a\n", "a\x7f",
		"a%2fb", "a:b", "a@1", "a?b", "a#b", "émile", "node_modules", "NODE_MODULES", "favicon.ico",
		strings.Repeat("a", 215),
	}
	for _, n := range ok {
		if err := CheckName(n); err != nil {
			t.Errorf("CheckName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want ErrBadName", n, err)
		}
	}
}

func TestSplitScoped(t *testing.T) {
	tests := []struct{ in, scope, bare string }{
		{"express", "", "express"},
		{"@types/node", "@types", "node"},
		{"@scope", "", "@scope"},
		{"@a/b/c", "@a", "b/c"},
		{"a/b", "", "a/b"},
	}
	for _, tt := range tests {
		if s, b := SplitScoped(tt.in); s != tt.scope || b != tt.bare {
			t.Errorf("SplitScoped(%q) = %q, %q; want %q, %q", tt.in, s, b, tt.scope, tt.bare)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	ok := []string{
		"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92",
		"1.0.0-alpha+001", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85", "1.0.0-rc.1+build.1",
		"1.0.0-alpha-a.b-c", "1.0.0+0.build.1-rc.10000aaa-kk-0.1", "1.0.0-0A.is.legal",
		"9007199254740991.0.0",
	}
	bad := []string{
		"", "1", "1.2", "1.2.3.4", "v1.2.3", "=1.2.3", " 1.2.3", "1.2.3 ", "01.2.3", "1.02.3", "1.2.03",
		"1.2.3-", "1.2.3+", "1.2.3-01", "1.2.3-a..b", "1.2.3+a..b", "1.2.3-a_b", "1.2.3+é", "1.2.3-a/b",
		"-1.2.3", "1.-2.3", "a.b.c", "1.2.3\x00", "9007199254740992.0.0", "99999999999999999999.0.0",
		"1.2.3-" + strings.Repeat("a", 256), "latest", "../../1.2.3",
	}
	for _, v := range ok {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q) = %v", v, err)
		}
	}
	for _, v := range bad {
		if err := CheckVersion(v); !errors.Is(err, ErrBadVersion) {
			t.Errorf("CheckVersion(%q) = %v, want ErrBadVersion", v, err)
		}
	}
}
