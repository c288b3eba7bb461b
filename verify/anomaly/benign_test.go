package anomaly_test

// False-positive estimate on benign release histories (network; opt in
// with AIRLOCK_LIVE=1). It fetches the full packuments of popular npm
// packages from the registry npm is configured with here and judges every
// version as of its own publish time + 25 h (cooldown passed, history
// checks within the review window) under policy.Default(). For Go it
// reads version lists and .info times from the configured module proxy
// and reports release cadence, i.e. what the cooldown alone costs.
//
//	AIRLOCK_LIVE=1 go test ./verify/anomaly -run Benign -v
//	AIRLOCK_LIVE=1 go test ./verify/anomaly -run Benign -update-detection
//
// The second form rewrites the benign section of docs/DETECTION.md and
// testdata/benign-summary.json.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/anomaly"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// benignNPM are popular packages. Several had malicious versions at some
// point (debug, chalk, axios, nx, eslint-config-prettier, ua-parser-js,
// eslint-scope…); those versions were unpublished and are not in the
// packuments, so what is judged here is their benign history.
var benignNPM = []string{
	"express", "react", "react-dom", "lodash", "debug", "chalk", "axios", "typescript", "webpack", "eslint",
	"jest", "@babel/core", "@babel/preset-env", "@babel/runtime", "commander", "yargs", "minimist", "semver", "glob", "rimraf",
	"mkdirp", "uuid", "moment", "dayjs", "date-fns", "dotenv", "cross-env", "ws", "socket.io", "body-parser",
	"cookie-parser", "cors", "morgan", "mongoose", "mysql2", "pg", "redis", "ioredis", "sequelize", "prisma",
	"@prisma/client", "vue", "@angular/core", "svelte", "vite", "rollup", "esbuild", "@swc/core", "prettier", "mocha",
	"chai", "sinon", "supertest", "nodemon", "pm2", "ts-node", "tslib", "rxjs", "core-js", "regenerator-runtime",
	"classnames", "prop-types", "styled-components", "@emotion/react", "tailwindcss", "postcss", "autoprefixer", "sass", "less", "node-fetch",
	"got", "form-data", "qs", "jsonwebtoken", "bcrypt", "bcryptjs", "passport", "helmet", "compression", "multer",
	"sharp", "puppeteer", "playwright", "cheerio", "jsdom", "inquirer", "ora", "fs-extra", "graceful-fs", "chokidar",
	"execa", "cross-spawn", "@types/node", "lodash-es", "underscore", "async", "bluebird", "immer", "redux", "@reduxjs/toolkit",
	"zod", "ajv", "joi", "yup", "handlebars", "ejs", "marked", "highlight.js", "protobufjs", "@grpc/grpc-js",
	"sqlite3", "canvas", "node-sass", "husky", "lint-staged",
}

// benignGo are popular modules.
var benignGo = []string{
	"github.com/gin-gonic/gin", "github.com/spf13/cobra", "github.com/spf13/viper", "github.com/stretchr/testify", "github.com/sirupsen/logrus",
	"go.uber.org/zap", "github.com/gorilla/mux", "github.com/go-chi/chi/v5", "github.com/labstack/echo/v4", "github.com/gofiber/fiber/v2",
	"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/golang/protobuf", "golang.org/x/net", "golang.org/x/sys",
	"golang.org/x/crypto", "golang.org/x/text", "golang.org/x/tools", "github.com/prometheus/client_golang", "github.com/redis/go-redis/v9",
	"github.com/jackc/pgx/v5", "gorm.io/gorm", "github.com/aws/aws-sdk-go-v2", "github.com/google/uuid", "github.com/pkg/errors",
	"gopkg.in/yaml.v3", "github.com/urfave/cli/v2", "github.com/go-playground/validator/v10", "go.opentelemetry.io/otel", "k8s.io/client-go",
}

func live(t *testing.T) {
	if os.Getenv("AIRLOCK_LIVE") != "1" {
		t.Skip("network test: set AIRLOCK_LIVE=1")
	}
}

// pkDoc is the little of a packument the checks read.
type pkDoc struct {
	Name     string               `json:"name"`
	Versions map[string]pkVersion `json:"versions"`
	Time     map[string]string    `json:"time"`
	DistTags map[string]string    `json:"dist-tags"`
}

