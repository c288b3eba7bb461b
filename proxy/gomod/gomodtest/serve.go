package gomodtest

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// serve answers the GOPROXY protocol (https://go.dev/ref/mod#goproxy-protocol)
// and, under /sumdb/<name>/, the checksum database.
func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.requests = append(u.requests, r.URL.Path)
	down, delay := u.down, u.delay
	u.mu.Unlock()

	if down {
		http.Error(w, "gomodtest: upstream is down", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "gomodtest: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/sumdb/"); ok {
		u.serveSumDB(w, r, rest)
		return
	}

	if esc, ok := strings.CutSuffix(r.URL.Path, "/@latest"); ok {
		u.serveLatest(w, strings.TrimPrefix(esc, "/"))
		return
	}
	esc, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/@v/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	path, err := module.UnescapePath(esc)
	if err != nil {
		http.Error(w, "gomodtest: bad module path: "+err.Error(), http.StatusBadRequest)
		return
	}
	if file == "list" {
		u.serveList(w, path)
		return
	}
	dot := strings.LastIndex(file, ".")
	if dot < 0 {
		http.NotFound(w, r)
		return
	}
	vers, err := module.UnescapeVersion(file[:dot])
	if err != nil {
		http.Error(w, "gomodtest: bad version: "+err.Error(), http.StatusBadRequest)
		return
	}

	u.mu.Lock()
	v := u.mods[path][vers]
	var body []byte
	var truncate bool
	if v != nil {
		body, truncate = v.info, false
		switch ext := file[dot:]; ext {
		case ".mod":
			body = v.mod
		case ".zip":
			body, truncate = v.zip, v.truncate
		case ".info":
		default:
			v = nil
		}
	}
	missing := u.missing
	u.mu.Unlock()
	if v == nil {
		http.Error(w, "not found: "+path+"@"+vers, missing)
		return
	}

	if strings.HasSuffix(file, ".zip") {
		w.Header().Set("Content-Type", "application/zip")
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			case <-u.closed:
				return
			}
		}
	} else if strings.HasSuffix(file, ".info") {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if truncate {
		// Declaring more than is written makes net/http close the
		// connection after the handler: the client sees a short body.
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		return
	}
	w.Write(body)
}

// serveList answers @v/list: the known versions, one a line, without
// pseudo-versions, as the protocol says.
func (u *Upstream) serveList(w http.ResponseWriter, path string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	versions, ok := u.mods[path]
	if !ok {
		http.Error(w, "not found: "+path, u.missing)
		return
	}
	var list []string
	for v := range versions {
		if !module.IsPseudoVersion(v) {
			list = append(list, v)
		}
	}
	semver.Sort(list)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	for _, v := range list {
		w.Write([]byte(v + "\n"))
	}
}

// serveLatest answers @latest with the .info of the highest release, or of
// the highest version at all when there is no release.
func (u *Upstream) serveLatest(w http.ResponseWriter, esc string) {
	path, err := module.UnescapePath(esc)
	if err != nil {
		http.Error(w, "gomodtest: bad module path: "+err.Error(), http.StatusBadRequest)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var best, bestRelease string
	for v := range u.mods[path] {
		if semver.Compare(v, best) > 0 {
			best = v
		}
		if semver.Prerelease(v) == "" && semver.Compare(v, bestRelease) > 0 {
			bestRelease = v
		}
	}
	if bestRelease != "" {
		best = bestRelease
	}
	if best == "" {
		http.Error(w, "not found: "+path+"@latest", u.missing)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(u.mods[path][best].info)
}
