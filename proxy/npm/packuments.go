package npm

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm/packument"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
)

// bucketPackument maps a package name to the record of its cached full
// packument (the bytes are a blob).
const bucketPackument = "npm-packument"

type docRecord struct {
	Digest       string    `json:"digest"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Fetched      time.Time `json:"fetched"`
}

// doc is one decoded full packument. Everything but the freshness time
// and the answers encoded from it is immutable.
type doc struct {
	name    string
	rec     docRecord // Fetched as of loading; see fetched
	pk      *packument.Packument
	size    int64
	fetched atomic.Int64 // unix nanoseconds of the last upstream confirmation
	// quiet is when upstream may be asked again after it failed: until
	// then the cached copy is served without waiting on a dead upstream.
	quiet atomic.Int64

	mu       sync.Mutex
	enc      map[string]encoded // answers by form, base URL and hidden set
	findings map[int][]verify.Finding
	deps     map[int][]verify.Finding // new-dependency findings by release
	lookups  int                      // dependency packuments read for them

	histOnce sync.Once
	hist     anomaly.History

	squatOnce sync.Once
	squat     *verify.Finding
}

type encoded struct {
	body []byte
	etag string
}

// answer returns the encoded answer for key, building it once.
func (d *doc) answer(key string, build func() (encoded, error)) (encoded, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.enc[key]; ok {
		return e, nil
	}
	e, err := build()
	if err != nil {
		return encoded{}, err
	}
	if len(d.enc) >= 4 { // a few forms and hidden sets at a time
		clear(d.enc)
	}
	d.enc[key] = e
	return e, nil
}

func newDoc(name string, rec docRecord, pk *packument.Packument, size int64) *doc {
	d := &doc{name: name, rec: rec, pk: pk, size: size, enc: map[string]encoded{}}
	d.fetched.Store(rec.Fetched.UnixNano())
	return d
}

// docCache keeps recently used packuments decoded: decoding a large one
// costs far more than filtering and encoding it.
type docCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // of *doc, most recent first
	byKey map[string]*list.Element
}

// cost is what one byte of a packument costs in memory, decoded and
// encoded.
const cost = 5

func newDocCache(max int64) *docCache {
	return &docCache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *docCache) get(name string) *doc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[name]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*doc)
	}
	return nil
}

// put stores d, evicting the least recently used beyond the bound.
// A decoded document takes about three times its size in memory, and its
// encoded answers (a full and an abbreviated one, usually) about as much
// again.
func (c *docCache) put(d *doc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[d.name]; ok {
		c.used -= e.Value.(*doc).size * cost
		c.order.Remove(e)
	}
	c.byKey[d.name] = c.order.PushFront(d)
	c.used += d.size * cost
	for c.used > c.max && c.order.Len() > 1 {
		e := c.order.Back()
		old := e.Value.(*doc)
		c.order.Remove(e)
		delete(c.byKey, old.name)
		c.used -= old.size * cost
	}
}

// load returns the package's packument: cached and fresh, else asked of
// upstream (conditionally when cached); a cached copy stands in when
// upstream is unavailable.
func (h *Handler) load(ctx context.Context, name string) (*doc, error) {
	d, err := h.cached(ctx, name)
	if err != nil {
		return nil, err
	}
	if d != nil && (h.o.Now().Sub(time.Unix(0, d.fetched.Load())) < h.o.MaxAge || h.o.Now().UnixNano() < d.quiet.Load()) {
		h.o.Metrics.CacheHits.WithLabelValues("npm", "packument").Inc()
		return d, nil
	}
	return h.refresh(ctx, name, d)
}

// Revalidating a cached packument is bounded by revalidateTimeout, and a
// failure leaves upstream alone for quietPeriod: stale-if-error must not
// make every install wait on a dead upstream.
const (
	revalidateTimeout = time.Minute
	quietPeriod       = 30 * time.Second
)

// reload asks upstream again unless the packument was confirmed within
// the last few seconds: for a version the cached copy does not know yet.
func (h *Handler) reload(ctx context.Context, d *doc) (*doc, error) {
	if h.o.Now().Sub(time.Unix(0, d.fetched.Load())) < 5*time.Second {
		return d, nil
	}
	return h.refresh(ctx, d.name, d)
}

// cached returns the packument from memory or the store; nil when there
// is none (or it is unusable).
func (h *Handler) cached(ctx context.Context, name string) (*doc, error) {
	if d := h.docs.get(name); d != nil {
		return d, nil
	}
	raw, err := h.o.Meta.Get(ctx, bucketPackument, name)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec docRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		h.o.Log.Warn("unreadable packument record; fetching again", "package", name, "err", err)
		return nil, nil
	}
	f, size, err := h.o.Blobs.Open(ctx, rec.Digest)
	if err != nil {
		h.o.Log.Warn("cached packument unusable; fetching again", "package", name, "digest", rec.Digest, "err", err)
		return nil, nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, h.o.MaxPackument+1))
	if err != nil || int64(len(data)) != size {
		h.o.Log.Warn("cached packument unreadable; fetching again", "package", name, "err", err)
		return nil, nil
	}
	pk, err := packument.Parse(data, h.o.MaxPackument)
	if err != nil || pk.Name != name {
		h.o.Log.Warn("cached packument does not decode; fetching again", "package", name, "err", err)
		return nil, nil
	}
	d := newDoc(name, rec, pk, size)
	h.docs.put(d)
	return d, nil
}

// refresh asks upstream for the full packument, once for all concurrent
// callers and detached from any one caller's cancellation.
func (h *Handler) refresh(ctx context.Context, name string, old *doc) (*doc, error) {
	v, err, _ := h.flight.Do("packument\x00"+name, func() (any, error) {
		return h.fetchPackument(context.WithoutCancel(ctx), name, old)
	})
	if err != nil {
		return nil, err
	}
	return v.(*doc), nil
}

func (h *Handler) fetchPackument(ctx context.Context, name string, old *doc) (*doc, error) {
	if old != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, revalidateTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.o.Upstream+"/"+escapeName(name), nil)
	if err != nil {
		return nil, err
	}
	// The full document: publish times, _npmUser and scripts are only
	// there, never in the abbreviated one.
	req.Header.Set("Accept", "application/json")
	if old != nil {
		if old.rec.ETag != "" {
			req.Header.Set("If-None-Match", old.rec.ETag)
		}
		if old.rec.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.rec.LastModified)
		}
	}
	h.o.Metrics.CacheMisses.WithLabelValues("npm", "packument").Inc()
	resp, err := h.do(req, old != nil)
	if err != nil {
		if old != nil && errors.Is(err, errUnavailable) {
			h.o.Log.Warn("upstream unavailable; serving the cached packument", "package", name,
				"fetched", time.Unix(0, old.fetched.Load()).UTC().Format(time.RFC3339), "err", err)
			old.quiet.Store(h.o.Now().Add(quietPeriod).UnixNano())
			return old, nil
		}
		return nil, unavailable(err)
	}
	defer resp.Body.Close()
	now := h.o.Now()
	if resp.StatusCode == http.StatusNotModified {
		old.fetched.Store(now.UnixNano())
		rec := old.rec
		rec.Fetched = now
		h.putRecord(ctx, name, rec)
		return old, nil
	}
	data, err := h.readBody(resp, h.o.MaxPackument)
	if err != nil {
		if old != nil && errors.Is(err, errUnavailable) {
			h.o.Log.Warn("upstream packument cut short; serving the cached one", "package", name, "err", err)
			old.quiet.Store(h.o.Now().Add(quietPeriod).UnixNano())
			return old, nil
		}
		return nil, unavailable(err)
	}
	pk, err := packument.Parse(data, h.o.MaxPackument)
	if err != nil {
		return nil, errorf(http.StatusBadGateway, "airlock: upstream packument of %s does not decode: %s", name, oneLine(err.Error()))
	}
	if pk.Name != name {
		return nil, errorf(http.StatusBadGateway, "airlock: upstream answered for %q when asked for %s", pk.Name, name)
	}
	s, err := h.o.Blobs.Stage(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Discard()
	if _, err := s.Write(data); err != nil {
		return nil, err
	}
	if err := s.Commit(ctx, s.Digest()); err != nil {
		return nil, fmt.Errorf("storing packument of %s: %w", name, err)
	}
	rec := docRecord{Digest: s.Digest(), ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Fetched: now}
	h.putRecord(ctx, name, rec)
	d := newDoc(name, rec, pk, int64(len(data)))
	// Before the document is used: a version taken down must be held
	// before anyone can fetch its cached tarball again.
	if err := h.takedowns(ctx, d); err != nil {
		return nil, err
	}
	if h.checksOn() {
		h.recordPublishes(ctx, d)
		h.addName(name)
	}
	h.docs.put(d)
	return d, nil
}

// putRecord stores the packument record; a failure only costs a refetch
// after a restart, so it is logged, not returned.
func (h *Handler) putRecord(ctx context.Context, name string, rec docRecord) {
	raw, _ := json.Marshal(rec)
	if err := h.o.Meta.Put(ctx, bucketPackument, name, raw); err != nil {
		h.o.Log.Warn("storing packument record", "package", name, "err", err)
	}
}
