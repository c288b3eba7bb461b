package oci_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airlock-proxy/airlock/proxy/oci"
)

// basicAuth demands one user and password on every request, as a private
// registry does.
func basicAuth(next http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// An upstream that wants credentials gets the configured ones; clients of
// Airlock need none. Wrong credentials are an upstream refusal, never an
// empty answer or a stale one passed off as fresh.
func TestUpstreamCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, password string
		wantOK         bool
	}{
		{"right password", "s3cret", true},
		{"wrong password", "guess", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *oci.Options) {
				o.Upstreams[0].Auth = authn.FromConfig(authn.AuthConfig{Username: "airlock", Password: tc.password})
			})
			img := image(t)
			f.push(t, "private/app:v1", img)
			f.faults.set(func(fl *faults) { fl.next = basicAuth(fl.next, "airlock", "s3cret") })
			if tc.wantOK {
				pullImage(t, f, "up/private/app:v1", img)
				return
			}
			if _, err := remote.Image(f.ref(t, "up/private/app:v1")); err == nil {
				t.Fatal("pulled through Airlock with wrong upstream credentials")
			}
			resp, body := f.do(t, http.MethodGet, "/v2/up/private/app/manifests/v1")
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "credentials configured for up") {
				t.Fatalf("wrong credentials: %d %s; want 404 naming the credentials", resp.StatusCode, body)
			}
		})
	}
}
