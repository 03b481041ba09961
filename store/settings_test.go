package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taipei-doit/ecardbot"
)

// settingsFixture is a migrated database with school 313601 (大安區 國小), pupils 1001–1003 and
// two guardians: g1 of 1001, g2 of nobody.
type settingsFixture struct {
	db     *DB
	svc    *SettingsService
	school *ecardbot.School
	g1, g2 int64
	s1     int64 // pupil 1001
	now    time.Time
}

func newSettingsFixture(t *testing.T, b backend) *settingsFixture {
	t.Helper()
	db := MustOpenMigrated(t, b)
	f := &settingsFixture{db: db, svc: NewSettingsService(db), school: MustImportSchool(t, db, "313601"),
		now: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)}
	MustImportRoster(t, db, "313601", entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"))
	f.s1 = studentID(t, db, f.school, "1001")
	f.g1 = mustGuardian(t, db, seedGuardian{taipeiPass: "tp1", students: []int64{f.s1}})
	f.g2 = mustGuardian(t, db, seedGuardian{taipeiPass: "tp2"})
	return f
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := ecardbot.ErrorCode(err); got != code {
		t.Errorf("%s: code %q (%v), want %q", what, got, err, code)
	}
}

func TestSettingsLinkSingleUse(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		if err := f.svc.CreateSettingsLink(ctx, "h1", f.g1, ecardbot.SettingsAddChild, f.now, f.now.Add(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "unknown guardian", f.svc.CreateSettingsLink(ctx, "h2", 99999, ecardbot.SettingsHome, f.now, f.now.Add(time.Minute)), ecardbot.ENOTFOUND)
		wantCode(t, "unknown page", f.svc.CreateSettingsLink(ctx, "h3", f.g1, "../admin", f.now, f.now.Add(time.Minute)), ecardbot.EINVALID)

		// Eight replicas open the same link at once: exactly one gets in.
		const replicas = 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
			errs []error
		)
		for range replicas {
			wg.Go(func() {
				g, page, err := f.svc.UseSettingsLink(ctx, "h1", f.now.Add(time.Minute))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
					if g != f.g1 || page != ecardbot.SettingsAddChild {
						t.Errorf("UseSettingsLink = %d, %q", g, page)
					}
					return
				}
				errs = append(errs, err)
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d replicas used the link, want 1", wins)
		}
		for _, err := range errs {
			wantCode(t, "second use", err, ecardbot.ECONFLICT)
		}
		_, _, err := f.svc.UseSettingsLink(ctx, "nope", f.now)
		wantCode(t, "unknown token", err, ecardbot.ENOTFOUND)

		if err := f.svc.CreateSettingsLink(ctx, "h4", f.g1, ecardbot.SettingsHome, f.now, f.now.Add(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.svc.UseSettingsLink(ctx, "h4", f.now.Add(15*time.Minute))
		wantCode(t, "expired", err, ecardbot.ECONFLICT)
	})
}

func TestSettingsSessions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		want := ecardbot.SettingsSession{GuardianID: f.g1, CSRFSecret: "secret", ExpiresAt: f.now.Add(time.Hour)}
		if err := f.svc.CreateSession(ctx, "sid", want, f.now); err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.FindSession(ctx, "sid", f.now.Add(59*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("session (-want +got):\n%s", diff)
		}
		_, err = f.svc.FindSession(ctx, "sid", f.now.Add(time.Hour))
		wantCode(t, "expired session", err, ecardbot.ENOTFOUND)
		_, err = f.svc.FindSession(ctx, "other", f.now)
		wantCode(t, "unknown session", err, ecardbot.ENOTFOUND)
		wantCode(t, "unknown guardian", f.svc.CreateSession(ctx, "x", ecardbot.SettingsSession{GuardianID: 99999, ExpiresAt: f.now}, f.now), ecardbot.ENOTFOUND)

		// A new session clears the guardian's expired ones.
		later := f.now.Add(2 * time.Hour)
		if err := f.svc.CreateSession(ctx, "sid2", ecardbot.SettingsSession{GuardianID: f.g1, CSRFSecret: "s2", ExpiresAt: later.Add(time.Hour)}, later); err != nil {
			t.Fatal(err)
		}
		if n := count(t, f.db, "settings_sessions"); n != 1 {
			t.Errorf("%d sessions stored, want the live one", n)
		}
	})
}

