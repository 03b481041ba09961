package linesim

// The gate-reader emulator: what a school's card readers send to POST /api/v1/gate-events
// (design.md §3.3) during one school day. GenerateDay makes the taps of a day from a roster and a
// seed, the same ones for the same inputs; GateReader posts them the way a reader does, in
// batches of at most 1,000 with a bearer key, retrying on 503 and network errors.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// GatePupil is a pupil as a gate reader knows them: by card. StudentNo is only for reports.
type GatePupil struct {
	StudentNo string
	Card      string // pupils without a card never tap
}

// GateTap is one tap a reader recorded and the time it uploads it.
type GateTap struct {
	ID        string    // the reader's unique id: gate, date and sequence number
	Card      string    // card UID
	Direction string    // "in", "out", or "" from a reader that cannot tell
	At        time.Time // when the card was tapped, in the day's zone
	Gate      string
	Upload    time.Time // when the reader posts it: the next full minute, later while offline
}

// SchoolDayConfig says which day GenerateDay makes.
type SchoolDayConfig struct {
	Date     string         // YYYY-MM-DD
	Location *time.Location // the school's zone; nil means UTC+8 (Taipei, no daylight saving)
	Seed     uint64         // the same seed, date and pupils make the same day
}

// SchoolDay is a generated school day: its taps in upload order, and what went into them.
type SchoolDay struct {
	Date string
	// Taps are sorted by upload time, then gate, then tap time. A tap appears twice when its
	// reader resent a batch whose answer it never got: same id, later upload.
	Taps []GateTap
	// Pupils with a card, how many of them stay home, and the taps of cards not on the roster (a
	// visitor's EasyCard, a pupil whose new card the roster lacks).
	Pupils, Absent, UnknownCards int
	// Resent counts the taps uploaded a second time.
	Resent int
	// OfflineGate was offline from OfflineFrom to OfflineUntil and uploaded its taps of that
	// time late, all at once.
	OfflineGate               string
	OfflineFrom, OfflineUntil time.Time
}

// The readers of the emulated school: two gates whose readers know the direction, and a side gate
// whose reader does not. The south gate's reader goes offline in the morning.
const (
	gateNorth = "north-1"
	gateSouth = "south-1"
	gateSide  = "side-1"
)

// Shares of a school day's pupils, in per mille: every school sees some of each.
const (
	absentPerMille      = 30 // stay home
	lateArrivalPerMille = 10 // come in after the cutoff, 08:40–10:00
	missedInPerMille    = 20 // forget to tap in
	doubleTapPerMille   = 80 // tap twice within a minute (card held to the reader)
	earlyLeavePerMille  = 40 // picked up 10:00–14:00
	missedOutPerMille   = 30 // forget to tap out
	unknownCardsPer     = 300
)

