package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// GateConfig is what the gate service needs besides the database.
type GateConfig struct {
	// Location decides which calendar day a tap belongs to and when a school's earliest-leave
	// time falls. Nil means Asia/Taipei (UTC+8 when the system has no time zone database:
	// Taiwan has not observed daylight saving time since 1979).
	Location *time.Location
	// Debounce drops a tap that follows the student's previous kept tap within this long (see
	// ecardbot.Classify). Zero means 3 minutes; a negative value drops nothing.
	Debounce time.Duration
	// Staleness is how old a tap may be when it arrives and still be sent: a reader that was
	// offline all morning must not wake parents at noon with "arrived at 07:42". Older notices
	// are recorded, for the history page, but get no deliveries. Zero means 2 hours.
	Staleness time.Duration
	// Now returns the current time. Nil means time.Now; tests inject a clock.
	Now func() time.Time
}

// Defaults of GateConfig.
const (
	DefaultDebounce  = 3 * time.Minute
	DefaultStaleness = 2 * time.Hour
)

// GateService stores gate events and turns them into notices and deliveries.
//
// Ingest does everything for a batch in one transaction: the events, the notices they make and
// the deliveries of those notices (the outbox that the push relay reads). Either all of it is
// stored or none, so a reader that gets an error resends the batch and nothing is lost or sent
// twice. Idempotency rests on unique keys, not on reads: events on (school_id, event_id),
// notices on (student_id, day, kind), and only the transaction whose INSERT … ON CONFLICT DO
// NOTHING actually inserted a notice creates its deliveries. Eight replicas posting the same
// batch at once therefore create each notice and each delivery exactly once.
type GateService struct {
	db        *DB
	loc       *time.Location
	debounce  time.Duration
	staleness time.Duration
	now       func() time.Time
}

var _ ecardbot.GateService = (*GateService)(nil)

