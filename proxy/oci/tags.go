package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// tagState is what Airlock holds about one tag of one repository.
type tagState struct {
	// Digest is the allowed digest the tag serves; empty when no digest
	// of the tag was ever allowed, and the tag then stands for Upstream.
	Digest string `json:"digest,omitempty"`
	// Upstream is the digest upstream gave at the last check: different
	// from Digest while a move is held.
	Upstream string    `json:"upstream"`
	Checked  time.Time `json:"checked"`
	// Moved is when Airlock first saw the tag point at Upstream: where a
	// move's cooldown counts from.
	Moved time.Time `json:"moved,omitzero"`
}

// materialTag matches cosign's tags for a subject's signatures,
// attestations and SBOMs (and the referrers fallback tag).
var materialTag = regexp.MustCompile(`^sha256-([a-f0-9]{64})(?:\.(?:sig|att|sbom))?$`)

// resolveTag returns the digest tag serves: the stored one within the
// TTL, otherwise what upstream says now after the tag policy has had its
// say on a move, or the last allowed digest when upstream fails
// (stale-if-error; never after upstream said not found or unauthorized).
func (h *Handler) resolveTag(ctx context.Context, t target, tag string) (string, error) {
	if st, err := h.status(ctx, t.tagArtifact(tag)); err != nil {
		return "", err
	} else if st.Hidden() {
		return "", refusal(t.tagArtifact(tag), st)
	}
	subject := ""
	if m := materialTag.FindStringSubmatch(tag); m != nil {
		// Material is served for an allowed subject only.
		subject = "sha256:" + m[1]
		if _, err := h.admit(ctx, t, subject); err != nil {
			return "", err
		}
	}
	var old tagState
	found, err := h.getJSON(ctx, bucketTag, t.key+":"+tag, &old)
	if err != nil {
		return "", err
	}
	if found && h.now().Sub(old.Checked) < h.o.TagTTL {
		h.o.Metrics.CacheHits.WithLabelValues("oci", "tag").Inc()
		if old.Digest != "" {
			return old.Digest, nil
		}
		return old.Upstream, nil
	}
	h.o.Metrics.CacheMisses.WithLabelValues("oci", "tag").Inc()
	r, err, _ := h.flight.Do("tag\x00"+t.key+":"+tag, func() (any, error) {
		return h.revalidate(context.WithoutCancel(ctx), t, tag, subject, old, found)
	})
	if err != nil {
		return "", err
	}
	return r.(string), nil
}

// revalidate asks upstream where tag points and applies the tag policy.
func (h *Handler) revalidate(ctx context.Context, t target, tag, subject string, old tagState, found bool) (string, error) {
	d, f, err := t.up.headManifest(ctx, t.repo, tag)
	now := h.now().UTC()
	if err != nil {
		re := h.upstreamFailure(t.up, err, "tag "+t.key+":"+tag, codeManifestUnknown)
		if re.status == http.StatusNotFound || old.Digest == "" {
			return "", re
		}
		h.o.Log.Warn("upstream failed; serving the last allowed digest", "repo", t.key, "tag", tag, "digest", old.Digest, "err", err)
		old.Checked = now
		return old.Digest, h.putJSON(ctx, bucketTag, t.key+":"+tag, old)
	}
	if f != nil {
		// No digest in upstream's HEAD answer: the GET brought the bytes.
		if _, err := h.keep(ctx, t, d, f); err != nil {
			return "", err
		}
	}
	if subject != "" {
		if err := h.markMaterial(ctx, t, d, subject); err != nil {
			return "", err
		}
	}
	if !found || d != old.Upstream {
		if err := h.observeTag(ctx, t, tag, d, old.Digest); err != nil {
			return "", err
		}
	}
	moved := old.Moved
	if !found || d != old.Upstream || moved.IsZero() {
		moved = now
	}
	next := tagState{Digest: old.Digest, Upstream: d, Checked: now, Moved: moved}
	serve := d
	switch {
	case old.Digest == d:
	case old.Digest == "" || subject != "":
		// First sight, or material, which moves whenever someone signs
		// again. The digest is decided on its own.
		_, err := h.admit(ctx, t, d)
		switch {
		case err == nil:
			next.Digest = d
		case isCode(err, codeDenied):
			next.Digest = ""
		default:
			return "", err
		}
	default:
		var save bool
		serve, save, err = h.drift(ctx, t, tag, old.Digest, d, moved)
		if !save {
			return serve, err
		}
		next.Digest = serve
		if serve == "" {
			serve = d // held: the caller's admission refuses it
		}
	}
	return serve, h.putJSON(ctx, bucketTag, t.key+":"+tag, next)
}

