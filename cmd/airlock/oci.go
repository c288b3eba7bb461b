package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/cache/fill"
	"github.com/airlock-proxy/airlock/config"
	"github.com/airlock-proxy/airlock/proxy/metrics"
	"github.com/airlock-proxy/airlock/proxy/oci"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// newOCIFront builds the registry front from the oci section.
func newOCIFront(cfg config.OCI, pol policy.Policy, ci ciCheck, now func() time.Time, meta cache.Meta, blobs cache.Blobs, m *metrics.Set, log *slog.Logger) (*oci.Handler, error) {
	var ups []oci.Upstream
	for _, u := range cfg.Upstreams {
		up := oci.Upstream{Name: u.Name, URL: u.URL, Hosts: u.Hosts, Mirror: u.Mirror}
		pw, err := u.Password()
		if err != nil {
			return nil, err
		}
		if u.Username != "" {
			up.Auth = authn.FromConfig(authn.AuthConfig{Username: u.Username, Password: pw})
		}
		ups = append(ups, up)
	}
	sigs, err := newSignatures(cfg)
	if err != nil {
		return nil, err
	}
	policies := make([]oci.Policy, len(cfg.Policies))
	for i, p := range cfg.Policies {
		policies[i] = oci.Policy{Require: p.Require == "signature", Tags: p.Tags}
		if policies[i].Require {
			policies[i].Signature = sigs.policies[i]
		}
	}
	signed := 0
	for _, p := range policies {
		if p.Require {
			signed++
		}
	}
	if signed == 0 {
		log.Warn("no oci.policies entry requires a signature: images are checked for integrity and tag drift, not for who signed them")
	}
	g := fill.New(fill.Options{
		Blobs: blobs, Timeout: cfg.Timeout.D(), MaxSize: int64(cfg.MaxBlob), Log: log,
	})
	return oci.New(oci.Options{
		Checks:    pol,
		CI:        ci,
		Now:       now,
		Upstreams: ups,
		Policy: func(repo string) oci.Policy {
			for i, p := range cfg.Policies {
				if config.MatchRepo(p.Match, repo) {
					return policies[i]
				}
			}
			return oci.Policy{Tags: oci.TagsFollowSigned}
		},
		Verifier:    sigs,
		Meta:        meta,
		Blobs:       fillSource{g},
		MaxManifest: int64(cfg.MaxManifest),
		TagTTL:      cfg.TagTTL.D(),
		Timeout:     cfg.Timeout.D(),
		Transport:   upstreamTransport(),
		Log:         log,
		Metrics:     m,
	})
}

// fillSource adapts *fill.Group to the front's BlobSource.
type fillSource struct{ g *fill.Group }

func (s fillSource) Open(ctx context.Context, digest string, fetch func(context.Context) (io.ReadCloser, int64, error)) (oci.BlobReader, error) {
	r, err := s.g.Open(ctx, digest, fill.Fetch(fetch))
	if err != nil {
		return nil, err // a nil interface, not a typed nil
	}
	return r, nil
}

var _ http.Handler = (*oci.Handler)(nil)
