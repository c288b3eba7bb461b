// Package config loads Airlock's one YAML file over embedded defaults and
// validates it, naming the offending key in every error.
package config

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Config is the whole configuration. Every field has a default (Default);
// a file only needs the keys it changes.
type Config struct {
	Listen string `yaml:"listen"`
	Data   string `yaml:"data"`
	Log    Log    `yaml:"log"`
	Admin  Admin  `yaml:"admin"`
	Go     Go     `yaml:"go"`
	OCI    OCI    `yaml:"oci"`
	NPM    NPM    `yaml:"npm"`
	Policy Policy `yaml:"policy"`
	// ShutdownGrace bounds how long in-flight requests may run after
	// SIGTERM before they are cut off.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
}

// Log configures structured logging.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// Admin configures the admin API.
type Admin struct {
	// Tokens grant access to /admin/api/. With none configured, the
	// first start generates one into <data>/admin-token.
	Tokens []Token `yaml:"tokens"`
}

// Token is one admin API credential. The secret itself never sits in the
// file: give its SHA-256 (hex), or the name of an environment variable or
// file that holds it.
type Token struct {
	Name   string   `yaml:"name"`
	Scopes []string `yaml:"scopes"`
	SHA256 string   `yaml:"sha256"`
	Env    string   `yaml:"env"`
	File   string   `yaml:"file"`
	// Namespaces, when set, are the "<ecosystem>:<glob>" namespaces (as in
	// policy rules) whose CI records this token may write: one team's
	// release job cannot record, and so block, another team's versions.
	Namespaces []string `yaml:"namespaces"`
}

// Scopes a token may carry.
var validScopes = map[string]bool{"admin": true, "read": true, "ci": true}

// Go configures the Go module proxy front.
type Go struct {
	// Upstream is the GOPROXY Airlock fetches from.
	Upstream string `yaml:"upstream"`
	SumDB    SumDB  `yaml:"sumdb"`
	// Private lists module path patterns (GONOSUMDB syntax) that skip the
	// checksum database, each with the policy applied to them.
	Private []Private `yaml:"private"`
	// Timeout bounds one upstream request, body included.
	Timeout Duration `yaml:"timeout"`
	// ListTTL is how long a module's version list is reused before
	// asking upstream again.
	ListTTL Duration `yaml:"list_ttl"`
	// ReadAhead is how many go.mod files a fetched go.mod requires are
	// fetched and verified at once before clients ask; 0 turns it off.
	ReadAhead int  `yaml:"read_ahead"`
	MaxZip    Size `yaml:"max_zip"`
	MaxMod    Size `yaml:"max_mod"`
	MaxInfo   Size `yaml:"max_info"`
}

// SumDB names the checksum database and how to reach it.
type SumDB struct {
	// Key is the database's verifier key ("name+hash+key"); its name part
	// names the database.
	Key string `yaml:"key"`
	// URL is where the database is read; default: <upstream>/sumdb/<name>.
	URL string `yaml:"url"`
}

// Private is a module path pattern outside the checksum database.
type Private struct {
	Pattern string `yaml:"pattern"`
	// Policy is allow (served, logged), quarantine or deny.
	Policy string `yaml:"policy"`
}

// The go command's own checksum database and the key it embeds
// (cmd/go/internal/modfetch/key.go).
const (
	DefaultSumDBKey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
	DefaultGoProxy  = "https://proxy.golang.org"
)

// Default returns the embedded defaults: the public Go module proxy and
// checksum database, data under ./airlock-data, listening on loopback.
func Default() Config {
	return Config{
		Listen:        "127.0.0.1:8080",
		Data:          "./airlock-data",
		Log:           Log{Format: "text", Level: "info"},
		ShutdownGrace: Duration(30 * time.Second),
		Go: Go{
			Upstream:  DefaultGoProxy,
			SumDB:     SumDB{Key: DefaultSumDBKey},
			Timeout:   Duration(5 * time.Minute),
			ListTTL:   Duration(time.Minute),
			ReadAhead: 8,
			// The go command's own limits.
			MaxZip:  500 << 20,
			MaxMod:  16 << 20,
			MaxInfo: 1 << 20,
		},
		OCI:    DefaultOCI(),
		NPM:    DefaultNPM(),
		Policy: DefaultPolicy(),
	}
}