// drift applies the tag policy to a move from the allowed digest from to
// the new upstream digest to. It returns the digest the tag now serves
// ("" when it follows to a held digest) and whether the outcome is final
// (false when the new digest could not be judged: the old one is served
// and the next request asks again).
func (h *Handler) drift(ctx context.Context, t target, tag, from, to string, moved time.Time) (string, bool, error) {
	f := verify.Finding{
		Check:    checkTagMoved,
		Message:  fmt.Sprintf("tag %s moved upstream from %s to %s", tag, from, to),
		Evidence: map[string]string{"tag": tag, "old": from, "new": to},
	}
	mode := t.pol.Tags
	moveReleased := false
	h.o.Log.Warn("tag moved upstream", "repo", t.key, "tag", tag, "old", from, "new", to, "policy", mode)

	if mode == TagsPin {
		mv := t.moveArtifact(tag, to)
		st, err := h.status(ctx, mv)
		if err != nil {
			return from, false, err
		}
		if !released(st) {
			if st.Quarantine == nil {
				if err := h.hold(ctx, mv, []verify.Finding{f}); !isCode(err, codeDenied) {
					return from, false, err
				}
			}
			return from, true, nil
		}
		// Released by an admin: the move is allowed (no cooldown); the
		// digest still has to pass on its own, as under follow-signed.
		mode, moveReleased = TagsFollowSigned, true
	}
	_, err := h.admit(ctx, t, to)
	switch {
	case err == nil:
		// Admissible; still, a tag follows a move only once the move is
		// a cooldown old (a re-pointed tag is how tj-actions was hit),
		// unless an admin released the new digest.
		st, err := h.status(ctx, t.digestArtifact(to))
		if err != nil {
			return from, false, err
		}
		if !moveReleased && !released(st) && h.moveCooling(t, tag, to, moved) {
			return from, true, nil
		}
		h.o.Log.Info("tag follows upstream", "repo", t.key, "tag", tag, "digest", to, "policy", mode)
		return to, true, nil
	case !isCode(err, codeDenied):
		h.o.Log.Warn("moved tag's new digest could not be judged; serving the old one", "repo", t.key, "tag", tag, "new", to, "err", err)
		return from, false, nil
	}
	// The new digest is held; the move is evidence on its record, whose
	// release lets the tag follow. Under follow the tag goes along and is
	// refused meanwhile; under follow-signed it stays where it was.
	serve := from
	if mode == TagsFollow {
		serve = ""
	}
	return serve, true, h.addFinding(ctx, t.digestArtifact(to), f)
}

// observeTag records a tag → digest observation: the first digest ever
// seen, and for each digest when it was first seen and what it replaced.
func (h *Handler) observeTag(ctx context.Context, t target, tag, d, prev string) error {
	note := "first digest of the tag"
	if prev != "" && prev != d {
		note = checkTagMoved + " from " + prev
	}
	_, _, err := h.o.Meta.Observe(ctx, t.tagArtifact(tag).Key(), map[string]string{"digest": d, "seen " + d: note})
	return err
}

