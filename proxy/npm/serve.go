package npm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm/packument"
)

// corgi is the abbreviated packument's media type.
const corgi = "application/vnd.npm.install-v1+json"

// wantsCorgi reports whether the Accept header prefers the abbreviated
// form, as npm, pnpm and yarn ask for it during installs.
func wantsCorgi(accept string) bool {
	var qc, qj float64 = -1, -1
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		switch mt {
		case corgi:
			qc = max(qc, q)
		case "application/json", "*/*", "application/*":
			qj = max(qj, q)
		}
	}
	return qc > 0 && qc >= qj
}

// base is the URL tarballs are served under.
func (h *Handler) base(r *http.Request) string {
	if h.o.URL != "" {
		return h.o.URL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + h.o.Prefix
}

func tarballURL(base, name string) func(version string) string {
	return func(v string) string { return base + "/" + name + "/-/" + tarballName(name, v) }
}

// view is a packument as clients may see it: withheld versions gone.
type view struct {
	d      *doc
	hidden map[string]withheld
	pk     *packument.Packument
}

func (h *Handler) view(ctx context.Context, name string) (view, error) {
	d, err := h.load(ctx, name)
	if err != nil {
		return view{}, err
	}
	hid, err := h.withheldVersions(ctx, d)
	if err != nil {
		return view{}, err
	}
	v := view{d: d, hidden: hid, pk: d.pk}
	if len(hid) > 0 {
		v.pk = d.pk.Filter(func(ver string) bool { _, ok := hid[ver]; return ok })
		v.pk.Restrictions = restrictions(name, hid)
	}
	return v, nil
}

// key names what the view hides, for caching answers built from it.
func (v view) key() string {
	ids := make([]string, 0, len(v.hidden))
	for ver := range v.hidden {
		ids = append(ids, ver)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// maxRestricted bounds the versions explained in one packument.
const maxRestricted = 50

// restrictions lists the withheld versions for the npm client, which then
// fails an exact request for one with Airlock's reason (E403) instead of
// "no matching version", and never picks one for a range while another
// satisfies it.
func restrictions(name string, hid map[string]withheld) *packument.Restrictions {
	vs := slices.Collect(maps.Keys(hid))
	slices.SortFunc(vs, func(a, b string) int { c, _ := packument.CompareVersions(b, a); return c })
	if len(vs) > maxRestricted {
		vs = vs[:maxRestricted]
	}
	var b strings.Builder
	b.WriteString("Airlock withholds these versions:")
	for _, v := range vs {
		w := hid[v]
		if w.id != "" {
			fmt.Fprintf(&b, "\n  %s@%s: %s (%s)", name, v, w.reason, w.id)
		} else {
			fmt.Fprintf(&b, "\n  %s@%s: %s", name, v, w.reason)
		}
	}
	b.WriteString("\nreview with `airlock explain npm:<name>@<version>` or `airlock quarantine show <id>`; release with `airlock quarantine release <id> --reason ...`")
	return &packument.Restrictions{Versions: vs, Message: b.String()}
}

// reason is a quarantine record in a few words.
func reason(q cache.Quarantine) string {
	if q.State == cache.Blocked {
		if q.Reason != "" {
			return "blocked by an admin: " + oneLine(q.Reason)
		}
		return "blocked by an admin"
	}
	return summary(q.Findings)
}

func (h *Handler) servePackument(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	v, err := h.view(ctx, req.name)
	if err != nil {
		return err
	}
	abbreviated := wantsCorgi(r.Header.Get("Accept"))
	form, ctype := "full", "application/json"
	if abbreviated {
		form, ctype = "corgi", corgi
	}
	base := h.base(r)
	key := form + "\x00" + base + "\x00" + v.key()
	e, err := v.d.answer(key, func() (encoded, error) {
		var b bytes.Buffer
		var err error
		if abbreviated {
			err = v.pk.EncodeAbbreviated(&b, tarballURL(base, req.name))
		} else {
			err = v.pk.Encode(&b, tarballURL(base, req.name))
		}
		sum := sha256.Sum256([]byte(v.d.rec.Digest + "\x00" + key))
		return encoded{body: b.Bytes(), etag: `W/"` + hex.EncodeToString(sum[:16]) + `"`}, err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("ETag", e.etag)
	w.Header().Set("Vary", "Accept")
	// Short: a version quarantined later must leave clients' caches soon.
	w.Header().Set("Cache-Control", "public, max-age=60")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(e.body))
	return nil
}

func (h *Handler) serveVersion(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	v, err := h.view(ctx, req.name)
	if err != nil {
		return err
	}
	ver := req.version
	if req.tag != "" {
		ver = v.pk.DistTags[req.tag]
		if ver == "" {
			return errorf(http.StatusNotFound, "airlock: %s has no dist-tag %s", req.name, req.tag)
		}
	}
	if w, ok := v.hidden[ver]; ok {
		return withheldError(artifact(req.name, ver), w)
	}
	pv := v.pk.Versions[ver]
	if pv == nil {
		return errorf(http.StatusNotFound, "airlock: version not found: %s@%s", req.name, ver)
	}
	var b bytes.Buffer
	if err := pv.Encode(&b, tarballURL(h.base(r), req.name)(ver)); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b.Bytes()))
	return nil
}

func (h *Handler) serveDistTags(ctx context.Context, w http.ResponseWriter, r *http.Request, req request) error {
	v, err := h.view(ctx, req.name)
	if err != nil {
		return err
	}
	tags := v.pk.DistTags
	if tags == nil {
		tags = map[string]string{}
	}
	body, err := json.Marshal(tags)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(append(body, '\n')))
	return nil
}