// NewGateService returns the service over db, which must be migrated.
func NewGateService(db *DB, cfg GateConfig) *GateService {
	s := &GateService{db: db, loc: cfg.Location, debounce: cfg.Debounce, staleness: cfg.Staleness, now: cfg.Now}
	if s.loc == nil {
		s.loc = ecardbot.Taipei
	}
	if s.debounce == 0 {
		s.debounce = DefaultDebounce
	}
	if s.staleness == 0 {
		s.staleness = DefaultStaleness
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// AuthenticateSchool returns the school whose gate API key has the keyed hash. Returns
// EUNAUTHORIZED for an unknown or revoked key, and EUNAVAILABLE when the database cannot be
// reached, so the reader is told to retry rather than that its key is wrong.
func (s *GateService) AuthenticateSchool(ctx context.Context, keyHash string) (*ecardbot.School, error) {
	unauthorized := ecardbot.Errorf(ecardbot.EUNAUTHORIZED, "Unknown or revoked API key.")
	if keyHash == "" {
		return nil, fmt.Errorf("authenticate school: %w", unauthorized)
	}
	var rows []schoolRow
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT s.* FROM school_api_keys k JOIN schools s ON s.id = k.school_id
WHERE k.key_hash = ? AND k.revoked_at IS NULL`, keyHash).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("authenticate school: %w", s.db.unavailable(ctx, err))
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("authenticate school: %w", unauthorized)
	}
	return rows[0].domain(), nil
}

// RecordLeave records, or replaces, the kind of leave an active student of the school takes on
// date (YYYY-MM-DD). Returns EINVALID for a malformed date or an empty kind, ENOTFOUND for a
// student number that is not on the school's active roster, and EUNAVAILABLE when the database
// cannot be reached.
func (s *GateService) RecordLeave(ctx context.Context, school *ecardbot.School, studentNo, date, kind string) error {
	switch {
	case school == nil || school.ID == 0:
		return fmt.Errorf("record leave: %w", ecardbot.Errorf(ecardbot.EINVALID, "Missing school."))
	case !validDate(date):
		return fmt.Errorf("record leave: %w", ecardbot.Errorf(ecardbot.EINVALID, "Date %q is not YYYY-MM-DD.", date))
	case kind == "":
		return fmt.Errorf("record leave: %w", ecardbot.Errorf(ecardbot.EINVALID, "Missing leave kind."))
	}
	// WHERE also ends the SELECT for SQLite's parser, which would otherwise read ON CONFLICT as
	// a join constraint.
	res := s.db.gorm.WithContext(ctx).Exec(`INSERT INTO leaves (student_id, date, kind, created_at)
SELECT id, ?, ?, ? FROM students WHERE school_id = ? AND student_no = ? AND active
ON CONFLICT (student_id, date) DO UPDATE SET kind = excluded.kind`,
		date, kind, s.db.timeArg(s.now()), school.ID, studentNo)
	if res.Error != nil {
		return fmt.Errorf("record leave: %w", s.db.unavailable(ctx, mapError(res.Error)))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("record leave: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "No active student %s at this school.", studentNo))
	}
	return nil
}

// ingestRetries is how many times a batch is retried after colliding (deadlock) with another
// transaction before the reader is told to retry.
const ingestRetries = 3

// Ingest stores the school's events, classifies each affected student's day with
// ecardbot.Classify and creates the missing notices and their deliveries, in one transaction.
//
// Events whose card is not that of an active student of the school are rejected as "unknown
// card"; events already stored (same school and event id, or an id repeated in the batch) count
// as duplicates and change nothing. A notice whose tap is older than the staleness limit is
// stored as stale and gets no deliveries. Each new notice gets one pending delivery per
// guardian and channel the guardian subscribed to for that student and kind, if the guardianship
// still exists and the guardian is reachable on the channel: a LINE user who follows the bot,
// or a confirmed e-mail address.
//
// The HTTP layer validates events first; Ingest still returns EINVALID, naming the index, for an
// event without id, card or time or with a direction other than in, out or empty, and stores
// nothing. Returns EUNAVAILABLE when the database cannot be reached or the transaction fails
// for reasons of the infrastructure: nothing is stored and the reader retries.
func (s *GateService) Ingest(ctx context.Context, school *ecardbot.School, events []ecardbot.GateEvent) (ecardbot.IngestResult, error) {
	if school == nil || school.ID == 0 {
		return ecardbot.IngestResult{}, fmt.Errorf("ingest gate events: %w", ecardbot.Errorf(ecardbot.EINVALID, "Missing school."))
	}
	for i, ev := range events {
		if err := validateEvent(i, &ev); err != nil {
			return ecardbot.IngestResult{}, fmt.Errorf("ingest gate events: %w", err)
		}
	}
	if len(events) == 0 {
		return ecardbot.IngestResult{Rejected: []ecardbot.Rejection{}}, nil
	}
	in := &ingest{s: s, school: school, events: events, now: s.now().UTC().Truncate(time.Microsecond)}
	var result ecardbot.IngestResult
	var err error
	for attempt := 0; ; attempt++ {
		err = s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			result, err = in.run(ctx, tx)
			return err
		})
		if err == nil || attempt == ingestRetries || !isRetryableTx(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return ecardbot.IngestResult{}, fmt.Errorf("ingest gate events: %w", s.db.unavailable(ctx, mapError(err)))
	}
	return result, nil
}

func validateEvent(i int, ev *ecardbot.GateEvent) error {
	switch {
	case ev.ID == "":
		return ecardbot.Errorf(ecardbot.EINVALID, "Event %d has no id.", i)
	case ev.Card == "":
		return ecardbot.Errorf(ecardbot.EINVALID, "Event %d has no card.", i)
	case ev.At.IsZero():
		return ecardbot.Errorf(ecardbot.EINVALID, "Event %d has no time.", i)
	}
	switch ev.Direction {
	case ecardbot.DirectionIn, ecardbot.DirectionOut, ecardbot.DirectionUnknown:
		return nil
	}
	return ecardbot.Errorf(ecardbot.EINVALID, "Event %d: direction %q is not in, out or empty.", i, ev.Direction)
}

// ingest is one call of Ingest. run may be called again when the transaction is retried, so it
// keeps nothing between calls.
type ingest struct {
	s      *GateService
	school *ecardbot.School
	events []ecardbot.GateEvent
	now    time.Time
}

// eventRow is a gate event about to be inserted, or one loaded for classification.
type eventRow struct {
	ID        int64 // database id, once known
	EventID   string
	StudentID int64
	CardUID   string
	Direction string
	At        time.Time
	Day       string
	Gate      string
}

// studentDay identifies one student's school day, the unit of classification.
type studentDay struct {
	StudentID int64
	Day       string
}

// noticeRow is a notice about to be inserted.
type noticeRow struct {
	StudentID   int64
	Day         string
	Kind        ecardbot.NoticeKind
	At          time.Time
	GateEventID int64
	Stale       bool
}

func (in *ingest) run(ctx context.Context, tx *gorm.DB) (ecardbot.IngestResult, error) {
	result := ecardbot.IngestResult{Rejected: []ecardbot.Rejection{}} // [] in JSON, not null
	students, err := in.lookupCards(ctx, tx)
	if err != nil {
		return result, err
	}

	rows := make([]eventRow, 0, len(in.events))
	seen := make(map[string]bool, len(in.events))
	for i, ev := range in.events {
		studentID, ok := students[ev.Card]
		if !ok {
			result.Rejected = append(result.Rejected, ecardbot.Rejection{Index: i, Error: "unknown card"})
			continue
		}
		if seen[ev.ID] {
			result.Duplicates++
			continue
		}
		seen[ev.ID] = true
		at := ev.At.UTC().Truncate(time.Microsecond) // what the database keeps
		rows = append(rows, eventRow{
			EventID: ev.ID, StudentID: studentID, CardUID: ev.Card, Direction: string(ev.Direction),
			At: at, Day: at.In(in.s.loc).Format(time.DateOnly), Gate: ev.Gate,
		})
	}
	// Concurrent batches that share events insert them in the same order, so they wait for each
	// other instead of deadlocking.
	slices.SortFunc(rows, func(a, b eventRow) int { return cmp.Compare(a.EventID, b.EventID) })

	inserted, err := in.insertEvents(ctx, tx, rows)
	if err != nil {
		return result, err
	}
	result.Accepted = len(inserted)
	result.Duplicates += len(rows) - len(inserted)
	if len(inserted) == 0 {
		return result, nil
	}

	affected := make(map[studentDay]bool)
	for _, r := range inserted {
		affected[studentDay{r.StudentID, r.Day}] = true
	}
	days, err := in.loadDays(ctx, tx, affected)
	if err != nil {
		return result, err
	}
	notices := in.classify(days)
	if len(notices) == 0 {
		return result, nil
	}
	fresh, err := in.insertNotices(ctx, tx, notices)
	if err != nil {
		return result, err
	}
	if len(fresh) == 0 {
		return result, nil
	}
	_, err = in.s.db.fanOut(ctx, tx, fresh, in.now)
	return result, err
}

// lookupCards maps the batch's cards to active students of the school.
//
// On PostgreSQL it also locks those students' rows (FOR NO KEY UPDATE, which does not block
// foreign-key checks), in id order. Classification reads the student's stored taps of the day,
// and under READ COMMITTED two batches with taps of one pupil would each miss the other's
// uncommitted taps: an "out" before the earliest-leave time that follows an "in" in the other
// batch would then never make 離校. With the lock the second batch waits and then reads both.
// SQLite needs no lock: its transactions run one at a time.
func (in *ingest) lookupCards(ctx context.Context, tx *gorm.DB) (map[string]int64, error) {
	cards := make([]string, 0, len(in.events))
	seen := make(map[string]bool, len(in.events))
	for _, ev := range in.events {
		if !seen[ev.Card] {
			seen[ev.Card] = true
			cards = append(cards, ev.Card)
		}
	}
	students := make(map[string]int64, len(cards))
	scan := func(rows *sql.Rows) error {
		var id int64
		var card string
		if err := rows.Scan(&id, &card); err != nil {
			return err
		}
		students[card] = id
		return nil
	}

	db := in.s.db
	if db.dialect == DialectPostgres {
		rows, err := db.query(ctx, tx, `SELECT id, card_uid FROM students
WHERE school_id = $1 AND active AND card_uid = ANY($2::text[])
ORDER BY id FOR NO KEY UPDATE`, in.school.ID, cards)
		if err != nil {
			return nil, err
		}
		return students, scanAll(rows, scan)
	}
	for chunk := range chunks(cards, 1) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, in.school.ID)
		for _, c := range chunk {
			args = append(args, c)
		}
		rows, err := db.query(ctx, tx, `SELECT id, card_uid FROM students
WHERE school_id = ? AND active AND card_uid IN `+placeholders(1, len(chunk)), args...)
		if err != nil {
			return nil, err
		}
		if err := scanAll(rows, scan); err != nil {
			return nil, err
		}
	}
	return students, nil
}

// insertEvents inserts rows, skipping those already stored, and returns the inserted ones with
// their ids.
func (in *ingest) insertEvents(ctx context.Context, tx *gorm.DB, rows []eventRow) ([]eventRow, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	byEventID := make(map[string]*eventRow, len(rows))
	for i := range rows {
		byEventID[rows[i].EventID] = &rows[i]
	}
	var inserted []eventRow
	scan := func(r *sql.Rows) error {
		var id int64
		var eventID string
		if err := r.Scan(&id, &eventID); err != nil {
			return err
		}
		row := byEventID[eventID]
		row.ID = id
		inserted = append(inserted, *row)
		return nil
	}

	db := in.s.db
	if db.dialect == DialectPostgres {
		var (
			eventIDs, cards, directions, days, gates = make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
			studentIDs                               = make([]int64, len(rows))
			ats                                      = make([]time.Time, len(rows))
		)
		for i, r := range rows {
			eventIDs[i], studentIDs[i], cards[i], directions[i], ats[i], days[i], gates[i] =
				r.EventID, r.StudentID, r.CardUID, r.Direction, r.At, r.Day, r.Gate
		}
		res, err := db.query(ctx, tx, `INSERT INTO gate_events
	(school_id, event_id, student_id, card_uid, direction, at, day, gate, received_at)
SELECT $1::bigint, e.event_id, e.student_id, e.card_uid, e.direction, e.at, e.day, e.gate, $2::timestamptz
FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::text[])
	AS e(event_id, student_id, card_uid, direction, at, day, gate)
ON CONFLICT (school_id, event_id) DO NOTHING
RETURNING id, event_id`,
			in.school.ID, in.now, eventIDs, studentIDs, cards, directions, ats, days, gates)
		if err != nil {
			return nil, err
		}
		return inserted, scanAll(res, scan)
	}

	const cols = 9
	now := db.timeArg(in.now)
	for chunk := range chunks(rows, cols) {
		args := make([]any, 0, len(chunk)*cols)
		for _, r := range chunk {
			args = append(args, in.school.ID, r.EventID, r.StudentID, r.CardUID, r.Direction, db.timeArg(r.At), r.Day, r.Gate, now)
		}
		res, err := db.query(ctx, tx, `INSERT INTO gate_events
	(school_id, event_id, student_id, card_uid, direction, at, day, gate, received_at)
VALUES `+placeholders(len(chunk), cols)+`
ON CONFLICT (school_id, event_id) DO NOTHING
RETURNING id, event_id`, args...)
		if err != nil {
			return nil, err
		}
		if err := scanAll(res, scan); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// loadDays returns every stored tap of the affected student days, those just inserted included.
func (in *ingest) loadDays(ctx context.Context, tx *gorm.DB, affected map[studentDay]bool) (map[studentDay][]eventRow, error) {
	days := make(map[studentDay][]eventRow, len(affected))
	scan := func(r *sql.Rows) error {
		var e eventRow
		if err := r.Scan(&e.ID, &e.StudentID, &e.Day, &e.At, &e.Direction); err != nil {
			return err
		}
		k := studentDay{e.StudentID, e.Day}
		if affected[k] {
			days[k] = append(days[k], e)
		}
		return nil
	}

	db := in.s.db
	if db.dialect == DialectPostgres {
		studentIDs := make([]int64, 0, len(affected))
		dayList := make([]string, 0, len(affected))
		for k := range affected {
			studentIDs = append(studentIDs, k.StudentID)
			dayList = append(dayList, k.Day)
		}
		rows, err := db.query(ctx, tx, `SELECT g.id, g.student_id, g.day, g.at, g.direction
FROM unnest($1::bigint[], $2::text[]) AS p(student_id, day)
JOIN gate_events g ON g.student_id = p.student_id AND g.day = p.day`, studentIDs, dayList)
		if err != nil {
			return nil, err
		}
		return days, scanAll(rows, scan)
	}

	// SQLite: the students' taps on any of the days, filtered to the affected pairs in scan.
	// A batch rarely spans more than a day or two.
	var studentIDs []int64
	var dayList []string
	seenStudent, seenDay := make(map[int64]bool), make(map[string]bool)
	for k := range affected {
		if !seenStudent[k.StudentID] {
			seenStudent[k.StudentID] = true
			studentIDs = append(studentIDs, k.StudentID)
		}
		if !seenDay[k.Day] {
			seenDay[k.Day] = true
			dayList = append(dayList, k.Day)
		}
	}
	for chunk := range chunks(studentIDs, 1) {
		args := make([]any, 0, len(chunk)+len(dayList))
		for _, id := range chunk {
			args = append(args, id)
		}
		for _, d := range dayList {
			args = append(args, d)
		}
		rows, err := db.query(ctx, tx, `SELECT id, student_id, day, at, direction FROM gate_events
WHERE student_id IN `+placeholders(1, len(chunk))+` AND day IN `+placeholders(1, len(dayList)), args...)
		if err != nil {
			return nil, err
		}
		if err := scanAll(rows, scan); err != nil {
			return nil, err
		}
	}
	return days, nil
}

// classify decides each affected day's 到校 and 離校 taps. It returns a notice for each, whether
// or not one is stored already: inserting decides, so a notice is never created twice however
// batches interleave.
func (in *ingest) classify(days map[studentDay][]eventRow) []noticeRow {
	staleBefore := in.now.Add(-in.s.staleness)
	var notices []noticeRow
	for k, events := range days {
		taps := make([]ecardbot.Tap, len(events))
		for i, e := range events {
			taps[i] = ecardbot.Tap{At: e.At, Direction: ecardbot.Direction(e.Direction)}
		}
		date, err := time.ParseInLocation(time.DateOnly, k.Day, in.s.loc)
		if err != nil {
			continue // cannot happen: Day was formatted with time.DateOnly
		}
		c := ecardbot.Classify(taps, ecardbot.DayRules{
			EarliestLeave: in.school.EarliestLeave.On(date, in.s.loc),
			Debounce:      in.s.debounce,
		})
		for _, kt := range []struct {
			kind ecardbot.NoticeKind
			tap  *ecardbot.Tap
		}{{ecardbot.KindArrived, c.Arrived}, {ecardbot.KindLeft, c.Left}} {
			if kt.tap == nil {
				continue
			}
			// Classify returns copies; find the stored event it stands for.
			i := slices.IndexFunc(events, func(e eventRow) bool {
				return e.At.Equal(kt.tap.At) && e.Direction == string(kt.tap.Direction)
			})
			if i < 0 {
				continue // cannot happen: the tap came from events
			}
			notices = append(notices, noticeRow{
				StudentID: k.StudentID, Day: k.Day, Kind: kt.kind, At: events[i].At,
				GateEventID: events[i].ID, Stale: events[i].At.Before(staleBefore),
			})
		}
	}
	// A fixed order, for the same reason as events.
	slices.SortFunc(notices, func(a, b noticeRow) int {
		return cmp.Or(cmp.Compare(a.StudentID, b.StudentID), cmp.Compare(a.Day, b.Day), cmp.Compare(a.Kind, b.Kind))
	})
	return notices
}

// insertNotices inserts the notices not stored yet and returns the ids of those inserted that
// are not stale: the ones to deliver.
func (in *ingest) insertNotices(ctx context.Context, tx *gorm.DB, notices []noticeRow) ([]int64, error) {
	var fresh []int64
	scan := func(r *sql.Rows) error {
		var id int64
		var stale bool
		if err := r.Scan(&id, &stale); err != nil {
			return err
		}
		if !stale {
			fresh = append(fresh, id)
		}
		return nil
	}

	db := in.s.db
	if db.dialect == DialectPostgres {
		n := len(notices)
		studentIDs, eventIDs := make([]int64, n), make([]int64, n)
		days, kinds := make([]string, n), make([]string, n)
		ats := make([]time.Time, n)
		stales := make([]bool, n)
		for i, r := range notices {
			studentIDs[i], days[i], kinds[i], ats[i], eventIDs[i], stales[i] =
				r.StudentID, r.Day, string(r.Kind), r.At, r.GateEventID, r.Stale
		}
		rows, err := db.query(ctx, tx, `INSERT INTO notices (student_id, day, kind, at, gate_event_id, stale, created_at)
SELECT n.student_id, n.day, n.kind, n.at, n.gate_event_id, n.stale, $1::timestamptz
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::boolean[])
	AS n(student_id, day, kind, at, gate_event_id, stale)
ON CONFLICT (student_id, day, kind) DO NOTHING
RETURNING id, stale`, in.now, studentIDs, days, kinds, ats, eventIDs, stales)
		if err != nil {
			return nil, err
		}
		return fresh, scanAll(rows, scan)
	}

	const cols = 7
	now := db.timeArg(in.now)
	for chunk := range chunks(notices, cols) {
		args := make([]any, 0, len(chunk)*cols)
		for _, r := range chunk {
			args = append(args, r.StudentID, r.Day, string(r.Kind), db.timeArg(r.At), r.GateEventID, r.Stale, now)
		}
		rows, err := db.query(ctx, tx, `INSERT INTO notices (student_id, day, kind, at, gate_event_id, stale, created_at)
VALUES `+placeholders(len(chunk), cols)+`
ON CONFLICT (student_id, day, kind) DO NOTHING
RETURNING id, stale`, args...)
		if err != nil {
			return nil, err
		}
		if err := scanAll(rows, scan); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}
