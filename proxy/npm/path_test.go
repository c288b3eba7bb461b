package npm

import (
	"net/http"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         request
		status       int
	}{
		{"GET", "/lodash", request{kind: kindPackument, name: "lodash"}, 0},
		{"HEAD", "/lodash", request{kind: kindPackument, name: "lodash"}, 0},
		{"GET", "/@babel%2fcore", request{kind: kindPackument, name: "@babel/core"}, 0},
		{"GET", "/@babel%2Fcore", request{kind: kindPackument, name: "@babel/core"}, 0},
		{"GET", "/@babel/core", request{kind: kindPackument, name: "@babel/core"}, 0},
		{"GET", "/%40babel%2fcore", request{kind: kindPackument, name: "@babel/core"}, 0},
		{"GET", "/JSONStream", request{kind: kindPackument, name: "JSONStream"}, 0},
		{"GET", "/lodash/4.17.21", request{kind: kindVersion, name: "lodash", version: "4.17.21"}, 0},
		{"GET", "/lodash/latest", request{kind: kindVersion, name: "lodash", tag: "latest"}, 0},
		{"GET", "/@babel/core/7.0.0-beta.1", request{kind: kindVersion, name: "@babel/core", version: "7.0.0-beta.1"}, 0},
		{"GET", "/@babel%2fcore/next", request{kind: kindVersion, name: "@babel/core", tag: "next"}, 0},
		{"GET", "/lodash/-/lodash-4.17.21.tgz", request{kind: kindTarball, name: "lodash", version: "4.17.21"}, 0},
		{"GET", "/@babel/core/-/core-7.24.0.tgz", request{kind: kindTarball, name: "@babel/core", version: "7.24.0"}, 0},
		{"GET", "/@babel%2fcore/-/core-7.24.0.tgz", request{kind: kindTarball, name: "@babel/core", version: "7.24.0"}, 0},
		{"GET", "/-/package/lodash/dist-tags", request{kind: kindDistTags, name: "lodash"}, 0},
		{"GET", "/-/package/@babel%2fcore/dist-tags", request{kind: kindDistTags, name: "@babel/core"}, 0},
		{"GET", "/-/package/@babel/core/dist-tags", request{kind: kindDistTags, name: "@babel/core"}, 0},
		{"GET", "/-/npm/v1/keys", request{kind: kindKeys}, 0},
		{"GET", "/-/ping", request{kind: kindPing}, 0},
		{"GET", "/-/npm/v1/attestations/lodash@4.17.21", request{kind: kindAttestations, name: "lodash", version: "4.17.21"}, 0},
		{"GET", "/-/npm/v1/attestations/@sigstore%2fcore@1.0.0", request{kind: kindAttestations, name: "@sigstore/core", version: "1.0.0"}, 0},
		{"GET", "/-/npm/v1/attestations/@sigstore/core@1.0.0", request{kind: kindAttestations, name: "@sigstore/core", version: "1.0.0"}, 0},
		{"POST", "/-/npm/v1/security/advisories/bulk", request{kind: kindAudit, audit: "advisories/bulk"}, 0},
		{"POST", "/-/npm/v1/security/audits/quick", request{kind: kindAudit, audit: "audits/quick"}, 0},

		// Writes of every kind: publish, unpublish, login, dist-tag changes.
		{"PUT", "/lodash", request{}, http.StatusMethodNotAllowed},
		{"DELETE", "/lodash/-rev/3-abc", request{}, http.StatusMethodNotAllowed},
		{"PUT", "/-/user/org.couchdb.user:alice", request{}, http.StatusMethodNotAllowed},
		{"PUT", "/-/package/lodash/dist-tags/next", request{}, http.StatusMethodNotAllowed},
		{"DELETE", "/-/package/lodash/dist-tags/next", request{}, http.StatusMethodNotAllowed},
		{"POST", "/-/v1/login", request{}, http.StatusMethodNotAllowed},
		{"GET", "/-/npm/v1/security/audits/quick", request{}, http.StatusMethodNotAllowed},

		// Names and versions that must never reach storage or a URL.
		{"GET", "/", request{}, http.StatusNotFound},
		{"GET", "/..", request{}, http.StatusBadRequest},
		{"GET", "/%2e%2e", request{}, http.StatusBadRequest},
		{"GET", "/.hidden", request{}, http.StatusBadRequest},
		{"GET", "/@scope", request{}, http.StatusBadRequest},
		{"GET", "/@scope/..", request{}, http.StatusBadRequest},
		{"GET", "/a%2fb", request{}, http.StatusBadRequest},
		{"GET", "/a%5cb", request{}, http.StatusBadRequest},
		{"GET", "/a%00b", request{}, http.StatusBadRequest},
		{"GET", "/node_modules", request{}, http.StatusBadRequest},
		{"GET", "/%zz", request{}, http.StatusBadRequest},
		{"GET", "/" + strings.Repeat("a", 215), request{}, http.StatusBadRequest},
		{"GET", "/lodash/^4.0.0", request{}, http.StatusBadRequest},
		{"GET", "/lodash/1.0.0%0a", request{}, http.StatusBadRequest},
		{"GET", "/lodash/-/lodash-01.0.0.tgz", request{}, http.StatusBadRequest},
		{"GET", "/lodash/-/lodash-1.0.0.tar", request{}, http.StatusNotFound},
		{"GET", "/lodash/-/other-1.0.0.tgz", request{}, http.StatusNotFound},
		{"GET", "/lodash/-/lodash-..%2f..%2fx.tgz", request{}, http.StatusBadRequest},
		{"GET", "/lodash/1.0.0/extra", request{}, http.StatusNotFound},
		{"GET", "/-/npm/v1/attestations/lodash", request{}, http.StatusBadRequest},
		{"GET", "/-/npm/v1/attestations/lodash@latest", request{}, http.StatusBadRequest},
		{"GET", "/-/whoami", request{}, http.StatusNotFound},
	} {
		got, status, msg := parse(tc.method, tc.path)
		if status != tc.status || got != tc.want {
			t.Errorf("parse(%s %s) = %+v, %d %q; want %+v, %d", tc.method, tc.path, got, status, msg, tc.want, tc.status)
		}
		if status != 0 && !strings.HasPrefix(msg, "airlock: ") {
			t.Errorf("parse(%s %s) message %q does not say who answers", tc.method, tc.path, msg)
		}
	}
}