func TestMatchStudent(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		good := ecardbot.StudentQuery{SchoolID: f.school.ID, StudentNo: "1002", Name: "學生1002", BirthDate: "2019-04-01", NationalIDHash: "hash-1002"}
		id, err := f.svc.MatchStudent(ctx, f.g2, good, f.now, 5, time.Hour)
		if err != nil || id != studentID(t, f.db, f.school, "1002") {
			t.Fatalf("MatchStudent = %d, %v", id, err)
		}
		var messages []string
		for i, mutate := range []func(q *ecardbot.StudentQuery){
			func(q *ecardbot.StudentQuery) { q.BirthDate = "2019-04-02" },
			func(q *ecardbot.StudentQuery) { q.Name = "學生1001" },
			func(q *ecardbot.StudentQuery) { q.NationalIDHash = "hash-1001" },
			func(q *ecardbot.StudentQuery) { q.StudentNo = "9999" },
			func(q *ecardbot.StudentQuery) { q.SchoolID++ },
		} {
			q := good
			mutate(&q)
			_, err := f.svc.MatchStudent(ctx, f.g2, q, f.now.Add(time.Duration(i)*time.Minute), 5, time.Hour)
			wantCode(t, "mismatch", err, ecardbot.ENOTFOUND)
			messages = append(messages, ecardbot.ErrorMessage(err))
		}
		for _, m := range messages[1:] {
			if m != messages[0] {
				t.Errorf("mismatch messages differ: %q vs %q", m, messages[0])
			}
		}
		// The sixth attempt is refused before matching, even with the right details.
		_, err = f.svc.MatchStudent(ctx, f.g2, good, f.now.Add(10*time.Minute), 5, time.Hour)
		var tooMany *ecardbot.TooManyAttemptsError
		if !errors.As(err, &tooMany) || ecardbot.ErrorCode(err) != ecardbot.ERATELIMITED {
			t.Fatalf("sixth attempt: %v, want TooManyAttemptsError", err)
		}
		if want := f.now.Add(time.Hour); !tooMany.RetryAt.Equal(want) {
			t.Errorf("RetryAt %v, want %v", tooMany.RetryAt, want)
		}
		// Another guardian is not limited by g2's failures.
		if _, err := f.svc.MatchStudent(ctx, f.g1, good, f.now.Add(10*time.Minute), 5, time.Hour); err != nil {
			t.Errorf("another guardian: %v", err)
		}
		// Once the first failure leaves the window, one more attempt is allowed.
		if _, err := f.svc.MatchStudent(ctx, f.g2, good, f.now.Add(time.Hour+time.Second), 5, time.Hour); err != nil {
			t.Errorf("after the window: %v", err)
		}
		// An inactive pupil does not match.
		MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"))
		_, err = f.svc.MatchStudent(ctx, f.g1, good, f.now.Add(2*time.Hour), 5, time.Hour)
		wantCode(t, "inactive pupil", err, ecardbot.ENOTFOUND)
		_, err = f.svc.MatchStudent(ctx, 99999, good, f.now, 5, time.Hour)
		wantCode(t, "unknown guardian", err, ecardbot.ENOTFOUND)
	})
}

// TestMatchStudentConcurrent fires more wrong attempts at once than the limit allows: the limit
// holds because the guardian's attempts are serialised.
func TestMatchStudentConcurrent(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		bad := ecardbot.StudentQuery{SchoolID: f.school.ID, StudentNo: "1002", Name: "x", BirthDate: "2019-04-01", NationalIDHash: "hash-1002"}
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() { _, _ = f.svc.MatchStudent(ctx, f.g2, bad, f.now, 5, time.Hour) })
		}
		wg.Wait()
		if n := count(t, f.db, "settings_attempts"); n != 5 {
			t.Errorf("%d failed attempts recorded, want 5", n)
		}
	})
}

func TestEmailConfirmation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		if err := f.svc.CreateEmailConfirmation(ctx, "c1", f.g1, "parent@example.com", f.now, f.now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		g, email, err := f.svc.UseEmailConfirmation(ctx, "c1", f.now.Add(time.Hour))
		if err != nil || g != f.g1 || email != "parent@example.com" {
			t.Fatalf("UseEmailConfirmation = %d, %q, %v", g, email, err)
		}
		_, _, err = f.svc.UseEmailConfirmation(ctx, "c1", f.now.Add(time.Hour))
		wantCode(t, "second use", err, ecardbot.ECONFLICT)
		_, _, err = f.svc.UseEmailConfirmation(ctx, "c2", f.now)
		wantCode(t, "unknown", err, ecardbot.ENOTFOUND)
		wantCode(t, "unknown guardian", f.svc.CreateEmailConfirmation(ctx, "c3", 99999, "a@example.com", f.now, f.now), ecardbot.ENOTFOUND)
	})
}

