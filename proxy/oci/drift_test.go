package oci_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/oci"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/policy"
)

// tagDigest asks Airlock for repo:tag and returns the digest it serves,
// or the error code.
func (f *fixture) tagDigest(t *testing.T, repoTag string) (string, string) {
	t.Helper()
	repo, tag, _ := strings.Cut(repoTag, ":")
	resp, body := f.do(t, "GET", "/v2/"+repo+"/manifests/"+tag)
	if resp.StatusCode == 200 {
		return resp.Header.Get("Docker-Content-Digest"), ""
	}
	return "", decodeErr(t, body).Code
}

func TestTagDrift(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opt         fixtureOpt
		newVerified bool
		// after the move: "old" (held back), "new" (followed) or a code
		after string
		// what an admin releases to let the tag move: "digest", "move"
		release string
	}{
		{name: "follow-signed, new unsigned", opt: requireSig(oci.TagsFollowSigned), after: "old", release: "digest"},
		{name: "follow-signed (default), new unsigned", opt: requireSig(""), after: "old", release: "digest"},
		{name: "follow-signed, new signed", opt: requireSig(oci.TagsFollowSigned), newVerified: true, after: "new"},
		{name: "follow-signed, no signature required", opt: tagMode(oci.TagsFollowSigned), after: "new"},
		{name: "pin, new signed", opt: requireSig(oci.TagsPin), newVerified: true, after: "old", release: "move"},
		{name: "pin, no signature required", opt: tagMode(oci.TagsPin), after: "old", release: "move"},
		{name: "follow, new unsigned", opt: requireSig(oci.TagsFollow), after: "DENIED", release: "digest"},
		{name: "follow, no signature required", opt: tagMode(oci.TagsFollow), after: "new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opt)
			a, b := image(t), image(t)
			da, db := digestOf(t, a), digestOf(t, b)
			f.ver.permit(da)
			if tc.newVerified {
				f.ver.permit(db)
			}
			f.push(t, "test/app:v1", a)
			if d, code := f.tagDigest(t, "up/test/app:v1"); d != da {
				t.Fatalf("first pull: %s %s", d, code)
			}
			f.push(t, "test/app:v1", b)
			// Within the TTL upstream is not asked.
			heads := f.faults.count("HEAD", "/manifests/v1")
			if d, _ := f.tagDigest(t, "up/test/app:v1"); d != da {
				t.Fatalf("within the TTL: %s", d)
			}
			if n := f.faults.count("HEAD", "/manifests/v1"); n != heads {
				t.Fatalf("tag asked upstream within the TTL")
			}
			f.clock.Add(ttl + time.Second)
			d, code := f.tagDigest(t, "up/test/app:v1")
			switch tc.after {
			case "old":
				if d != da {
					t.Fatalf("after the move: %s %s, want the old %s", d, code, da)
				}
			case "new":
				if d != db {
					t.Fatalf("after the move: %s %s, want the new %s", d, code, db)
				}
			default:
				if code != tc.after {
					t.Fatalf("after the move: %s %s, want %s", d, code, tc.after)
				}
			}
			// Every observation is history, the move included.
			obs, err := f.meta.Observation(context.Background(), "oci:up/test/app:v1")
			if err != nil {
				t.Fatal(err)
			}
			if obs.Fields["digest"] != da || !strings.Contains(obs.Fields["seen "+db], "tag-moved from "+da) {
				t.Fatalf("observation %v", obs.Fields)
			}
			if HEADs := f.faults.count("HEAD", "/manifests/v1"); HEADs != heads+1 {
				t.Errorf("%d HEADs after the TTL, want 1", HEADs-heads)
			}
			if tc.release == "" {
				return
			}
			var held verify.Artifact
			switch tc.release {
			case "digest":
				held = digestArtifact("up/test/app", db)
			case "move":
				held = verify.Artifact{Ecosystem: verify.OCI, Name: "up/test/app", Version: "v1@" + db, Digest: db}
				if s := held.String(); s != "oci:up/test/app:v1@"+db {
					t.Fatalf("move artifact renders %s", s)
				}
			}
			q := f.quarantineOf(t, held)
			if q.State != cache.Held || !hasCheck(q, "tag-moved", da, db) {
				t.Fatalf("record %+v lacks the tag-moved finding", q)
			}
			// Asking again (even after the TTL) adds no event and no
			// second record.
			f.clock.Add(ttl + time.Second)
			f.tagDigest(t, "up/test/app:v1")
			if q2 := f.quarantineOf(t, held); q2.ID != q.ID || len(q2.Findings) != len(q.Findings) {
				t.Fatalf("record changed on a repeat: %+v", q2)
			}
			f.release(t, held)
			f.clock.Add(ttl + time.Second)
			if d, code := f.tagDigest(t, "up/test/app:v1"); d != db {
				t.Fatalf("after release: %s %s, want %s", d, code, db)
			}
			// A further move is judged afresh: the release was of one move.
			c := image(t)
			f.ver.permit(digestOf(t, c))
			f.push(t, "test/app:v1", c)
			f.clock.Add(ttl + time.Second)
			d, _ = f.tagDigest(t, "up/test/app:v1")
			if tc.release == "move" && d != db {
				t.Fatalf("pin let a second move through: %s", d)
			}
			if tc.release == "digest" && d != digestOf(t, c) {
				t.Fatalf("signed second move not followed: %s", d)
			}
		})
	}
}

