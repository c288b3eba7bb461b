package gomod

import (
	"io"
	"net/http"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"
)

// maxSumDBResponse bounds a passed-through checksum database answer.
const maxSumDBResponse = 4 << 20

// serveSumDB passes the checksum database through for the go command,
// which keeps its own verification (GOSUMDB) when it reaches the database
// via the proxy. Only the configured database, only its four endpoints.
func (h *Handler) serveSumDB(w http.ResponseWriter, r *http.Request, rest string) {
	name, p, ok := strings.Cut(rest, "/")
	if !ok || name != h.o.Verifier.Name() {
		textError(w, http.StatusNotFound, "airlock: this proxy serves only the checksum database "+h.o.Verifier.Name())
		return
	}
	switch {
	case p == "supported":
		w.WriteHeader(http.StatusOK)
		return
	case p == "latest":
	case strings.HasPrefix(p, "lookup/"):
		ep, ev, ok := strings.Cut(strings.TrimPrefix(p, "lookup/"), "@")
		path, err1 := module.UnescapePath(ep)
		_, err2 := module.UnescapeVersion(ev)
		if !ok || err1 != nil || err2 != nil || module.CheckPath(path) != nil {
			textError(w, http.StatusBadRequest, "airlock: invalid checksum database lookup")
			return
		}
	case strings.HasPrefix(p, "tile/"):
		if _, err := tlog.ParseTilePath(p); err != nil {
			textError(w, http.StatusBadRequest, "airlock: invalid checksum database tile path")
			return
		}
	default:
		textError(w, http.StatusNotFound, "airlock: unknown checksum database endpoint")
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, h.o.SumDBURL+"/"+p, nil)
	if err != nil {
		textError(w, http.StatusBadRequest, "airlock: "+err.Error())
		return
	}
	resp, err := h.o.Client.Do(req)
	if err != nil {
		textError(w, http.StatusBadGateway, "airlock: checksum database unreachable: "+oneLine(err.Error()))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		status := http.StatusBadGateway
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			status = resp.StatusCode
		}
		textError(w, status, "airlock: checksum database answered "+resp.Status+": "+firstLine(string(msg), ""))
		return
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSumDBResponse+1))
	if err != nil || len(data) > maxSumDBResponse {
		textError(w, http.StatusBadGateway, "airlock: checksum database answer unreadable or too large")
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Write(data)
}
