package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
)

// HashToken is the form in which a token secret is configured and compared.
func HashToken(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// GenerateToken returns a new random secret: 32 bytes from crypto/rand,
// base64url, prefixed "alk_" so that secret scanners and people can tell
// what it is.
func GenerateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "alk_" + base64.RawURLEncoding.EncodeToString(b), nil
}

type tokenKey struct{}

// authenticate admits only requests bearing a configured token, whatever
// the path, and hands the token to the handlers through the context.
func (a *api) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := a.lookup(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
	})
}

// lookup finds the token whose hash matches the presented secret. It
// compares against every configured hash, never stopping early, so that
// the response time does not tell which token (or how many) there are.
func (a *api) lookup(header string) (Token, bool) {
	scheme, secret, ok := strings.Cut(header, " ")
	// The scheme is case-insensitive (RFC 7235).
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}, false
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return Token{}, false
	}
	sum := HashToken(secret)
	found := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].Hash[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return a.tokens[found], true
}

// require wraps a handler that needs scope, or one of also; the token is
// already known to be valid.
func (a *api) require(scope string, h func(http.ResponseWriter, *http.Request, Token), also ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := r.Context().Value(tokenKey{}).(Token)
		if !tok.allows(scope) && !slices.ContainsFunc(also, tok.allows) {
			need := strings.Join(append([]string{scope}, also...), " or ")
			a.log.Warn("admin API: token lacks scope", "token", tok.Name, "need", need, "method", r.Method, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "token "+tok.Name+" lacks the "+need+" scope")
			return
		}
		h(w, r, tok)
	})
}