type pkVersion struct {
	// Old packuments carry odd shapes (a script that is an object,
	// maintainers as strings, _npmUser as a string): decode leniently.
	Scripts      map[string]json.RawMessage `json:"scripts"`
	Dependencies json.RawMessage            `json:"dependencies"` // an object; an array in a few old versions
	Gypfile      json.RawMessage            `json:"gypfile"`
	NpmUser      json.RawMessage            `json:"_npmUser"`
	Maintainers  json.RawMessage            `json:"maintainers"`
	Dist         struct {
		Attestations json.RawMessage `json:"attestations"`
	} `json:"dist"`
}

// script is a lifecycle script's command, "" when absent or not a string.
func (v pkVersion) script(k string) string {
	var s string
	if json.Unmarshal(v.Scripts[k], &s) != nil {
		return ""
	}
	return s
}

// npmUser returns _npmUser's name and trusted-publisher object.
func (v pkVersion) npmUser() (name string, trusted json.RawMessage, ok bool) {
	if !present(v.NpmUser) {
		return "", nil, false
	}
	var u struct {
		Name             string          `json:"name"`
		TrustedPublisher json.RawMessage `json:"trustedPublisher"`
	}
	if json.Unmarshal(v.NpmUser, &u) == nil {
		return u.Name, u.TrustedPublisher, true
	}
	var s string
	if json.Unmarshal(v.NpmUser, &s) == nil {
		return s, nil, true
	}
	return "", nil, false
}

// maintainers returns the names, from objects or "name <mail>" strings.
func (v pkVersion) maintainers() []string {
	var raw []json.RawMessage
	if json.Unmarshal(v.Maintainers, &raw) != nil {
		return nil
	}
	var out []string
	for _, m := range raw {
		var o struct {
			Name string `json:"name"`
		}
		var s string
		switch {
		case json.Unmarshal(m, &o) == nil && o.Name != "":
			out = append(out, o.Name)
		case json.Unmarshal(m, &s) == nil && s != "":
			out = append(out, strings.Fields(s)[0])
		}
	}
	return out
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// npmLine is the caret line of a strict semver version: the major, or
// "0.<minor>" below 1.0.0.
func npmLine(v string) (line string, pre, ok bool) {
	sv := "v" + v
	if !semver.IsValid(sv) || semver.Canonical(sv) != strings.SplitN(sv, "+", 2)[0] {
		return "", false, false
	}
	maj := strings.TrimPrefix(semver.Major(sv), "v")
	if maj == "0" {
		mm := strings.TrimPrefix(semver.MajorMinor(sv), "v")
		return mm, semver.Prerelease(sv) != "", true
	}
	return maj, semver.Prerelease(sv) != "", true
}

// npmHistory builds the history the npm front would (version order,
// strict semver only).
func npmHistory(pk pkDoc) anomaly.History {
	var h anomaly.History
	for v, pv := range pk.Versions {
		line, pre, ok := npmLine(v)
		if !ok {
			continue
		}
		r := anomaly.Release{Version: v, Line: line, Prerelease: pre, Provenance: present(pv.Dist.Attestations)}
		if s, ok := pk.Time[v]; ok {
			r.Published, _ = time.Parse(time.RFC3339Nano, s)
		}
		if name, tp, ok := pv.npmUser(); ok {
			r.Publisher = name
			if present(tp) {
				r.TrustedPublisher = strings.Join(strings.Fields(string(tp)), "")
			}
		}
		r.Maintainers = pv.maintainers()
		var deps map[string]json.RawMessage
		_ = json.Unmarshal(pv.Dependencies, &deps) // not an object: none that npm would install
		for dep, raw := range deps {
			var spec string
			if json.Unmarshal(raw, &spec) == nil {
				if r.Dependencies == nil {
					r.Dependencies = map[string]string{}
				}
				r.Dependencies[dep] = spec
			}
		}
		for _, k := range []string{"preinstall", "install", "postinstall"} {
			if cmd := pv.script(k); cmd != "" {
				r.InstallScripts = append(r.InstallScripts, k)
				if r.InstallCommands == nil {
					r.InstallCommands = map[string]string{}
				}
				r.InstallCommands[k] = cmd
			}
		}
		if string(pv.Gypfile) == "true" {
			r.InstallScripts = append(r.InstallScripts, "gypfile")
		}
		slices.Sort(r.InstallScripts)
		h = append(h, r)
	}
	slices.SortFunc(h, func(a, b anomaly.Release) int { return semver.Compare("v"+a.Version, "v"+b.Version) })
	return h
}

func configured(t *testing.T, name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Logf("%s %v: %v", name, args, err)
		return ""
	}
	return strings.TrimSpace(string(out))
}

