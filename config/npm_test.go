package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNPMConfig(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(writeConfig(t, `
npm:
  upstream: http://127.0.0.1:4873
  url: https://airlock.example.com/npm
  keys: `+keys+`
  max_age: 10m
  max_packument: 32MiB
  policies:
    - match: "@acme/*"
      provenance: required
      source_repository: github.com/acme/*
    - match: "*"
      provenance: optional
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.NPM.Upstream != "http://127.0.0.1:4873" || c.NPM.Keys != keys || c.NPM.MaxAge.D() != 10*time.Minute || c.NPM.MaxPackument != 32<<20 {
		t.Errorf("npm = %+v", c.NPM)
	}
	if c.NPM.MaxTarball != DefaultNPM().MaxTarball {
		t.Errorf("max_tarball lost its default: %v", c.NPM.MaxTarball)
	}
	for _, tc := range []struct {
		name, match string
	}{
		{"@acme/app", "@acme/*"},
		{"@acme2/app", "*"},
		{"lodash", "*"},
	} {
		p, ok := c.NPM.Policy(tc.name)
		if !ok || p.Match != tc.match {
			t.Errorf("Policy(%q) = %q, %v; want %q", tc.name, p.Match, ok, tc.match)
		}
	}
	if _, ok := DefaultNPM().Policy("lodash"); ok {
		t.Error("the default has a policy")
	}
}

func TestNPMErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"npm: {upstream: 'ftp://x'}", "npm.upstream"},
		{"npm: {url: 'airlock/npm'}", "npm.url"},
		{"npm: {keys: ''}", "npm.keys"},
		{"npm: {keys: /nonexistent/keys.json}", "npm.keys"},
		{"npm: {trusted_root: /nonexistent/root.json}", "npm.trusted_root"},
		{"npm: {policies: [{provenance: required}]}", "npm.policies[0].match"},
		{"npm: {policies: [{match: '[', provenance: required}]}", "npm.policies[0].match"},
		{"npm: {policies: [{match: '*', provenance: maybe}]}", "npm.policies[0].provenance"},
		{"npm: {policies: [{match: '*', source_repository: 'https://github.com/acme/x'}]}", "npm.policies[0].source_repository"},
		{"npm: {max_age: -1s}", "npm.max_age"},
		{"npm: {timeout: 0s}", "npm.timeout"},
		{"npm: {max_tarball: 0}", "npm.max_tarball"},
		{"npm: {registry: x}", "npm.registry"},
	} {
		_, err := Load(writeConfig(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: err = %v, want it to name %s", tc.body, err, tc.key)
		}
	}
}
