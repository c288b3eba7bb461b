package osv

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/airlock-proxy/airlock/verify"
)

// Check is the Finding.Check of the known-malicious feed.
const Check = "known-malicious"

// Bounds of Load.
const (
	// MaxFileSize bounds one record file. The largest malicious-packages
	// records (long per-source details, many versions) are tens of KiB.
	MaxFileSize = 1 << 20
	// DefaultMaxTotal bounds the bytes read from all files together,
	// counted as they are read (uncompressed), not as headers claim.
	DefaultMaxTotal = 1 << 30
	// DefaultMaxFiles bounds the number of record files read. osv.dev's npm
	// zip holds a few hundred thousand records.
	DefaultMaxFiles = 4 << 20
)

// ErrTooLarge is wrapped by Load when the feed exceeds MaxTotal or
// MaxFiles. A partial feed is refused rather than served, since what was
// cut off could be exactly the record that matters.
var ErrTooLarge = errors.New("OSV feed too large")

// Options tunes Load; the zero value is usable.
type Options struct {
	MaxTotal int64 // default DefaultMaxTotal
	MaxFiles int   // default DefaultMaxFiles
	Log      *slog.Logger
}

// Feed is a loaded set of records, safe for concurrent use and immutable
// after Load.
type Feed struct {
	records []Record // matchable ones, sorted by ID
	index   map[key][]*matcher
	names   map[verify.Ecosystem][]string
	skipped int
	// fixes holds, from the non-withdrawn vulnerability records, the
	// versions each names as a fix: package → version → record ids.
	fixes map[key]map[string][]string
}

type key struct {
	eco  verify.Ecosystem
	name string
}

// maxLoggedSkips keeps a feed full of bad files from flooding the log; the
// total is logged once at the end.
const maxLoggedSkips = 20

type entry struct {
	rec       Record
	withdrawn bool
}

type loader struct {
	ctx      context.Context
	log      *slog.Logger
	maxTotal int64
	maxFiles int
	total    int64
	files    int
	skipped  int
	byID     map[string]entry
}

// Load reads every *.json record under path, which is a directory tree
// (the malicious-packages "osv" directory, or any directory of records) or
// a zip of one (osv.dev's <ecosystem>/all.zip, a GitHub archive), or a
// single .json record.
//
// Files that do not parse, or exceed MaxFileSize, are skipped with a
// warning and counted in Skipped; a path that cannot be read at all, a
// feed over Options.MaxTotal bytes or MaxFiles files, and a cancelled ctx
// are errors. Directories whose names start with "." are not entered (no
// Go module path or npm name has such an element, and .git has none).
//
// A record is withdrawn, and never matches, when it has a withdrawn time
// or lies in malicious-packages' withdrawn tree (…/withdrawn/<ecosystem>/
// <package name>/<file>). When an id occurs more than once, the copy with
// the latest modified time is kept; on a tie a withdrawn copy wins, since
// withdrawal is the deliberate later act.
func Load(ctx context.Context, path string, opt Options) (*Feed, error) {
	l := &loader{
		ctx:      ctx,
		log:      opt.Log,
		maxTotal: opt.MaxTotal,
		maxFiles: opt.MaxFiles,
		byID:     make(map[string]entry),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.maxTotal <= 0 {
		l.maxTotal = DefaultMaxTotal
	}
	if l.maxFiles <= 0 {
		l.maxFiles = DefaultMaxFiles
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("osv feed: %w", err)
	}
	switch {
	case fi.IsDir():
		err = l.walkDir(path)
	case strings.HasSuffix(strings.ToLower(path), ".json"):
		err = l.readFile(path, filepath.Base(path))
	default:
		err = l.walkZip(path)
	}
	if err != nil {
		return nil, err
	}
	f := l.build()
	l.log.Info("osv feed loaded", "path", path, "files", l.files, "records", len(l.byID),
		"malicious", len(f.records), "skipped", l.skipped, "bytes", l.total)
	return f, nil
}

func (l *loader) walkDir(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return fmt.Errorf("osv feed: %w", err)
			}
			l.skip(p, err)
			return nil
		}
		if err := l.ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(strings.ToLower(d.Name()), ".json") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			rel = p
		}
		rel = filepath.ToSlash(rel)
		// Symlinks and devices are not followed: a FIFO would block the
		// load and a link could point anywhere.
		if !d.Type().IsRegular() {
			l.skip(rel, errors.New("not a regular file"))
			return nil
		}
		return l.readFile(p, rel)
	})
}

