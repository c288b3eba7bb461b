package npmsig

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func FuzzParseIntegrity(f *testing.F) {
	for _, s := range []string{
		"sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==",
		"sha1-C+7Hb8Aw7ljKdaBaaGVR6Ft0Ufw= sha512-AAAA",
		"md5-x sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=?opt",
		"", "sha512-", "-", "sha512--",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := ParseIntegrity(s)
		if err != nil {
			return
		}
		if len(in.Hashes) == 0 || in.Algorithm() == "" {
			t.Fatalf("%q parsed to %+v", s, in)
		}
		for _, h := range in.Hashes {
			if len(h.Digest) != algoSize[h.Algorithm] {
				t.Fatalf("%q: %s digest of %d bytes", s, h.Algorithm, len(h.Digest))
			}
		}
		again, err := ParseIntegrity(in.String())
		if err != nil || again.String() != in.String() {
			t.Fatalf("%q: round trip %q: %v", s, in.String(), err)
		}
		// Checking arbitrary data against it must not panic.
		CheckTarball(strings.NewReader(s), s, "")
	})
}

func FuzzParseKeys(f *testing.F) {
	f.Add(DefaultKeysJSON())
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"keytype":"x"}]}`))
	f.Add([]byte(`{"keys":[{"expires":"2025-01-29T00:00:00.000Z","keyid":"k","keytype":"ecdsa-sha2-nistp256","scheme":"ecdsa-sha2-nistp256","key":""}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseKeys(data)
		if err != nil {
			return
		}
		for _, id := range ks.IDs() {
			k, ok := ks.Lookup(id)
			if !ok || k.Public == nil || k.KeyID != id {
				t.Fatalf("key %q: %+v", id, k)
			}
		}
		r, err := ks.Verify("a", "1.0.0", "sha512-x", []Signature{{KeyID: "k", Sig: string(data)}}, time.Unix(0, 0), Options{UpstreamSigns: true})
		if len(r.Verified) != 0 || err == nil {
			t.Fatalf("junk signature verified: %+v", r)
		}
	})
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"express", "@types/node", "JSONStream", "..", "@scope", "a\\b", "@a/b/c", "_x", ".x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		// An accepted name is path-safe: no element is "", "." or "..",
		// no backslash, control, space or non-ASCII byte, at most one slash.
		if len(name) > MaxNameLength || strings.Count(name, "/") > 1 {
			t.Fatalf("accepted %q", name)
		}
		for _, el := range strings.Split(name, "/") {
			if el == "" || el == "." || el == ".." || strings.HasPrefix(el, ".") {
				t.Fatalf("accepted %q", name)
			}
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '%' {
				t.Fatalf("accepted %q", name)
			}
		}
		scope, bare := SplitScoped(name)
		if (scope != "") != strings.HasPrefix(name, "@") || bare == "" {
			t.Fatalf("accepted %q: split %q %q", name, scope, bare)
		}
	})
}

func FuzzCheckVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "1.0.0-alpha.1+build.5", "v1.2.3", "01.2.3", "1.2", "1.2.3-", "1.0.0-0A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if CheckVersion(v) != nil {
			return
		}
		if len(v) > maxVersionLength || v[0] < '0' || v[0] > '9' {
			t.Fatalf("accepted %q", v)
		}
		if bytes.ContainsAny([]byte(v), "/\\ \x00") || strings.Contains(v, "..") {
			t.Fatalf("accepted %q", v)
		}
		core, _, _ := strings.Cut(v, "+")
		core, _, _ = strings.Cut(core, "-")
		if strings.Count(core, ".") != 2 {
			t.Fatalf("accepted %q", v)
		}
	})
}