func TestWantsCorgi(t *testing.T) {
	for accept, want := range map[string]bool{
		"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*": true, // npm
		"application/vnd.npm.install-v1+json":                                      true,
		"application/json":                                                         false,
		"":                                                                         false,
		"*/*":                                                                      false,
		"application/vnd.npm.install-v1+json;q=0.5, application/json": false,
		"application/vnd.npm.install-v1+json;q=0":                     false,
	} {
		if got := wantsCorgi(accept); got != want {
			t.Errorf("wantsCorgi(%q) = %v, want %v", accept, got, want)
		}
	}
}

// FuzzParse checks that whatever a path holds, a parsed name and version
// are safe for storage keys and URLs, and parse never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/lodash", "/@a%2fb/-/b-1.0.0.tgz", "/-/npm/v1/attestations/@a/b@1.0.0", "/-/package/x/dist-tags", "/a/b/c", "/%"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		req, status, _ := parse(method, path)
		if status != 0 {
			return
		}
		for _, s := range []string{req.name, req.version, req.tag} {
			if strings.ContainsAny(s, "\\\x00\n\r% ") {
				t.Fatalf("parse(%q) let through %q", path, s)
			}
			for _, seg := range strings.Split(s, "/") {
				if s != "" && (seg == "" || strings.HasPrefix(seg, ".")) {
					t.Fatalf("parse(%q) let through path segment %q of %q", path, seg, s)
				}
			}
		}
		if strings.Count(req.name, "/") > 1 || (strings.Contains(req.name, "/") && !strings.HasPrefix(req.name, "@")) {
			t.Fatalf("parse(%q) name %q", path, req.name)
		}
	})
}