// tagHidden reports whether a listed tag would be refused: blocked as a
// tag, never allowed, or serving a digest now held or blocked.
func (h *Handler) tagHidden(ctx context.Context, t target, tag string) (bool, error) {
	if st, err := h.status(ctx, t.tagArtifact(tag)); err != nil || st.Hidden() {
		return st.Hidden(), err
	}
	var s tagState
	found, err := h.getJSON(ctx, bucketTag, t.key+":"+tag, &s)
	if err != nil || !found {
		return false, err
	}
	d := s.Digest
	if d == "" {
		d = s.Upstream
	}
	st, err := h.status(ctx, t.digestArtifact(d))
	return st.Hidden(), err
}

type cachedTags struct {
	tags    []string
	fetched time.Time
}

// Bounds of an upstream tag list: pages followed and tags kept.
const (
	maxTagPages = 64
	maxTags     = 100_000
	maxLists    = 1024 // repositories whose upstream list is remembered
)

// serveTags answers tags/list from upstream's list, without the tags
// that would be refused, in lexical order, paginated with n and last.
func (h *Handler) serveTags(w http.ResponseWriter, r *http.Request, t target) error {
	q := r.URL.Query()
	n := -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return errorf(http.StatusBadRequest, codePagination, "n=%q must be a non-negative integer", clip(s))
		}
		n = v
	}
	last := q.Get("last")
	all, err := h.upstreamTags(r.Context(), t)
	if err != nil {
		return err
	}
	// One visible tag past n tells whether there is a next page.
	tags := []string{}
	for _, tag := range all {
		if last != "" && tag <= last {
			continue
		}
		if n >= 0 && len(tags) > n {
			break
		}
		hidden, err := h.tagHidden(r.Context(), t, tag)
		if err != nil {
			return err
		}
		if !hidden {
			tags = append(tags, tag)
		}
	}
	if n >= 0 && len(tags) > n {
		tags = tags[:n]
		if n > 0 {
			v := url.Values{"n": {strconv.Itoa(n)}, "last": {tags[n-1]}}
			if ns := q.Get("ns"); ns != "" {
				v.Set("ns", ns)
			}
			w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, t.name, v.Encode()))
		}
	}
	body, err := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{t.name, tags})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

// upstreamTags returns upstream's sorted tag list, fetched at most once
// per TTL, and the last list fetched when upstream fails.
func (h *Handler) upstreamTags(ctx context.Context, t target) ([]string, error) {
	h.listsMu.Lock()
	c, ok := h.lists[t.key]
	h.listsMu.Unlock()
	if ok && h.now().Sub(c.fetched) < h.o.TagTTL {
		return c.tags, nil
	}
	r, err, _ := h.flight.Do("tags\x00"+t.key, func() (any, error) {
		return h.fetchTags(context.WithoutCancel(ctx), t)
	})
	if err != nil {
		re := h.upstreamFailure(t.up, err, "tag list of "+t.key, codeNameUnknown)
		if ok && re.status != http.StatusNotFound {
			h.o.Log.Warn("upstream tag list failed; serving the last one", "repo", t.key, "err", err)
			return c.tags, nil
		}
		return nil, re
	}
	tags := r.([]string)
	h.listsMu.Lock()
	if len(h.lists) >= maxLists {
		for k := range h.lists {
			delete(h.lists, k)
			break
		}
	}
	h.lists[t.key] = cachedTags{tags: tags, fetched: h.now()}
	h.listsMu.Unlock()
	return tags, nil
}

