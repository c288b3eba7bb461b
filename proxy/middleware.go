package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/proxy/metrics"
)

// ecosystem labels a request for metrics and logs by its path prefix.
func ecosystem(path string) string {
	switch {
	case strings.HasPrefix(path, "/go/"):
		return "go"
	case strings.HasPrefix(path, "/npm/"):
		return "npm"
	case strings.HasPrefix(path, "/v2/"):
		return "oci"
	case strings.HasPrefix(path, "/admin/"):
		return "admin"
	default:
		return "ops"
	}
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the underlying writer's sendfile path for cached blobs
// served with http.ServeContent.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController and sendfile reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe logs and counts every request, and turns a panic in a handler
// into a 500 rather than a dropped connection.
func observe(log *slog.Logger, m *metrics.Set, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		eco := ecosystem(r.URL.Path)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					http.Error(rec, "airlock: internal error", http.StatusInternalServerError)
				}
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			d := time.Since(start)
			m.Requests.WithLabelValues(eco, strconv.Itoa(rec.status)).Inc()
			m.RequestSeconds.WithLabelValues(eco).Observe(d.Seconds())
			level := slog.LevelDebug
			if rec.status >= 400 {
				level = slog.LevelInfo
			}
			if rec.status >= 500 {
				level = slog.LevelWarn
			}
			log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"bytes", rec.bytes, "duration_ms", d.Milliseconds(), "ecosystem", eco)
		}()
		next.ServeHTTP(rec, r)
	})
}
