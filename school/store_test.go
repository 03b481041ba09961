package school_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/server"
	"github.com/taipei-doit/ecardbot/store"
)

// taipei is Asia/Taipei without depending on the system's zone database.
var taipei = time.FixedZone("Asia/Taipei", 8*60*60)

// testRoster is the roster of school 313601 in the store tests: three pupils with cards, one
// without.
const testRoster = rosterHeader +
	"1001,王小明,2017-03-04,A123456789,04A1B2C3,1,101\n" +
	"1002,林小美,2016-12-31,F131104093,04A1B2C4,2,201\n" +
	"1003,陳大文,2016-05-06,O158238845,04A1B2C5,2,201\n" +
	"1004,李小華,2016-07-08,N116247806,,2,202\n"

// harness is the API on the real store on PostgreSQL, with school 313601, its roster and a key.
type harness struct {
	db       *store.DB
	gate     ecardbot.GateService
	school   *ecardbot.School
	key      string
	registry *prometheus.Registry
	engine   http.Handler
}

// mustHarness builds the harness. wrap, if not nil, wraps the store's gate service, for tests
// that need to fail one of its calls.
func mustHarness(tb testing.TB, wrap func(ecardbot.GateService) ecardbot.GateService) *harness {
	tb.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	h := &harness{registry: prometheus.NewRegistry()}
	var err error
	h.db, err = store.Open(ctx, store.Config{DatabaseURL: testenv.PostgresURL(tb), Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.db.Close() })
	if err := h.db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	schools := store.NewSchoolService(h.db)
	if _, _, err := schools.ImportSchools(ctx, []ecardbot.School{{Code: "313601", Name: "松山國小", District: "松山區",
		Level: "國小", Cutoff: ecardbot.DefaultCutoff, EarliestLeave: ecardbot.DefaultEarliestLeave}}); err != nil {
		tb.Fatal(err)
	}
	if h.school, err = schools.FindSchool(ctx, "313601"); err != nil {
		tb.Fatal(err)
	}
	entries, err := school.ParseRoster(strings.NewReader(testRoster), testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := store.NewRosterService(h.db).ImportRoster(ctx, "313601", entries); err != nil {
		tb.Fatal(err)
	}
	key, hash, err := school.NewKey(testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	if err := schools.AddAPIKey(ctx, "313601", hash); err != nil {
		tb.Fatal(err)
	}
	h.key = key

	h.gate = store.NewGateService(h.db, store.GateConfig{Location: taipei})
	if wrap != nil {
		h.gate = wrap(h.gate)
	}
	engine, err := server.New(server.Config{Logger: logger, Registry: h.registry})
	if err != nil {
		tb.Fatal(err)
	}
	school.NewAPI(school.APIConfig{SecretKey: testSecret, Location: taipei}, h.gate, logger, h.registry).Register(engine)
	h.engine = engine
	return h
}

func (h *harness) post(tb testing.TB, path, key, body string) (int, string) {
	tb.Helper()
	return post(tb, h.engine, path, key, body)
}

// ingest posts a batch that must be answered 200 and returns the answer.
func (h *harness) ingest(tb testing.TB, events ...string) ecardbot.IngestResult {
	tb.Helper()
	status, body := h.post(tb, "/api/v1/gate-events", h.key, batchJSON(events...))
	if status != http.StatusOK {
		tb.Fatalf("status %d %s, want 200", status, body)
	}
	return mustResult(tb, body)
}

// recent is a tap time a few minutes ago, as a reader in Taipei writes it.
func recent(minutesAgo int) string {
	return time.Now().Add(-time.Duration(minutesAgo) * time.Minute).In(taipei).Format(time.RFC3339)
}

func TestStoreGateEventsAndResend(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, nil)
	batch := []string{
		ev("r1-0001", "04a1b2c3", "in", recent(5)),                                                 // 0 accepted, card in lower case
		ev("r1-0002", "FFFF0000", "in", recent(5)),                                                 // 1 not on the roster
		ev("r1-0003", "04A1B2C4", "up", recent(5)),                                                 // 2 bad direction
		ev("r1-0004", "04A1B2C4", "", recent(4)),                                                   // 3 accepted
		ev("r1-0005", "DEADBEEF", "out", recent(4)),                                                // 4 not on the roster
		ev("r1-0006", "04A1B2C5", "in", time.Now().Add(time.Hour).Format(time.RFC3339)),            // 5 future
		ev("r1-0007", "04A1B2C5", "in", time.Now().UTC().Add(-3*time.Minute).Format(time.RFC3339)), // 6 accepted, Z
		ev("r1-0001", "04A1B2C3", "in", recent(5)),                                                 // 7 repeats 0
	}
	want := ecardbot.IngestResult{Accepted: 3, Duplicates: 1, Rejected: []ecardbot.Rejection{
		{Index: 1, Error: "unknown card"},
		{Index: 2, Error: `direction must be "in", "out" or empty`},
		{Index: 4, Error: "unknown card"},
		{Index: 5, Error: "at is more than 10 minutes in the future: check the reader's clock"},
	}}
	if diff := cmp.Diff(want, h.ingest(t, batch...)); diff != "" {
		t.Errorf("first post (-want +got):\n%s", diff)
	}

	// The reader did not get the answer and sends the batch again: nothing new.
	want.Accepted, want.Duplicates = 0, 4
	if diff := cmp.Diff(want, h.ingest(t, batch...)); diff != "" {
		t.Errorf("resend (-want +got):\n%s", diff)
	}
	if got := metric(t, h.registry, "ecardbot_gate_events_total", "accepted"); got != 3 {
		t.Errorf("accepted events metric = %v, want 3", got)
	}
	if got := metric(t, h.registry, "ecardbot_gate_events_total", "duplicate"); got != 5 {
		t.Errorf("duplicate events metric = %v, want 5", got)
	}
	if got := metric(t, h.registry, "ecardbot_gate_batches_total", "ok"); got != 2 {
		t.Errorf("ok batches metric = %v, want 2", got)
	}
}

// metric reads one series of a counter vector in reg by its outcome label.
func metric(tb testing.TB, reg *prometheus.Registry, name, outcome string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if f.GetName() == name && l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	tb.Fatalf("no series %s{outcome=%q}", name, outcome)
	return 0
}

// A refused request stores nothing: the same event sent properly afterwards is new.
func TestStoreRefusedBatchesStoreNothing(t *testing.T) {
	t.Parallel()
	event := ev("kept-out", "04A1B2C3", "in", recent(2))
	many := []string{event}
	for i := range school.MaxBatchEvents {
		many = append(many, ev(fmt.Sprintf("many-%d", i), "04A1B2C4", "in", recent(2)))
	}
	tests := []struct {
		name string
		key  string
		body string
		want int
	}{
		{"no key", "", batchJSON(event), http.StatusUnauthorized},
		{"wrong key", "gk_" + strings.Repeat("A", 43), batchJSON(event), http.StatusUnauthorized},
		{"malformed", "KEY", batchJSON(event) + "]", http.StatusBadRequest},
		{"1,001 events", "KEY", batchJSON(many...), http.StatusRequestEntityTooLarge},
		{"over 2 MiB", "KEY", `{"events": [` + event + `], "pad": "` + strings.Repeat("x", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
	}
	h := mustHarness(t, nil)
	for _, tt := range tests {
		key := tt.key
		if key == "KEY" {
			key = h.key
		}
		if status, body := h.post(t, "/api/v1/gate-events", key, tt.body); status != tt.want {
			t.Errorf("%s: status %d %s, want %d", tt.name, status, body, tt.want)
		}
	}
	want := ecardbot.IngestResult{Accepted: 1, Rejected: []ecardbot.Rejection{}}
	if diff := cmp.Diff(want, h.ingest(t, event)); diff != "" {
		t.Errorf("the event after the refusals (-want +got):\n%s", diff)
	}
}

func TestStoreDownAnswers503(t *testing.T) {
	t.Parallel()
	t.Run("before authentication", func(t *testing.T) {
		t.Parallel()
		h := mustHarness(t, nil)
		h.db.Close()
		status, body := h.post(t, "/api/v1/gate-events", h.key, batchJSON(ev("a", "04A1B2C3", "in", recent(1))))
		if status != http.StatusServiceUnavailable {
			t.Errorf("status %d %s, want 503", status, body)
		}
		if status, body := h.post(t, "/api/v1/leaves", h.key, `{"student_no": "1001", "date": "2026-11-27", "kind": "sick"}`); status != http.StatusServiceUnavailable {
			t.Errorf("leave: status %d %s, want 503", status, body)
		}
	})
	t.Run("during ingest", func(t *testing.T) {
		t.Parallel()
		// Authentication answers from memory, so the closed database is met by Ingest itself.
		var cached cachedAuth
		h := mustHarness(t, func(g ecardbot.GateService) ecardbot.GateService { cached.GateService = g; return &cached })
		cached.school = h.school
		h.db.Close()
		status, body := h.post(t, "/api/v1/gate-events", h.key, batchJSON(ev("a", "04A1B2C3", "in", recent(1))))
		if status != http.StatusServiceUnavailable {
			t.Errorf("status %d %s, want 503", status, body)
		}
		if got := metric(t, h.registry, "ecardbot_gate_batches_total", "unavailable"); got != 1 {
			t.Errorf("unavailable batches metric = %v, want 1", got)
		}
	})
}

// cachedAuth is the store's gate service with a school authenticated without the database.
type cachedAuth struct {
	ecardbot.GateService
	school *ecardbot.School
}

func (c *cachedAuth) AuthenticateSchool(context.Context, string) (*ecardbot.School, error) {
	return c.school, nil
}

func TestStoreLeaves(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, nil)
	today := time.Now().In(taipei).Format(time.DateOnly)
	tests := []struct {
		name string
		key  string
		body string
		want int
	}{
		{"recorded", h.key, `{"student_no": "1001", "date": "` + today + `", "kind": "sick"}`, http.StatusCreated},
		{"recorded again", h.key, `{"student_no": "1001", "date": "` + today + `", "kind": "sick"}`, http.StatusCreated},
		{"pupil without a card", h.key, `{"student_no": "1004", "date": "` + today + `", "kind": "personal"}`, http.StatusCreated},
		{"unknown student", h.key, `{"student_no": "9999", "date": "` + today + `", "kind": "sick"}`, http.StatusNotFound},
		{"bad date", h.key, `{"student_no": "1001", "date": "27/11/2026", "kind": "sick"}`, http.StatusBadRequest},
		{"missing kind", h.key, `{"student_no": "1001", "date": "` + today + `"}`, http.StatusBadRequest},
		{"bad key", "gk_nope", `{"student_no": "1001", "date": "` + today + `", "kind": "sick"}`, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		if status, body := h.post(t, "/api/v1/leaves", tt.key, tt.body); status != tt.want {
			t.Errorf("%s: status %d %s, want %d", tt.name, status, body, tt.want)
		}
	}
}

// Readers of one school post at the same time, some of them the same events.
func TestStoreConcurrentBatches(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, nil)
	batch := []string{
		ev("c-1", "04A1B2C3", "in", recent(3)),
		ev("c-2", "04A1B2C4", "in", recent(3)),
		ev("c-3", "04A1B2C5", "in", recent(3)),
	}
	var wg sync.WaitGroup
	results := make([]ecardbot.IngestResult, 4)
	for i := range results {
		wg.Go(func() { results[i] = h.ingest(t, batch...) })
	}
	wg.Wait()
	accepted, duplicates := 0, 0
	for _, r := range results {
		accepted += r.Accepted
		duplicates += r.Duplicates
	}
	if accepted != 3 || duplicates != 9 {
		t.Errorf("over 4 concurrent batches: %d accepted, %d duplicates; want 3 and 9", accepted, duplicates)
	}
}
