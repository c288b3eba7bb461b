package npmtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// tufHost is the Sigstore TUF repository npm consults for registry keys.
const tufHost = "tuf-repo-cdn.sigstore.dev"

// TUF stands in for the Sigstore TUF repository, because `npm audit
// signatures` asks it for "<registry host>/keys.json" before the
// registry's /-/npm/v1/keys, and only falls back to the registry when the
// repository answers that it has no such target: a network error aborts
// the audit. Offline, the repository cannot be reached, and its real root
// of trust cannot be impersonated. So the fake is a repository of its own
// with no targets, reached through an HTTPS proxy (npm's TUF client
// honours https_proxy) with a certificate from a CA given to node in
// NODE_EXTRA_CA_CERTS, and trusted because its root.json is planted in
// npm's TUF cache, which npm seeds only when it finds none.
type TUF struct {
	ProxyURL string // for https_proxy
	CAFile   string // for NODE_EXTRA_CA_CERTS
	root     []byte

	mu       sync.Mutex
	requests []string
}

func StartTUF(t testing.TB) *TUF {
	t.Helper()
	f := &TUF{}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "npmtest fake TUF CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: tufHost},
		DNSNames:     []string{tufHost},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	f.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}

	docs := tufRepo(t, now.Add(24*time.Hour))
	f.root = docs["root.json"]
	repo := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" https://"+r.Host+r.URL.Path)
		f.mu.Unlock()
		// 2.root.json answers 404: there is no newer root, as TUF asks.
		doc, ok := docs[r.URL.Path[1:]]
		if !ok || r.URL.Path == "/root.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	repo.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	repo.StartTLS()
	t.Cleanup(repo.Close)

	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.Host)
		f.mu.Unlock()
		// Tunnel only to the fake repository: anything else npm tries to
		// reach through the proxy fails at once rather than leak out.
		if r.Method != http.MethodConnect || r.Host != tufHost+":443" {
			http.Error(w, "npmtest: proxy only tunnels to "+tufHost, http.StatusForbidden)
			return
		}
		dst, err := net.Dial("tcp", repo.Listener.Addr().String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			dst.Close()
			return
		}
		tunnel(conn, brw.Reader, dst)
	}))
	t.Cleanup(proxy.Close)
	f.ProxyURL = proxy.URL
	return f
}

// tunnel answers CONNECT on conn and copies bytes both ways until either
// side closes.
func tunnel(conn net.Conn, r *bufio.Reader, dst net.Conn) {
	defer conn.Close()
	defer dst.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(dst, r)
		dst.Close()
		close(done)
	}()
	io.Copy(conn, dst)
	conn.Close()
	<-done
}

// Plant writes the fake repository's root into the TUF cache under the
// npm cache directory, where npm's TUF client looks before seeding the
// real Sigstore root.
func (f *TUF) Plant(t testing.TB, npmCache string) {
	t.Helper()
	dir := filepath.Join(npmCache, "_tuf", tufHost)
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.json"), f.root, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Env is what the npm client's environment needs to reach the fake
// repository: a proxy for everything but 127.0.0.1 (which refuses every
// host but the repository's, so nothing reaches the network) and its CA.
func (f *TUF) Env() []string {
	return []string{
		"https_proxy=" + f.ProxyURL,
		"http_proxy=" + f.ProxyURL,
		"no_proxy=127.0.0.1",
		"npm_config_noproxy=127.0.0.1",
		"NODE_EXTRA_CA_CERTS=" + f.CAFile,
	}
}

// Requests lists what reached the proxy and the repository, for logs.
func (f *TUF) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// tufRepo builds a one-key TUF repository without targets: root,
// timestamp, snapshot and targets metadata, valid until expires.
func tufRepo(t testing.TB, expires time.Time) map[string][]byte {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]any{"keytype": "ed25519", "scheme": "ed25519", "keyval": map[string]any{"public": hex.EncodeToString(pub)}}
	id := sha256.Sum256(canonical(t, key))
	keyid := hex.EncodeToString(id[:])
	role := map[string]any{"keyids": []string{keyid}, "threshold": 1}
	exp := expires.UTC().Format("2006-01-02T15:04:05Z")
	meta := func(typ string, extra map[string]any) []byte {
		signed := map[string]any{"_type": typ, "spec_version": "1.0.31", "version": 1, "expires": exp}
		for k, v := range extra {
			signed[k] = v
		}
		sig := ed25519.Sign(priv, canonical(t, signed))
		return canonical(t, map[string]any{
			"signed":     signed,
			"signatures": []map[string]any{{"keyid": keyid, "sig": hex.EncodeToString(sig)}},
		})
	}
	return map[string][]byte{
		"root.json": meta("root", map[string]any{
			"consistent_snapshot": false,
			"keys":                map[string]any{keyid: key},
			"roles":               map[string]any{"root": role, "timestamp": role, "snapshot": role, "targets": role},
		}),
		"timestamp.json": meta("timestamp", map[string]any{"meta": map[string]any{"snapshot.json": map[string]any{"version": 1}}}),
		"snapshot.json":  meta("snapshot", map[string]any{"meta": map[string]any{"targets.json": map[string]any{"version": 1}}}),
		"targets.json":   meta("targets", map[string]any{"targets": map[string]any{}}),
	}
}

// canonical is TUF's canonical JSON for the plain ASCII documents above:
// sorted keys, no insignificant space, no HTML escaping.
func canonical(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
