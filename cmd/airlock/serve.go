package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/proxy"
	"github.com/airlock-proxy/airlock/proxy/admin"
	"github.com/airlock-proxy/airlock/proxy/gomod"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/gosum"
)

func newServeCmd() *cobra.Command {
	var configFile, listen, data, logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy",
		Long: `Run the proxy on one port: Go modules under /go/, the admin API under
/admin/api/v1/, and /healthz, /readyz, /metrics.

With no --config it runs on embedded defaults: 127.0.0.1:8080, data in
./airlock-data, the public Go module proxy and checksum database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile)
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Listen = listen
			}
			if data != "" {
				cfg.Data = data
			}
			if logFormat != "" {
				cfg.Log.Format = logFormat
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("flags: %w", err)
			}
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", os.Getenv("AIRLOCK_CONFIG"), "YAML configuration file (env AIRLOCK_CONFIG)")
	f.StringVar(&listen, "listen", "", "address to listen on (default 127.0.0.1:8080)")
	f.StringVar(&data, "data", "", "data directory (default ./airlock-data)")
	f.StringVar(&logFormat, "log-format", "", "log format: text or json")
	return cmd
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// server is a running Airlock, for serve and for tests.
type server struct {
	handler   http.Handler
	meta      *cache.Bolt
	log       *slog.Logger
	cfg       config.Config
	malicious *malicious
}

// newServer opens the stores and builds the handler.
func newServer(cfg config.Config, log *slog.Logger) (*server, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	now := serverClock()
	meta, err := cache.OpenBolt(filepath.Join(cfg.Data, "airlock.db"), cache.WithClock(now))
	if err != nil {
		return nil, err
	}
	blobs, err := cache.OpenDisk(filepath.Join(cfg.Data, "blobs"))
	if err != nil {
		meta.Close()
		return nil, err
	}
	tokens, err := adminTokens(cfg, log)
	if err != nil {
		meta.Close()
		return nil, err
	}
	m := metrics.New()
	hc := &http.Client{Timeout: cfg.Go.Timeout.D(), Transport: upstreamTransport()}
	verifier, err := gosum.New(gosum.Options{
		Key: cfg.Go.SumDB.Key, URL: cfg.Go.SumDBURL(), Client: hc,
		Store: bucketStore{meta, "sumdb"}, Log: log,
		OnInconsistent: func(string) { m.SumDBHalted.Set(1) },
	})
	if err != nil {
		meta.Close()
		return nil, err
	}
	pol, err := buildPolicy(cfg.Policy)
	if err != nil {
		meta.Close()
		return nil, err
	}
	ci := newCIRecords(meta, pol, now, log.With("part", "ci-records"))
	if _, err := reevaluate(context.Background(), meta, pol, now(), ci.Check, cache.QuarantineFilter{}, log); err != nil {
		meta.Close()
		return nil, fmt.Errorf("re-evaluating holds under the policy: %w", err)
	}
	if err := tightenOnChange(context.Background(), meta, cfg.Policy, pol, now(), ci.Check, log); err != nil {
		meta.Close()
		return nil, fmt.Errorf("re-evaluating what was served under the policy: %w", err)
	}
	mal, err := loadMalicious(context.Background(), cfg.Policy.Malicious, cfg.Policy.Advisories, meta, log.With("feed", "known-malicious"))
	if err != nil {
		meta.Close()
		return nil, err
	}
	var private []gomod.Private
	for _, p := range cfg.Go.Private {
		private = append(private, gomod.Private{Pattern: p.Pattern, Verdict: verify.Verdict(p.Policy)})
	}
	goFront := gomod.New(gomod.Options{
		Upstream: cfg.Go.Upstream, SumDBURL: cfg.Go.SumDBURL(), Client: hc,
		Verifier: verifier, Meta: meta, Blobs: blobs, Private: private,
		MaxZip: int64(cfg.Go.MaxZip), MaxMod: int64(cfg.Go.MaxMod), MaxInfo: int64(cfg.Go.MaxInfo),
		ListTTL: cfg.Go.ListTTL.D(), ReadAhead: cfg.Go.ReadAhead, Log: log.With("front", "go"), Metrics: m,
		Checks: pol, Malicious: mal.Findings, FastTrack: mal.Fixes, CI: ci.Check, Now: now,
	})
	ociFront, err := newOCIFront(cfg.OCI, pol, ci.Check, now, meta, blobs, m, log.With("front", "oci"))
	if err != nil {
		meta.Close()
		return nil, err
	}
	npmFront, err := newNPMFront(cfg.NPM, pol, ci.Check, now, mal, meta, blobs, m, log.With("front", "npm"))
	if err != nil {
		meta.Close()
		return nil, err
	}
	h := proxy.New(proxy.Options{
		GoMod:   goFront,
		OCI:     ociFront,
		NPM:     npmFront,
		Admin:   admin.New(meta, tokens, log.With("front", "admin"), admin.WithExplainer(verify.NPM, npmFront.Explain), admin.WithExplainer(verify.Go, goFront.Explain), admin.WithExplainer(verify.OCI, ociFront.Explain), admin.WithCIRecords(ci)),
		Metrics: m,
		Log:     log,
	})
	return &server{handler: h, meta: meta, log: log, cfg: cfg, malicious: mal}, nil
}

func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = time.Minute
	return t
}

func serve(ctx context.Context, cfg config.Config, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	s, err := newServer(cfg, log)
	if err != nil {
		return err
	}
	defer s.meta.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var ociUpstreams []string
	for _, u := range cfg.OCI.Upstreams {
		ociUpstreams = append(ociUpstreams, u.Name+"="+u.URL)
	}
	log.Info("airlock listening", "addr", ln.Addr().String(), "data", cfg.Data, "go_upstream", cfg.Go.Upstream,
		"sumdb", cfg.Go.SumDBName(), "oci_upstreams", strings.Join(ociUpstreams, ","), "npm_upstream", cfg.NPM.Upstream, "version", version)
	if len(cfg.Policy.Malicious)+len(cfg.Policy.Advisories) > 0 {
		go s.malicious.watch(ctx, cfg.Policy.MaliciousRefresh.D())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// In-flight downloads get the grace period to finish; what is cut off
	// leaves only staged temp files, which the next start removes.
	log.Info("shutting down", "grace", cfg.ShutdownGrace.D().String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut off in-flight requests", "err", err)
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// adminTokens resolves the configured tokens; with none, it uses (or on the
// first start creates) <data>/admin-token, so the admin API is never open.
func adminTokens(cfg config.Config, log *slog.Logger) ([]admin.Token, error) {
	resolved, err := cfg.Admin.ResolveTokens()
	if err != nil {
		return nil, err
	}
	var out []admin.Token
	for _, t := range resolved {
		out = append(out, admin.Token{Name: t.Name, Scopes: t.Scopes, Namespaces: t.Namespaces, Hash: t.Hash})
	}
	if len(out) > 0 {
		return out, nil
	}
	p := filepath.Join(cfg.Data, "admin-token")
	b, err := os.ReadFile(p)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		log.Info("admin API token from file", "path", p)
	case err == nil || errors.Is(err, os.ErrNotExist):
		tok, err := admin.GenerateToken()
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(p, []byte(tok+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("writing admin token: %w", err)
		}
		b = []byte(tok)
		log.Warn("no admin token configured: generated one", "path", p)
	default:
		return nil, fmt.Errorf("reading admin token: %w", err)
	}
	return []admin.Token{{Name: "admin", Scopes: []string{"admin"}, Hash: admin.HashToken(strings.TrimSpace(string(b)))}}, nil
}

func writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
