package school_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/taipei-doit/ecardbot/school"
)

// FuzzGateEvents posts arbitrary bodies, with the school's key and without, through the real
// handler on PostgreSQL. Whatever a reader sends, the API never panics and, with storage up,
// never answers 5xx (a reader would retry it forever); a 200 accounts for every event of the
// batch exactly once, with rejections in batch order.
func FuzzGateEvents(f *testing.F) {
	h := mustHarness(f, nil)
	seeds := []string{
		batchJSON(ev("f-1", "04A1B2C3", "in", recent(1)), ev("f-2", "unknown", "out", recent(1))),
		batchJSON(ev("f-1", "04A1B2C3", "in", recent(1)), ev("f-1", "04A1B2C3", "in", recent(1))),
		batchJSON(ev("f-3", "04a1b2c4", "", "2026-11-27T07:42:10Z"), ev("", "", "x", "now")),
		`{"events": [null, 1, "x", {}, [], {"id": 5}, {"id": "a", "card": "04A1B2C3", "at": "9999-12-31T23:59:59+14:00"}]}`,
		`{"events": [{"id": "\u0000", "card": "\ud800", "at": "0001-01-01T00:00:00Z"}]}`,
		`{"events": [{"id": "long", "card": "04A1B2C3", "at": "1900-01-01T00:00:00-23:59", "gate": "` + strings.Repeat("閘", 128) + `"}]}`,
		`{"events": []}`,
		`{"events": {}}`,
		`{"EVENTS": [{"ID": "case", "Card": "04A1B2C5", "At": "2026-11-27T07:42:10+08:00"}]}`,
		`[]`,
		``,
		`{"events": [`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, withKey bool) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/gate-events", strings.NewReader(string(body)))
		if withKey {
			req.Header.Set("Authorization", "Bearer "+h.key)
		}
		rec := httptest.NewRecorder()
		h.engine.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d %s for body %q", rec.Code, rec.Body, body)
		case !withKey && rec.Code != http.StatusUnauthorized:
			t.Fatalf("no key answered %d, want 401", rec.Code)
		case rec.Code != http.StatusOK:
			return
		}
		var batch struct{ Events []json.RawMessage }
		if err := json.Unmarshal(body, &batch); err != nil {
			t.Fatalf("200 for a body that is not a batch: %q", body)
		}
		res := mustResult(t, rec.Body.String())
		if res.Rejected == nil {
			t.Fatalf("rejected is not a list: %s", rec.Body)
		}
		if n := res.Accepted + res.Duplicates + len(res.Rejected); n != len(batch.Events) {
			t.Fatalf("%d events answered as %d accepted, %d duplicates, %d rejected", len(batch.Events), res.Accepted, res.Duplicates, len(res.Rejected))
		}
		for i, r := range res.Rejected {
			if r.Index < 0 || r.Index >= len(batch.Events) || i > 0 && r.Index <= res.Rejected[i-1].Index || r.Error == "" {
				t.Fatalf("bad rejections %+v for %d events", res.Rejected, len(batch.Events))
			}
		}
	})
}

// FuzzParseRoster feeds arbitrary files to both parsers: they never panic, and a bad file is a
// *ParseError whose lines exist and whose listing is capped.
func FuzzParseRoster(f *testing.F) {
	f.Add(testRoster)
	f.Add(schoolHeader + "313601,松山國小,松山區,國小,\n")
	f.Add("\uFEFF" + rosterHeader + "\"1001\",\"王\n小明\",2017-03-04,A123456789,,1,101\n\"unterminated")
	f.Add(rosterHeader + "1,a,b,c\n\x00,\xff,\"\",\n")
	f.Fuzz(func(t *testing.T, file string) {
		lines := strings.Count(file, "\n") + 1
		check := func(err error) {
			if err == nil {
				return
			}
			var perr *school.ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if len(perr.Lines) == 0 || len(perr.Lines) > school.MaxLineErrors || perr.Total < len(perr.Lines) {
				t.Fatalf("%d lines listed of %d", len(perr.Lines), perr.Total)
			}
			for _, l := range perr.Lines {
				if l.Line < 1 || l.Line > lines+1 || l.Message == "" {
					t.Fatalf("line error %+v in a file of %d lines", l, lines)
				}
			}
		}
		entries, err := school.ParseRoster(strings.NewReader(file), testSecret)
		check(err)
		for _, e := range entries {
			if e.NationalIDHash == "" || e.StudentNo == "" || e.Line < 2 {
				t.Fatalf("entry %+v", e)
			}
		}
		_, err = school.ParseSchools(strings.NewReader(file))
		check(err)
	})
}
