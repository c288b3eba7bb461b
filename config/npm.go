package config

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// NPM configures the npm registry front (/npm/).
type NPM struct {
	// Upstream is the registry Airlock fetches full packuments, tarballs
	// and attestations from.
	Upstream string `yaml:"upstream"`
	// URL is the front's public base URL, written into every dist.tarball
	// (e.g. https://airlock.example.com/npm). Empty: derived from each
	// request's Host, with http (https behind TLS).
	URL string `yaml:"url"`
	// Keys are the registry signing keys versions are checked against:
	// "default" (the public npm registry's keys, embedded with their
	// expiry), "upstream" (the upstream's /-/npm/v1/keys, pinned on first
	// use), "none" (the upstream does not sign: signatures are not
	// checked) or the path of a keys document in the /-/npm/v1/keys format.
	Keys string `yaml:"keys"`
	// TrustedRoot is a sigstore trusted_root.json for provenance
	// attestations. Empty: the public-good instance's root shipped with
	// Airlock. Read at start, never refreshed over the network.
	TrustedRoot string `yaml:"trusted_root"`
	// Policies are matched in order against package names; the first
	// match applies.
	Policies []NPMPolicy `yaml:"policies"`
	// MaxAge is how long a cached packument is served before upstream is
	// asked again (conditionally, with its ETag).
	MaxAge  Duration `yaml:"max_age"`
	Timeout Duration `yaml:"timeout"`
	// MaxPackument and MaxTarball bound what is read from upstream.
	MaxPackument Size `yaml:"max_packument"`
	MaxTarball   Size `yaml:"max_tarball"`
	// Memory bounds the decoded packuments kept in memory.
	Memory Size `yaml:"memory"`
}

// NPMPolicy is what a set of packages must satisfy.
type NPMPolicy struct {
	// Match is a glob over the package name (see MatchNPM): "@acme/*",
	// "lodash", "*".
	Match string `yaml:"match"`
	// Provenance is "required" (a version without verified provenance is
	// held) or "optional" (verified when present).
	Provenance string `yaml:"provenance"`
	// SourceRepository pins where provenance must say the package was
	// built: a glob over "github.com/owner/repo" ("github.com/acme/*").
	SourceRepository string `yaml:"source_repository"`
}

// DefaultNPMRegistry is the public npm registry.
const DefaultNPMRegistry = "https://registry.npmjs.org"

// DefaultNPM returns the npm defaults: the public registry, its embedded
// signing keys, the shipped sigstore root.
func DefaultNPM() NPM {
	return NPM{
		Upstream:     DefaultNPMRegistry,
		Keys:         "default",
		MaxAge:       Duration(5 * time.Minute),
		Timeout:      Duration(5 * time.Minute),
		MaxPackument: 128 << 20,
		MaxTarball:   1 << 30,
		Memory:       256 << 20,
	}
}

func (n NPM) validate() error {
	if err := checkHTTPURL(n.Upstream); err != nil {
		return fmt.Errorf("npm.upstream: %w", err)
	}
	if n.URL != "" {
		if err := checkHTTPURL(n.URL); err != nil {
			return fmt.Errorf("npm.url: %w", err)
		}
	}
	switch n.Keys {
	case "default", "upstream", "none":
	case "":
		return fmt.Errorf("npm.keys: want default, upstream, none or the path of a keys file")
	default:
		if _, err := readBounded(n.Keys, maxFile); err != nil {
			return fmt.Errorf("npm.keys: %w", err)
		}
	}
	if n.TrustedRoot != "" {
		if _, err := readBounded(n.TrustedRoot, 16<<20); err != nil {
			return fmt.Errorf("npm.trusted_root: %w", err)
		}
	}
	for i, p := range n.Policies {
		key := fmt.Sprintf("npm.policies[%d]", i)
		if err := checkNPMGlob(p.Match); err != nil {
			return fmt.Errorf("%s.match: %w", key, err)
		}
		switch p.Provenance {
		case "", "optional", "required":
		default:
			return fmt.Errorf("%s.provenance: %q must be required or optional", key, p.Provenance)
		}
		if p.SourceRepository != "" {
			if strings.Contains(p.SourceRepository, "://") || strings.HasSuffix(p.SourceRepository, ".git") {
				return fmt.Errorf("%s.source_repository: %q: write it as host/owner/repo, e.g. github.com/acme/*", key, p.SourceRepository)
			}
			if _, err := path.Match(p.SourceRepository, ""); err != nil {
				return fmt.Errorf("%s.source_repository: %q: %w", key, p.SourceRepository, err)
			}
		}
	}
	if n.MaxAge < 0 {
		return fmt.Errorf("npm.max_age: must not be negative")
	}
	if n.Timeout <= 0 {
		return fmt.Errorf("npm.timeout: must be positive")
	}
	for key, s := range map[string]Size{"npm.max_packument": n.MaxPackument, "npm.max_tarball": n.MaxTarball, "npm.memory": n.Memory} {
		if s <= 0 {
			return fmt.Errorf("%s: must be positive", key)
		}
	}
	return nil
}

func checkNPMGlob(g string) error {
	if strings.TrimSpace(g) == "" {
		return fmt.Errorf("want a package name glob, e.g. @acme/* or lodash")
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("%q: %w", g, err)
	}
	return nil
}

// Policy returns the first policy whose glob matches name; ok is false
// when none does.
func (n NPM) Policy(name string) (NPMPolicy, bool) {
	for _, p := range n.Policies {
		if MatchNPM(p.Match, name) {
			return p, true
		}
	}
	return NPMPolicy{}, false
}

// MatchNPM matches a package name against a glob in path.Match syntax,
// except that "*" also crosses the scope's slash: "*" is every package,
// "@acme/*" every package of the scope, "@acme/ui-*" some of them.
func MatchNPM(glob, name string) bool {
	// ":" is in no package name, so it stands in for the slash that
	// path.Match would not let "*" cross.
	ok, _ := path.Match(strings.ReplaceAll(glob, "/", ":"), strings.ReplaceAll(name, "/", ":"))
	return ok
}
