package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/proxy/admin"
)

const (
	defaultServer = "http://127.0.0.1:8080"
	clientTimeout = 30 * time.Second
	// maxResponse bounds what the client reads: a page of 1000 audit
	// events is well below it, a misdirected download is not.
	maxResponse = 32 << 20
)

// addClientFlags binds the flags shared by the admin client commands.
func addClientFlags(cmd *cobra.Command, g *globalFlags) {
	f := cmd.PersistentFlags()
	f.StringVar(&g.server, "server", envOr("AIRLOCK_URL", defaultServer), "Airlock server URL (env AIRLOCK_URL)")
	// No default shown: the help text must not print a secret from the
	// environment.
	f.StringVar(&g.token, "token", "", "admin API token (default: env AIRLOCK_TOKEN, else <data>/admin-token)")
	f.StringVar(&g.data, "data", "./airlock-data", "data directory holding admin-token")
	f.BoolVar(&g.json, "json", false, "print the API's JSON")
}

// apiClient talks to a server's admin API.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// newClient resolves the server and token from the flags: the token from
// --token, else AIRLOCK_TOKEN, else the file serve writes on first start.
func newClient(g *globalFlags) (*apiClient, error) {
	base, err := url.Parse(strings.TrimRight(g.server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, usageError{fmt.Errorf("--server %q: want a URL like %s", g.server, defaultServer)}
	}
	tok := strings.TrimSpace(g.token)
	if tok == "" {
		tok = strings.TrimSpace(envOr("AIRLOCK_TOKEN", ""))
	}
	if tok == "" {
		p := filepath.Join(g.data, "admin-token")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("no admin token: pass --token, set AIRLOCK_TOKEN, or point --data at the server's data directory (%w)", err)
		}
		if tok = strings.TrimSpace(string(b)); tok == "" {
			return nil, fmt.Errorf("no admin token: %s is empty", p)
		}
	}
	return &apiClient{base: base, token: tok, http: &http.Client{Timeout: clientTimeout}}, nil
}

// apiError is an error answer from the server.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("airlock: %d %s: %s", e.status, http.StatusText(e.status), e.message)
	if e.status == http.StatusUnauthorized {
		msg += " (check --token, AIRLOCK_TOKEN or <data>/admin-token)"
	}
	return msg
}

// do sends one request to path (below the server URL, already escaped:
// see pathf) and returns the response body of a 2xx answer.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	u, err := url.Parse(c.base.String() + path)
	if err != nil {
		return nil, err
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The url.Error repeats method and URL, which is what helps here.
		return nil, fmt.Errorf("airlock: cannot reach the server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("airlock: reading the answer to %s %s: %w", method, u.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &apiError{status: resp.StatusCode, message: errorMessage(data)}
	}
	return data, nil
}

// pathf formats an API path, escaping each argument as one path segment
// so that an id typed by a person cannot reach another endpoint.
func pathf(format string, args ...string) string {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = url.PathEscape(a)
	}
	return fmt.Sprintf(format, esc...)
}

// errorMessage extracts {"error": …}, or falls back to the start of the
// body for answers from something that is not the admin API (a proxy in
// between, or a server without it).
func errorMessage(body []byte) string {
	var e admin.Error
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "(no message)"
	}
	line, _, _ := strings.Cut(s, "\n")
	return truncate(line, 200)
}

// call sends a request and decodes the answer into out, returning the raw
// JSON as well for --json.
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, error) {
	data, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("airlock: unexpected answer to %s %s: %w", method, path, err)
	}
	return data, nil
}

// printJSON writes the API's answer indented.
func printJSON(w io.Writer, data []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// exactArgs is cobra.ExactArgs reporting a usage error (exit status 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// requireReason checks a --reason flag before anything is sent: the API
// would refuse it too, but a usage error says how to fix the command.
func requireReason(reason string) (string, error) {
	r := strings.TrimSpace(reason)
	if r == "" {
		return "", usageError{errors.New(`--reason is required: say why (it goes into the audit log), e.g. --reason "reviewed the diff"`)}
	}
	return r, nil
}

// The output helpers below keep tables aligned and the terminal safe:
// names, findings and reasons come from upstream registries and other
// people, and may hold tabs, newlines or escape sequences.

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// clean replaces control characters with visible escapes.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orDash keeps empty cells visible in a table.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