var httpClient = &http.Client{Timeout: 5 * time.Minute}

func get(ctx context.Context, u string, accept string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// timeQuality says how much a packument's time values look like real
// publish times.
type timeQuality struct {
	Versions   int `json:"versions"`
	NoTime     int `json:"no_time"`
	OutOfOrder int `json:"out_of_order"` // later than a higher version of the same line
	Clustered  int `json:"clustered"`    // within 2 s of two or more other versions
	Plausible  int `json:"plausible"`
}

func quality(h anomaly.History) timeQuality {
	q := timeQuality{Versions: len(h)}
	bad := make([]bool, len(h))
	minAbove := map[string]time.Time{}
	for i := len(h) - 1; i >= 0; i-- {
		r := h[i]
		if r.Published.IsZero() {
			q.NoTime++
			bad[i] = true
			continue
		}
		if m, ok := minAbove[r.Line]; ok && r.Published.After(m) {
			q.OutOfOrder++
			bad[i] = true
		}
		if r.Prerelease {
			continue
		}
		if m, ok := minAbove[r.Line]; !ok || r.Published.Before(m) {
			minAbove[r.Line] = r.Published
		}
	}
	ts := make([]int, 0, len(h))
	for i := range h {
		if !h[i].Published.IsZero() {
			ts = append(ts, i)
		}
	}
	slices.SortFunc(ts, func(a, b int) int { return h[a].Published.Compare(h[b].Published) })
	for k, i := range ts {
		n := 0
		for _, j := range []int{k - 2, k - 1, k + 1, k + 2} {
			if j >= 0 && j < len(ts) {
				d := h[ts[j]].Published.Sub(h[i].Published)
				if d < 0 {
					d = -d
				}
				if d <= 2*time.Second {
					n++
				}
			}
		}
		if n >= 2 {
			q.Clustered++
			bad[i] = true
		}
	}
	for _, b := range bad {
		if !b {
			q.Plausible++
		}
	}
	return q
}

type heldVersion struct {
	Version  string `json:"version"`
	Checks   string `json:"checks"`
	Evidence string `json:"evidence"`
}

type pkgResult struct {
	Name        string         `json:"name"`
	Err         string         `json:"error,omitempty"`
	Times       timeQuality    `json:"times"`
	Judged      int            `json:"judged"`
	Prerelease  int            `json:"prerelease_judged"`
	Held        int            `json:"held"`
	HeldRelease int            `json:"held_release"` // held, not prereleases
	Findings    map[string]int `json:"findings"`     // every finding, holding or warning
	Holding     map[string]int `json:"holding"`      // findings that hold
	WithUser    int            `json:"with_npm_user"`
	WithMaint   int            `json:"with_maintainers"`
	WithAttest  int            `json:"with_attestations"`
	WithScripts int            `json:"with_install_scripts"`
	Examples    []heldVersion  `json:"examples,omitempty"`
}

// depSource resolves the dependencies a release added, as the npm front
// does, from their packuments on the registry; ok is false for one that
// could not be read.
type depSource func(name, spec string) (anomaly.Dependency, bool)

func judgeNPM(name string, pk pkDoc, deps depSource) pkgResult {
	h := npmHistory(pk)
	res := pkgResult{Name: name, Times: quality(h), Findings: map[string]int{}, Holding: map[string]int{}}
	for _, pv := range pk.Versions {
		if _, _, ok := pv.npmUser(); ok {
			res.WithUser++
		}
		if len(pv.maintainers()) > 0 {
			res.WithMaint++
		}
		if present(pv.Dist.Attestations) {
			res.WithAttest++
		}
	}
	for i, r := range h {
		if len(r.InstallScripts) > 0 {
			res.WithScripts++
		}
		if r.Published.IsZero() {
			continue // counted in Times.NoTime: the cooldown fails closed on it
		}
		now := r.Published.Add(25 * time.Hour)
		var added []anomaly.Dependency
		if deps != nil {
			for _, dn := range anomaly.AddedDependencies(h, i, anomaly.DefaultSettled) {
				target, rng, outside := anomaly.SplitSpec(dn, r.Dependencies[dn])
				if outside {
					added = append(added, anomaly.Dependency{Name: dn, Range: r.Dependencies[dn], Outside: true})
					continue
				}
				if d, ok := deps(target, rng); ok {
					added = append(added, d)
				}
			}
		}
		j := judge(h, added, name, r.Version, now)
		res.Judged++
		if r.Prerelease {
			res.Prerelease++
		}
		for _, c := range j.holding {
			res.Findings[c]++
			res.Holding[c]++
		}
		for _, c := range j.warnings {
			res.Findings[c]++
		}
		if j.verdict == verify.Allow {
			continue
		}
		res.Held++
		if !r.Prerelease {
			res.HeldRelease++
		}
		if len(res.Examples) < 8 {
			fs := anomaly.Check(h, i, anomaly.Options{})
			for _, d := range added {
				if f := anomaly.NewDependency(name, r, d, policy.DefaultCooldown); f != nil {
					fs = append(fs, *f)
				}
			}
			var ev []string
			for _, f := range fs {
				ev = append(ev, f.Check+": "+f.Message)
			}
			res.Examples = append(res.Examples, heldVersion{Version: r.Version, Checks: strings.Join(dedupe(j.holding), ","), Evidence: strings.Join(ev, "; ")})
		}
	}
	return res
}

type goResult struct {
	Module string `json:"module"`
	Err    string `json:"error,omitempty"`
	Listed int    `json:"listed"`
	Timed  int    `json:"timed"`
	// SupersededIn24h are versions followed by the next one (in time)
	// within 24 h: the cooldown never lets them be @latest.
	SupersededIn24h int `json:"superseded_within_24h"`
	// MedianGap is the median time between consecutive releases.
	MedianGapHours float64 `json:"median_gap_hours"`
	// Last365 are versions whose time is within the year before the run.
	Last365 int `json:"last_365_days"`
	// Young are versions younger than 24 h at the run (held now).
	Young int `json:"young_now"`
}

type benignSummary struct {
	Generated   string      `json:"generated"`
	NPMRegistry string      `json:"npm_registry"`
	GoProxy     string      `json:"go_proxy"`
	NPM         []pkgResult `json:"npm"`
	// DepPackuments are the packuments of added dependencies read for
	// the new-dependency check; DepFailed those that could not be.
	DepPackuments int        `json:"dependency_packuments"`
	DepFailed     int        `json:"dependency_packuments_failed"`
	Go            []goResult `json:"go"`
}

func TestBenignHistories(t *testing.T) {
	live(t)
	ctx := context.Background()
	reg := configured(t, "npm", "config", "get", "registry")
	if reg == "" {
		reg = "https://registry.npmjs.org/"
	}
	reg = strings.TrimSuffix(reg, "/") + "/"
	proxy := ""
	for _, p := range strings.Split(configured(t, "go", "env", "GOPROXY"), ",") {
		if strings.HasPrefix(p, "http") {
			proxy = strings.TrimSuffix(p, "/")
			break
		}
	}
	sum := benignSummary{Generated: time.Now().UTC().Format(time.RFC3339), NPMRegistry: reg, GoProxy: proxy}

	// npm
	results := make([]pkgResult, len(benignNPM))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	deps := newDepCache(ctx, reg)
	for k, name := range benignNPM {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			b, code, err := get(ctx, reg+strings.Replace(url.PathEscape(name), "%40", "@", 1), "application/json")
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("HTTP %d", code)
			}
			if err != nil {
				results[k] = pkgResult{Name: name, Err: err.Error()}
				return
			}
			var pk pkDoc
			if err := json.Unmarshal(b, &pk); err != nil {
				results[k] = pkgResult{Name: name, Err: err.Error()}
				return
			}
			results[k] = judgeNPM(name, pk, deps.resolve)
		}()
	}
	wg.Wait()
	sum.NPM = results
	sum.DepPackuments, sum.DepFailed = deps.counts()

	// Go
	if proxy != "" {
		gres := make([]goResult, len(benignGo))
		for k, m := range benignGo {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				gres[k] = goCadence(ctx, proxy, m)
			}()
		}
		wg.Wait()
		sum.Go = gres
	}

	md := sum.render()
	t.Log("\n" + md)
	if *updateDetection {
		b, _ := json.MarshalIndent(sum, "", " ")
		if err := os.WriteFile("testdata/benign-summary.json", append(b, '\n'), 0o644); err != nil {
			t.Error(err)
		}
		if err := syncSection(detectionDoc, "benign", md, true); err != nil {
			t.Error(err)
		}
	}
}

