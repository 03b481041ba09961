package school

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/server"
)

// Limits of the gate events API (design.md §3.3).
const (
	// MaxBatchEvents is the most events one request may carry; more is refused with 413 so
	// that one batch stays one short database transaction.
	MaxBatchEvents = 1000
	// MaxBatchBytes caps a gate events body: 1,000 events of generous size fit well inside.
	MaxBatchBytes = 2 << 20
	// MaxClockSkew is how far in the future a tap may be. A reader whose clock runs ahead
	// would otherwise claim 到校 for a time the child has not arrived yet; a little skew is
	// normal and tolerated.
	MaxClockSkew = 10 * time.Minute

	maxIDLen       = 128 // id: the idempotency key, stored with every event
	maxCardLen     = 128 // card UID; real ones are a few bytes of hex or decimal
	maxGateLen     = 128 // reader name
	maxKeyLen      = 256 // a bearer token longer than this is refused without a database query
	maxLeaveBytes  = 64 << 10
	maxLeaveKind   = 32
	maxLeaveOffset = 366 * 24 * time.Hour // a leave date is within a year of today
)

// APIConfig is what the schools' API needs from the program.
type APIConfig struct {
	// SecretKey is ECARDBOT_SECRET_KEY: it keys the hashes of the gate API keys, and must be
	// the key `ecardbot school key create` hashed them with. Empty refuses every key.
	SecretKey []byte
	// Location is the zone whose calendar leave dates belong to. Nil means UTC+8, Taipei's
	// zone (which has no daylight saving).
	Location *time.Location
	// Now is the clock that decides whether a tap lies in the future. Nil means time.Now.
	Now func() time.Time
}

// API serves the school systems: their gate readers and their offices.
type API struct {
	cfg     APIConfig
	gate    ecardbot.GateService
	log     *slog.Logger
	metrics *metrics
}

// NewAPI returns the API over gate. Its metrics go to reg (nil: not registered); logger nil
// discards logs.
func NewAPI(cfg APIConfig, gate ecardbot.GateService, logger *slog.Logger, reg prometheus.Registerer) *API {
	if cfg.Location == nil {
		cfg.Location = ecardbot.Taipei
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, gate: gate, log: logger.With("component", "school"), metrics: newMetrics(reg)}
}

// Register mounts POST /api/v1/gate-events and POST /api/v1/leaves.
func (a *API) Register(r gin.IRouter) {
	r.POST("/api/v1/gate-events", server.Wrap(a.log, a.gateEvents))
	r.POST("/api/v1/leaves", server.Wrap(a.log, a.leaves))
}

// authenticate finds the school whose API key the request bears. It is the first thing each
// handler does, so a request without a valid key stores nothing and costs one indexed lookup.
func (a *API) authenticate(c *gin.Context) (*ecardbot.School, error) {
	refuse := func() error {
		c.Header("WWW-Authenticate", `Bearer realm="ecardbot"`)
		return ecardbot.Errorf(ecardbot.EUNAUTHORIZED, "Missing or unknown API key: send Authorization: Bearer <school API key>.")
	}
	scheme, key, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "Bearer") || key == "" || len(key) > maxKeyLen || len(a.cfg.SecretKey) == 0 {
		return nil, refuse()
	}
	school, err := a.gate.AuthenticateSchool(c.Request.Context(), KeyHash(a.cfg.SecretKey, key))
	if ecardbot.ErrorCode(err) == ecardbot.EUNAUTHORIZED {
		return nil, refuse()
	} else if err != nil {
		return nil, fmt.Errorf("authenticate school: %w", err)
	}
	return school, nil
}

// readBody reads a body of at most limit bytes; a longer one is ETOOLARGE.
func readBody(c *gin.Context, limit int64, tooLarge string) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return nil, ecardbot.Errorf(ecardbot.ETOOLARGE, "%s", tooLarge)
	} else if err != nil {
		return nil, ecardbot.Errorf(ecardbot.EINVALID, "Could not read the request body.")
	}
	return body, nil
}

// eventJSON is one event as a reader sends it.
type eventJSON struct {
	ID        string `json:"id"`
	Card      string `json:"card"`
	Direction string `json:"direction"`
	At        string `json:"at"`
	Gate      string `json:"gate"`
}

