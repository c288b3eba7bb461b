package cosign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/airlock-proxy/airlock/verify/intoto"
	"sort"
	"strings"
)

// In-toto statements and SLSA provenance, parsed from signed (verified)
// payloads. Everything here reads registry content, so it is bounded and
// fuzzed (FuzzParseStatement).

// maxStatement bounds a statement parsed here; bundles and attestation
// layers are bounded by maxBundleSize already, this is the same bound.
const maxStatement = maxBundleSize

// parseStatement parses an in-toto statement (v0.1 or v1).
func parseStatement(raw []byte) (*intoto.Statement, error) {
	if len(raw) > maxStatement {
		return nil, fmt.Errorf("statement larger than %d bytes", maxStatement)
	}
	var st intoto.Statement
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	switch st.Type {
	case "https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1":
	default:
		return nil, fmt.Errorf("statement type %q is not an in-toto statement", st.Type)
	}
	if st.PredicateType == "" {
		return nil, errors.New("statement has no predicate type")
	}
	return &st, nil
}

// provenance is what a SLSA provenance predicate says about its build.
type provenance struct {
	BuilderID string
	// Source is the repository the build came from, as written in the
	// predicate ("" when it names none).
	Source string
}

// parseProvenance extracts the builder and the source repository:
//
//   - SLSA v0.2: builder.id; the source is invocation.configSource.uri.
//   - SLSA v1: runDetails.builder.id; the source is, the first that is
//     set, buildDefinition.externalParameters.workflow.repository (GitHub
//     Actions build types), externalParameters.source (a string, or an
//     object with a uri), externalParameters.repository, else the uri of
//     the first of buildDefinition.resolvedDependencies (which by
//     convention is the checked-out source). Later resolved dependencies
//     are inputs of the build, not its source, and never count.
func parseProvenance(predicateType string, predicate []byte) (provenance, error) {
	if len(predicate) == 0 || bytes.Equal(bytes.TrimSpace(predicate), []byte("null")) {
		return provenance{}, errors.New("statement has no predicate")
	}
	switch predicateType {
	case PredicateSLSAv02:
		var p struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Invocation struct {
				ConfigSource struct {
					URI string `json:"uri"`
				} `json:"configSource"`
			} `json:"invocation"`
		}
		if err := json.Unmarshal(predicate, &p); err != nil {
			return provenance{}, fmt.Errorf("SLSA v0.2 predicate: %w", err)
		}
		return provenance{BuilderID: p.Builder.ID, Source: p.Invocation.ConfigSource.URI}, nil
	case PredicateSLSAv1:
		var p struct {
			BuildDefinition struct {
				ExternalParameters   map[string]json.RawMessage `json:"externalParameters"`
				ResolvedDependencies []struct {
					URI string `json:"uri"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
			} `json:"runDetails"`
		}
		if err := json.Unmarshal(predicate, &p); err != nil {
			return provenance{}, fmt.Errorf("SLSA v1 predicate: %w", err)
		}
		out := provenance{BuilderID: p.RunDetails.Builder.ID}
		ext := p.BuildDefinition.ExternalParameters
		if w, ok := ext["workflow"]; ok {
			var wf struct {
				Repository string `json:"repository"`
			}
			if json.Unmarshal(w, &wf) == nil {
				out.Source = wf.Repository
			}
		}
		if s, ok := ext["source"]; ok && out.Source == "" {
			out.Source = stringOrURI(s)
		}
		if s, ok := ext["repository"]; ok && out.Source == "" {
			out.Source = stringOrURI(s)
		}
		if out.Source == "" && len(p.BuildDefinition.ResolvedDependencies) > 0 {
			out.Source = p.BuildDefinition.ResolvedDependencies[0].URI
		}
		return out, nil
	}
	return provenance{}, fmt.Errorf("%s is not SLSA provenance", predicateType)
}

func stringOrURI(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		URI string `json:"uri"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.URI
	}
	return ""
}

// checkProvenance matches a statement against an attestation rule.
//
// The builder id matches exactly; a configured id without "@" also matches
// any version of that builder ("…/generator_generic_slsa3.yml" matches
// "…/generator_generic_slsa3.yml@refs/tags/v2.1.0").
//
// The source repository is compared after normalising both sides
// (normalizeRepo): "github.com/acme/app" matches
// "git+https://github.com/acme/app@refs/heads/main" and
// "https://github.com/acme/app.git".
func checkProvenance(a Attestation, st *intoto.Statement) error {
	if st.PredicateType != a.PredicateType {
		return fmt.Errorf("predicate type %s, want %s", st.PredicateType, a.PredicateType)
	}
	if a.BuilderID == "" && a.SourceRepository == "" {
		return nil
	}
	p, err := parseProvenance(st.PredicateType, st.Predicate)
	if err != nil {
		return err
	}
	if a.BuilderID != "" && !builderMatches(a.BuilderID, p.BuilderID) {
		return fmt.Errorf("builder id %q, want %q", p.BuilderID, a.BuilderID)
	}
	if a.SourceRepository != "" {
		if p.Source == "" {
			return fmt.Errorf("provenance names no source repository, want %q", a.SourceRepository)
		}
		if normalizeRepo(p.Source) != normalizeRepo(a.SourceRepository) {
			return fmt.Errorf("source repository %q, want %q", p.Source, a.SourceRepository)
		}
	}
	return nil
}

func builderMatches(want, got string) bool {
	if got == want {
		return true
	}
	if strings.Contains(want, "@") {
		return false
	}
	base, _, ok := strings.Cut(got, "@")
	return ok && base == want
}

// normalizeRepo reduces a repository reference to host/path: it drops a
// "git+" prefix, the scheme, user info, a "@ref" after the path, a ".git"
// suffix and trailing slashes, and lower-cases the host.
// "git+https://github.com/acme/app@refs/heads/main" → "github.com/acme/app".
func normalizeRepo(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "git+")
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	host, path, _ := strings.Cut(s, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	if p, _, ok := strings.Cut(path, "@"); ok {
		path = p
	}
	path = strings.TrimRight(path, "/")
	path = strings.TrimSuffix(path, ".git")
	return strings.ToLower(host) + "/" + path
}

func describeRule(a Attestation) string {
	s := "predicate " + a.PredicateType
	if a.BuilderID != "" {
		s += ", builder " + a.BuilderID
	}
	if a.SourceRepository != "" {
		s += ", source " + a.SourceRepository
	}
	return s
}

// unmet returns the policy's attestation rules that no verified statement
// satisfies.
func (r *run) unmet() []Attestation {
	var out []Attestation
	for _, a := range r.p.attestations {
		ok := false
		for _, s := range r.statements {
			if checkProvenance(a, s.stmt) == nil {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, a)
		}
	}
	return out
}

// explainUnmet adds to the attestation trace why each verified statement
// of a required predicate type did not satisfy its rule, and which
// predicate types were found.
func (r *run) explainUnmet(ev map[string]string) {
	types := map[string]bool{}
	for _, s := range r.statements {
		types[s.stmt.PredicateType] = true
	}
	for _, a := range r.unmet() {
		for _, s := range r.statements {
			if s.stmt.PredicateType != a.PredicateType {
				continue
			}
			if err := checkProvenance(a, s.stmt); err != nil {
				r.attTrace.add(s.where, "signed by "+s.signer+", but "+err.Error())
			}
		}
	}
	if len(types) > 0 {
		list := make([]string, 0, len(types))
		for t := range types {
			list = append(list, t)
		}
		sort.Strings(list)
		ev["verified_predicate_types"] = clip(strings.Join(list, ", "), maxEvidenceValue)
	}
}
