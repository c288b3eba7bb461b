package gomodtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// build computes everything served for m, and the go.sum lines the
// checksum database will record for it.
func (u *Upstream) build(m Module) (*version, error) {
	if err := module.Check(m.Path, m.Version); err != nil {
		return nil, err
	}
	gomod, ok := m.Files["go.mod"]
	if !ok {
		return nil, errors.New("no go.mod in Files")
	}
	mv := module.Version{Path: m.Path, Version: m.Version}
	zip, err := u.buildZip(mv, m.Files)
	if err != nil {
		return nil, err
	}
	zipHash, err := u.hashZip(zip)
	if err != nil {
		return nil, err
	}
	modHash, err := hashGoMod([]byte(gomod))
	if err != nil {
		return nil, err
	}
	t := m.Time
	if t.IsZero() {
		t = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.Version, t.UTC()})
	if err != nil {
		return nil, err
	}
	return &version{
		info: info,
		mod:  []byte(gomod),
		zip:  zip,
		sum:  fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", m.Path, m.Version, zipHash, m.Path, m.Version, modHash),
	}, nil
}

// buildZip makes a real module zip, checked by x/mod/zip the way the go
// command checks what it downloads.
func (u *Upstream) buildZip(m module.Version, files map[string]string) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names) // same bytes for the same files, run after run
	list := make([]modzip.File, len(names))
	for i, name := range names {
		list[i] = memFile{name, []byte(files[name])}
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, m, list); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// hashZip is the h1: hash of a module zip, computed by dirhash.HashZip as
// the go command does; HashZip reads a file, hence the scratch copy.
func (u *Upstream) hashZip(zip []byte) (string, error) {
	f, err := os.CreateTemp(u.dir, "*.zip")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(zip)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return dirhash.HashZip(f.Name(), dirhash.Hash1)
}

// hashGoMod is the h1: hash of a go.mod file as the go command computes it
// for the "path version/go.mod" line (cmd/go/internal/modfetch.goModSum).
func hashGoMod(data []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// memFile is an in-memory modzip.File.
type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error)  { return memInfo{f}, nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

// memInfo is the fs.FileInfo of a memFile: a plain, regular file.
type memInfo struct{ f memFile }

func (i memInfo) Name() string       { return path.Base(i.f.name) }
func (i memInfo) Size() int64        { return int64(len(i.f.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
