package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The OCI distribution-spec conformance suite, built by `make tools` at two
// pinned pseudo-versions of github.com/opencontainers/distribution-spec/conformance.
const (
	conformanceV11      = "conformance-v0.0.0-20231101194043-f2182352d4cc.test" // the v1.1 suite (ginkgo)
	conformanceRedesign = "conformance-v0.0.0-20260831232431-97274622c111.test" // the redesign
)

// TestOCIConformance runs both suites, pull only, against Airlock in front
// of an upstream holding one OCI image manifest signed with the trusted key
// (legacy .sig tag and bundle referrer), under require: signature. The
// suites push nothing; every request they make goes to Airlock.
func TestOCIConformance(t *testing.T) {
	v11, redesign := tool(t, conformanceV11), tool(t, conformanceRedesign)
	up := newOCIUpstream(t)
	key := newCosign(t)
	img := ociImage(t)
	up.push(t, "conformance/app:v1", img)
	d := digestOf(t, img)
	key.sign(t, up.Host+"/conformance/app@"+d, false)
	key.sign(t, up.Host+"/conformance/app@"+d, true)
	inst := ociAirlock(t, up, fmt.Sprintf(`    - {match: "up/conformance/**", require: signature, keys: [%q], ignore_tlog: true}
`, key.Pub))

	// Airlock serves a blob only once a manifest referencing it was
	// admitted, as a client pulls: manifest first. The signature is
	// reached the way cosign reaches it, through its tag.
	sigTag := strings.Replace(d, ":", "-", 1) + ".sig"
	var sig v1.Manifest
	var sigDigest string
	for _, ref := range []string{"v1", sigTag} {
		resp, body := inst.do(t, http.MethodGet, "/v2/up/conformance/app/manifests/"+ref, "Accept", manifestAccept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET manifest %s through Airlock: %d %s", ref, resp.StatusCode, body)
		}
		if ref == sigTag {
			sigDigest = resp.Header.Get("Docker-Content-Digest")
			if err := json.Unmarshal(body, &sig); err != nil {
				t.Fatalf("signature manifest: %v\n%s", err, body)
			}
		} else if got := resp.Header.Get("Docker-Content-Digest"); got != d {
			t.Fatalf("manifest v1 is %s, want %s", got, d)
		}
	}
	layers := layerDigests(t, img)

	t.Run("v1.1", func(t *testing.T) {
		report := t.TempDir()
		out, err := runSuite(t, v11, report, []string{"-test.v", "-ginkgo.no-color"},
			"OCI_ROOT_URL="+inst.URL,
			"OCI_NAMESPACE=up/conformance/app",
			"OCI_TEST_PULL=1",
			"OCI_TAG_NAME=v1",
			"OCI_MANIFEST_DIGEST="+d,
			"OCI_BLOB_DIGEST="+layers[0],
			"OCI_HIDE_SKIPPED_WORKFLOWS=0",
			"OCI_DEBUG=0",
			"OCI_REPORT_DIR="+report,
		)
		if err != nil {
			t.Errorf("conformance v1.1 (pull) against Airlock failed: %v\n%s\n%s", err, junitFailures(t, filepath.Join(report, "junit.xml")), tail(out, 60))
		}
		if m := regexp.MustCompile(`(\d+) Passed`).FindStringSubmatch(out); m == nil || m[1] == "0" {
			t.Errorf("conformance v1.1 ran no spec:\n%s", tail(out, 60))
		}
	})

	t.Run("redesign", func(t *testing.T) {
		blobs := append([]string{configDigest(t, img)}, layers...)
		blobs = append(blobs, sig.Config.Digest.String())
		for _, l := range sig.Layers {
			blobs = append(blobs, l.Digest.String())
		}
		env := []string{
			"OCI_REGISTRY=" + inst.host(),
			"OCI_TLS=disabled",
			"OCI_REPO1=up/conformance/app",
			"OCI_REPO2=up/conformance/other",
			"OCI_API_PUSH=false",
			"OCI_RO_DATA_TAGS=v1 " + sigTag,
			"OCI_RO_DATA_MANIFESTS=" + d + " " + sigDigest,
			"OCI_RO_DATA_BLOBS=" + strings.Join(blobs, " "),
			"OCI_RO_DATA_REFERRERS=" + d,
			"OCI_LOG=warn",
		}
		// One run per branch of the suite's tree that pulls. The branches
		// left out ("sha256 blobs", "sha512 blobs") test blob push APIs
		// only, all disabled under OCI_API_PUSH=false; running them makes
		// this version of the suite mark a data set it never created, and
		// its results.yaml writer then dereferences nil (run.go:818)
		// after printing a passing result, so the process fails whatever
		// the registry does.
		for _, branch := range []string{"ping", "empty", "read-only", "missing-manifest", "invalid-digest-format"} {
			results := t.TempDir()
			out, err := runSuite(t, redesign, results, []string{"-test.v"},
				append(env, "OCI_RESULTS_DIR="+results, "OCI_FILTER_TEST=OCI Conformance Test/"+branch)...)
			if err != nil || !strings.Contains(out, "OCI Conformance Result: Pass") {
				t.Errorf("conformance (redesign, pull only, %s) against Airlock failed: %v\n%s\n%s", branch, err, junitFailures(t, filepath.Join(results, "junit.xml")), tail(out, 200))
			} else if !regexp.MustCompile(`Pass\.+: +[1-9]`).MatchString(out) {
				t.Errorf("conformance (redesign, %s) passed no test:\n%s", branch, tail(out, 80))
			}
		}
	})
}

// runSuite runs a conformance test binary in dir with only the given
// OCI_* variables set.
func runSuite(t *testing.T, bin, dir string, args []string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCI_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// junitFailures renders the failed test cases of a JUnit report (either
// suite's) with their messages and the requests and responses they logged.
func junitFailures(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no JUnit report: " + err.Error() + ")"
	}
	type result struct {
		Message string `xml:"message,attr"`
		Data    string `xml:",chardata"`
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name      string  `xml:"name,attr"`
				Status    string  `xml:"status,attr"`
				Failure   *result `xml:"failure"`
				Error     *result `xml:"error"`
				SystemOut string  `xml:"system-out"`
				SystemErr string  `xml:"system-err"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return "(unreadable JUnit report: " + err.Error() + ")"
	}
	var sb strings.Builder
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			r := c.Failure
			if r == nil {
				r = c.Error
			}
			if r == nil && c.Status != "failure" && c.Status != "failed" && c.Status != "error" {
				continue
			}
			fmt.Fprintf(&sb, "FAILED %s (%s)\n", c.Name, c.Status)
			if r != nil {
				fmt.Fprintf(&sb, "  %s\n%s\n", r.Message, clipText(r.Data, 2000))
			}
			fmt.Fprintf(&sb, "%s\n%s\n", clipText(c.SystemOut, 2000), clipText(c.SystemErr, 4000))
		}
	}
	if sb.Len() == 0 {
		return "(no failed test case in the JUnit report)"
	}
	return sb.String()
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
