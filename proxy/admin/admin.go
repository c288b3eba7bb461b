// Package admin is Airlock's admin HTTP API: quarantine list, show,
// release and block, the audit log, the stored status of an artifact,
// and the records of what the organisation's CI built, behind bearer
// tokens with scopes.
//
// The handler from New expects full request paths (/admin/api/v1/…): the
// main router mounts it at the prefix /admin/api/ without stripping it, e.g.
//
//	r.PathPrefix(admin.Prefix).Handler(admin.New(meta, tokens, log))
//
// Every request below the prefix is authenticated before it is routed, so
// that an unauthenticated caller learns nothing, not even which paths exist.
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// Prefix is where the main router mounts the handler.
const Prefix = "/admin/api/"

// MaxBodyBytes bounds a request body; the API takes only small JSON.
const MaxBodyBytes = 64 << 10

// Scopes a token may carry.
const (
	ScopeAdmin = "admin" // everything
	ScopeRead  = "read"  // list, show, artifact status, audit
	ScopeCI    = "ci"    // the CI records API; no access to quarantine
)

// Token is one accepted credential. Only the SHA-256 of the secret is
// kept, so a leaked configuration or memory dump does not leak the secret.
type Token struct {
	Name   string
	Scopes []string
	Hash   [32]byte
	// Namespaces, when set, limit the CI records the token may write to
	// artifacts matching one of them ("<ecosystem>:<glob>", as in
	// policy rules).
	Namespaces []string
}

// allows reports whether the token grants scope; admin grants all.
func (t Token) allows(scope string) bool {
	return slices.Contains(t.Scopes, ScopeAdmin) || slices.Contains(t.Scopes, scope)
}

// actor is how the token is named in the audit log.
func (t Token) actor() string { return "token:" + t.Name }

type api struct {
	meta     cache.Meta
	tokens   []Token
	log      *slog.Logger
	explains map[verify.Ecosystem]Explainer
	ci       CIRecords
}

// Explainer runs an ecosystem's checks on one artifact without serving it.
type Explainer func(ctx context.Context, a verify.Artifact) (policy.Explanation, error)

// Option configures the API.
type Option func(*api)

// WithExplainer answers /explain/ for an ecosystem's artifacts.
func WithExplainer(eco verify.Ecosystem, e Explainer) Option {
	return func(a *api) { a.explains[eco] = e }
}

// New returns the admin API handler, to be mounted at Prefix with full
// paths. With no tokens every request is refused.
func New(meta cache.Meta, tokens []Token, log *slog.Logger, opts ...Option) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &api{meta: meta, tokens: slices.Clone(tokens), log: log, explains: map[verify.Ecosystem]Explainer{}}
	for _, o := range opts {
		o(a)
	}

	r := mux.NewRouter()
	// Artifact names are matched verbatim; a "cleaning" redirect would
	// only confuse clients of a JSON API.
	r.SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	})
	// Full paths rather than a subrouter: mux answers a wrong method with
	// 405 only for routes of the router itself.
	const v1 = "/admin/api/v1"
	r.Handle(v1+"/quarantine", a.require(ScopeRead, a.listQuarantine)).Methods(http.MethodGet)
	r.Handle(v1+"/quarantine", a.require(ScopeAdmin, a.block)).Methods(http.MethodPost)
	r.Handle(v1+"/quarantine/{id}", a.require(ScopeRead, a.showQuarantine)).Methods(http.MethodGet)
	r.Handle(v1+"/quarantine/{id}/release", a.require(ScopeAdmin, a.release)).Methods(http.MethodPost)
	// Artifact names hold slashes, "@" and ":", so the name is the whole
	// rest of the path rather than one segment.
	r.Handle(v1+"/artifacts/{artifact:.+}", a.require(ScopeRead, a.artifactStatus)).Methods(http.MethodGet)
	r.Handle(v1+"/explain/{artifact:.+}", a.require(ScopeRead, a.explain)).Methods(http.MethodGet)
	r.Handle(v1+"/audit", a.require(ScopeRead, a.audit)).Methods(http.MethodGet)
	r.Handle(v1+"/ci/records", a.require(ScopeCI, a.putCIRecord)).Methods(http.MethodPost)
	r.Handle(v1+"/ci/records/{artifact:.+}", a.require(ScopeRead, a.getCIRecord, ScopeCI)).Methods(http.MethodGet)

	return a.authenticate(r)
}