// depCache reads the packuments of dependencies once each (the benign
// histories add thousands of dependencies over time, many the same).
type depCache struct {
	ctx    context.Context
	reg    string
	mu     sync.Mutex
	docs   map[string]*depDoc
	failed int
}

type depDoc struct {
	once    sync.Once
	ok      bool
	h       anomaly.History
	tags    map[string]string
	created time.Time
}

func newDepCache(ctx context.Context, reg string) *depCache {
	return &depCache{ctx: ctx, reg: reg, docs: map[string]*depDoc{}}
}

func (c *depCache) resolve(name, spec string) (anomaly.Dependency, bool) {
	c.mu.Lock()
	d := c.docs[name]
	if d == nil {
		d = &depDoc{}
		c.docs[name] = d
	}
	c.mu.Unlock()
	d.once.Do(func() {
		b, code, err := get(c.ctx, c.reg+strings.Replace(url.PathEscape(name), "%40", "@", 1), "application/json")
		var pk pkDoc
		if err != nil || code != http.StatusOK || json.Unmarshal(b, &pk) != nil {
			c.mu.Lock()
			c.failed++
			c.mu.Unlock()
			return
		}
		d.ok, d.h, d.tags = true, npmHistory(pk), pk.DistTags
		d.created, _ = time.Parse(time.RFC3339Nano, pk.Time["created"])
	})
	if !d.ok {
		return anomaly.Dependency{}, false
	}
	dep := anomaly.ResolveDependency(name, spec, d.h, d.tags, d.created)
	// The mirror's times are its ingest times, so a dependency's age here
	// says nothing (a package "first published" years after the release
	// that added it): only the install-hook half of the check is
	// measured. See docs/DETECTION.md.
	dep.Created = time.Time{}
	return dep, true
}