func (l *loader) readFile(p, rel string) error {
	if err := l.countFile(); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		l.skip(rel, err)
		return nil
	}
	defer f.Close()
	return l.read(rel, f)
}

func (l *loader) walkZip(p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return fmt.Errorf("osv feed: %w", err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if err := l.ctx.Err(); err != nil {
			return err
		}
		name := zf.Name
		if strings.HasSuffix(name, "/") || !strings.HasSuffix(strings.ToLower(name), ".json") || hiddenDir(name) {
			continue
		}
		if err := l.countFile(); err != nil {
			return err
		}
		// The header's size is only a hint: an honest large file is
		// skipped without inflating a byte, and a lying one is still cut
		// off by read.
		if zf.UncompressedSize64 > MaxFileSize {
			l.skip(name, fmt.Errorf("declares %d bytes, limit %d", zf.UncompressedSize64, MaxFileSize))
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			l.skip(name, err)
			continue
		}
		err = l.read(name, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func hiddenDir(name string) bool {
	dirs := strings.Split(name, "/")
	for _, d := range dirs[:len(dirs)-1] {
		if strings.HasPrefix(d, ".") {
			return true
		}
	}
	return false
}

func (l *loader) countFile() error {
	l.files++
	if l.files > l.maxFiles {
		return fmt.Errorf("%w: more than %d files", ErrTooLarge, l.maxFiles)
	}
	return nil
}

// read reads at most MaxFileSize bytes, and no more than the feed has left
// of MaxTotal, so memory stays bounded whatever the file or zip entry
// really holds.
func (l *loader) read(name string, r io.Reader) error {
	limit := min(int64(MaxFileSize), l.maxTotal-l.total)
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	l.total += int64(len(data))
	if int64(len(data)) > limit {
		if limit < MaxFileSize {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.maxTotal)
		}
		l.skip(name, fmt.Errorf("over %d bytes", MaxFileSize))
		return nil
	}
	if err != nil {
		l.skip(name, err)
		return nil
	}
	l.add(name, data)
	return nil
}

func (l *loader) skip(name string, err error) {
	l.skipped++
	if l.skipped <= maxLoggedSkips {
		l.log.Warn("osv feed: skipping file", "file", name, "err", err)
	} else if l.skipped == maxLoggedSkips+1 {
		l.log.Warn("osv feed: more files skipped; only the total is reported")
	}
}

func (l *loader) add(name string, data []byte) {
	r, err := Parse(data)
	if err != nil {
		l.skip(name, err)
		return
	}
	r.Source = name
	e := entry{rec: r, withdrawn: !r.Withdrawn.IsZero() || inWithdrawnTree(name, r)}
	old, ok := l.byID[r.ID]
	if ok {
		newer := r.Modified.After(old.rec.Modified) ||
			(r.Modified.Equal(old.rec.Modified) && e.withdrawn && !old.withdrawn)
		if !newer {
			l.log.Debug("osv feed: duplicate id, keeping the earlier file", "id", r.ID, "file", name, "kept", old.rec.Source)
			return
		}
		l.log.Debug("osv feed: duplicate id, replacing the earlier file", "id", r.ID, "file", name, "replaced", old.rec.Source)
	}
	l.byID[r.ID] = e
}

// inWithdrawnTree recognises malicious-packages' layout
// osv/withdrawn/<ecosystem>/<package name>/<ID>.json. A directory merely
// named "withdrawn" is not enough — it could be a package called so, or an
// element of a Go module path — so the rest of the path must spell one of
// the record's package names.
func inWithdrawnTree(name string, r Record) bool {
	seg := strings.Split(name, "/")
	for i := 0; i+3 < len(seg); i++ {
		if seg[i] != "withdrawn" {
			continue
		}
		pkg := strings.Join(seg[i+2:len(seg)-1], "/")
		for _, a := range r.Affected {
			if a.Name == pkg {
				return true
			}
		}
	}
	return false
}

func (l *loader) build() *Feed {
	f := &Feed{
		index:   make(map[key][]*matcher),
		names:   make(map[verify.Ecosystem][]string),
		skipped: l.skipped,
	}
	seen := make(map[key]bool)
	for _, id := range sortedKeys(l.byID) {
		e := l.byID[id]
		if !e.withdrawn && !e.rec.Malware {
			f.addFixes(e.rec)
		}
		if e.withdrawn || !e.rec.Malware {
			continue
		}
		n := len(f.records)
		f.records = append(f.records, e.rec)
		for _, a := range e.rec.Affected {
			if a.Ecosystem == "" {
				continue
			}
			k := key{a.Ecosystem, a.Name}
			f.index[k] = append(f.index[k], compile(n, a))
			if !seen[k] {
				seen[k] = true
				f.names[a.Ecosystem] = append(f.names[a.Ecosystem], a.Name)
			}
		}
	}
	for _, names := range f.names {
		sort.Strings(names)
	}
	return f
}

// Match returns the non-withdrawn malware records affecting the artifact,
// sorted by id; nil when there are none. The records are copies.
//
// A record affects a version listed in its versions[] or inside one of its
// SEMVER or ECOSYSTEM ranges, evaluated as the OSV schema specifies
// (introduced "0" is before every version; fixed excludes its version,
// last_affected includes it; a version at or beyond every limit is out)
// with npm's SemVer 2.0.0 precedence, prereleases included, or Go's module
// version order. A version that is not valid in its ecosystem matches only
// exactly or through a range from "0" that nothing closes.
func (f *Feed) Match(a verify.Artifact) []Record {
	if f == nil {
		return nil
	}
	ms := f.index[key{a.Ecosystem, a.Name}]
	var hits []int
	for _, m := range ms {
		if (len(hits) > 0 && hits[len(hits)-1] == m.rec) || !m.affects(a.Ecosystem, a.Version) {
			continue
		}
		hits = append(hits, m.rec)
	}
	if len(hits) == 0 {
		return nil
	}
	sort.Ints(hits)
	out := make([]Record, 0, len(hits))
	for i, h := range hits {
		if i > 0 && hits[i-1] == h {
			continue
		}
		out = append(out, f.records[h].clone())
	}
	return out
}

// Len is the number of records Match can return: the non-withdrawn
// malware records, after duplicates are resolved.
func (f *Feed) Len() int {
	if f == nil {
		return 0
	}
	return len(f.records)
}

// Skipped is the number of files Load skipped as unreadable, oversized or
// invalid.
func (f *Feed) Skipped() int {
	if f == nil {
		return 0
	}
	return f.skipped
}

// Affected returns, sorted, the package names of the ecosystem that some
// non-withdrawn malware record marks, whatever the versions, so that a
// front can re-check what it has cached when the feed changes.
func (f *Feed) Affected(eco verify.Ecosystem) []string {
	if f == nil {
		return nil
	}
	return append([]string(nil), f.names[eco]...)
}

// maxSummary bounds the summary quoted in a finding's message.
const maxSummary = 200

// Finding reports the record as evidence against the artifact.
func (f *Feed) Finding(r Record, a verify.Artifact) verify.Finding {
	summary := cleanText(r.Summary, maxSummary)
	msg := fmt.Sprintf("%s is known malicious: %s", a, r.ID)
	if summary != "" {
		msg += ": " + summary
	}
	ev := map[string]string{"id": r.ID}
	if len(r.Aliases) > 0 {
		ev["aliases"] = strings.Join(r.Aliases, ",")
	}
	if r.Source != "" {
		ev["source"] = r.Source
	}
	if !r.Modified.IsZero() {
		ev["modified"] = r.Modified.UTC().Format(time.RFC3339)
	}
	return verify.Finding{Check: Check, Message: msg, Evidence: ev}
}

// cleanText makes feed-supplied text safe for a one-line message: control
// characters become spaces, runs of space collapse, and it is clipped.
func cleanText(s string, max int) string {
	var b strings.Builder
	space := false
	for _, c := range s {
		if unicode.IsControl(c) || unicode.IsSpace(c) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(c)
		if b.Len() >= max {
			return b.String() + "…"
		}
	}
	return b.String()
}
