package cosign

import (
	"context"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/verify/cosign/cosigntest"
	"github.com/google/go-containerregistry/pkg/name"
)

// The signatures cosigntest makes for other packages' tests (e2e) are what
// the verifier accepts, or rejects for the reason each option stands for.
func TestCosigntestSignatures(t *testing.T) {
	fs, stranger := cosigntest.New(t), cosigntest.New(t)
	p, err := NewPolicy(PolicyConfig{Identities: []Identity{{Subject: ghSubject, Issuer: ghIssuer}}}, mustLoad(t, writeRoot(t, fs)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		sign     func(t *testing.T, d name.Digest)
		verified bool
		format   string
		evidence string // substring of sig.1 when not verified
	}{
		{"legacy", func(t *testing.T, d name.Digest) { fs.Issue(t, ghSubject, ghIssuer).SignLegacy(t, d) }, true, FormatLegacyTag, ""},
		{"bundle", func(t *testing.T, d name.Digest) { fs.Issue(t, ghSubject, ghIssuer).SignBundle(t, d) }, true, FormatBundleReferrer, ""},
		{"legacy without SCT", func(t *testing.T, d name.Digest) {
			fs.Issue(t, ghSubject, ghIssuer, cosigntest.WithoutSCT()).SignLegacy(t, d)
		}, false, "", "SCT"},
		{"bundle without tlog", func(t *testing.T, d name.Digest) {
			fs.Issue(t, ghSubject, ghIssuer).SignBundle(t, d, cosigntest.WithoutTlog())
		}, false, "", "transparency log"},
		{"legacy without tlog", func(t *testing.T, d name.Digest) {
			// cosign's words for a certificate signature without a Rekor bundle.
			fs.Issue(t, ghSubject, ghIssuer).SignLegacy(t, d, cosigntest.WithoutTlog())
		}, false, "", "offline verification failed"},
		{"another CA, trusted log", func(t *testing.T, d name.Digest) {
			stranger.Issue(t, ghSubject, ghIssuer).SignLegacy(t, d, cosigntest.LoggedBy(fs))
		}, false, "", "certificate"},
		{"another subject", func(t *testing.T, d name.Digest) {
			fs.Issue(t, "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main", ghIssuer).SignLegacy(t, d)
		}, false, "", "evil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := newRegistry(t, true)
			d := reg.push(t, "acme/app")
			tt.sign(t, d)
			res, err := New(Options{}).Verify(context.Background(), d, p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified != tt.verified {
				t.Fatalf("Verified = %v, want %v: %+v", res.Verified, tt.verified, res)
			}
			if tt.verified {
				s := res.Signatures[0]
				if s.Format != tt.format || s.Subject != ghSubject || s.Issuer != ghIssuer || s.TlogTime.IsZero() {
					t.Errorf("signature %+v, want format %s, subject %s, issuer %s, a tlog time", s, tt.format, ghSubject, ghIssuer)
				}
				return
			}
			if len(res.Findings) != 1 || !strings.Contains(res.Findings[0].Evidence["sig.1"], tt.evidence) {
				t.Errorf("findings %+v, want sig.1 to mention %q", res.Findings, tt.evidence)
			}
		})
	}
}
