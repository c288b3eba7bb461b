package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/proxy/npm"
	"github.com/airlock-proxy/airlock/verify/npmprov"
	"github.com/airlock-proxy/airlock/verify/npmsig"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// newNPMFront builds the npm registry front from the npm section.
func newNPMFront(cfg config.NPM, pol policy.Policy, ci ciCheck, now func() time.Time, mal *malicious, meta cache.Meta, blobs cache.Blobs, m *metrics.Set, log *slog.Logger) (*npm.Handler, error) {
	o := npm.Options{
		Checks:    pol,
		CI:        ci,
		Now:       now,
		Malicious: mal.Findings,
		FastTrack: mal.Fixes,
		Upstream:  cfg.Upstream, URL: cfg.URL,
		Client:       &http.Client{Timeout: cfg.Timeout.D(), Transport: upstreamTransport()},
		Meta:         meta,
		Blobs:        blobs,
		MaxAge:       cfg.MaxAge.D(),
		MaxPackument: int64(cfg.MaxPackument),
		MaxTarball:   int64(cfg.MaxTarball),
		Memory:       int64(cfg.Memory),
		Log:          log,
		Metrics:      m,
		Policy: func(name string) npm.Policy {
			p, _ := cfg.Policy(name)
			return npm.Policy{RequireProvenance: p.Provenance == "required", SourceRepository: p.SourceRepository}
		},
	}
	switch cfg.Keys {
	case "default":
		o.KeyMode, o.Keys, o.KeysJSON = npm.KeysStatic, npmsig.DefaultKeys(), npmsig.DefaultKeysJSON()
	case "upstream":
		o.KeyMode = npm.KeysUpstream
	case "none":
		o.KeyMode = npm.KeysNone
		log.Warn("npm.keys is none: registry signatures are not checked (tarballs are still checked against dist.integrity)")
	default:
		doc, err := os.ReadFile(cfg.Keys)
		if err != nil {
			return nil, fmt.Errorf("npm.keys: %w", err)
		}
		keys, err := npmsig.ParseKeys(doc)
		if err != nil {
			return nil, fmt.Errorf("npm.keys: %s: %w", cfg.Keys, err)
		}
		if keys.Len() == 0 {
			return nil, fmt.Errorf("npm.keys: %s holds no usable ecdsa-sha2-nistp256 key", cfg.Keys)
		}
		o.KeyMode, o.Keys, o.KeysJSON = npm.KeysStatic, keys, doc
	}
	var err error
	if cfg.TrustedRoot != "" {
		o.TrustedRoot, err = npmprov.LoadTrustedRoot(cfg.TrustedRoot)
		if err != nil {
			return nil, fmt.Errorf("npm.trusted_root: %w", err)
		}
	} else if o.TrustedRoot, err = npmprov.DefaultTrustedRoot(); err != nil {
		return nil, fmt.Errorf("the embedded sigstore trusted root: %w", err)
	}
	return npm.New(o), nil
}