// maxFile bounds the configuration file: a real one is a few kilobytes.
const maxFile = 1 << 20

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// Load reads the file at path over the defaults; an empty path returns the
// defaults. The result is validated.
func Load(path string) (Config, error) {
	c := Default()
	if path != "" {
		data, err := readBounded(path, maxFile)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := decode(data, &c); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := c.Validate(); err != nil {
		if path == "" {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// SumDBName is the checksum database's name, from its key.
func (g Go) SumDBName() string {
	name, _, _ := strings.Cut(g.SumDB.Key, "+")
	return name
}

// SumDBURL is where the checksum database is read.
func (g Go) SumDBURL() string {
	if g.SumDB.URL != "" {
		return strings.TrimSuffix(g.SumDB.URL, "/")
	}
	return strings.TrimSuffix(g.Upstream, "/") + "/sumdb/" + g.SumDBName()
}

// Validate checks every value; the error names the key.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if strings.TrimSpace(c.Data) == "" {
		return fmt.Errorf("data: must not be empty")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: %q must be text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q must be debug, info, warn or error", c.Log.Level)
	}
	if c.ShutdownGrace < 0 {
		return fmt.Errorf("shutdown_grace: must not be negative")
	}
	names := map[string]bool{}
	for i, t := range c.Admin.Tokens {
		key := fmt.Sprintf("admin.tokens[%d]", i)
		if t.Name == "" {
			return fmt.Errorf("%s.name: required", key)
		}
		if names[t.Name] {
			return fmt.Errorf("%s.name: %q used twice", key, t.Name)
		}
		names[t.Name] = true
		n := 0
		for _, s := range []string{t.SHA256, t.Env, t.File} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: set exactly one of sha256, env, file", key)
		}
		if t.SHA256 != "" && !isHex(t.SHA256, 64) {
			return fmt.Errorf("%s.sha256: want 64 lowercase hex digits (sha256sum of the token)", key)
		}
		if len(t.Scopes) == 0 {
			return fmt.Errorf("%s.scopes: required (admin, read or ci)", key)
		}
		for j, s := range t.Scopes {
			if !validScopes[s] {
				return fmt.Errorf("%s.scopes[%d]: %q must be admin, read or ci", key, j, s)
			}
		}
		for j, ns := range t.Namespaces {
			eco, glob, ok := strings.Cut(ns, ":")
			if !ok || glob == "" || (eco != "go" && eco != "npm" && eco != "oci" && eco != "*") {
				return fmt.Errorf("%s.namespaces[%d]: %q: want <go|npm|oci|*>:<name glob>", key, j, ns)
			}
			if _, err := path.Match(glob, ""); err != nil {
				return fmt.Errorf("%s.namespaces[%d]: %q: %w", key, j, ns, err)
			}
		}
	}
	if err := checkHTTPURL(c.Go.Upstream); err != nil {
		return fmt.Errorf("go.upstream: %w", err)
	}
	v, err := note.NewVerifier(c.Go.SumDB.Key)
	if err != nil {
		return fmt.Errorf("go.sumdb.key: %w", err)
	}
	if v.Name() == "" || strings.ContainsAny(v.Name(), "/\\") {
		return fmt.Errorf("go.sumdb.key: bad database name %q", v.Name())
	}
	if c.Go.SumDB.URL != "" {
		if err := checkHTTPURL(c.Go.SumDB.URL); err != nil {
			return fmt.Errorf("go.sumdb.url: %w", err)
		}
	}
	for i, p := range c.Go.Private {
		key := fmt.Sprintf("go.private[%d]", i)
		if strings.TrimSpace(p.Pattern) == "" || strings.Contains(p.Pattern, ",") {
			return fmt.Errorf("%s.pattern: want one module path glob, e.g. github.com/acme/*", key)
		}
		for _, elem := range strings.Split(p.Pattern, "/") {
			if _, err := path.Match(elem, ""); err != nil {
				return fmt.Errorf("%s.pattern: %q: %w", key, p.Pattern, err)
			}
		}
		switch p.Policy {
		case "allow", "quarantine", "deny":
		case "":
			c.Go.Private[i].Policy = "allow"
		default:
			return fmt.Errorf("%s.policy: %q must be allow, quarantine or deny", key, p.Policy)
		}
	}
	if c.Go.Timeout <= 0 {
		return fmt.Errorf("go.timeout: must be positive")
	}
	if c.Go.ReadAhead < 0 || c.Go.ReadAhead > 64 {
		return fmt.Errorf("go.read_ahead: %d must be between 0 (off) and 64", c.Go.ReadAhead)
	}
	if c.Go.ListTTL < 0 {
		return fmt.Errorf("go.list_ttl: must not be negative")
	}
	for key, s := range map[string]Size{"go.max_zip": c.Go.MaxZip, "go.max_mod": c.Go.MaxMod, "go.max_info": c.Go.MaxInfo} {
		if s <= 0 {
			return fmt.Errorf("%s: must be positive", key)
		}
	}
	if err := c.OCI.validate(); err != nil {
		return err
	}
	if err := c.NPM.validate(); err != nil {
		return err
	}
	return c.Policy.validate()
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not carry a query, fragment or credentials", s)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}
