package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestOCIMirrorPinAndRateLimit drives what the unit tests cover through the
// binary and crane: the Docker Hub mirror mode (unprefixed names, library/
// for single names, containerd's ?ns=), a pinned tag that does not follow a
// move until an admin releases it, and an upstream's 429 passed on with
// Retry-After and held off.
func TestOCIMirrorPinAndRateLimit(t *testing.T) {
	up := newOCIUpstream(t)
	alpine, a, b := randomImage(t, 1024, "amd64"), randomImage(t, 1024, "amd64"), randomImage(t, 1024, "amd64")
	up.push(t, "library/alpine:3.20", alpine)
	up.push(t, "acme/app:1", a)
	inst := startAirlock(t, fmt.Sprintf(`
oci:
  upstreams: [{name: up, url: "http://%s", mirror: true, hosts: [docker.test]}]
  tag_ttl: 0s
  timeout: 30s
  policies:
    - match: "up/acme/**"
      require: none
      tags: pin
    - match: "**"
      require: none
`, up.Host))

	// Mirror: dockerd's spelling, a single name.
	if d, err := craneDigest(t, inst.host()+"/alpine:3.20"); err != nil || d != digestOf(t, alpine) {
		t.Errorf("mirror alpine:3.20 = %q (%v), want %s", d, err, digestOf(t, alpine))
	}
	// containerd: the upstream named by ?ns=.
	resp, _ := inst.do(t, "GET", "/v2/library/alpine/manifests/3.20?ns=docker.test", "Accept", manifestAccept)
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != digestOf(t, alpine) {
		t.Errorf("?ns=docker.test = %d %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
	}

	// Pin: the tag stays until the move is released.
	ref := inst.host() + "/up/acme/app:1"
	if d, err := craneDigest(t, ref); err != nil || d != digestOf(t, a) {
		t.Fatalf("before the move = %q (%v)", d, err)
	}
	up.push(t, "acme/app:1", b)
	if d, err := craneDigest(t, ref); err != nil || d != digestOf(t, a) {
		t.Errorf("pinned tag after the move = %q (%v), want %s", d, err, digestOf(t, a))
	}
	out, _ := inst.cli(t, "quarantine", "list")
	var id string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "oci:up/acme/app:1@"+digestOf(t, b)) {
			id = strings.Fields(line)[0]
		}
	}
	if id == "" {
		t.Fatalf("no record of the held move:\n%s", out)
	}
	if out, err := inst.cli(t, "quarantine", "release", id, "--reason", "planned release"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	if d, err := craneDigest(t, ref); err != nil || d != digestOf(t, b) {
		t.Errorf("pinned tag after the release = %q (%v), want %s", d, err, digestOf(t, b))
	}

	// 429: passed on with Retry-After, and upstream is left alone meanwhile.
	up.mu.Lock()
	up.throttle = "/v2/library/busybox/"
	up.mu.Unlock()
	resp, body := inst.do(t, "GET", "/v2/up/library/busybox/manifests/1", "Accept", manifestAccept)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "TOOMANYREQUESTS") {
		t.Errorf("throttled upstream = %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	before := up.requests("", "/v2/library/busybox/")
	resp, _ = inst.do(t, "GET", "/v2/up/library/busybox/manifests/1", "Accept", manifestAccept)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second request while held off = %d", resp.StatusCode)
	}
	if after := up.requests("", "/v2/library/busybox/"); after != before {
		t.Errorf("upstream asked %d more times while it said to wait", after-before)
	}
}
