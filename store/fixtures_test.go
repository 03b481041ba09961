package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
)

// taipeiZone is the service zone as tests write times: UTC+8 all year.
var taipeiZone = time.FixedZone("CST", 8*3600)

// tp returns the instant hh:mm:ss on 2026-11-27 (a Friday) in Taipei.
func tp(hh, mm, ss int) time.Time {
	return time.Date(2026, 11, 27, hh, mm, ss, 0, taipeiZone)
}

const testDay = "2026-11-27"

// testClock is a clock that tests set.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func testSchool(code string) ecardbot.School {
	return ecardbot.School{
		Code: code, Name: "臺北市立測試國民小學 " + code, District: "大安區", Level: ecardbot.LevelElementary,
		Cutoff: ecardbot.DefaultCutoff, EarliestLeave: ecardbot.DefaultEarliestLeave,
	}
}

// MustImportSchool creates a school with the code and returns it as AuthenticateSchool would.
func MustImportSchool(tb testing.TB, db *DB, code string) *ecardbot.School {
	tb.Helper()
	s := NewSchoolService(db)
	if _, _, err := s.ImportSchools(context.Background(), []ecardbot.School{testSchool(code)}); err != nil {
		tb.Fatalf("ImportSchools: %v", err)
	}
	sc, err := s.FindSchool(context.Background(), code)
	if err != nil {
		tb.Fatalf("FindSchool: %v", err)
	}
	return sc
}

// entry returns a roster entry for student number no with card, on line.
func entry(line int, no, card string) ecardbot.RosterEntry {
	return ecardbot.RosterEntry{
		Line: line, StudentNo: no, Name: "學生" + no, BirthDate: "2019-04-01",
		NationalIDHash: "hash-" + no, CardUID: card, Grade: "1", Class: "101",
	}
}

// MustImportRoster imports entries for the school.
func MustImportRoster(tb testing.TB, db *DB, code string, entries ...ecardbot.RosterEntry) ecardbot.RosterResult {
	tb.Helper()
	res, err := NewRosterService(db).ImportRoster(context.Background(), code, entries)
	if err != nil {
		tb.Fatalf("ImportRoster: %v", err)
	}
	return res
}

// studentID returns the id of the school's student.
func studentID(tb testing.TB, db *DB, school *ecardbot.School, no string) int64 {
	tb.Helper()
	var id int64
	if err := db.gorm.Raw(`SELECT id FROM students WHERE school_id = ? AND student_no = ?`, school.ID, no).Scan(&id).Error; err != nil || id == 0 {
		tb.Fatalf("student %s: id %d, %v", no, id, err)
	}
	return id
}

// sub is one subscription of a seeded guardian.
type sub struct {
	student int64
	kind    ecardbot.NoticeKind
	channel ecardbot.Channel
}

// seedGuardian describes a guardian for mustGuardian. The settings pages and the subscribers
// import that create guardians come later, so tests write the rows themselves.
type seedGuardian struct {
	taipeiPass string
	lineUser   string // empty: not linked
	lineRow    bool   // whether line_users has a row for lineUser
	following  bool
	email      string
	confirmed  bool
	students   []int64 // guardianships
	subs       []sub
}

var seedNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// mustGuardian inserts the guardian with its LINE user, guardianships and subscriptions and
// returns its id.
func mustGuardian(tb testing.TB, db *DB, g seedGuardian) int64 {
	tb.Helper()
	now := db.timeArg(seedNow)
	exec := func(q string, args ...any) {
		tb.Helper()
		if err := db.gorm.Exec(q, args...).Error; err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	var lineUser any
	if g.lineUser != "" {
		lineUser = g.lineUser
		if g.lineRow {
			exec(`INSERT INTO line_users (id, following, language, state_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				g.lineUser, g.following, ecardbot.LangZhTW, now, now, now)
		}
	}
	var confirmedAt any
	if g.confirmed {
		confirmedAt = now
	}
	var id int64
	err := db.gorm.Raw(`INSERT INTO guardians (taipeipass_id, line_user_id, email, email_confirmed_at, language, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, g.taipeiPass, lineUser, g.email, confirmedAt, ecardbot.LangZhTW, now, now).Scan(&id).Error
	if err != nil || id == 0 {
		tb.Fatalf("insert guardian: id %d, %v", id, err)
	}
	for _, st := range g.students {
		exec(`INSERT INTO guardianships (guardian_id, student_id, created_at) VALUES (?, ?, ?)`, id, st, now)
	}
	for _, s := range g.subs {
		exec(`INSERT INTO subscriptions (guardian_id, student_id, kind, channel) VALUES (?, ?, ?, ?)`, id, s.student, string(s.kind), string(s.channel))
	}
	return id
}

// allSubs subscribes to every kind on the channel for the student.
func allSubs(student int64, channel ecardbot.Channel) []sub {
	var subs []sub
	for _, k := range ecardbot.NoticeKinds {
		subs = append(subs, sub{student, k, channel})
	}
	return subs
}

// noticeView is a notice as tests compare it.
type noticeView struct {
	StudentNo string
	Day       string
	Kind      string
	At        time.Time
	Stale     bool
	HasEvent  bool
}

func (n noticeView) String() string {
	return fmt.Sprintf("%s %s %s %s stale=%v", n.StudentNo, n.Day, n.Kind, n.At.In(taipeiZone).Format("15:04:05"), n.Stale)
}

// listNotices returns every notice, ordered.
func listNotices(tb testing.TB, db *DB) []noticeView {
	tb.Helper()
	var rows []struct {
		StudentNo   string
		Day         string
		Kind        string
		At          time.Time
		Stale       bool
		GateEventID *int64
	}
	err := db.gorm.Raw(`SELECT s.student_no, n.day, n.kind, n.at, n.stale, n.gate_event_id
FROM notices n JOIN students s ON s.id = n.student_id ORDER BY s.student_no, n.day, n.kind`).Scan(&rows).Error
	if err != nil {
		tb.Fatalf("list notices: %v", err)
	}
	views := make([]noticeView, len(rows))
	for i, r := range rows {
		views[i] = noticeView{r.StudentNo, r.Day, r.Kind, r.At.UTC(), r.Stale, r.GateEventID != nil}
	}
	return views
}

// deliveryView is a delivery as tests compare it.
type deliveryView struct {
	StudentNo  string
	Kind       string
	TaipeiPass string
	Channel    string
	State      string
	Attempts   int
}

// listDeliveries returns every delivery, ordered, and checks what every new delivery must have.
func listDeliveries(tb testing.TB, db *DB) []deliveryView {
	tb.Helper()
	var rows []struct {
		ID            string
		StudentNo     string
		Kind          string
		TaipeipassID  string
		Channel       string
		State         string
		Attempts      int
		LastError     string
		LineRequestID string
		DeadReason    string
		SentAt        *time.Time
	}
	err := db.gorm.Raw(`SELECT d.id, s.student_no, n.kind, g.taipeipass_id, d.channel, d.state, d.attempts,
	d.last_error, d.line_request_id, d.dead_reason, d.sent_at
FROM deliveries d JOIN notices n ON n.id = d.notice_id JOIN students s ON s.id = n.student_id
JOIN guardians g ON g.id = d.guardian_id
ORDER BY s.student_no, n.kind, g.taipeipass_id, d.channel`).Scan(&rows).Error
	if err != nil {
		tb.Fatalf("list deliveries: %v", err)
	}
	ids := make(map[string]bool)
	views := make([]deliveryView, len(rows))
	for i, r := range rows {
		if len(r.ID) != 36 || ids[r.ID] {
			tb.Errorf("delivery id %q is not a fresh UUID", r.ID)
		}
		ids[r.ID] = true
		if r.LastError != "" || r.LineRequestID != "" || r.DeadReason != "" || r.SentAt != nil {
			tb.Errorf("new delivery %s has leftovers: %+v", r.ID, r)
		}
		views[i] = deliveryView{r.StudentNo, r.Kind, r.TaipeipassID, r.Channel, r.State, r.Attempts}
	}
	return views
}

// count returns the number of rows of table.
func count(tb testing.TB, db *DB, table string) int64 {
	tb.Helper()
	var n int64
	if err := db.gorm.Table(table).Count(&n).Error; err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	return n
}
