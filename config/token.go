package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// ResolvedToken is a configured admin token with its secret reduced to a
// SHA-256 hash, whichever way the secret was given.
type ResolvedToken struct {
	Name       string
	Scopes     []string
	Namespaces []string
	Hash       [32]byte
}

// ResolveTokens reads each token's secret from its environment variable or
// file and hashes it; a missing or empty secret is an error naming the key,
// so that a typo never leaves the API open or locked by surprise.
func (a Admin) ResolveTokens() ([]ResolvedToken, error) {
	var out []ResolvedToken
	for i, t := range a.Tokens {
		key := fmt.Sprintf("admin.tokens[%d]", i)
		r := ResolvedToken{Name: t.Name, Scopes: t.Scopes, Namespaces: t.Namespaces}
		switch {
		case t.SHA256 != "":
			b, err := hex.DecodeString(t.SHA256)
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("%s.sha256: not a hex SHA-256", key)
			}
			copy(r.Hash[:], b)
		case t.Env != "":
			v := strings.TrimSpace(os.Getenv(t.Env))
			if v == "" {
				return nil, fmt.Errorf("%s.env: environment variable %s is empty or unset", key, t.Env)
			}
			r.Hash = sha256.Sum256([]byte(v))
		case t.File != "":
			b, err := os.ReadFile(t.File)
			if err != nil {
				return nil, fmt.Errorf("%s.file: %w", key, err)
			}
			v := strings.TrimSpace(string(b))
			if v == "" {
				return nil, fmt.Errorf("%s.file: %s is empty", key, t.File)
			}
			r.Hash = sha256.Sum256([]byte(v))
		}
		out = append(out, r)
	}
	return out, nil
}