func (c *depCache) counts() (read, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.docs) - c.failed, c.failed
}

// goCadence reads a module's versions and their .info times (the newest
// 60 by semver) from the proxy.
func goCadence(ctx context.Context, proxy, mod string) goResult {
	res := goResult{Module: mod}
	esc, err := module.EscapePath(mod)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	b, code, err := get(ctx, proxy+"/"+esc+"/@v/list", "")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("list: HTTP %d", code)
	}
	if err != nil {
		res.Err = err.Error()
		return res
	}
	var vs []string
	for _, v := range strings.Fields(string(b)) {
		if semver.IsValid(v) {
			vs = append(vs, v)
		}
	}
	res.Listed = len(vs)
	semver.Sort(vs)
	if len(vs) > 60 {
		vs = vs[len(vs)-60:]
	}
	var times []time.Time
	for _, v := range vs {
		ev, _ := module.EscapeVersion(v)
		b, code, err := get(ctx, proxy+"/"+esc+"/@v/"+ev+".info", "")
		if err != nil || code != http.StatusOK {
			continue
		}
		var info struct{ Time time.Time }
		if json.Unmarshal(b, &info) == nil && !info.Time.IsZero() {
			times = append(times, info.Time)
		}
	}
	res.Timed = len(times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	var gaps []time.Duration
	now := time.Now()
	for i, tm := range times {
		if now.Sub(tm) < 365*24*time.Hour {
			res.Last365++
		}
		if now.Sub(tm) < 24*time.Hour {
			res.Young++
		}
		if i+1 < len(times) {
			g := times[i+1].Sub(tm)
			gaps = append(gaps, g)
			if g < 24*time.Hour {
				res.SupersededIn24h++
			}
		}
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		res.MedianGapHours = float64(gaps[len(gaps)/2].Round(time.Hour) / time.Hour)
	}
	return res
}

var nonWord = regexp.MustCompile(`\s+`)

