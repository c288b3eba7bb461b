package npmprov

import (
	"encoding/json"
	"path"
	"strings"

	"github.com/airlock-proxy/airlock/verify/intoto"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// slsaV1 is the part of a SLSA v1 predicate npm's GitHub provenance fills.
type slsaV1 struct {
	BuildDefinition struct {
		ExternalParameters struct {
			Workflow struct {
				Ref        string `json:"ref"`
				Repository string `json:"repository"`
				Path       string `json:"path"`
			} `json:"workflow"`
		} `json:"externalParameters"`
		ResolvedDependencies []struct {
			URI    string            `json:"uri"`
			Digest map[string]string `json:"digest"`
		} `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
	} `json:"runDetails"`
}

// slsaV02 is the part of a SLSA v0.2 predicate npm's GitLab (and early
// GitHub) provenance fills.
type slsaV02 struct {
	Builder struct {
		ID string `json:"id"`
	} `json:"builder"`
	Invocation struct {
		ConfigSource struct {
			URI        string            `json:"uri"`
			Digest     map[string]string `json:"digest"`
			EntryPoint string            `json:"entryPoint"`
		} `json:"configSource"`
	} `json:"invocation"`
}

// provenance reads the facts of a verified SLSA provenance and checks that
// the statement agrees with the certificate. The certificate's
// extensions come from the CI's OIDC token; the statement is whatever the
// job chose to write, so where both speak they must agree, and the
// certificate wins when only it does.
func provenance(st intoto.Statement, res *sgverify.VerificationResult, ev map[string]string) (*Provenance, *failure) {
	if res == nil || res.Signature == nil || res.Signature.Certificate == nil {
		return nil, fail(ReasonVerification, nil, "verified provenance has no certificate")
	}
	cert := res.Signature.Certificate
	p := &Provenance{PredicateType: st.PredicateType, Issuer: cert.Issuer, Identity: cert.SubjectAlternativeName}
	var stRepo, stRef, stCommit, stWorkflow string
	switch st.PredicateType {
	case PredicateSLSAProvenanceV1:
		var pr slsaV1
		if err := json.Unmarshal(st.Predicate, &pr); err != nil {
			return nil, fail(ReasonBadPredicate, err, "unreadable SLSA v1 predicate")
		}
		w := pr.BuildDefinition.ExternalParameters.Workflow
		stRepo, stRef, stWorkflow = w.Repository, w.Ref, w.Path
		for _, d := range pr.BuildDefinition.ResolvedDependencies {
			if c := d.Digest["gitCommit"]; c != "" {
				stCommit = c
				break
			}
		}
		p.Builder = pr.RunDetails.Builder.ID
	case PredicateSLSAProvenanceV02:
		var pr slsaV02
		if err := json.Unmarshal(st.Predicate, &pr); err != nil {
			return nil, fail(ReasonBadPredicate, err, "unreadable SLSA v0.2 predicate")
		}
		cs := pr.Invocation.ConfigSource
		stRepo = cs.URI
		// "git+https://github.com/o/r@refs/heads/main" (GitHub) carries
		// the ref; GitLab's "git+https://gitlab.com/o/r" does not.
		if i := strings.LastIndex(cs.URI, "@"); i > strings.Index(cs.URI, "://")+3 && strings.HasPrefix(cs.URI[i+1:], "refs/") {
			stRef = cs.URI[i+1:]
		}
		stCommit = cs.Digest["sha1"]
		// GitLab's entryPoint is the job name, not a file: it only fills
		// a gap left by the certificate.
		stWorkflow = cs.EntryPoint
		p.Builder = pr.Builder.ID
	}
	ev["builder"] = clip(p.Builder)

	certRepo := NormalizeRepository(cert.SourceRepositoryURI)
	if r := NormalizeRepository(stRepo); certRepo != "" && r != "" && !strings.EqualFold(certRepo, r) {
		return nil, inconsistent(ev, "repository", certRepo, r)
	} else if p.SourceRepository = certRepo; p.SourceRepository == "" {
		p.SourceRepository = r
	}
	if p.SourceRepository == "" {
		return nil, fail(ReasonBadPredicate, nil, "provenance names no source repository")
	}
	if c := cert.SourceRepositoryDigest; c != "" && stCommit != "" && !strings.EqualFold(c, stCommit) {
		return nil, inconsistent(ev, "commit", c, stCommit)
	}
	p.Commit = firstOf(cert.SourceRepositoryDigest, stCommit)
	if r := cert.SourceRepositoryRef; r != "" && stRef != "" && r != stRef {
		return nil, inconsistent(ev, "ref", r, stRef)
	}
	p.Ref = firstOf(cert.SourceRepositoryRef, stRef)
	certWorkflow := workflowPath(cert)
	if st.PredicateType == PredicateSLSAProvenanceV1 && certWorkflow != "" && stWorkflow != "" && certWorkflow != stWorkflow {
		return nil, inconsistent(ev, "workflow", certWorkflow, stWorkflow)
	}
	p.Workflow = firstOf(certWorkflow, stWorkflow)
	for k, v := range map[string]string{"source_repository": p.SourceRepository, "workflow": p.Workflow, "ref": p.Ref, "commit": p.Commit, "issuer": p.Issuer, "identity": p.Identity} {
		ev[k] = clip(v)
	}
	return p, nil
}

func inconsistent(ev map[string]string, what, cert, stmt string) *failure {
	ev["certificate_"+what], ev["statement_"+what] = clip(cert), clip(stmt)
	return fail(ReasonInconsistent, nil, "the statement's %s %q is not the certificate's %q", what, clip(stmt), clip(cert))
}

// workflowPath is the workflow file from the certificate's Build Config
// URI, "https://github.com/o/r/.github/workflows/x.yml@refs/tags/v1"
// (GitLab: "https://gitlab.com/o/r//.gitlab-ci.yml@refs/heads/main").
func workflowPath(cert *certificate.Summary) string {
	uri, repo := cert.BuildConfigURI, cert.SourceRepositoryURI
	if uri == "" || repo == "" || !strings.HasPrefix(uri, repo+"/") {
		return ""
	}
	rest := uri[len(repo)+1:]
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[:i]
	}
	return strings.TrimLeft(rest, "/")
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// NormalizeRepository reduces a source repository URL as provenance and
// certificates write it ("https://github.com/o/r", "git+https://github.com/o/r.git@refs/heads/main",
// "git@github.com:o/r.git") to "github.com/o/r": no scheme, user, ref,
// ".git" or trailing slash, the host lower-cased. It returns "" for
// something that is not a host and path.
func NormalizeRepository(u string) string {
	s := strings.TrimSpace(u)
	s = strings.TrimPrefix(s, "git+")
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	} else if at, colon := strings.Index(s, "@"), strings.Index(s, ":"); at >= 0 && colon > at && !strings.Contains(s[:colon], "/") {
		// scp-like "git@host:owner/repo"
		s = s[at+1:colon] + "/" + s[colon+1:]
	}
	host, rest, ok := strings.Cut(s, "/")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	if i := strings.Index(rest, "@"); i >= 0 {
		rest = rest[:i]
	}
	rest = strings.TrimSuffix(strings.Trim(rest, "/"), ".git")
	rest = strings.Trim(rest, "/")
	if host == "" || rest == "" {
		return ""
	}
	return strings.ToLower(host) + "/" + rest
}

// MatchRepository reports whether repo (a SourceRepository, or anything
// NormalizeRepository accepts) matches pattern, e.g. "github.com/acme/*".
// Both are split on "/" and must have the same number of segments; each
// segment matches as path.Match does, so "*" matches within one segment
// and never crosses a "/" ("github.com/acme/*" matches
// "github.com/acme/app" but not "github.com/acme/app/sub" nor
// "github.com/acme"). Matching ignores case, as GitHub and GitLab do for
// owner and repository names. A malformed pattern matches nothing.
func MatchRepository(pattern, repo string) bool {
	r := NormalizeRepository(repo)
	if r == "" || pattern == "" {
		return false
	}
	ps := strings.Split(strings.ToLower(pattern), "/")
	rs := strings.Split(strings.ToLower(r), "/")
	if len(ps) != len(rs) {
		return false
	}
	for i := range ps {
		ok, err := path.Match(ps[i], rs[i])
		if err != nil || !ok {
			return false
		}
	}
	return true
}
