// Package metrics holds the Prometheus collectors that the router and the
// ecosystem fronts share, registered on a registry of the server's own (no
// global state), so that several servers can live in one test process.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Set is one server's collectors.
type Set struct {
	Registry *prometheus.Registry

	Requests       *prometheus.CounterVec // ecosystem, code
	CacheHits      *prometheus.CounterVec // ecosystem, kind
	CacheMisses    *prometheus.CounterVec // ecosystem, kind
	UpstreamFetch  *prometheus.CounterVec // ecosystem, result (ok, not_found, error)
	Verifications  *prometheus.CounterVec // ecosystem, check, result (pass, fail, error)
	Quarantines    *prometheus.CounterVec // ecosystem
	SumDBHalted    prometheus.Gauge
	UpstreamBytes  *prometheus.CounterVec // ecosystem
	RequestSeconds *prometheus.HistogramVec
}

// New creates and registers the collectors.
func New() *Set {
	r := prometheus.NewRegistry()
	s := &Set{
		Registry: r,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_requests_total", Help: "HTTP requests by ecosystem and status code.",
		}, []string{"ecosystem", "code"}),
		CacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_cache_hits_total", Help: "Objects served from the cache.",
		}, []string{"ecosystem", "kind"}),
		CacheMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_cache_misses_total", Help: "Objects fetched from upstream because the cache lacked them.",
		}, []string{"ecosystem", "kind"}),
		UpstreamFetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_upstream_fetches_total", Help: "Upstream requests by result.",
		}, []string{"ecosystem", "result"}),
		Verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_verifications_total", Help: "Verifications by check and result.",
		}, []string{"ecosystem", "check", "result"}),
		Quarantines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_quarantines_total", Help: "Artifacts quarantined by a check.",
		}, []string{"ecosystem"}),
		SumDBHalted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_sumdb_inconsistent", Help: "1 when the Go checksum database log was found inconsistent and new versions are refused.",
		}),
		UpstreamBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_upstream_bytes_total", Help: "Bytes read from upstreams.",
		}, []string{"ecosystem"}),
		RequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "airlock_request_duration_seconds", Help: "Request latency by ecosystem.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"ecosystem"}),
	}
	r.MustRegister(s.Requests, s.CacheHits, s.CacheMisses, s.UpstreamFetch, s.Verifications,
		s.Quarantines, s.SumDBHalted, s.UpstreamBytes, s.RequestSeconds)
	return s
}
