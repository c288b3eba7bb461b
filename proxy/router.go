// Package proxy is Airlock's HTTP surface: one port, one router that sends
// each path prefix to its front (/go/, /npm/, /v2/), the admin API, and
// the operations endpoints, wrapped in logging, metrics and panic recovery.
package proxy

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlock-proxy/airlock/proxy/metrics"
)

// Options are the parts the router dispatches to. A nil front is not
// mounted.
type Options struct {
	GoMod   http.Handler // the GOPROXY front, sees paths below /go/
	OCI     http.Handler // the registry front, sees full /v2/ paths
	NPM     http.Handler // the npm front, sees paths below /npm/
	Admin   http.Handler // the admin API, sees full /admin/api/ paths
	Metrics *metrics.Set
	Log     *slog.Logger
	// Ready reports whether the server can take traffic; nil means yes.
	Ready func() error
}

// New returns the router.
func New(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	r := mux.NewRouter()
	// Module paths and tile paths are matched verbatim; mux must not
	// redirect them to a "cleaned" form.
	r.SkipClean(true)
	if o.GoMod != nil {
		r.PathPrefix("/go/").Handler(http.StripPrefix("/go", o.GoMod))
	}
	if o.OCI != nil {
		r.PathPrefix("/v2").Handler(o.OCI)
	}
	if o.NPM != nil {
		r.PathPrefix("/npm/").Handler(http.StripPrefix("/npm", o.NPM))
		// The npm client fetches attestations from the path of
		// dist.attestations.url resolved against the registry's host,
		// which drops the registry's own path (/npm).
		r.PathPrefix("/-/npm/v1/attestations/").Handler(o.NPM)
	}
	if o.Admin != nil {
		r.PathPrefix("/admin/api/").Handler(o.Admin)
	}
	r.Handle("/metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{}))
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	r.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil {
			if err := o.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("airlock: no such endpoint (Go modules are under /go/, npm packages under /npm/, container images under /v2/, the admin API under /admin/api/v1/)\n"))
	})
	return observe(o.Log, o.Metrics, r)
}
