package config

import (
	"strings"
	"testing"
)

func TestOCIConfig(t *testing.T) {
	c, err := Load(writeConfig(t, `
oci:
  upstreams:
    - name: local
      url: http://127.0.0.1:5000
      mirror: true
  trusted_root: /etc/airlock/trusted_root.json
  policies:
    - match: local/acme/**
      require: signature
      keys: [/etc/airlock/cosign.pub]
      ignore_tlog: true
      tags: pin
    - match: local/*/app
      require: signature
      identities:
        - subject_regexp: ^https://github.com/acme/
          issuer: https://token.actions.githubusercontent.com
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OCI.Upstreams) != 1 || c.OCI.Upstreams[0].Host() != "127.0.0.1:5000" {
		t.Fatalf("upstreams = %+v", c.OCI.Upstreams)
	}
	for _, tc := range []struct {
		repo, match, tags string
	}{
		{"local/acme/x", "local/acme/**", TagsPin},
		{"local/acme/x/y/z", "local/acme/**", TagsPin},
		{"local/other/app", "local/*/app", TagsFollowSigned},
		{"local/other/app/sub", "**", TagsFollowSigned},
		{"local/acme", "**", TagsFollowSigned},
	} {
		p := c.OCI.PolicyFor(tc.repo)
		if p.Match != tc.match || p.Tags != tc.tags {
			t.Errorf("PolicyFor(%q) = %q/%q, want %q/%q", tc.repo, p.Match, p.Tags, tc.match, tc.tags)
		}
	}
}

func TestOCIErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ body, key string }{
		{"oci: {upstreams: [{name: Docker, url: 'https://x'}]}", "oci.upstreams[0].name"},
		{"oci: {upstreams: [{name: a, url: 'ftp://x'}]}", "oci.upstreams[0].url"},
		{"oci: {upstreams: [{name: a, url: 'https://x/v2'}]}", "oci.upstreams[0].url"},
		{"oci: {upstreams: [{name: a, url: 'https://x'}, {name: a, url: 'https://y'}]}", "oci.upstreams[1].name"},
		{"oci: {upstreams: [{name: a, url: 'https://x', mirror: true}, {name: b, url: 'https://y', mirror: true}]}", "oci.upstreams"},
		{"oci: {upstreams: [{name: a, url: 'https://x', password_env: P}]}", "oci.upstreams[0]"},
		{"oci: {policies: [{require: none}]}", "oci.policies[0].match"},
		{"oci: {policies: [{match: 'a/[', require: none}]}", "oci.policies[0].match"},
		{"oci: {policies: [{match: a, require: maybe}]}", "oci.policies[0].require"},
		{"oci: {policies: [{match: a, require: signature}]}", "oci.policies[0]"},
		{"oci: {policies: [{match: a, require: signature, identities: [{subject: s, issuer: i}]}]}", "oci.policies[0].identities"},
		{"oci: {trusted_root: r, policies: [{match: a, require: signature, identities: [{subject: s}]}]}", "oci.policies[0].identities[0]"},
		{"oci: {trusted_root: r, policies: [{match: a, require: signature, identities: [{subject_regexp: '(', issuer: i}]}]}", "oci.policies[0].identities[0].subject_regexp"},
		{"oci: {policies: [{match: a, require: none, tags: sometimes}]}", "oci.policies[0].tags"},
		{"oci: {policies: [{match: a, require: none, attestations: [{predicate_type: x}]}]}", "oci.policies[0].attestations"},
		{"oci: {policies: [{match: a, require: signature, keys: [k], ignore_tlog: true, attestations: [{builder_id: x}]}]}", "oci.policies[0].attestations[0].predicate_type"},
		{"oci: {policies: [{match: a, require: signature, keys: [k]}]}", "oci.policies[0].ignore_tlog"},
		{"oci: {timeout: 0s}", "oci.timeout"},
		{"oci: {upstreams: [{name: a, url: 'https://x', colour: red}]}", "oci.upstreams[0].colour"},
	} {
		_, err := Load(writeConfig(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: error %v, want one naming %s", tc.body, err, tc.key)
		}
	}
}

func TestMatchRepo(t *testing.T) {
	for _, tc := range []struct {
		pattern, repo string
		want          bool
	}{
		{"**", "a/b/c", true},
		{"a/**", "a/b", true},
		{"a/**", "a/b/c", true},
		{"a/**", "a", false},
		{"a/*", "a/b", true},
		{"a/*", "a/b/c", false},
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"*/library/*", "dockerhub/library/alpine", true},
	} {
		if got := MatchRepo(tc.pattern, tc.repo); got != tc.want {
			t.Errorf("MatchRepo(%q, %q) = %v, want %v", tc.pattern, tc.repo, got, tc.want)
		}
	}
}

func TestUpstreamPassword(t *testing.T) {
	t.Setenv("AIRLOCK_TEST_REGISTRY_PW", " s3cret\n")
	file := writeConfig(t, "from-file\n")
	for _, tc := range []struct {
		u       Upstream
		want    string
		wantErr bool
	}{
		{Upstream{Name: "a"}, "", false},
		{Upstream{Name: "a", PasswordEnv: "AIRLOCK_TEST_REGISTRY_PW"}, "s3cret", false},
		{Upstream{Name: "a", PasswordEnv: "AIRLOCK_TEST_UNSET_PW"}, "", true},
		{Upstream{Name: "a", PasswordFile: file}, "from-file", false},
		{Upstream{Name: "a", PasswordFile: file + ".missing"}, "", true},
	} {
		got, err := tc.u.Password()
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%+v: Password() = %q, %v; want %q, error %v", tc.u, got, err, tc.want, tc.wantErr)
		}
	}
}
