package school_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/server"
)

// GateService is a mock of ecardbot.GateService, for the checks the handlers make themselves.
// What storage does is tested against the real store (store_test.go).
type GateService struct {
	AuthenticateSchoolFn func(ctx context.Context, keyHash string) (*ecardbot.School, error)
	IngestFn             func(ctx context.Context, s *ecardbot.School, events []ecardbot.GateEvent) (ecardbot.IngestResult, error)
	RecordLeaveFn        func(ctx context.Context, s *ecardbot.School, studentNo, date, kind string) error
}

var _ ecardbot.GateService = (*GateService)(nil)

func (g *GateService) AuthenticateSchool(ctx context.Context, keyHash string) (*ecardbot.School, error) {
	return g.AuthenticateSchoolFn(ctx, keyHash)
}

func (g *GateService) Ingest(ctx context.Context, s *ecardbot.School, events []ecardbot.GateEvent) (ecardbot.IngestResult, error) {
	return g.IngestFn(ctx, s, events)
}

func (g *GateService) RecordLeave(ctx context.Context, s *ecardbot.School, studentNo, date, kind string) error {
	return g.RecordLeaveFn(ctx, s, studentNo, date, kind)
}

// mockNow is the fixed clock of the mock tests: a school morning in Taipei.
var mockNow = time.Date(2026, 11, 27, 7, 45, 0, 0, time.FixedZone("CST", 8*3600))

const mockKey = "gk_test-key"

// mustMockAPI serves the API over a mock whose key is mockKey and whose Ingest rejects the card
// "UNKNOWN" and accepts the rest, recording what it was given.
func mustMockAPI(tb testing.TB) (http.Handler, *GateService, *[][]ecardbot.GateEvent) {
	tb.Helper()
	var ingested [][]ecardbot.GateEvent
	sch := &ecardbot.School{ID: 1, Code: "313601"}
	gate := &GateService{
		AuthenticateSchoolFn: func(_ context.Context, keyHash string) (*ecardbot.School, error) {
			if keyHash != school.KeyHash(testSecret, mockKey) {
				return nil, ecardbot.Errorf(ecardbot.EUNAUTHORIZED, "Unknown key.")
			}
			return sch, nil
		},
		IngestFn: func(_ context.Context, s *ecardbot.School, events []ecardbot.GateEvent) (ecardbot.IngestResult, error) {
			if s != sch {
				tb.Errorf("Ingest for school %+v, want the authenticated one", s)
			}
			ingested = append(ingested, events)
			res := ecardbot.IngestResult{}
			for i, ev := range events {
				if ev.Card == "UNKNOWN" {
					res.Rejected = append(res.Rejected, ecardbot.Rejection{Index: i, Error: "unknown card"})
				} else {
					res.Accepted++
				}
			}
			return res, nil
		},
		RecordLeaveFn: func(_ context.Context, _ *ecardbot.School, studentNo, _, _ string) error {
			if studentNo != "1001" {
				return ecardbot.Errorf(ecardbot.ENOTFOUND, "Not found.")
			}
			return nil
		},
	}
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	engine, err := server.New(server.Config{Logger: logger, Registry: reg})
	if err != nil {
		tb.Fatal(err)
	}
	school.NewAPI(school.APIConfig{SecretKey: testSecret, Now: func() time.Time { return mockNow }}, gate, logger, reg).Register(engine)
	return engine, gate, &ingested
}

// post sends body to path with the key (none when empty) and returns the status and body.
func post(tb testing.TB, h http.Handler, path, key, body string) (int, string) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func mustResult(tb testing.TB, body string) ecardbot.IngestResult {
	tb.Helper()
	var res ecardbot.IngestResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		tb.Fatalf("response %q: %v", body, err)
	}
	return res
}

func batchJSON(events ...string) string {
	return `{"events": [` + strings.Join(events, ",") + `]}`
}

func ev(id, card, dir, at string) string {
	return fmt.Sprintf(`{"id": %q, "card": %q, "direction": %q, "at": %q, "gate": "north-1"}`, id, card, dir, at)
}

