package gomodtest

import (
	"context"
	"io/fs"
	"net/http"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
)

// serveSumDB answers /sumdb/<name>/...: "supported", which the go command
// asks before it reaches a database through GOPROXY, and the database's own
// endpoints (/latest, /lookup/, /tile/), served by x/mod's sumdb.Server over
// an in-memory log.
func (u *Upstream) serveSumDB(w http.ResponseWriter, r *http.Request, rest string) {
	name, p, _ := strings.Cut(rest, "/")
	if name != u.SumDBName {
		http.Error(w, "gomodtest: unknown checksum database "+name, http.StatusNotFound)
		return
	}
	if p == "supported" {
		w.WriteHeader(http.StatusOK)
		return
	}
	u.mu.Lock()
	db := u.db
	u.mu.Unlock()
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = "/"+p, ""
	sumdb.NewServer(db).ServeHTTP(w, r2)
}

// gosum gives the log the go.sum lines to record for a module version on
// its first lookup: those of the original content, whatever is served now,
// or those ForkSumDB substituted.
func (u *Upstream) gosum(path, version string) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if data, ok := u.forks[path+"@"+version]; ok {
		return data, nil
	}
	v := u.mods[path][version]
	if v == nil {
		// sumdb.Server turns only an os.IsNotExist error into a 404,
		// and os.IsNotExist does not look through fmt.Errorf wrapping.
		return nil, &fs.PathError{Op: "lookup", Path: path + "@" + version, Err: fs.ErrNotExist}
	}
	return v.sum, nil
}

// ForkSumDB replaces the checksum database log with a fork: a fresh log,
// signed by the same key, holding the same records in the same order except
// that path@version records the hashes of files (a module root, as in
// Module.Files) instead of its original content. If path@version has not
// been looked up yet, the fork records it on its first lookup.
//
// A client that saw the old log and then sees the fork must detect the
// inconsistency ("SECURITY ERROR ... misbehavior"); a client that only ever
// sees the fork is fooled, which with TamperZip of the same files simulates
// a targeted attack. Call it while no requests are in flight.
func (u *Upstream) ForkSumDB(path, version string, files map[string]string) {
	u.t.Helper()
	m := Module{Path: path, Version: version, Files: files}
	forked, err := u.build(m)
	if err != nil {
		u.t.Fatalf("gomodtest: forked record for %s@%s: %v", path, version, err)
	}

	ctx := context.Background()
	u.mu.Lock()
	if u.mods[path][version] == nil {
		u.mu.Unlock()
		u.t.Fatalf("gomodtest: ForkSumDB of %s@%s, which was never added", path, version)
	}
	u.forks[path+"@"+version] = forked.sum
	old := u.db
	u.mu.Unlock()

	// Replay the old log's lookups in order; gosum now answers the forked
	// lines for path@version and the same lines as before for the rest.
	fork := sumdb.NewTestServer(u.signer, u.gosum)
	for id := int64(0); ; id++ {
		recs, err := old.ReadRecords(ctx, id, 1)
		if err != nil {
			break // past the end of the old log
		}
		f := strings.Fields(string(recs[0])) // "path version h1:..."
		if len(f) < 2 {
			u.t.Fatalf("gomodtest: unparsable sumdb record %d: %q", id, recs[0])
		}
		if _, err := fork.Lookup(ctx, module.Version{Path: f[0], Version: f[1]}); err != nil {
			u.t.Fatalf("gomodtest: replaying sumdb record %d: %v", id, err)
		}
	}
	u.mu.Lock()
	u.db = fork
	u.mu.Unlock()
}