func hasCheck(q *cache.Quarantine, check, old, new string) bool {
	for _, f := range q.Findings {
		if f.Check == check && f.Evidence["old"] == old && f.Evidence["new"] == new {
			return true
		}
	}
	return false
}

func TestTagsList(t *testing.T) {
	f := newFixture(t, requireSig(""))
	for _, tag := range []string{"e", "a", "c", "b", "d"} {
		img := image(t)
		f.push(t, "test/app:"+tag, img)
		if tag != "c" {
			f.ver.permit(digestOf(t, img))
		}
	}
	// c is unsigned: asking for it holds it, and it leaves the list.
	if _, code := f.tagDigest(t, "up/test/app:c"); code != "DENIED" {
		t.Fatalf("c: %s", code)
	}
	for _, tc := range []struct {
		query string
		want  string
		link  string
	}{
		{"", "a,b,d,e", ""},
		{"?n=2", "a,b", "</v2/up/test/app/tags/list?last=b&n=2>; rel=\"next\""},
		{"?n=2&last=b", "d,e", ""},
		{"?last=b", "d,e", ""},
		{"?n=3&last=a", "b,d,e", ""},
		{"?n=1&last=b", "d", "</v2/up/test/app/tags/list?last=d&n=1>; rel=\"next\""},
		{"?last=e", "", ""},
		{"?n=0", "", ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := f.do(t, "GET", "/v2/up/test/app/tags/list"+tc.query)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			var list struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			}
			mustJSON(t, body, &list)
			if list.Name != "up/test/app" || strings.Join(list.Tags, ",") != tc.want || list.Tags == nil {
				t.Errorf("got %s %v, want %s", list.Name, list.Tags, tc.want)
			}
			if got := resp.Header.Get("Link"); got != tc.link {
				t.Errorf("Link %q, want %q", got, tc.link)
			}
		})
	}
	resp, body := f.do(t, "GET", "/v2/up/test/app/tags/list?n=x")
	wantErr(t, resp, body, 400, "PAGINATION_NUMBER_INVALID")
	resp, body = f.do(t, "GET", "/v2/up/test/none/tags/list")
	wantErr(t, resp, body, 404, "NAME_UNKNOWN")
}

