package anomaly

import (
	"fmt"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

// LatestBackwards finds dist-tags.latest pointing at release i while a
// higher release, not a prerelease, was published before it: a lower
// version published later took "latest" from a higher one. npm's own
// client refuses to do that implicitly, so it takes an explicit tag or a
// raw registry call, which is how a stolen token can make every
// unpinned install take a version of the attacker's choosing. Moving
// latest back to an older release (a rollback) is not this: the release
// it points at was published before the higher one. h is in version
// order, as built for the other checks.
func LatestBackwards(h History, i int) *verify.Finding {
	r := h[i]
	if r.Published.IsZero() {
		return nil
	}
	for j := len(h) - 1; j > i; j-- {
		p := h[j]
		if p.Prerelease || p.Published.IsZero() || !p.Published.Before(r.Published) {
			continue
		}
		return &verify.Finding{Check: "content-changed",
			Message: fmt.Sprintf("dist-tags.latest moved backwards: it names %s, published after the higher %s", r.Version, p.Version),
			Evidence: map[string]string{"latest": r.Version, "higher": p.Version,
				"published": r.Published.UTC().Format(time.RFC3339), "higher_published": p.Published.UTC().Format(time.RFC3339)}}
	}
	return nil
}