// fetchTags reads every page of upstream's tag list, following its Link
// headers on the same registry.
func (h *Handler) fetchTags(ctx context.Context, t target) ([]string, error) {
	var all []string
	path := "tags/list"
	for page := 0; path != "" && page < maxTagPages && len(all) < maxTags; page++ {
		resp, err := t.up.do(ctx, http.MethodGet, t.repo, path, "application/json")
		if err != nil {
			return nil, err
		}
		next := nextPage(resp, t.repo)
		body, err := readAll(resp, h.o.MaxManifest, "tag list of "+t.key)
		if err != nil {
			return nil, err
		}
		var list struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, errorf(http.StatusBadGateway, codeUnknown, "upstream tag list of %s: %s", t.key, err)
		}
		for _, tag := range list.Tags {
			if tagRE.MatchString(tag) {
				all = append(all, tag)
			}
		}
		path = next
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextPage returns the path below /v2/<repo>/ of the next page that the
// response's Link header names, if it stays on the same repository.
func nextPage(resp *http.Response, repo string) string {
	m := linkNext.FindStringSubmatch(resp.Header.Get("Link"))
	if m == nil {
		return ""
	}
	u, err := resp.Request.URL.Parse(m[1])
	if err != nil || u.Host != resp.Request.URL.Host {
		return ""
	}
	prefix := "/v2/" + repo + "/tags/list"
	if u.Path != prefix {
		return ""
	}
	if u.RawQuery == "" {
		return ""
	}
	return "tags/list?" + u.RawQuery
}

// moveCooling reports whether a tag's move to digest to is within the
// cooldown. Images carry no publish time anyone vouches for, so the
// cooldown counts from when Airlock first saw the tag point there, and
// applies only to moves: an image merely new to Airlock is not young.
// Meanwhile the tag keeps serving its allowed digest.
func (h *Handler) moveCooling(t target, tag, to string, moved time.Time) bool {
	e := h.o.Checks.For(verify.Artifact{Ecosystem: verify.OCI, Name: t.key, Version: tag})
	if h.o.Checks.Mode == "" || e.Cooldown <= 0 || e.FastTrack {
		return false
	}
	until := moved.Add(e.Cooldown)
	if !h.now().Before(until) {
		return false
	}
	f := verify.Finding{Check: policy.CheckCooldown,
		Message:  fmt.Sprintf("tag %s moved to %s at %s, within the %s cooldown (followed from %s)", tag, to, moved.UTC().Format(time.RFC3339), e.Cooldown, until.UTC().Format(time.RFC3339)),
		Evidence: map[string]string{"tag": tag, "new": to, "moved": moved.UTC().Format(time.RFC3339), "until": until.UTC().Format(time.RFC3339), "cooldown": e.Cooldown.String()}}
	if o := e.Decide([]verify.Finding{f}); o.Verdict == verify.Allow {
		h.o.Log.Warn("finding", "repo", t.key, "tag", tag, "check", f.Check, "finding", f.Message, "dry_run", o.DryRun)
		return false
	}
	h.o.Log.Info("tag move within the cooldown: serving the previous digest", "repo", t.key, "tag", tag, "new", to, "until", until.UTC().Format(time.RFC3339))
	return true
}

// ciCheck holds the digest a tag of a namespace the policy declares built
// by the organisation's CI resolves to, unless CI recorded that digest for
// the tag. Pulls by digest are not checked: records name tags.
func (h *Handler) ciCheck(ctx context.Context, t target, tag, d string) error {
	tagged := verify.Artifact{Ecosystem: verify.OCI, Name: t.key, Version: tag}
	e := h.o.Checks.For(tagged)
	if h.o.Checks.Mode == "" || !e.CI || materialTag.MatchString(tag) {
		return nil
	}
	a := t.digestArtifact(d)
	st, err := h.status(ctx, a)
	if err != nil || released(st) {
		return err
	}
	if st.Hidden() {
		return refusal(a, st)
	}
	f, err := h.o.CI(ctx, tagged, d)
	if err != nil {
		f = &verify.Finding{Check: policy.CheckCIDigest, Message: "the CI records could not be read: " + err.Error()}
	}
	if f == nil {
		return nil
	}
	if o := e.Decide([]verify.Finding{*f}); o.Verdict == verify.Allow {
		h.o.Log.Warn("finding", "artifact", a.String(), "check", f.Check, "finding", f.Message, "dry_run", o.DryRun)
		return nil
	}
	return h.hold(ctx, a, []verify.Finding{*f})
}