// TestTagMoveCooldown: under a cooldown a moved tag keeps serving its
// allowed digest until the move is a cooldown old, counted from when
// Airlock first saw it; an image merely new to Airlock is served at once.
func TestTagMoveCooldown(t *testing.T) {
	withCooldown := func(o *oci.Options) {
		tagMode(oci.TagsFollow)(o)
		o.Checks = policy.Default()
	}
	f := newFixture(t, withCooldown)
	a, b := image(t), image(t)
	da, db := digestOf(t, a), digestOf(t, b)
	f.push(t, "test/app:v1", a)
	if d, code := f.tagDigest(t, "up/test/app:v1"); d != da {
		t.Fatalf("an image new to Airlock: %s %s, want it served at once", d, code)
	}
	f.push(t, "test/app:v1", b)
	f.clock.Add(ttl + time.Second)
	if d, _ := f.tagDigest(t, "up/test/app:v1"); d != da {
		t.Errorf("right after the move: %s, want the old %s", d, da)
	}
	f.clock.Add(12 * time.Hour)
	if d, _ := f.tagDigest(t, "up/test/app:v1"); d != da {
		t.Errorf("12 h after the move: %s, want the old %s", d, da)
	}
	f.clock.Add(12 * time.Hour)
	if d, _ := f.tagDigest(t, "up/test/app:v1"); d != db {
		t.Errorf("a day after the move: %s, want the new %s", d, db)
	}
}

// TestCIDigest: a tag of a namespace declared built by CI resolves only to
// the digest CI recorded for it; another digest is held with the finding.
func TestCIDigest(t *testing.T) {
	a, b := image(t), image(t)
	da := digestOf(t, a)
	f := newFixture(t, func(o *oci.Options) {
		tagMode(oci.TagsFollow)(o)
		p := policy.Default()
		p.Rules = []policy.Rule{{Match: "oci:up/test/*", CI: true}}
		o.Checks = p
		o.CI = func(_ context.Context, art verify.Artifact, d string) (*verify.Finding, error) {
			if art.Name == "up/test/app" && art.Version == "v1" && d == da {
				return nil, nil
			}
			return &verify.Finding{Check: policy.CheckCIDigest, Message: "not built by our CI"}, nil
		}
	})
	f.push(t, "test/app:v1", a)
	f.push(t, "test/app:v2", b)
	if d, code := f.tagDigest(t, "up/test/app:v1"); d != da {
		t.Errorf("recorded tag = %s %s", d, code)
	}
	if d, code := f.tagDigest(t, "up/test/app:v2"); code != "DENIED" {
		t.Errorf("unrecorded tag = %s %s, want DENIED", d, code)
	}
	q := f.quarantineOf(t, digestArtifact("up/test/app", digestOf(t, b)))
	if len(q.Findings) == 0 || q.Findings[0].Check != policy.CheckCIDigest {
		t.Errorf("record = %+v", q)
	}
}

// In a CI namespace that also requires a signature, an unsigned image is
// held for its signature, not only for its missing CI record: a record
// that later lifts ci-digest holds cannot let it through unverified.
func TestCIDigestAfterSignature(t *testing.T) {
	img := image(t)
	f := newFixture(t, requireSig(""), func(o *oci.Options) {
		p := policy.Default()
		p.Rules = []policy.Rule{{Match: "oci:up/test/*", CI: true}}
		o.Checks = p
		o.CI = func(context.Context, verify.Artifact, string) (*verify.Finding, error) {
			return &verify.Finding{Check: policy.CheckCIDigest, Message: "not built by our CI"}, nil
		}
	})
	f.push(t, "test/app:v1", img)
	if _, code := f.tagDigest(t, "up/test/app:v1"); code != "DENIED" {
		t.Fatalf("unsigned image in a CI namespace = %s", code)
	}
	q := f.quarantineOf(t, digestArtifact("up/test/app", digestOf(t, img)))
	if !policy.HasCheck(q.Findings, "signature") {
		t.Errorf("held without its signature finding: %+v", q.Findings)
	}
}