func TestSettingsViews(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		other := mustSchool(t, f.db, "313602", "松山區", ecardbot.DefaultCutoff)
		schools, err := f.svc.Schools(ctx, "大安區", ecardbot.LevelElementary)
		if err != nil || len(schools) != 1 || schools[0].Code != "313601" {
			t.Errorf("Schools(大安區, 國小) = %+v, %v", schools, err)
		}
		if schools, _ := f.svc.Schools(ctx, "松山區", ecardbot.LevelElementary); len(schools) != 1 || schools[0].ID != other.ID {
			t.Errorf("Schools(松山區, 國小) = %+v", schools)
		}
		if schools, _ := f.svc.Schools(ctx, "松山區", ecardbot.LevelJunior); len(schools) != 0 {
			t.Errorf("Schools(松山區, 國中) = %+v", schools)
		}

		children, err := f.svc.Children(ctx, f.g1)
		want := []ecardbot.Child{{StudentID: f.s1, Name: "學生1001", StudentNo: "1001", Grade: "1", Class: "101", SchoolName: f.school.Name, Active: true}}
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, children); diff != "" {
			t.Errorf("Children (-want +got):\n%s", diff)
		}

		g, err := f.svc.Guardian(ctx, f.g1)
		if err != nil || g.TaipeiPassID != "tp1" {
			t.Errorf("Guardian = %+v, %v", g, err)
		}
		_, err = f.svc.Guardian(ctx, 99999)
		wantCode(t, "unknown guardian", err, ecardbot.ENOTFOUND)

		// History: two notices of 1001 (one delivered on two channels), one of 1002 that g1 does
		// not guard, and one of 1001 older than the window.
		s2 := studentID(t, f.db, f.school, "1002")
		notice := func(st int64, kind ecardbot.NoticeKind, at time.Time) int64 {
			var id int64
			ts := f.db.timeArg(at)
			if err := f.db.gorm.Raw(`INSERT INTO notices (student_id, day, kind, at, stale, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
				st, at.In(ecardbot.Taipei).Format(time.DateOnly), string(kind), ts, false, ts).Scan(&id).Error; err != nil {
				t.Fatal(err)
			}
			return id
		}
		delivery := func(notice int64, ch ecardbot.Channel, state string) {
			ts := f.db.timeArg(f.now)
			if err := f.db.gorm.Exec(`INSERT INTO deliveries (id, notice_id, guardian_id, channel, state, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`,
				uuid.NewString(), notice, f.g1, string(ch), state, ts, ts).Error; err != nil {
				t.Fatal(err)
			}
		}
		arrived := notice(f.s1, ecardbot.KindArrived, f.now.Add(-2*time.Hour))
		delivery(arrived, ecardbot.ChannelLINE, ecardbot.DeliverySent)
		delivery(arrived, ecardbot.ChannelEmail, ecardbot.DeliveryDead)
		left := notice(f.s1, ecardbot.KindLeft, f.now.Add(-time.Hour))
		notice(s2, ecardbot.KindArrived, f.now.Add(-time.Hour))
		notice(f.s1, ecardbot.KindArrived, f.now.Add(-31*24*time.Hour))

		got, err := f.svc.History(ctx, f.g1, f.now.Add(-30*24*time.Hour), 50)
		if err != nil {
			t.Fatal(err)
		}
		wantHistory := []ecardbot.HistoryEntry{
			{NoticeID: left, StudentID: f.s1, ChildName: "學生1001", SchoolName: f.school.Name, Kind: ecardbot.KindLeft, At: f.now.Add(-time.Hour)},
			{NoticeID: arrived, StudentID: f.s1, ChildName: "學生1001", SchoolName: f.school.Name, Kind: ecardbot.KindArrived, At: f.now.Add(-2 * time.Hour),
				Deliveries: []ecardbot.HistoryDelivery{{Channel: ecardbot.ChannelLINE, State: ecardbot.DeliverySent}, {Channel: ecardbot.ChannelEmail, State: ecardbot.DeliveryDead}}},
		}
		if diff := cmp.Diff(wantHistory, got); diff != "" {
			t.Errorf("History (-want +got):\n%s", diff)
		}
		if got, _ := f.svc.History(ctx, f.g1, f.now.Add(-30*24*time.Hour), 1); len(got) != 1 || got[0].NoticeID != left {
			t.Errorf("History limit 1 = %+v", got)
		}
		if got, _ := f.svc.History(ctx, f.g2, f.now.Add(-30*24*time.Hour), 50); len(got) != 0 {
			t.Errorf("History of a guardian without children = %+v", got)
		}
	})
}