func TestGateEventValidation(t *testing.T) {
	t.Parallel()
	const at = "2026-11-27T07:42:10+08:00"
	tests := []struct {
		name  string
		event string
		want  string // the rejection; "" means accepted
	}{
		{"in", ev("e", "04A1", "in", at), ""},
		{"out", ev("e", "04A1", "out", at), ""},
		{"unknown direction", ev("e", "04A1", "", at), ""},
		{"no direction field", `{"id": "e", "card": "04A1", "at": "` + at + `"}`, ""},
		{"Z offset with fraction", ev("e", "04A1", "in", "2026-11-26T23:42:10.123Z"), ""},
		{"9 minutes ahead: skew tolerated", ev("e", "04A1", "in", "2026-11-27T07:54:00+08:00"), ""},
		{"unknown fields ignored", `{"id": "e", "card": "04A1", "at": "` + at + `", "battery": 3}`, ""},
		{"id of 128 characters", ev(strings.Repeat("編", 128), "04A1", "in", at), ""},
		{"missing id", ev("", "04A1", "in", at), "id is required"},
		{"id too long", ev(strings.Repeat("x", 129), "04A1", "in", at), "id is longer than 128 characters"},
		{"id with NUL", `{"id": "e\u0000", "card": "04A1", "at": "` + at + `"}`, "id contains control characters"},
		{"missing card", ev("e", " ", "in", at), "card is required"},
		{"card too long", ev("e", strings.Repeat("F", 129), "in", at), "card is longer than 128 characters"},
		{"direction upper-case", ev("e", "04A1", "IN", at), `direction must be "in", "out" or empty`},
		{"direction other", ev("e", "04A1", "enter", at), `direction must be "in", "out" or empty`},
		{"missing at", ev("e", "04A1", "in", ""), "at is required"},
		{"at without offset", ev("e", "04A1", "in", "2026-11-27T07:42:10"), "at must be an RFC 3339 time, e.g. 2026-11-27T07:42:10+08:00"},
		{"at as a date", ev("e", "04A1", "in", "2026-11-27"), "at must be an RFC 3339 time, e.g. 2026-11-27T07:42:10+08:00"},
		{"at as Unix time", `{"id": "e", "card": "04A1", "at": 1795736530}`, "at must be a string"},
		{"at 11 minutes ahead", ev("e", "04A1", "in", "2026-11-27T07:56:00+08:00"), "at is more than 10 minutes in the future: check the reader's clock"},
		{"id as a number", `{"id": 7, "card": "04A1", "at": "` + at + `"}`, "id must be a string"},
		{"gate too long", `{"id": "e", "card": "04A1", "at": "` + at + `", "gate": "` + strings.Repeat("g", 129) + `"}`, "gate is longer than 128 characters"},
		{"event is a number", `5`, "event must be a JSON object"},
		{"event is a list", `["e"]`, "event must be a JSON object"},
		{"event is null", `null`, "id is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _, _ := mustMockAPI(t)
			status, body := post(t, h, "/api/v1/gate-events", mockKey, batchJSON(tt.event))
			if status != http.StatusOK {
				t.Fatalf("status %d %s, want 200", status, body)
			}
			want := ecardbot.IngestResult{Accepted: 1, Rejected: []ecardbot.Rejection{}}
			if tt.want != "" {
				want = ecardbot.IngestResult{Rejected: []ecardbot.Rejection{{Index: 0, Error: tt.want}}}
			}
			if diff := cmp.Diff(want, mustResult(t, body)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

// Ingest numbers its rejections among the events it was given; the reader must get them by
// their index in its own batch.
func TestGateEventRejectionsKeepBatchIndexes(t *testing.T) {
	t.Parallel()
	h, _, ingested := mustMockAPI(t)
	const at = "2026-11-27T07:42:10+08:00"
	status, body := post(t, h, "/api/v1/gate-events", mockKey, batchJSON(
		ev("a", "04a1", "in", at),          // 0 accepted; card upper-cased
		ev("b", "04A2", "sideways", at),    // 1 rejected here
		ev("c", "unknown", "in", at),       // 2 rejected by storage, its index 1
		ev("a", "04A1", "in", at),          // 3 repeats 0 inside the batch: duplicate
		ev("d", "04A3", "out", at),         // 4 accepted
		ev("c", "UNKNOWN", "in", at),       // 5 repeats 2, which storage rejected
		ev("e", "04A4", "in", "yesterday"), // 6 rejected here
	))
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	want := ecardbot.IngestResult{Accepted: 2, Duplicates: 1, Rejected: []ecardbot.Rejection{
		{Index: 1, Error: `direction must be "in", "out" or empty`},
		{Index: 2, Error: "unknown card"},
		{Index: 5, Error: "unknown card"},
		{Index: 6, Error: "at must be an RFC 3339 time, e.g. 2026-11-27T07:42:10+08:00"},
	}}
	if diff := cmp.Diff(want, mustResult(t, body)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	wantAt := time.Date(2026, 11, 26, 23, 42, 10, 0, time.UTC)
	wantEvents := [][]ecardbot.GateEvent{{
		{ID: "a", Card: "04A1", Direction: ecardbot.DirectionIn, At: wantAt, Gate: "north-1"},
		{ID: "c", Card: "UNKNOWN", Direction: ecardbot.DirectionIn, At: wantAt, Gate: "north-1"},
		{ID: "d", Card: "04A3", Direction: ecardbot.DirectionOut, At: wantAt, Gate: "north-1"},
	}}
	if diff := cmp.Diff(wantEvents, *ingested, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("events given to Ingest (-want +got):\n%s", diff)
	}
}

func TestGateEventsRefusedBeforeStorage(t *testing.T) {
	t.Parallel()
	one := batchJSON(ev("a", "04A1", "in", "2026-11-27T07:42:10+08:00"))
	many := make([]string, school.MaxBatchEvents+1)
	for i := range many {
		many[i] = ev(fmt.Sprint(i), "04A1", "in", "2026-11-27T07:42:10+08:00")
	}
	tests := []struct {
		name   string
		header string // Authorization
		body   string
		want   int
	}{
		{"no key", "", one, http.StatusUnauthorized},
		{"unknown key", "Bearer gk_wrong", one, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", one, http.StatusUnauthorized},
		{"basic auth", "Basic " + mockKey, one, http.StatusUnauthorized},
		{"key too long", "Bearer " + strings.Repeat("k", 300), one, http.StatusUnauthorized},
		{"scheme in lower case", "bearer " + mockKey, one, http.StatusOK},
		{"not JSON", "Bearer " + mockKey, "events=1", http.StatusBadRequest},
		{"truncated JSON", "Bearer " + mockKey, one[:len(one)-2], http.StatusBadRequest},
		{"trailing data", "Bearer " + mockKey, one + "{}", http.StatusBadRequest},
		{"no events field", "Bearer " + mockKey, `{"event": []}`, http.StatusBadRequest},
		{"events null", "Bearer " + mockKey, `{"events": null}`, http.StatusBadRequest},
		{"events not a list", "Bearer " + mockKey, `{"events": {"id": "a"}}`, http.StatusBadRequest},
		{"a list, not an object", "Bearer " + mockKey, `[]`, http.StatusBadRequest},
		{"empty body", "Bearer " + mockKey, ``, http.StatusBadRequest},
		{"1,001 events", "Bearer " + mockKey, batchJSON(many...), http.StatusRequestEntityTooLarge},
		{"over 2 MiB", "Bearer " + mockKey, `{"events": [], "pad": "` + strings.Repeat("x", school.MaxBatchBytes) + `"}`, http.StatusRequestEntityTooLarge},
		{"1,000 events", "Bearer " + mockKey, batchJSON(many[:1000]...), http.StatusOK},
		{"no events", "Bearer " + mockKey, `{"events": []}`, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _, ingested := mustMockAPI(t)
			req := httptest.NewRequest(http.MethodPost, "/api/v1/gate-events", strings.NewReader(tt.body))
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if tt.want != http.StatusOK && len(*ingested) > 0 {
				t.Errorf("Ingest was called for a refused request")
			}
			if tt.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tt.want != http.StatusOK && !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("body %s, want an error message", rec.Body)
			}
			if tt.want == http.StatusOK && !strings.Contains(rec.Body.String(), `"rejected":[]`) {
				t.Errorf("body %s, want rejected as an empty list", rec.Body)
			}
		})
	}
}

// Storage that is down (EUNAVAILABLE) is a 503, which readers retry; any other failure is a 500,
// and neither shows the internal error.
func TestGateEventsStorageFailures(t *testing.T) {
	t.Parallel()
	body := batchJSON(ev("a", "04A1", "in", "2026-11-27T07:42:10+08:00"))
	for _, tt := range []struct {
		name      string
		authErr   error
		ingestErr error
		want      int
	}{
		{"Ingest unavailable", nil, fmt.Errorf("ingest: %w", ecardbot.Errorf(ecardbot.EUNAVAILABLE, "Storage is unavailable.")), http.StatusServiceUnavailable},
		{"authentication unavailable", fmt.Errorf("auth: %w", ecardbot.Errorf(ecardbot.EUNAVAILABLE, "Storage is unavailable.")), nil, http.StatusServiceUnavailable},
		{"Ingest internal", nil, errors.New("pq: syntax error near 10.0.0.7"), http.StatusInternalServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, gate, _ := mustMockAPI(t)
			if tt.authErr != nil {
				gate.AuthenticateSchoolFn = func(context.Context, string) (*ecardbot.School, error) { return nil, tt.authErr }
			}
			if tt.ingestErr != nil {
				gate.IngestFn = func(context.Context, *ecardbot.School, []ecardbot.GateEvent) (ecardbot.IngestResult, error) {
					return ecardbot.IngestResult{}, tt.ingestErr
				}
			}
			status, got := post(t, h, "/api/v1/gate-events", mockKey, body)
			if status != tt.want {
				t.Errorf("status %d %s, want %d", status, got, tt.want)
			}
			if strings.Contains(got, "10.0.0.7") || strings.Contains(got, "auth:") {
				t.Errorf("body %s shows the internal error", got)
			}
		})
	}
}

func TestLeaves(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  string
		body string
		want int
	}{
		{"recorded", mockKey, `{"student_no": "1001", "date": "2026-11-27", "kind": "sick"}`, http.StatusCreated},
		{"spaces trimmed", mockKey, `{"student_no": " 1001 ", "date": "2026-11-30", "kind": "personal"}`, http.StatusCreated},
		{"no key", "", `{"student_no": "1001", "date": "2026-11-27", "kind": "sick"}`, http.StatusUnauthorized},
		{"unknown key", "gk_nope", `{"student_no": "1001", "date": "2026-11-27", "kind": "sick"}`, http.StatusUnauthorized},
		{"unknown student", mockKey, `{"student_no": "9999", "date": "2026-11-27", "kind": "sick"}`, http.StatusNotFound},
		{"missing student_no", mockKey, `{"date": "2026-11-27", "kind": "sick"}`, http.StatusBadRequest},
		{"missing date", mockKey, `{"student_no": "1001", "kind": "sick"}`, http.StatusBadRequest},
		{"missing kind", mockKey, `{"student_no": "1001", "date": "2026-11-27"}`, http.StatusBadRequest},
		{"bad date", mockKey, `{"student_no": "1001", "date": "2026-11-31", "kind": "sick"}`, http.StatusBadRequest},
		{"date with time", mockKey, `{"student_no": "1001", "date": "2026-11-27T00:00:00Z", "kind": "sick"}`, http.StatusBadRequest},
		{"date years away", mockKey, `{"student_no": "1001", "date": "2030-11-27", "kind": "sick"}`, http.StatusBadRequest},
		{"student_no a number", mockKey, `{"student_no": 1001, "date": "2026-11-27", "kind": "sick"}`, http.StatusBadRequest},
		{"not JSON", mockKey, `student_no=1001`, http.StatusBadRequest},
		{"too large", mockKey, `{"kind": "` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _, _ := mustMockAPI(t)
			status, body := post(t, h, "/api/v1/leaves", tt.key, tt.body)
			if status != tt.want {
				t.Errorf("status %d %s, want %d", status, body, tt.want)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	key, hash, err := school.NewKey(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "gk_") || len(key) != 3+43 || strings.ContainsAny(key, "+/=\n") {
		t.Errorf("key %q, want gk_ and 43 base64url characters", key)
	}
	if hash != ecardbot.KeyedHash(testSecret, ecardbot.PurposeGateKey, key) || strings.Contains(hash, key) {
		t.Errorf("hash %q is not the keyed hash of the key", hash)
	}
	other, _, _ := school.NewKey(testSecret)
	if other == key {
		t.Error("two keys are equal")
	}
	if _, _, err := school.NewKey(nil); err == nil {
		t.Error("NewKey without a secret succeeded")
	}
}