// gateEvents handles POST /api/v1/gate-events (design.md §3.3).
func (a *API) gateEvents(c *gin.Context) (err error) {
	defer func() { a.metrics.batches.WithLabelValues(batchOutcome(err)).Inc() }()
	school, err := a.authenticate(c)
	if err != nil {
		return err
	}
	body, err := readBody(c, MaxBatchBytes, "The body is over 2 MiB: send at most 1,000 events per batch.")
	if err != nil {
		return err
	}
	// Events stay raw until each is checked on its own, so that one event with a wrong type
	// is one rejection instead of a 400 for the whole batch.
	var batch struct {
		Events *[]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &batch); err != nil || batch.Events == nil {
		return ecardbot.Errorf(ecardbot.EINVALID, `The body must be a JSON object {"events": [...]}.`)
	}
	raw := *batch.Events
	if len(raw) > MaxBatchEvents {
		return ecardbot.Errorf(ecardbot.ETOOLARGE, "A batch holds at most 1,000 events; this one has %d. Split it.", len(raw))
	}

	now := a.cfg.Now()
	var (
		rejected = []ecardbot.Rejection{}
		valid    []ecardbot.GateEvent
		origin   []int              // origin[i] is the batch index of valid[i]
		firstOf  = map[string]int{} // event id → index in valid
		repeats  [][2]int           // {batch index, index in valid of the first event with its id}
	)
	for i, r := range raw {
		ev, reason := parseEvent(r, now)
		if reason != "" {
			rejected = append(rejected, ecardbot.Rejection{Index: i, Error: reason})
			continue
		}
		// An id repeated inside the batch (a reader resending its buffer) is answered like a
		// resend in a later batch, without asking storage to insert one key twice at once.
		if j, seen := firstOf[ev.ID]; seen {
			repeats = append(repeats, [2]int{i, j})
			continue
		}
		firstOf[ev.ID] = len(valid)
		valid = append(valid, ev)
		origin = append(origin, i)
	}

	var res ecardbot.IngestResult
	if len(valid) > 0 {
		if res, err = a.gate.Ingest(c.Request.Context(), school, valid); err != nil {
			return fmt.Errorf("ingest gate events: %w", err)
		}
	}
	// Ingest numbers its rejections within valid; the reader needs them within its batch.
	storeReason := map[int]string{}
	for _, r := range res.Rejected {
		if r.Index < 0 || r.Index >= len(valid) {
			return fmt.Errorf("ingest gate events: rejection index %d outside the %d events passed", r.Index, len(valid))
		}
		storeReason[r.Index] = r.Error
		rejected = append(rejected, ecardbot.Rejection{Index: origin[r.Index], Error: r.Error})
	}
	out := ecardbot.IngestResult{Accepted: res.Accepted, Duplicates: res.Duplicates}
	for _, rp := range repeats {
		if reason, ok := storeReason[rp[1]]; ok {
			rejected = append(rejected, ecardbot.Rejection{Index: rp[0], Error: reason})
		} else {
			out.Duplicates++
		}
	}
	sort.Slice(rejected, func(i, j int) bool { return rejected[i].Index < rejected[j].Index })
	out.Rejected = rejected

	a.metrics.events.WithLabelValues("accepted").Add(float64(out.Accepted))
	a.metrics.events.WithLabelValues("duplicate").Add(float64(out.Duplicates))
	a.metrics.events.WithLabelValues("rejected").Add(float64(len(out.Rejected)))
	attrs := []any{"school_code", school.Code, "events", len(raw), "accepted", out.Accepted,
		"duplicates", out.Duplicates, "rejected", len(out.Rejected)}
	if len(out.Rejected) > 0 {
		// Reasons and their counts, never the cards: they are enough to tell a school that
		// its roster lacks cards or its reader's clock is wrong.
		reasons := map[string]int{}
		for _, r := range out.Rejected {
			reasons[r.Error]++
		}
		attrs = append(attrs, "rejected_by_reason", reasons)
	}
	a.log.Info("gate events", attrs...)
	c.JSON(http.StatusOK, out)
	return nil
}

