package linesim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var taipeiLoc = time.FixedZone("Asia/Taipei", 8*60*60)

func testPupils(n int) []GatePupil {
	pupils := make([]GatePupil, n)
	for i := range pupils {
		pupils[i] = GatePupil{StudentNo: fmt.Sprintf("S%05d", i), Card: fmt.Sprintf("04%06X", i)}
		if i%100 == 99 {
			pupils[i].Card = "" // no card yet
		}
	}
	return pupils
}

func mustDay(t *testing.T, pupils []GatePupil, seed uint64) *SchoolDay {
	t.Helper()
	day, err := GenerateDay(pupils, SchoolDayConfig{Date: "2026-11-27", Location: taipeiLoc, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return day
}

func TestGenerateDay(t *testing.T) {
	t.Parallel()
	pupils := testPupils(2000)
	day := mustDay(t, pupils, 1)
	if again := mustDay(t, pupils, 1); !cmp.Equal(day, again) {
		t.Error("the same seed made another day")
	}
	if other := mustDay(t, pupils, 2); cmp.Equal(day.Taps, other.Taps) {
		t.Error("another seed made the same day")
	}
	if _, err := GenerateDay(pupils, SchoolDayConfig{Date: "2026-02-30"}); err == nil {
		t.Error("an impossible date was accepted")
	}

	if day.Pupils != 1980 {
		t.Errorf("%d pupils with a card, want 1980", day.Pupils)
	}
	if day.Absent < 20 || day.Absent > 120 {
		t.Errorf("%d absent of 1980, want about 3%%", day.Absent)
	}
	if day.UnknownCards != 7 || day.Resent == 0 {
		t.Errorf("unknown cards %d (want 7), resent %d (want some)", day.UnknownCards, day.Resent)
	}
	if !day.OfflineFrom.Before(day.OfflineUntil) || day.OfflineUntil.Sub(day.OfflineFrom) < 20*time.Minute {
		t.Errorf("offline %v–%v", day.OfflineFrom, day.OfflineUntil)
	}

	onRoster := map[string]bool{}
	for _, p := range pupils {
		onRoster[p.Card] = true
	}
	var (
		ids                            = map[string]GateTap{}
		repeats, unknown, late, double int
		in, inRush, out, outHome       int
		lastByCard                     = map[string]GateTap{}
		dayStart                       = time.Date(2026, 11, 27, 0, 0, 0, 0, taipeiLoc)
	)
	clock := func(hh, mm int) time.Time {
		return dayStart.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	}
	for i, tap := range day.Taps {
		if i > 0 && tap.Upload.Before(day.Taps[i-1].Upload) {
			t.Fatalf("tap %d uploads before tap %d", i, i-1)
		}
		if prev, seen := ids[tap.ID]; seen {
			if prev.Card != tap.Card || !prev.At.Equal(tap.At) || tap.Upload != day.OfflineUntil {
				t.Errorf("id %s reused for another tap", tap.ID)
			}
			repeats++
			continue
		}
		ids[tap.ID] = tap
		if tap.At.Before(dayStart) || !tap.At.Before(dayStart.AddDate(0, 0, 1)) || tap.At.Location() != taipeiLoc {
			t.Errorf("tap %s at %v, not on the day in Taipei", tap.ID, tap.At)
		}
		if !strings.HasPrefix(tap.ID, tap.Gate+"-20261127-") {
			t.Errorf("id %s does not name gate and date", tap.ID)
		}
		switch lag := tap.Upload.Sub(tap.At); {
		case lag <= 0:
			t.Errorf("tap %s uploads before it happens", tap.ID)
		case lag > time.Minute:
			late++
			if tap.Gate != day.OfflineGate || tap.Upload != day.OfflineUntil || tap.At.Before(day.OfflineFrom.Add(-time.Minute)) {
				t.Errorf("tap %s uploads %v late outside the outage", tap.ID, lag)
			}
		}
		if (tap.Gate == gateSide) != (tap.Direction == "") {
			t.Errorf("tap %s at %s has direction %q", tap.ID, tap.Gate, tap.Direction)
		}
		if !onRoster[tap.Card] {
			unknown++
			continue
		}
		if prev, ok := lastByCard[tap.Card]; ok && tap.At.Sub(prev.At) < time.Minute && tap.Gate == prev.Gate {
			double++
		}
		lastByCard[tap.Card] = tap
		if tap.At.Before(clock(12, 0)) && tap.Direction != "out" {
			in++
			if !tap.At.Before(clock(7, 10)) && tap.At.Before(clock(8, 21)) {
				inRush++
			}
		} else if !tap.At.Before(clock(14, 0)) {
			out++
			if !tap.At.Before(clock(15, 50)) && tap.At.Before(clock(16, 41)) {
				outHome++
			}
		}
	}
	if repeats != day.Resent {
		t.Errorf("%d repeated ids, want the %d resent", repeats, day.Resent)
	}
	if unknown != day.UnknownCards {
		t.Errorf("%d taps of unknown cards, want %d", unknown, day.UnknownCards)
	}
	if late == 0 {
		t.Error("no tap waited for the offline reader")
	}
	if double < 50 {
		t.Errorf("%d double taps, want about 8%% of arrivals", double)
	}
	if float64(inRush) < 0.95*float64(in) || float64(outHome) < 0.95*float64(out) {
		t.Errorf("arrivals %d of %d in 07:10–08:20, departures %d of %d in 15:50–16:40", inRush, in, outHome, out)
	}
	if in < 1800 || out < 1700 {
		t.Errorf("%d arrival taps and %d afternoon departures for 1980 pupils", in, out)
	}
}

func TestUploadedBy(t *testing.T) {
	t.Parallel()
	day := mustDay(t, testPupils(300), 3)
	for _, at := range []time.Time{
		time.Date(2026, 11, 27, 0, 0, 0, 0, taipeiLoc),
		time.Date(2026, 11, 27, 7, 50, 0, 0, taipeiLoc),
		day.OfflineUntil,
		time.Date(2026, 11, 28, 0, 0, 0, 0, taipeiLoc),
	} {
		got := day.UploadedBy(at)
		for _, tap := range got {
			if tap.Upload.After(at) {
				t.Fatalf("UploadedBy(%v) includes a tap uploaded at %v", at, tap.Upload)
			}
		}
		if rest := day.Taps[len(got):]; len(rest) > 0 && !rest[0].Upload.After(at) {
			t.Errorf("UploadedBy(%v) misses a tap uploaded at %v", at, rest[0].Upload)
		}
	}
	if got := day.UploadedBy(time.Date(2026, 11, 28, 0, 0, 0, 0, taipeiLoc)); len(got) != len(day.Taps) {
		t.Errorf("by midnight %d of %d taps", len(got), len(day.Taps))
	}
}

// fakeGateAPI answers gate batches like the real API, and fails on request.
type fakeGateAPI struct {
	mu      sync.Mutex
	seen    map[string]bool
	batches [][]gateEventJSON
	// fail decides, per request number (from 1), what goes wrong: "503", "drop" (close the
	// connection), "401", or "" for nothing.
	fail     func(n int) string
	requests int
}

func (f *fakeGateAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/gate-events" ||
		r.Header.Get("Authorization") != "Bearer gk_test" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request line or headers", http.StatusBadRequest)
		return
	}
	switch f.fail(f.requests) {
	case "503":
		http.Error(w, `{"error":"Storage is unavailable; try again later."}`, http.StatusServiceUnavailable)
		return
	case "401":
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"Missing or unknown API key."}`))
		return
	case "drop":
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	var body struct{ Events []gateEventJSON }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.batches = append(f.batches, body.Events)
	var answer gateAnswer
	for i, e := range body.Events {
		switch {
		case strings.HasPrefix(e.Card, "EE"):
			answer.Rejected = append(answer.Rejected, struct {
				Index int    `json:"index"`
				Error string `json:"error"`
			}{i, "unknown card"})
		case f.seen[e.ID]:
			answer.Duplicates++
		default:
			f.seen[e.ID] = true
			answer.Accepted++
		}
	}
	json.NewEncoder(w).Encode(answer)
}

func startFakeGateAPI(t *testing.T, fail func(n int) string) (*fakeGateAPI, string) {
	t.Helper()
	f := &fakeGateAPI{seen: map[string]bool{}, fail: fail}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// recordSleep returns a Sleep that records the waits instead of waiting.
func recordSleep(waits *[]time.Duration) func(context.Context, time.Duration) error {
	return func(_ context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return nil
	}
}

func TestGateReaderPostsADay(t *testing.T) {
	t.Parallel()
	day := mustDay(t, testPupils(400), 5)
	// Request 2 fails twice with 503, request 5 loses its connection.
	fake, url := startFakeGateAPI(t, func(n int) string {
		switch n {
		case 2, 3:
			return "503"
		case 6:
			return "drop"
		}
		return ""
	})
	var waits []time.Duration
	reader := NewGateReader(GateReaderConfig{URL: url + "/", Key: "gk_test", BatchSize: 40, Backoff: time.Second, Sleep: recordSleep(&waits)})
	got, err := reader.Post(context.Background(), day.Taps)
	if err != nil {
		t.Fatal(err)
	}
	unique := len(day.Taps) - day.Resent - day.UnknownCards
	want := GateResult{Batches: len(fake.batches), Events: len(day.Taps), Accepted: unique, Duplicates: day.Resent,
		Rejected: day.UnknownCards, Reasons: map[string]int{"unknown card": day.UnknownCards}, Retries: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, time.Second}, waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}

	// Batches hold what one reader uploaded at one time, at most 40, in upload order.
	var posted []gateEventJSON
	for _, b := range fake.batches {
		if len(b) == 0 || len(b) > 40 {
			t.Fatalf("batch of %d", len(b))
		}
		for _, e := range b[1:] {
			if e.Gate != b[0].Gate {
				t.Fatalf("one batch from gates %s and %s", b[0].Gate, e.Gate)
			}
		}
		posted = append(posted, b...)
	}
	if len(posted) != len(day.Taps) {
		t.Fatalf("%d events posted, want %d", len(posted), len(day.Taps))
	}
	for i, tap := range day.Taps {
		want := gateEventJSON{ID: tap.ID, Card: tap.Card, Direction: tap.Direction, At: tap.At.Format(time.RFC3339), Gate: tap.Gate}
		if posted[i] != want {
			t.Fatalf("event %d = %+v, want %+v", i, posted[i], want)
		}
	}
	if !strings.HasSuffix(posted[0].At, "+08:00") {
		t.Errorf("at %q is not in the school's zone", posted[0].At)
	}

	// Played again: all duplicates, except the cards the API does not know.
	again, err := reader.Post(context.Background(), day.Taps)
	if err != nil {
		t.Fatal(err)
	}
	if again.Accepted != 0 || again.Duplicates != len(day.Taps)-day.UnknownCards || again.Rejected != day.UnknownCards {
		t.Errorf("second play: %+v", again)
	}
}

func TestGateReaderGivesUp(t *testing.T) {
	t.Parallel()
	taps := mustDay(t, testPupils(20), 1).Taps[:3]

	t.Run("bounded retries", func(t *testing.T) {
		t.Parallel()
		fake, url := startFakeGateAPI(t, func(int) string { return "503" })
		var waits []time.Duration
		reader := NewGateReader(GateReaderConfig{URL: url, Key: "gk_test", MaxAttempts: 4, Backoff: 8 * time.Second, Sleep: recordSleep(&waits)})
		got, err := reader.Post(context.Background(), taps)
		if err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts: status 503") {
			t.Errorf("err = %v", err)
		}
		if got.Retries != 3 || got.Events != 0 || fake.requests != 4 {
			t.Errorf("result %+v after %d requests", got, fake.requests)
		}
		if diff := cmp.Diff([]time.Duration{8 * time.Second, 10 * time.Second, 10 * time.Second}, waits); diff != "" {
			t.Errorf("waits, capped at 10 s (-want +got):\n%s", diff)
		}
	})

	t.Run("no retry on a refused key", func(t *testing.T) {
		t.Parallel()
		fake, url := startFakeGateAPI(t, func(int) string { return "401" })
		reader := NewGateReader(GateReaderConfig{URL: url, Key: "gk_test", Sleep: recordSleep(new([]time.Duration))})
		_, err := reader.Post(context.Background(), taps)
		if err == nil || err.Error() != "post gate events: status 401: Missing or unknown API key." || fake.requests != 1 {
			t.Errorf("err = %v after %d requests", err, fake.requests)
		}
	})

	t.Run("a network error until the context ends", func(t *testing.T) {
		t.Parallel()
		_, url := startFakeGateAPI(t, func(int) string { return "drop" })
		ctx, cancel := context.WithCancel(context.Background())
		attempts := 0
		reader := NewGateReader(GateReaderConfig{URL: url, Key: "gk_test", MaxAttempts: 100, Sleep: func(ctx context.Context, _ time.Duration) error {
			if attempts++; attempts == 3 {
				cancel()
			}
			return ctx.Err()
		}})
		if _, err := reader.Post(ctx, taps); err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("too many taps for one batch", func(t *testing.T) {
		t.Parallel()
		reader := NewGateReader(GateReaderConfig{URL: "http://127.0.0.1:1", Key: "gk_test"})
		if _, err := reader.PostBatch(context.Background(), make([]GateTap, 1001)); err == nil {
			t.Error("a batch of 1,001 was posted")
		}
	})
}
