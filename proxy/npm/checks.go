package npm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/npm/packument"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/npmprov"
	"github.com/airlock-proxy/airlock/verify/npmsig"
)

// facts are the observation fields read from the packument: what the
// anomaly checks compare across versions.
func facts(pk *packument.Packument, v *packument.Version, published time.Time, hasTime bool) map[string]string {
	f := map[string]string{}
	if hasTime {
		f[fieldPublished] = published.UTC().Format(time.RFC3339Nano)
	}
	if v.NpmUser != nil {
		f[fieldPublisher] = v.NpmUser.Name
		if len(v.NpmUser.TrustedPublisher) > 0 {
			f[fieldTrusted] = string(v.NpmUser.TrustedPublisher)
		}
	}
	var ms []string
	for _, m := range v.Maintainers {
		ms = append(ms, m.Name)
	}
	slices.Sort(ms)
	f[fieldMaintainers] = strings.Join(ms, ",")
	var scripts []string
	for k := range v.InstallScripts() {
		scripts = append(scripts, k)
	}
	if v.Gypfile {
		scripts = append(scripts, "gypfile")
	}
	slices.Sort(scripts)
	f[fieldScripts] = strings.Join(scripts, ",")
	deps, _ := json.Marshal(v.Dependencies) // sorted keys
	f[fieldDeps] = string(deps)
	return f
}

// checkSignatures verifies dist.signatures with the registry keys. It
// returns the verified keyids for the record and the findings.
func (h *Handler) checkSignatures(ctx context.Context, a verify.Artifact, v *packument.Version, published time.Time) (string, []verify.Finding, error) {
	keys, signs, err := h.registryKeys(ctx)
	if err != nil {
		return "", nil, err
	}
	if !signs {
		return "", nil, nil
	}
	sigs := make([]npmsig.Signature, len(v.Dist.Signatures))
	for i, s := range v.Dist.Signatures {
		sigs[i] = npmsig.Signature{KeyID: s.KeyID, Sig: s.Sig}
	}
	res, err := keys.Verify(a.Name, a.Version, v.Dist.Integrity, sigs, published, npmsig.Options{UpstreamSigns: true})
	if err != nil && !errors.Is(err, npmsig.ErrSignature) {
		return "", nil, err
	}
	result := "pass"
	if len(res.Findings) > 0 {
		result = "fail"
	}
	h.o.Metrics.Verifications.WithLabelValues("npm", npmsig.CheckSignature, result).Inc()
	return strings.Join(res.Verified, ","), res.Findings, nil
}

// checkProvenance verifies the version's attestations when it has any, or
// when policy requires them, and returns findings and the facts they give.
func (h *Handler) checkProvenance(ctx context.Context, a verify.Artifact, v *packument.Version, sha512 []byte, published time.Time) ([]verify.Finding, map[string]string, error) {
	pol := h.o.Policy(a.Name)
	fields := map[string]string{fieldProvenance: "none"}
	if !v.HasProvenance() {
		if pol.RequireProvenance {
			return []verify.Finding{{Check: checkProvenance, Message: "policy requires provenance and this version has none",
				Evidence: map[string]string{"policy": "provenance: required"}}}, fields, nil
		}
		return nil, fields, nil
	}
	keys, _, err := h.registryKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	doc, err := h.attestations(ctx, a, v)
	if err != nil {
		return nil, nil, err
	}
	if doc == nil {
		h.o.Metrics.Verifications.WithLabelValues("npm", checkProvenance, "fail").Inc()
		return []verify.Finding{{Check: checkProvenance, Message: "dist.attestations is set but upstream has no attestations for this version"}}, fields, nil
	}
	d, err := h.storeAttestations(ctx, doc)
	if err != nil {
		return nil, nil, err
	}
	fields[fieldAttestations] = d
	res, err := npmprov.New(h.o.TrustedRoot, keys).Verify(ctx, a.Name, a.Version, sha512, doc, published)
	if err != nil {
		h.o.Metrics.Verifications.WithLabelValues("npm", checkProvenance, "fail").Inc()
		return []verify.Finding{{Check: checkProvenance, Message: "the attestations document does not decode: " + oneLine(err.Error())}}, fields, nil
	}
	findings := res.Findings
	if p := res.Provenance; p != nil {
		fields[fieldProvenance] = p.PredicateType
		fields[fieldRepo], fields[fieldWorkflow], fields[fieldRef] = p.SourceRepository, p.Workflow, p.Ref
		fields[fieldCommit], fields[fieldBuilder], fields[fieldIssuer] = p.Commit, p.Builder, p.Issuer
		if pol.SourceRepository != "" && !npmprov.MatchRepository(pol.SourceRepository, p.SourceRepository) {
			findings = append(findings, verify.Finding{Check: checkSource,
				Message:  fmt.Sprintf("provenance says it was built from %s, policy requires %s", p.SourceRepository, pol.SourceRepository),
				Evidence: map[string]string{"want": pol.SourceRepository, "got": p.SourceRepository, "workflow": p.Workflow, "ref": p.Ref}})
		}
	} else if pol.RequireProvenance && len(findings) == 0 {
		findings = append(findings, verify.Finding{Check: checkProvenance, Message: "policy requires provenance and no SLSA provenance attestation verified"})
	}
	result := "pass"
	if len(findings) > 0 {
		result = "fail"
	}
	h.o.Metrics.Verifications.WithLabelValues("npm", checkProvenance, result).Inc()
	return findings, fields, nil
}