// GenerateDay makes the taps of one school day of pupils: most tap in between 07:10 and 08:20
// (some twice within a minute), a few are absent, arrive late or forget to tap, most tap out
// between 15:50 and 16:40 and a few leave early; one pupil in ten uses the side gate, whose reader
// cannot tell direction; the south gate's reader is offline for 20 to 45 minutes of the morning
// rush and uploads those taps late, resending the batch it sent just before going offline; and a
// few cards that are not on the roster tap too. Readers upload once a minute.
func GenerateDay(pupils []GatePupil, cfg SchoolDayConfig) (*SchoolDay, error) {
	loc := cfg.Location
	if loc == nil {
		loc = time.FixedZone("Asia/Taipei", 8*60*60)
	}
	date, err := time.ParseInLocation(time.DateOnly, cfg.Date, loc)
	if err != nil || date.Format(time.DateOnly) != cfg.Date {
		return nil, fmt.Errorf("generate school day: date %q is not YYYY-MM-DD", cfg.Date)
	}
	h := fnv.New64a()
	h.Write([]byte(cfg.Date))
	rng := rand.New(rand.NewPCG(cfg.Seed, h.Sum64()))
	clock := func(hh, mm int) time.Time { return time.Date(date.Year(), date.Month(), date.Day(), hh, mm, 0, 0, loc) }
	// between returns a uniformly random instant in [from, to), to the second.
	between := func(from, to time.Time) time.Time {
		return from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)/time.Second))) * time.Second)
	}
	perMille := func(n int) bool { return rng.IntN(1000) < n }
	gate := func() string {
		switch n := rng.IntN(10); {
		case n < 6:
			return gateNorth
		case n < 9:
			return gateSouth
		default:
			return gateSide
		}
	}

	day := &SchoolDay{Date: cfg.Date, OfflineGate: gateSouth}
	day.OfflineFrom = between(clock(7, 25), clock(7, 45))
	day.OfflineUntil = day.OfflineFrom.Add(time.Duration(20+rng.IntN(26)) * time.Minute)

	var taps []GateTap
	add := func(card, dir string, at time.Time, g string, double bool) {
		if g == gateSide {
			dir = ""
		}
		taps = append(taps, GateTap{Card: card, Direction: dir, At: at, Gate: g})
		if double {
			taps = append(taps, GateTap{Card: card, Direction: dir, At: at.Add(time.Duration(3+rng.IntN(53)) * time.Second), Gate: g})
		}
	}
	cards := make(map[string]bool, len(pupils))
	for _, p := range pupils {
		if p.Card == "" {
			continue
		}
		cards[p.Card] = true
		day.Pupils++
		if perMille(absentPerMille) {
			day.Absent++
			continue
		}
		switch {
		case perMille(missedInPerMille):
		case perMille(lateArrivalPerMille):
			add(p.Card, "in", between(clock(8, 40), clock(10, 0)), gate(), false)
		default:
			// Two uniform draws make a peak in the middle of the rush, around 07:45.
			from, to := clock(7, 10), clock(8, 20)
			a, b := between(from, to), between(from, to)
			at := from.Add((a.Sub(from) + b.Sub(from)) / 2).Truncate(time.Second)
			add(p.Card, "in", at, gate(), perMille(doubleTapPerMille))
		}
		switch {
		case perMille(missedOutPerMille):
		case perMille(earlyLeavePerMille):
			add(p.Card, "out", between(clock(10, 0), clock(14, 0)), gate(), false)
		default:
			add(p.Card, "out", between(clock(15, 50), clock(16, 40)), gate(), perMille(doubleTapPerMille/2))
		}
	}
	day.UnknownCards = (day.Pupils + unknownCardsPer - 1) / unknownCardsPer
	for range day.UnknownCards {
		card := ""
		for card == "" || cards[card] {
			card = fmt.Sprintf("EE%014X", rng.Uint64()>>8)
		}
		add(card, "in", between(clock(7, 10), clock(8, 20)), gate(), false)
	}

	// Each reader numbers its taps in time order and uploads them at the next full minute, or,
	// while offline, when it is back.
	slices.SortStableFunc(taps, func(a, b GateTap) int {
		return cmp.Or(strings.Compare(a.Gate, b.Gate), a.At.Compare(b.At), strings.Compare(a.Card, b.Card))
	})
	seq := map[string]int{}
	compact := strings.ReplaceAll(cfg.Date, "-", "")
	var lastBeforeOffline time.Time
	for i := range taps {
		t := &taps[i]
		seq[t.Gate]++
		t.ID = fmt.Sprintf("%s-%s-%06d", t.Gate, compact, seq[t.Gate])
		t.Upload = t.At.Truncate(time.Minute).Add(time.Minute)
		if t.Gate == day.OfflineGate && !t.Upload.Before(day.OfflineFrom) && t.Upload.Before(day.OfflineUntil) {
			t.Upload = day.OfflineUntil
		} else if t.Gate == day.OfflineGate && t.Upload.Before(day.OfflineFrom) && t.Upload.After(lastBeforeOffline) {
			lastBeforeOffline = t.Upload
		}
	}
	// Back online, the reader first resends its last batch before the outage: it never got the
	// answer.
	for _, t := range taps {
		if t.Gate == day.OfflineGate && !lastBeforeOffline.IsZero() && t.Upload.Equal(lastBeforeOffline) {
			t.Upload = day.OfflineUntil
			taps = append(taps, t)
			day.Resent++
		}
	}
	slices.SortStableFunc(taps, func(a, b GateTap) int {
		return cmp.Or(a.Upload.Compare(b.Upload), strings.Compare(a.Gate, b.Gate), a.At.Compare(b.At))
	})
	day.Taps = taps
	return day, nil
}

// UploadedBy returns the taps uploaded at or before t, in upload order: what readers have posted
// by then. Later taps have not happened yet, or are waiting in an offline reader.
func (d *SchoolDay) UploadedBy(t time.Time) []GateTap {
	n, _ := slices.BinarySearchFunc(d.Taps, t, func(tap GateTap, t time.Time) int {
		if tap.Upload.After(t) {
			return 1
		}
		return -1
	})
	return d.Taps[:n]
}

