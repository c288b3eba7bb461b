package config

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "airlock.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Data != "./airlock-data" {
		t.Errorf("listen/data = %q/%q", c.Listen, c.Data)
	}
	if got, want := c.Go.SumDBURL(), "https://proxy.golang.org/sumdb/sum.golang.org"; got != want {
		t.Errorf("SumDBURL = %q, want %q", got, want)
	}
	if c.Go.SumDBName() != "sum.golang.org" {
		t.Errorf("SumDBName = %q", c.Go.SumDBName())
	}
}

func TestLoadOverrides(t *testing.T) {
	p := writeConfig(t, `
listen: 0.0.0.0:9090
log: {format: json}
go:
  upstream: http://127.0.0.1:3000/
  timeout: 30s
  max_zip: 1GiB
  private:
    - pattern: github.com/acme/*
    - pattern: corp.example/*
      policy: quarantine
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9090" || c.Log.Format != "json" || c.Log.Level != "info" {
		t.Errorf("got %+v", c)
	}
	if c.Go.Timeout.D() != 30*time.Second || c.Go.MaxZip != 1<<30 || c.Go.MaxMod != 16<<20 {
		t.Errorf("go = %+v", c.Go)
	}
	if c.Go.SumDBURL() != "http://127.0.0.1:3000/sumdb/sum.golang.org" {
		t.Errorf("SumDBURL = %q", c.Go.SumDBURL())
	}
	if len(c.Go.Private) != 2 || c.Go.Private[0].Policy != "allow" || c.Go.Private[1].Policy != "quarantine" {
		t.Errorf("private = %+v", c.Go.Private)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown top key", "listn: x\n", "listn: unknown key"},
		{"unknown nested key", "go:\n  upstrem: x\n", "go.upstrem: unknown key"},
		{"unknown key in list", "go:\n  private:\n    - pattern: a/*\n      polcy: allow\n", "go.private[0].polcy: unknown key"},
		{"bad duration", "go:\n  timeout: soon\n", "go.timeout:"},
		{"bad size", "go:\n  max_zip: lots\n", "go.max_zip:"},
		{"wrong type", "go:\n  private: yes\n", "go.private: want a list"},
		{"bad listen", "listen: nope\n", "listen:"},
		{"bad format", "log:\n  format: xml\n", "log.format:"},
		{"bad upstream", "go:\n  upstream: ftp://x\n", "go.upstream:"},
		{"upstream with creds", "go:\n  upstream: https://u:p@x\n", "go.upstream:"},
		{"bad sumdb key", "go:\n  sumdb:\n    key: nonsense\n", "go.sumdb.key:"},
		{"bad policy", "go:\n  private:\n    - pattern: a/*\n      policy: maybe\n", "go.private[0].policy:"},
		{"bad pattern", "go:\n  private:\n    - pattern: 'a/[x'\n", "go.private[0].pattern:"},
		{"negative timeout", "go:\n  timeout: -1s\n", "go.timeout:"},
		{"token without secret", "admin:\n  tokens:\n    - name: a\n      scopes: [admin]\n", "admin.tokens[0]: set exactly one"},
		{"token two secrets", "admin:\n  tokens:\n    - {name: a, scopes: [admin], env: X, file: /y}\n", "admin.tokens[0]: set exactly one"},
		{"token bad scope", "admin:\n  tokens:\n    - {name: a, scopes: [root], env: X}\n", "admin.tokens[0].scopes[0]:"},
		{"token bad hash", "admin:\n  tokens:\n    - {name: a, scopes: [admin], sha256: abc}\n", "admin.tokens[0].sha256:"},
		{"token bad namespace", "admin:\n  tokens:\n    - {name: a, scopes: [ci], env: X, namespaces: [\"acme/*\"]}\n", "admin.tokens[0].namespaces[0]:"},
		{"token duplicate", "admin:\n  tokens:\n    - {name: a, scopes: [admin], env: X}\n    - {name: a, scopes: [read], env: Y}\n", "admin.tokens[1].name:"},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", "listen"},
		{"alias", "x: &a 1\nlisten: *a\n", ""},
		{"not a mapping", "- a\n", "top level: want a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.body))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	c, err := Load(writeConfig(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Go.Upstream != DefaultGoProxy {
		t.Errorf("upstream = %q", c.Go.Upstream)
	}
}

func TestResolveTokens(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AIRLOCK_TEST_TOKEN", "from-env")
	sum := sha256.Sum256([]byte("from-hash"))
	a := Admin{Tokens: []Token{
		{Name: "e", Scopes: []string{"admin"}, Env: "AIRLOCK_TEST_TOKEN"},
		{Name: "f", Scopes: []string{"read"}, File: secretFile},
		{Name: "h", Scopes: []string{"ci"}, SHA256: hexOf(sum)},
	}}
	got, err := a.ResolveTokens()
	if err != nil {
		t.Fatal(err)
	}
	for i, secret := range []string{"from-env", "from-file", "from-hash"} {
		if got[i].Hash != sha256.Sum256([]byte(secret)) {
			t.Errorf("token %d: hash does not match %q", i, secret)
		}
	}
	t.Setenv("AIRLOCK_TEST_TOKEN", "")
	if _, err := a.ResolveTokens(); err == nil || !strings.Contains(err.Error(), "admin.tokens[0].env") {
		t.Errorf("empty env: err = %v", err)
	}
}

func hexOf(b [32]byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{"0": 0, "4096": 4096, "16MiB": 16 << 20, "1 GiB": 1 << 30, "2KB": 2000} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "MiB", "1TiB", "99999999999999GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{"listen: a:1\n", "go:\n  private:\n    - pattern: a/*\n", "admin:\n  tokens: [{name: a}]\n", "{", "- [", "x: &a [*a]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		c := Default()
		if err := decode([]byte(body), &c); err != nil {
			return
		}
		_ = c.Validate()
	})
}

func TestLoadBoundsFileSize(t *testing.T) {
	p := writeConfig(t, "listen: 127.0.0.1:1\n# "+strings.Repeat("x", maxFile)+"\n")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}