// attestations fetches a version's attestations document from upstream;
// nil when upstream has none.
func (h *Handler) attestations(ctx context.Context, a verify.Artifact, v *packument.Version) ([]byte, error) {
	var named struct {
		URL string `json:"url"`
	}
	_ = json.Unmarshal(v.Dist.Attestations, &named)
	u := h.upstreamURL(named.URL, "/-/npm/v1/attestations/"+escapeName(a.Name)+"@"+a.Version)
	doc, err := h.get(ctx, u, npmprov.MaxAttestationsSize)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return nil, nil // advertised but absent: a finding
		}
		return nil, unavailable(err)
	}
	return doc, nil
}

// storeAttestations keeps the verified document, so clients asking for
// it later (npm audit signatures) get the very bytes Airlock checked.
func (h *Handler) storeAttestations(ctx context.Context, doc []byte) (string, error) {
	s, err := h.o.Blobs.Stage(ctx)
	if err != nil {
		return "", err
	}
	defer s.Discard()
	if _, err := s.Write(doc); err != nil {
		return "", err
	}
	if err := s.Commit(ctx, s.Digest()); err != nil {
		return "", err
	}
	return s.Digest(), nil
}

// bucketKeys holds the upstream's signing keys pinned on first use.
const bucketKeys = "npm-keys"

type pinnedKeys struct {
	keys npmsig.Keys
	doc  []byte
}

// registryKeys returns the keys versions are checked with and whether the
// upstream signs at all.
func (h *Handler) registryKeys(ctx context.Context) (npmsig.Keys, bool, error) {
	switch h.o.KeyMode {
	case KeysNone:
		return npmsig.Keys{}, false, nil
	case KeysStatic:
		return h.o.Keys, h.o.Keys.Len() > 0, nil
	}
	p, err := h.pinned(ctx)
	if err != nil {
		return npmsig.Keys{}, false, err
	}
	if p == nil {
		return npmsig.Keys{}, false, nil
	}
	return p.keys, p.keys.Len() > 0, nil
}

// pinned returns the upstream's keys as first seen, fetching and pinning
// them on first use. nil (no error) when the upstream publishes no keys:
// it does not sign, and that is asked again later rather than pinned.
func (h *Handler) pinned(ctx context.Context) (*pinnedKeys, error) {
	h.keysMu.Lock()
	defer h.keysMu.Unlock()
	if h.keys != nil {
		return h.keys, nil
	}
	doc, err := h.o.Meta.Get(ctx, bucketKeys, "pinned")
	if errors.Is(err, cache.ErrNotFound) {
		doc, err = h.get(ctx, h.o.Upstream+"/-/npm/v1/keys", npmsig.MaxKeysSize)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, unavailable(fmt.Errorf("fetching the upstream's signing keys: %w", err))
		}
		if _, err := npmsig.ParseKeys(doc); err != nil {
			return nil, errorf(http.StatusBadGateway, "airlock: the upstream's signing keys do not parse: %s", oneLine(err.Error()))
		}
		if err := h.o.Meta.CompareAndSwap(ctx, bucketKeys, "pinned", nil, doc); err != nil && !errors.Is(err, cache.ErrConflict) {
			return nil, err
		}
		if doc, err = h.o.Meta.Get(ctx, bucketKeys, "pinned"); err != nil {
			return nil, err
		}
		h.o.Log.Info("pinned the upstream's npm signing keys", "upstream", h.o.Upstream)
	} else if err != nil {
		return nil, err
	}
	keys, err := npmsig.ParseKeys(doc)
	if err != nil {
		return nil, fmt.Errorf("pinned npm keys: %w", err)
	}
	h.keys = &pinnedKeys{keys: keys, doc: doc}
	return h.keys, nil
}
