package config

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"time"
)

// OCI configures the container registry front (/v2/).
type OCI struct {
	// Upstreams are the registries Airlock pulls from; the first path
	// segment of a repository names one ("dockerhub/library/alpine").
	Upstreams []Upstream `yaml:"upstreams"`
	// Policies are matched in order against "<upstream>/<repository>";
	// the first match applies. A repository no policy matches gets
	// require: none and tags: follow-signed.
	Policies []OCIPolicy `yaml:"policies"`
	// TrustedRoot is a sigstore trusted_root.json (Fulcio CAs, Rekor and
	// CT log keys) for keyless verification, read at start and never
	// refreshed over the network.
	TrustedRoot string `yaml:"trusted_root"`
	// TagTTL is how long a tag's resolved digest is trusted before
	// upstream is asked again (with HEAD).
	TagTTL      Duration `yaml:"tag_ttl"`
	Timeout     Duration `yaml:"timeout"`
	MaxManifest Size     `yaml:"max_manifest"`
	MaxBlob     Size     `yaml:"max_blob"`
}

// Upstream is one registry Airlock pulls from.
type Upstream struct {
	// Name is the path prefix clients use, e.g. dockerhub.
	Name string `yaml:"name"`
	// URL is the registry's base URL: https://registry-1.docker.io.
	// http is allowed (for a registry on loopback or in a test).
	URL string `yaml:"url"`
	// Hosts are the registry host names containerd sends in ?ns= (the
	// host of URL is always one; Docker Hub adds docker.io).
	Hosts []string `yaml:"hosts"`
	// Mirror makes this upstream answer unprefixed names too, the way
	// dockerd's registry-mirrors expects (single names get library/).
	// At most one upstream may be the mirror.
	Mirror bool `yaml:"mirror"`
	// Username with PasswordEnv or PasswordFile authenticates to the
	// upstream; without them Airlock pulls anonymously (bearer token
	// flow included).
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

// OCIPolicy is what a set of repositories must satisfy.
type OCIPolicy struct {
	// Match is a path.Match glob over "<upstream>/<repository>"; "**" at
	// the end matches any depth ("ghcr/acme/**").
	Match string `yaml:"match"`
	// Require is signature or none.
	Require string `yaml:"require"`
	// Keys are PEM public keys (file paths) that may sign.
	Keys []string `yaml:"keys"`
	// Identities are keyless signers, verified against TrustedRoot.
	Identities []Identity `yaml:"identities"`
	// IgnoreTlog accepts key signatures with no transparency-log entry
	// (cosign sign --tlog-upload=false). Keyless signatures always need
	// one.
	IgnoreTlog bool `yaml:"ignore_tlog"`
	// Attestations must also be present and signed by the same roots.
	Attestations []AttestationRule `yaml:"attestations"`
	// Tags is what happens when a tag moves upstream: pin (keep the last
	// allowed digest until an admin releases the new one), follow-signed
	// (follow when the new digest passes this policy, else pin) or follow.
	Tags string `yaml:"tags"`
}

// Identity is a keyless signer: subject (or a regexp over it) and OIDC
// issuer (or a regexp).
type Identity struct {
	Subject       string `yaml:"subject"`
	SubjectRegexp string `yaml:"subject_regexp"`
	Issuer        string `yaml:"issuer"`
	IssuerRegexp  string `yaml:"issuer_regexp"`
}

// AttestationRule requires an in-toto attestation of PredicateType; for
// SLSA provenance, BuilderID and SourceRepository pin who built it from
// what (empty: not checked).
type AttestationRule struct {
	PredicateType    string `yaml:"predicate_type"`
	BuilderID        string `yaml:"builder_id"`
	SourceRepository string `yaml:"source_repository"`
}

// Tag policies.
const (
	TagsPin          = "pin"
	TagsFollowSigned = "follow-signed"
	TagsFollow       = "follow"
)

// DefaultOCI is the embedded OCI configuration: Docker Hub (also as the
// mirror for dockerd) and GitHub's registry, no signature required.
func DefaultOCI() OCI {
	return OCI{
		Upstreams: []Upstream{
			{Name: "dockerhub", URL: "https://registry-1.docker.io", Hosts: []string{"docker.io"}, Mirror: true},
			{Name: "ghcr", URL: "https://ghcr.io"},
		},
		TagTTL:      Duration(time.Minute),
		Timeout:     Duration(10 * time.Minute),
		MaxManifest: 4 << 20,
		MaxBlob:     10 << 30,
	}
}

// Host is the upstream's registry host, from its URL.
func (u Upstream) Host() string {
	p, err := url.Parse(u.URL)
	if err != nil {
		return ""
	}
	return p.Host
}

// Password reads the upstream's password from its environment variable
// or file; empty when the upstream is anonymous.
func (u Upstream) Password() (string, error) {
	switch {
	case u.PasswordEnv != "":
		v := strings.TrimSpace(os.Getenv(u.PasswordEnv))
		if v == "" {
			return "", fmt.Errorf("oci upstream %s: environment variable %s is empty", u.Name, u.PasswordEnv)
		}
		return v, nil
	case u.PasswordFile != "":
		b, err := readBounded(u.PasswordFile, 64<<10)
		if err != nil {
			return "", fmt.Errorf("oci upstream %s: password file: %w", u.Name, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("oci upstream %s: password file %s is empty", u.Name, u.PasswordFile)
		}
		return v, nil
	}
	return "", nil
}

// PolicyFor returns the policy for "<upstream>/<repository>": the first
// that matches, or the default (require none, follow-signed).
func (o OCI) PolicyFor(repo string) OCIPolicy {
	for _, p := range o.Policies {
		if MatchRepo(p.Match, repo) {
			return p
		}
	}
	return OCIPolicy{Match: "**", Require: "none", Tags: TagsFollowSigned}
}

// MatchRepo reports whether a repository matches a policy glob: path.Match
// element by element, with a final "**" matching one or more elements.
func MatchRepo(pattern, repo string) bool {
	if pattern == "**" {
		return true
	}
	pe, re := strings.Split(pattern, "/"), strings.Split(repo, "/")
	if last := len(pe) - 1; pe[last] == "**" {
		if len(re) < len(pe) {
			return false
		}
		pe, re = pe[:last], re[:last]
	}
	if len(pe) != len(re) {
		return false
	}
	for i := range pe {
		if ok, _ := path.Match(pe[i], re[i]); !ok {
			return false
		}
	}
	return true
}

var upstreamName = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

func (o *OCI) validate() error {
	names, mirrors := map[string]bool{}, 0
	for i, u := range o.Upstreams {
		key := fmt.Sprintf("oci.upstreams[%d]", i)
		if !upstreamName.MatchString(u.Name) {
			return fmt.Errorf("%s.name: %q must be lowercase letters, digits and . _ - (it is a path segment)", key, u.Name)
		}
		if names[u.Name] {
			return fmt.Errorf("%s.name: %q used twice", key, u.Name)
		}
		names[u.Name] = true
		if err := checkHTTPURL(u.URL); err != nil {
			return fmt.Errorf("%s.url: %w", key, err)
		}
		if p, _ := url.Parse(u.URL); p.Path != "" && p.Path != "/" {
			return fmt.Errorf("%s.url: %q must be the registry's root (no path)", key, u.URL)
		}
		if u.Mirror {
			mirrors++
		}
		if u.PasswordEnv != "" && u.PasswordFile != "" {
			return fmt.Errorf("%s: set at most one of password_env, password_file", key)
		}
		if (u.PasswordEnv != "" || u.PasswordFile != "") != (u.Username != "") {
			return fmt.Errorf("%s: username and a password (password_env or password_file) go together", key)
		}
	}
	if mirrors > 1 {
		return fmt.Errorf("oci.upstreams: at most one upstream may set mirror")
	}
	for i := range o.Policies {
		p := &o.Policies[i]
		key := fmt.Sprintf("oci.policies[%d]", i)
		if p.Match == "" {
			return fmt.Errorf("%s.match: required (a glob over <upstream>/<repository>)", key)
		}
		for _, elem := range strings.Split(p.Match, "/") {
			if _, err := path.Match(elem, ""); err != nil {
				return fmt.Errorf("%s.match: %q: %w", key, p.Match, err)
			}
		}
		switch p.Require {
		case "none":
		case "signature":
			if len(p.Keys) == 0 && len(p.Identities) == 0 {
				return fmt.Errorf("%s: require: signature needs keys or identities", key)
			}
		case "":
			return fmt.Errorf("%s.require: required (signature or none)", key)
		default:
			return fmt.Errorf("%s.require: %q must be signature or none", key, p.Require)
		}
		if len(p.Keys) > 0 && !p.IgnoreTlog && o.TrustedRoot == "" {
			return fmt.Errorf("%s.ignore_tlog: key signatures need their transparency-log entry checked against oci.trusted_root; set trusted_root, or ignore_tlog: true for signatures made with --tlog-upload=false", key)
		}
		if len(p.Identities) > 0 && o.TrustedRoot == "" {
			return fmt.Errorf("%s.identities: keyless verification needs oci.trusted_root", key)
		}
		for j, id := range p.Identities {
			ikey := fmt.Sprintf("%s.identities[%d]", key, j)
			if (id.Subject == "") == (id.SubjectRegexp == "") {
				return fmt.Errorf("%s: set exactly one of subject, subject_regexp", ikey)
			}
			if (id.Issuer == "") == (id.IssuerRegexp == "") {
				return fmt.Errorf("%s: set exactly one of issuer, issuer_regexp", ikey)
			}
			for k, re := range map[string]string{"subject_regexp": id.SubjectRegexp, "issuer_regexp": id.IssuerRegexp} {
				if _, err := regexp.Compile(re); err != nil {
					return fmt.Errorf("%s.%s: %w", ikey, k, err)
				}
			}
		}
		for j, a := range p.Attestations {
			if a.PredicateType == "" {
				return fmt.Errorf("%s.attestations[%d].predicate_type: required", key, j)
			}
		}
		if len(p.Attestations) > 0 && p.Require != "signature" {
			return fmt.Errorf("%s.attestations: need require: signature (the roots that sign them)", key)
		}
		switch p.Tags {
		case TagsPin, TagsFollowSigned, TagsFollow:
		case "":
			p.Tags = TagsFollowSigned
		default:
			return fmt.Errorf("%s.tags: %q must be pin, follow-signed or follow", key, p.Tags)
		}
	}
	if o.TagTTL < 0 {
		return fmt.Errorf("oci.tag_ttl: must not be negative")
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("oci.timeout: must be positive")
	}
	if o.MaxManifest <= 0 || o.MaxBlob <= 0 {
		return fmt.Errorf("oci.max_manifest, oci.max_blob: must be positive")
	}
	return nil
}
