package npmsig

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func sri(algo string, d []byte) string { return algo + "-" + base64.StdEncoding.EncodeToString(d) }

func TestParseIntegrity(t *testing.T) {
	s512 := sha512.Sum512([]byte("x"))
	s1 := sha1.Sum([]byte("x"))
	tests := []struct {
		in    string
		algos []string
		best  string
		err   bool
	}{
		{in: sri("sha512", s512[:]), algos: []string{"sha512"}, best: "sha512"},
		{in: sri("sha1", s1[:]), algos: []string{"sha1"}, best: "sha1"},
		{in: sri("sha1", s1[:]) + " " + sri("sha512", s512[:]), algos: []string{"sha1", "sha512"}, best: "sha512"},
		{in: "  " + sri("sha512", s512[:]) + "\t\n", algos: []string{"sha512"}, best: "sha512"},
		{in: sri("sha512", s512[:]) + "?foo", algos: []string{"sha512"}, best: "sha512"},
		{in: "md5-AAAA " + sri("sha1", s1[:]), algos: []string{"sha1"}, best: "sha1"},
		{in: "garbage " + sri("sha1", s1[:]), algos: []string{"sha1"}, best: "sha1"},
		{in: "", err: true},
		{in: "   ", err: true},
		{in: "md5-1B2M2Y8AsgTpgAmY7PhCfg==", err: true},
		{in: "sha512-not*base64", err: true},
		{in: "sha512-" + base64.StdEncoding.EncodeToString(s1[:]), err: true},            // wrong length
		{in: "sha512-" + base64.RawStdEncoding.EncodeToString(s512[:]) + "x", err: true}, // bad padding
		{in: sri("sha1", s1[:]) + " sha512-AAAA", err: true},                             // a corrupt strong entry is not ignored
		{in: strings.Repeat(" ", maxIntegrity+1), err: true},
	}
	for _, tt := range tests {
		t.Run(clip(tt.in), func(t *testing.T) {
			in, err := ParseIntegrity(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadIntegrity) {
					t.Fatalf("err = %v, want ErrBadIntegrity", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var algos []string
			for _, h := range in.Hashes {
				algos = append(algos, h.Algorithm)
			}
			if strings.Join(algos, ",") != strings.Join(tt.algos, ",") || in.Algorithm() != tt.best {
				t.Errorf("algos %v best %q", algos, in.Algorithm())
			}
			if again, err := ParseIntegrity(in.String()); err != nil || again.String() != in.String() {
				t.Errorf("round trip %q: %v", in.String(), err)
			}
		})
	}
}

func TestCheckTarball(t *testing.T) {
	data := []byte("a tarball, more or less")
	other := []byte("another tarball")
	s512, o512 := sha512.Sum512(data), sha512.Sum512(other)
	s1, o1 := sha1.Sum(data), sha1.Sum(other)
	s256 := sha256.Sum256(data)
	i512, x512 := sri("sha512", s512[:]), sri("sha512", o512[:])
	h1, x1 := hex.EncodeToString(s1[:]), hex.EncodeToString(o1[:])
	tests := []struct {
		name, integrity, shasum string
		err                     error
		evAlgo                  string
	}{
		{name: "sha512", integrity: i512, evAlgo: "sha512"},
		{name: "sha512 and shasum", integrity: i512, shasum: h1, evAlgo: "sha512"},
		{name: "shasum only", shasum: h1},
		{name: "shasum upper case", shasum: strings.ToUpper(h1)},
		{name: "sha1 integrity (old package)", integrity: sri("sha1", s1[:]), evAlgo: "sha1"},
		{name: "sha256 integrity", integrity: sri("sha256", s256[:]), evAlgo: "sha256"},
		{name: "multiple, strongest matches", integrity: sri("sha1", o1[:]) + " " + i512, evAlgo: "sha512"},
		{name: "multiple sha512, one matches", integrity: x512 + " " + i512, evAlgo: "sha512"},
		{name: "sha512 mismatch", integrity: x512, err: ErrIntegrityMismatch, evAlgo: "sha512"},
		{name: "sha512 ok, shasum mismatch", integrity: i512, shasum: x1, err: ErrIntegrityMismatch, evAlgo: "sha512"},
		{name: "shasum mismatch alone", shasum: x1, err: ErrIntegrityMismatch},
		{name: "strongest mismatches, weaker matches", integrity: sri("sha1", s1[:]) + " " + x512, err: ErrIntegrityMismatch, evAlgo: "sha512"},
		{name: "neither", err: ErrNoIntegrity},
		{name: "bad integrity", integrity: "sha512-???", err: ErrBadIntegrity},
		{name: "bad shasum", integrity: i512, shasum: "xyz", err: ErrBadIntegrity, evAlgo: "sha512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := CheckTarball(bytes.NewReader(data), tt.integrity, tt.shasum)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if ev.Algorithm != tt.evAlgo {
				t.Errorf("Algorithm = %q, want %q", ev.Algorithm, tt.evAlgo)
			}
			if ev.Size != int64(len(data)) {
				t.Errorf("Size = %d", ev.Size)
			}
			if tt.evAlgo == "sha512" && ev.Got != i512 {
				t.Errorf("Got = %q, want %q", ev.Got, i512)
			}
			if errors.Is(err, ErrIntegrityMismatch) {
				m := ev.Map()
				if tt.integrity != "" && (m["expected"] == "" || m["actual"] == "" || m["expected"] == m["actual"] && tt.shasum == "") {
					t.Errorf("evidence %v", m)
				}
				if tt.shasum != "" && (m["expected_shasum"] != strings.ToLower(tt.shasum) || m["actual_shasum"] != h1) {
					t.Errorf("shasum evidence %v", m)
				}
			}
		})
	}
}

func TestHasherStreaming(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	s512 := sha512.Sum512(data)
	h := NewHasher()
	// As it would stream to disk: through a TeeReader, in odd chunks.
	if _, err := io.Copy(io.Discard, io.TeeReader(iotest.HalfReader(bytes.NewReader(data)), h)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Check(sri("sha512", s512[:]), ""); err != nil {
		t.Fatal(err)
	}
	if h.Size() != int64(len(data)) {
		t.Errorf("Size = %d", h.Size())
	}
	s256 := sha256.Sum256(data)
	if _, err := h.Check(sri("sha256", s256[:]), ""); !errors.Is(err, ErrBadIntegrity) {
		t.Errorf("sha256 on a plain Hasher: %v", err)
	}
}

func TestCheckTarballReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := CheckTarball(iotest.ErrReader(boom), "sha512-x", ""); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}