func (s benignSummary) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Generated by `AIRLOCK_LIVE=1 go test ./verify/anomaly -run Benign -update-detection` at %s against the npm registry configured here (`%s`) and the Go module proxy `%s`. Raw per-package numbers: `verify/anomaly/testdata/benign-summary.json`.\n\n", s.Generated, s.NPMRegistry, s.GoProxy)

	var tot pkgResult
	tot.Findings, tot.Holding = map[string]int{}, map[string]int{}
	var tq timeQuality
	var ok, failed []string
	for _, r := range s.NPM {
		if r.Err != "" {
			failed = append(failed, r.Name+" ("+r.Err+")")
			continue
		}
		ok = append(ok, r.Name)
		tq.Versions += r.Times.Versions
		tq.NoTime += r.Times.NoTime
		tq.OutOfOrder += r.Times.OutOfOrder
		tq.Clustered += r.Times.Clustered
		tq.Plausible += r.Times.Plausible
		tot.Judged += r.Judged
		tot.Prerelease += r.Prerelease
		tot.Held += r.Held
		tot.HeldRelease += r.HeldRelease
		tot.WithUser += r.WithUser
		tot.WithMaint += r.WithMaint
		tot.WithAttest += r.WithAttest
		tot.WithScripts += r.WithScripts
		for c, n := range r.Findings {
			tot.Findings[c] += n
		}
		for c, n := range r.Holding {
			tot.Holding[c] += n
		}
	}
	pct := func(a, b int) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(b))
	}
	fmt.Fprintf(&b, "**npm sample:** %d packages fetched", len(ok))
	if len(failed) > 0 {
		fmt.Fprintf(&b, " (%d failed: %s)", len(failed), strings.Join(failed, ", "))
	}
	fmt.Fprintf(&b, "; %d strict-semver versions. The dependencies releases added were resolved from %d more packuments (%d could not be read) for the new-dependency check.\n\n", tq.Versions, s.DepPackuments, s.DepFailed)
	b.WriteString("| what the mirror gives | versions | share |\n|---|---|---|\n")
	for _, row := range []struct {
		what string
		n    int
	}{
		{"a time value", tq.Versions - tq.NoTime},
		{"a time later than a higher version of its line (ingest-like)", tq.OutOfOrder},
		{"a time within 2 s of two or more other versions (batch ingest)", tq.Clustered},
		{"a plausible publish time (neither of the two above)", tq.Plausible},
		{"`_npmUser` (publisher)", tot.WithUser},
		{"`maintainers`", tot.WithMaint},
		{"`dist.attestations` (provenance)", tot.WithAttest},
		{"an install hook (preinstall/install/postinstall/gypfile)", tot.WithScripts},
	} {
		fmt.Fprintf(&b, "| %s | %d | %s |\n", row.what, row.n, pct(row.n, tq.Versions))
	}
	fmt.Fprintf(&b, "\n**Held by anything but the cooldown** (each version judged at its own time + 25 h, policy.Default()): **%d of %d versions (%s)**; releases only (no prereleases): %d of %d (%s).\n\n",
		tot.Held, tot.Judged, pct(tot.Held, tot.Judged), tot.HeldRelease, tot.Judged-tot.Prerelease, pct(tot.HeldRelease, tot.Judged-tot.Prerelease))
	b.WriteString("| check | findings | holding |\n|---|---|---|\n")
	checks := make([]string, 0, len(tot.Findings))
	for c := range tot.Findings {
		checks = append(checks, c)
	}
	slices.Sort(checks)
	for _, c := range checks {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", c, tot.Findings[c], tot.Holding[c])
	}
	if len(checks) == 0 {
		b.WriteString("| (none) | 0 | 0 |\n")
	}

	worst := slices.Clone(s.NPM)
	slices.SortStableFunc(worst, func(a, b pkgResult) int { return cmp.Compare(b.Held, a.Held) })
	b.WriteString("\nPackages with held versions (most first):\n\n| package | held / judged | examples |\n|---|---|---|\n")
	for _, r := range worst {
		if r.Held == 0 {
			break
		}
		var ex []string
		for _, e := range r.Examples {
			if len(ex) == 3 {
				break
			}
			ex = append(ex, fmt.Sprintf("%s — %s", e.Version, nonWord.ReplaceAllString(e.Evidence, " ")))
		}
		fmt.Fprintf(&b, "| %s | %d / %d | %s |\n", r.Name, r.Held, r.Judged, strings.ReplaceAll(strings.Join(ex, "; "), "|", "\\|"))
	}

	if len(s.Go) > 0 {
		b.WriteString("\n**Go modules** (newest 60 versions by semver per module; `.info` Time is the commit time):\n\n| module | listed | with time | next release within 24 h | median gap | in last 365 d | held now |\n|---|---|---|---|---|---|---|\n")
		var listed, timed, sup, last, young int
		for _, g := range s.Go {
			if g.Err != "" {
				fmt.Fprintf(&b, "| %s | error: %s | | | | | |\n", g.Module, g.Err)
				continue
			}
			listed += g.Listed
			timed += g.Timed
			sup += g.SupersededIn24h
			last += g.Last365
			young += g.Young
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %.0f h | %d | %d |\n", g.Module, g.Listed, g.Timed, g.SupersededIn24h, g.MedianGapHours, g.Last365, g.Young)
		}
		fmt.Fprintf(&b, "| **total** | %d | %d | %d (%s of timed) | | %d | %d |\n", listed, timed, sup, pct(sup, timed), last, young)
	}
	return b.String()
}