// GateReaderConfig is where and how a GateReader posts.
type GateReaderConfig struct {
	// URL is ecardbot's base URL, e.g. http://localhost:8080; taps go to URL/api/v1/gate-events.
	URL string
	// Key is the school's gate API key, sent as Authorization: Bearer <key>.
	Key string
	// Client sends the requests. Nil means a client with a 30-second timeout.
	Client *http.Client
	// BatchSize is the most taps per request. Zero means 1,000, the API's limit.
	BatchSize int
	// MaxAttempts bounds the attempts per batch on 503, 502, 504, 429 and network errors. Zero
	// means 6.
	MaxAttempts int
	// Backoff is the wait before the first retry; it doubles with each, up to 10 s. Zero means
	// 500 ms.
	Backoff time.Duration
	// Sleep waits between attempts. Nil means a timer that gives up when ctx ends; tests pass one
	// that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

// GateReader posts taps to the gate events API as a school's reader does.
type GateReader struct {
	cfg GateReaderConfig
}

// NewGateReader returns a reader posting to cfg.URL.
func NewGateReader(cfg GateReaderConfig) *GateReader {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > maxGateBatch {
		cfg.BatchSize = maxGateBatch
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	return &GateReader{cfg: cfg}
}

// maxGateBatch is the API's limit of events per request (design.md §3.3).
const maxGateBatch = 1000

// GateResult adds up the answers to posted taps.
type GateResult struct {
	Batches    int // requests answered 200
	Events     int // taps posted
	Accepted   int
	Duplicates int
	Rejected   int            // taps the API rejected
	Reasons    map[string]int // rejected taps by reason
	Retries    int            // attempts repeated after a 503, a 429, a 502/504 or a network error
}

func (r *GateResult) add(o GateResult) {
	r.Batches += o.Batches
	r.Events += o.Events
	r.Accepted += o.Accepted
	r.Duplicates += o.Duplicates
	r.Rejected += o.Rejected
	r.Retries += o.Retries
	for k, v := range o.Reasons {
		if r.Reasons == nil {
			r.Reasons = map[string]int{}
		}
		r.Reasons[k] += v
	}
}

// Post posts taps in their order, in batches of taps that one reader uploaded at one time (at
// most BatchSize each), one batch after the other, and adds up the answers. It stops at the
// first batch that fails for good and returns what was posted until then with the error.
func (g *GateReader) Post(ctx context.Context, taps []GateTap) (GateResult, error) {
	var total GateResult
	for start := 0; start < len(taps); {
		end := start + 1
		for end < len(taps) && end-start < g.cfg.BatchSize &&
			taps[end].Gate == taps[start].Gate && taps[end].Upload.Equal(taps[start].Upload) {
			end++
		}
		res, err := g.PostBatch(ctx, taps[start:end])
		total.add(res)
		if err != nil {
			return total, err
		}
		start = end
	}
	return total, nil
}

// gateEventJSON is a tap as the API reads it.
type gateEventJSON struct {
	ID        string `json:"id"`
	Card      string `json:"card"`
	Direction string `json:"direction"`
	At        string `json:"at"`
	Gate      string `json:"gate"`
}

// gateAnswer is the API's answer to a batch.
type gateAnswer struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"rejected"`
}

// PostBatch posts taps as one request (at most 1,000), retrying on 503, 502, 504, 429 and
// network errors up to MaxAttempts times with doubling waits: the API stores a batch all or
// nothing and idempotently, so a retry never loses or doubles a tap. Any other answer than 200 is
// an error naming the status.
func (g *GateReader) PostBatch(ctx context.Context, taps []GateTap) (GateResult, error) {
	if len(taps) > maxGateBatch {
		return GateResult{}, fmt.Errorf("post gate events: %d taps in one batch, the API takes at most %d", len(taps), maxGateBatch)
	}
	events := make([]gateEventJSON, len(taps))
	for i, t := range taps {
		events[i] = gateEventJSON{ID: t.ID, Card: t.Card, Direction: t.Direction, At: t.At.Format(time.RFC3339), Gate: t.Gate}
	}
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		return GateResult{}, fmt.Errorf("post gate events: %w", err)
	}

	var res GateResult
	wait := g.cfg.Backoff
	for attempt := 1; ; attempt++ {
		answer, retry, err := g.post(ctx, body)
		if err == nil {
			res.Batches, res.Events = 1, len(taps)
			res.Accepted, res.Duplicates, res.Rejected = answer.Accepted, answer.Duplicates, len(answer.Rejected)
			for _, r := range answer.Rejected {
				if res.Reasons == nil {
					res.Reasons = map[string]int{}
				}
				res.Reasons[r.Error]++
			}
			return res, nil
		}
		if !retry || attempt >= g.cfg.MaxAttempts || ctx.Err() != nil {
			if retry {
				err = fmt.Errorf("gave up after %d attempts: %w", attempt, err)
			}
			return res, fmt.Errorf("post gate events: %w", err)
		}
		if err := g.cfg.Sleep(ctx, wait); err != nil {
			return res, fmt.Errorf("post gate events: %w", err)
		}
		res.Retries++
		wait = min(2*wait, 10*time.Second)
	}
}

// post makes one attempt and says whether a failure is worth retrying.
func (g *GateReader) post(ctx context.Context, body []byte) (answer gateAnswer, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.URL+"/api/v1/gate-events", bytes.NewReader(body))
	if err != nil {
		return answer, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.cfg.Key)
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		return answer, ctx.Err() == nil, err // a network error; the batch may or may not be stored
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return answer, ctx.Err() == nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(b, &answer); err != nil {
			return answer, false, fmt.Errorf("answer is not the API's JSON: %w", err)
		}
		return answer, false, nil
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return answer, true, fmt.Errorf("status %d", resp.StatusCode)
	}
	var apiErr struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &apiErr) == nil && apiErr.Error != "" {
		msg = apiErr.Error
	}
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return answer, false, fmt.Errorf("status %d: %s", resp.StatusCode, msg)
}
