package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/airlock-proxy/airlock/cache"
)

// chunkReader is a blob being fetched: it returns its chunks one per
// Read, then end (io.EOF once verified, or the fetch's error). Before
// each Read it records how many bytes the client had been sent.
type chunkReader struct {
	chunks [][]byte
	end    error
	size   int64
	rec    *httptest.ResponseRecorder
	seen   []int // client bytes before each Read
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.seen = append(c.seen, c.rec.Body.Len())
	if len(c.chunks) == 0 {
		return 0, c.end
	}
	n := copy(p, c.chunks[0])
	c.chunks = c.chunks[1:]
	return n, nil
}

func (c *chunkReader) Close() error                { return nil }
func (c *chunkReader) Size() int64                 { return c.size }
func (c *chunkReader) Cached() bool                { return false }
func (c *chunkReader) File() (io.ReadSeeker, bool) { return nil, false }

func TestStream(t *testing.T) {
	a, b, c := []byte("aaaa"), []byte("bbbb"), []byte("cc")
	mismatch := fmt.Errorf("upstream bytes hash to something else: %w", cache.ErrDigestMismatch)
	for _, tc := range []struct {
		name   string
		chunks [][]byte
		size   int64
		end    error
		// what the client got: body, whether the handler aborted, the
		// status when it answered; seen is the client's byte count
		// before each Read.
		body    string
		aborted bool
		status  int
		seen    []int
	}{
		{name: "whole, size known", chunks: [][]byte{a, b, c}, size: 10, end: io.EOF,
			body: "aaaabbbbcc", status: 200, seen: []int{0, 4, 8, 8}},
		// Bytes that leave announced ones to come go out before the next
		// read; the completing chunk waits for the digest.
		{name: "mismatch, size known", chunks: [][]byte{a, b, c}, size: 10, end: mismatch,
			body: "aaaabbbb", aborted: true, seen: []int{0, 4, 8, 8}},
		{name: "mismatch within the first chunk", chunks: [][]byte{[]byte("aaaabbbbcc")}, size: 10, end: mismatch,
			status: http.StatusBadGateway, seen: []int{0, 0}},
		// No size: every chunk waits for the next read.
		{name: "whole, size unknown", chunks: [][]byte{a, b, c}, size: -1, end: io.EOF,
			body: "aaaabbbbcc", status: 200, seen: []int{0, 0, 4, 8}},
		{name: "mismatch, size unknown", chunks: [][]byte{a, b, c}, size: -1, end: mismatch,
			body: "aaaabbbb", aborted: true, seen: []int{0, 0, 4, 8}},
		{name: "empty blob", size: 0, end: io.EOF, status: 200, seen: []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{o: Options{Log: slog.New(slog.DiscardHandler)}}
			tg := target{up: &upstream{Upstream: Upstream{Name: "up"}}, key: "up/app"}
			rec := httptest.NewRecorder()
			rd := &chunkReader{chunks: tc.chunks, end: tc.end, size: tc.size, rec: rec}
			var err error
			aborted := func() (aborted bool) {
				defer func() {
					if r := recover(); r != nil {
						if r != http.ErrAbortHandler {
							panic(r)
						}
						aborted = true
					}
				}()
				err = h.stream(rec, tg, "sha256:"+strings.Repeat("0", 64), rd)
				return false
			}()
			if aborted != tc.aborted {
				t.Fatalf("aborted = %v, want %v (err %v)", aborted, tc.aborted, err)
			}
			if got := rec.Body.String(); got != tc.body && tc.status != http.StatusBadGateway {
				t.Errorf("client got %q, want %q", got, tc.body)
			}
			if fmt.Sprint(rd.seen) != fmt.Sprint(tc.seen) {
				t.Errorf("client bytes before each read: %v, want %v", rd.seen, tc.seen)
			}
			switch {
			case tc.aborted:
				if rec.Body.Len() >= 10 {
					t.Errorf("an aborted transfer sent every byte")
				}
			case tc.status == http.StatusBadGateway:
				var re *regError
				if !errors.As(err, &re) || re.status != http.StatusBadGateway || re.code != codeDigestInvalid {
					t.Fatalf("err = %v, want a 502 DIGEST_INVALID answer", err)
				}
				if rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "" {
					t.Errorf("headers or bytes went out before the error answer: %q", rec.Body.Bytes())
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if tc.size >= 0 && rec.Header().Get("Content-Length") != fmt.Sprint(tc.size) {
					t.Errorf("Content-Length %q, want %d", rec.Header().Get("Content-Length"), tc.size)
				}
				if !bytes.Equal(rec.Body.Bytes(), []byte(tc.body)) {
					t.Errorf("body %q", rec.Body.Bytes())
				}
			}
		})
	}
}