// parseEvent checks one event and returns it, or the short reason it is rejected. Reasons name
// the field, never its value.
func parseEvent(raw json.RawMessage, now time.Time) (ecardbot.GateEvent, string) {
	var in eventJSON
	if err := json.Unmarshal(raw, &in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return ecardbot.GateEvent{}, typeErr.Field + " must be a string"
		}
		return ecardbot.GateEvent{}, "event must be a JSON object"
	}
	// The id is the idempotency key: compared exactly, never trimmed or re-cased.
	if reason := checkText("id", in.ID, maxIDLen, true); reason != "" {
		return ecardbot.GateEvent{}, reason
	}
	// Card UIDs are hexadecimal or decimal; one case makes a reader's "04a1b2" match the
	// roster's "04A1B2".
	card := strings.ToUpper(strings.TrimSpace(in.Card))
	if reason := checkText("card", card, maxCardLen, true); reason != "" {
		return ecardbot.GateEvent{}, reason
	}
	dir := ecardbot.Direction(in.Direction)
	if dir != ecardbot.DirectionIn && dir != ecardbot.DirectionOut && dir != ecardbot.DirectionUnknown {
		return ecardbot.GateEvent{}, `direction must be "in", "out" or empty`
	}
	if in.At == "" {
		return ecardbot.GateEvent{}, "at is required"
	}
	at, err := time.Parse(time.RFC3339, in.At)
	if err != nil {
		return ecardbot.GateEvent{}, "at must be an RFC 3339 time, e.g. 2026-11-27T07:42:10+08:00"
	}
	if at.After(now.Add(MaxClockSkew)) {
		return ecardbot.GateEvent{}, "at is more than 10 minutes in the future: check the reader's clock"
	}
	gate := strings.TrimSpace(in.Gate)
	if reason := checkText("gate", gate, maxGateLen, false); reason != "" {
		return ecardbot.GateEvent{}, reason
	}
	return ecardbot.GateEvent{ID: in.ID, Card: card, Direction: dir, At: at, Gate: gate}, ""
}

// checkText returns why a text field is unacceptable, or "".
func checkText(field, v string, limit int, required bool) string {
	switch {
	case v == "" && required:
		return field + " is required"
	case utf8.RuneCountInString(v) > limit:
		return fmt.Sprintf("%s is longer than %d characters", field, limit)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		// PostgreSQL refuses NUL in text; no reader has a reason to send control characters.
		return field + " contains control characters"
	}
	return ""
}

// leaveJSON is a leave record as a school office sends it.
type leaveJSON struct {
	StudentNo string `json:"student_no"`
	Date      string `json:"date"`
	Kind      string `json:"kind"`
}

// leaves handles POST /api/v1/leaves: the school says a pupil is on leave (請假) that day, so the
// 未到校 sweep leaves the family alone.
func (a *API) leaves(c *gin.Context) (err error) {
	defer func() { a.metrics.leaves.WithLabelValues(batchOutcome(err)).Inc() }()
	school, err := a.authenticate(c)
	if err != nil {
		return err
	}
	body, err := readBody(c, maxLeaveBytes, "The body is too large for a leave record.")
	if err != nil {
		return err
	}
	var in leaveJSON
	if err := json.Unmarshal(body, &in); err != nil {
		return ecardbot.Errorf(ecardbot.EINVALID, `The body must be a JSON object {"student_no": "…", "date": "YYYY-MM-DD", "kind": "sick"}.`)
	}
	in.StudentNo, in.Date, in.Kind = strings.TrimSpace(in.StudentNo), strings.TrimSpace(in.Date), strings.TrimSpace(in.Kind)
	for _, f := range []struct {
		name, value string
		max         int
	}{{"student_no", in.StudentNo, 32}, {"date", in.Date, 10}, {"kind", in.Kind, maxLeaveKind}} {
		if reason := checkText(f.name, f.value, f.max, true); reason != "" {
			return ecardbot.Errorf(ecardbot.EINVALID, "%s.", reason)
		}
	}
	day, err := time.ParseInLocation(time.DateOnly, in.Date, a.cfg.Location)
	if err != nil || day.Format(time.DateOnly) != in.Date {
		return ecardbot.Errorf(ecardbot.EINVALID, "date must be a date as YYYY-MM-DD.")
	}
	if d := day.Sub(a.cfg.Now()); d > maxLeaveOffset || d < -maxLeaveOffset {
		return ecardbot.Errorf(ecardbot.EINVALID, "date must be within a year of today.")
	}
	if err := a.gate.RecordLeave(c.Request.Context(), school, in.StudentNo, in.Date, in.Kind); err != nil {
		if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
			return ecardbot.Errorf(ecardbot.ENOTFOUND, "No student with this student_no on the school's roster.")
		}
		return fmt.Errorf("record leave: %w", err)
	}
	a.log.Info("leave recorded", "school_code", school.Code, "date", in.Date, "kind", in.Kind)
	c.JSON(http.StatusCreated, in)
	return nil
}
