package npm

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
)

// bucketPublishers maps an npm publisher to the releases of any package
// Airlock saw them make recently (anomaly.PublishLog, JSON): what the
// burst check compares across packages.
const bucketPublishers = "npm-publishers"

// Bounds on the publisher log: a release older than the review window is
// not judged by the history checks, so it need not be remembered, and an
// account that publishes hundreds of packages keeps its newest.
const (
	publishKeep = 30 * 24 * time.Hour
	publishMax  = 256
	maxUserName = 214 // npm's limit on names
	// publishRecent is how recent a release must be to be logged: a burst
	// matters while its releases are young, and most packuments have
	// none that recent, so most fetches write nothing.
	publishRecent = 7 * 24 * time.Hour
)

// recordPublishes adds the recent releases of a packument to their
// publishers' logs. Releases made through trusted publishing are left
// out: their _npmUser is the CI's shared identity ("GitHub Actions"),
// not an account, and a per-package OIDC configuration is not a stolen
// token. A failure costs only the signal, so it is logged.
func (h *Handler) recordPublishes(ctx context.Context, d *doc) {
	now := h.o.Now()
	by := map[string][]anomaly.Publish{}
	for _, r := range d.history() {
		if r.Publisher == "" || r.TrustedPublisher != "" || len(r.Publisher) > maxUserName || r.Published.IsZero() || now.Sub(r.Published) > publishRecent {
			continue
		}
		by[r.Publisher] = append(by[r.Publisher], anomaly.Publish{Package: d.name, Version: r.Version, Published: r.Published})
	}
	for user, ps := range by {
		if err := h.addPublishes(ctx, user, ps, now); err != nil {
			h.o.Log.Warn("recording publisher activity", "publisher", user, "package", d.name, "err", err)
		}
	}
}

func (h *Handler) addPublishes(ctx context.Context, user string, ps []anomaly.Publish, now time.Time) error {
	return h.o.Meta.Update(ctx, bucketPublishers, []string{user}, func(_ string, old []byte) ([]byte, bool, error) {
		log, changed := h.decodePublishLog(user, old).Add(ps, now, publishKeep, publishMax)
		if !changed {
			return nil, false, nil
		}
		raw, err := json.Marshal(log)
		return raw, true, err
	})
}

// publishLog returns a publisher's log.
func (h *Handler) publishLog(ctx context.Context, user string) (anomaly.PublishLog, error) {
	raw, err := h.o.Meta.Get(ctx, bucketPublishers, user)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return h.decodePublishLog(user, raw), nil
}

// decodePublishLog decodes a stored log (nil: none). A corrupt log is
// replaced: it only feeds a scoring signal.
func (h *Handler) decodePublishLog(user string, raw []byte) anomaly.PublishLog {
	if raw == nil {
		return nil
	}
	var log anomaly.PublishLog
	if err := json.Unmarshal(raw, &log); err != nil {
		h.o.Log.Warn("unreadable publisher log; starting it again", "publisher", user, "err", err)
		return nil
	}
	return log
}

// burstAcross runs anomaly.BurstAcross on a release with its publisher's
// log.
func (h *Handler) burstAcross(ctx context.Context, pkg string, r anomaly.Release) *verify.Finding {
	if r.Publisher == "" || r.TrustedPublisher != "" || len(r.Publisher) > maxUserName {
		return nil
	}
	log, err := h.publishLog(ctx, r.Publisher)
	if err != nil {
		h.o.Log.Warn("reading publisher activity", "publisher", r.Publisher, "err", err)
		return nil
	}
	return anomaly.BurstAcross(pkg, r, log)
}
