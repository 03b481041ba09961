package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taipei-doit/ecardbot"
)

// settingsFixture is a migrated database with school 313601 (大安區 國小), pupils 1001–1003 and
// two linked guardians: g1 of 1001, g2 of nobody.
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
	f.g1 = mustGuardian(t, db, seedGuardian{taipeiPass: "tp1", lineUser: settingsLineUser1, students: []int64{f.s1}})
	f.g2 = mustGuardian(t, db, seedGuardian{taipeiPass: "tp2", lineUser: settingsLineUser2})
	return f
}

// The LINE users the fixture's guardians are linked to.
const (
	settingsLineUser1 = "U10000000000000000000000000000001"
	settingsLineUser2 = "U10000000000000000000000000000002"
)

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

// TestSessionOfUnlinkedGuardian: a live session stops working as soon as its guardian has no
// LINE binding, whoever cleared it and whatever else was cleaned up.
func TestSessionOfUnlinkedGuardian(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		for _, g := range []int64{f.g1, f.g2} {
			sess := ecardbot.SettingsSession{GuardianID: g, CSRFSecret: "s", ExpiresAt: f.now.Add(time.Hour)}
			if err := f.svc.CreateSession(ctx, fmt.Sprint("sid-", g), sess, f.now); err != nil {
				t.Fatal(err)
			}
		}
		// Only the binding goes: the session row stays, as it would if a cleanup were missed.
		if err := f.db.gorm.Exec(`UPDATE guardians SET line_user_id = NULL WHERE id = ?`, f.g1).Error; err != nil {
			t.Fatal(err)
		}
		if n := count(t, f.db, "settings_sessions"); n != 2 {
			t.Fatalf("%d sessions stored, want 2", n)
		}
		_, err := f.svc.FindSession(ctx, fmt.Sprint("sid-", f.g1), f.now.Add(time.Minute))
		wantCode(t, "session of an unlinked guardian", err, ecardbot.ENOTFOUND)
		if got, err := f.svc.FindSession(ctx, fmt.Sprint("sid-", f.g2), f.now.Add(time.Minute)); err != nil || got.GuardianID != f.g2 {
			t.Errorf("session of the still linked guardian: %+v, %v", got, err)
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
		setEmail(t, f, f.g1, "parent@example.com")
		if err := f.svc.CreateEmailConfirmation(ctx, "c1", f.g1, "parent@example.com", f.now, f.now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		// Looking at it uses nothing and confirms nothing, however often.
		for range 3 {
			g, email, err := f.svc.PeekEmailConfirmation(ctx, "c1", f.now.Add(time.Minute))
			if err != nil || g != f.g1 || email != "parent@example.com" {
				t.Fatalf("PeekEmailConfirmation = %d, %q, %v", g, email, err)
			}
		}
		if confirmedAt := emailConfirmedAt(t, f, f.g1); confirmedAt != nil {
			t.Fatalf("confirmed at %v by looking at the confirmation", confirmedAt)
		}
		g, email, err := f.svc.UseEmailConfirmation(ctx, "c1", f.now.Add(time.Hour))
		if err != nil || g != f.g1 || email != "parent@example.com" {
			t.Fatalf("UseEmailConfirmation = %d, %q, %v", g, email, err)
		}
		// Using it is what confirms the address, as of the caller's now.
		if at := emailConfirmedAt(t, f, f.g1); at == nil || !at.Equal(f.now.Add(time.Hour)) {
			t.Errorf("confirmed at %v, want %v", at, f.now.Add(time.Hour))
		}
		_, _, err = f.svc.PeekEmailConfirmation(ctx, "c1", f.now.Add(time.Hour))
		wantCode(t, "peek after use", err, ecardbot.ECONFLICT)
		_, _, err = f.svc.PeekEmailConfirmation(ctx, "c2", f.now)
		wantCode(t, "peek unknown", err, ecardbot.ENOTFOUND)
		_, _, err = f.svc.UseEmailConfirmation(ctx, "c1", f.now.Add(time.Hour))
		wantCode(t, "second use", err, ecardbot.ECONFLICT)
		_, _, err = f.svc.UseEmailConfirmation(ctx, "c2", f.now)
		wantCode(t, "unknown", err, ecardbot.ENOTFOUND)
		wantCode(t, "unknown guardian", f.svc.CreateEmailConfirmation(ctx, "c3", 99999, "a@example.com", f.now, f.now), ecardbot.ENOTFOUND)
	})
}

// setEmail gives the guardian an unconfirmed address.
func setEmail(t *testing.T, f *settingsFixture, guardianID int64, email string) {
	t.Helper()
	if err := NewGuardianService(f.db).SetEmail(context.Background(), guardianID, email, false); err != nil {
		t.Fatal(err)
	}
}

// emailConfirmedAt reads the guardian's email_confirmed_at.
func emailConfirmedAt(t *testing.T, f *settingsFixture, guardianID int64) *time.Time {
	t.Helper()
	g, err := f.svc.Guardian(context.Background(), guardianID)
	if err != nil {
		t.Fatal(err)
	}
	return g.EmailConfirmedAt
}

// TestEmailConfirmationAddressChanged: a confirmation whose address is no longer the
// guardian's confirms nothing, and is used up; the guardian's new address stays unconfirmed.
func TestEmailConfirmationAddressChanged(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		setEmail(t, f, f.g1, "old@example.com")
		if err := f.svc.CreateEmailConfirmation(ctx, "c1", f.g1, "old@example.com", f.now, f.now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		// The parent changes the address after the page read the guardian, before the button.
		setEmail(t, f, f.g1, "new@example.com")
		g, email, err := f.svc.UseEmailConfirmation(ctx, "c1", f.now.Add(time.Minute))
		if !errors.Is(err, ecardbot.ErrEmailChanged) || ecardbot.ErrorCode(err) != ecardbot.ECONFLICT {
			t.Fatalf("UseEmailConfirmation after the address changed: %v, want ErrEmailChanged", err)
		}
		if g != f.g1 || email != "old@example.com" {
			t.Errorf("UseEmailConfirmation = %d, %q", g, email)
		}
		got, err := f.svc.Guardian(ctx, f.g1)
		if err != nil || got.Email != "new@example.com" || got.EmailConfirmedAt != nil {
			t.Fatalf("guardian after a stale confirmation: %+v, %v", got, err)
		}
		_, _, err = f.svc.UseEmailConfirmation(ctx, "c1", f.now.Add(2*time.Minute))
		wantCode(t, "stale confirmation used again", err, ecardbot.ECONFLICT)
		if errors.Is(err, ecardbot.ErrEmailChanged) {
			t.Error("a used confirmation is reported as an address change")
		}

		// Back to the old address: only a confirmation made for it now can confirm it.
		setEmail(t, f, f.g1, "old@example.com")
		if err := f.svc.CreateEmailConfirmation(ctx, "c2", f.g1, "old@example.com", f.now, f.now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.UseEmailConfirmation(ctx, "c2", f.now.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if at := emailConfirmedAt(t, f, f.g1); at == nil {
			t.Error("the current address was not confirmed")
		}
	})
}

// TestEmailConfirmationLimit: five confirmations within the hour, then the sixth is refused
// with the time the oldest leaves the window; used and expired ones count as long as they were
// created within the hour, and the limit is the guardian's own.
func TestEmailConfirmationLimit(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		create := func(token string, at time.Time, ttl time.Duration, guardian int64) error {
			return f.svc.CreateEmailConfirmationLimited(ctx, token, guardian, "a@example.com", at, at.Add(ttl), 5, time.Hour)
		}
		for i := range 5 {
			at := f.now.Add(time.Duration(i) * time.Minute)
			ttl := 24 * time.Hour
			if i == 1 {
				ttl = time.Minute // expired before the sixth: still counted
			}
			if err := create(fmt.Sprint("c", i), at, ttl, f.g1); err != nil {
				t.Fatalf("confirmation %d: %v", i+1, err)
			}
		}
		if _, _, err := f.svc.UseEmailConfirmation(ctx, "c0", f.now.Add(5*time.Minute)); err != nil && !errors.Is(err, ecardbot.ErrEmailChanged) {
			t.Fatal(err)
		}
		err := create("c5", f.now.Add(30*time.Minute), 24*time.Hour, f.g1)
		var tooMany *ecardbot.TooManyMailsError
		if !errors.As(err, &tooMany) || ecardbot.ErrorCode(err) != ecardbot.ERATELIMITED {
			t.Fatalf("sixth confirmation: %v, want TooManyMailsError", err)
		}
		if want := f.now.Add(time.Hour); !tooMany.RetryAt.Equal(want) {
			t.Errorf("RetryAt %v, want %v", tooMany.RetryAt, want)
		}
		var n int64
		if err := f.db.gorm.Raw(`SELECT count(*) FROM email_confirmations WHERE token_hash = 'c5'`).Scan(&n).Error; err != nil || n != 0 {
			t.Errorf("the refused confirmation was stored (%d rows, %v)", n, err)
		}
		// Another guardian is not limited by g1's mails.
		if err := create("other", f.now.Add(30*time.Minute), 24*time.Hour, f.g2); err != nil {
			t.Errorf("another guardian: %v", err)
		}
		// Once the first leaves the window, one more is allowed, and then none again.
		if err := create("c6", f.now.Add(time.Hour+time.Second), 24*time.Hour, f.g1); err != nil {
			t.Errorf("after the window: %v", err)
		}
		if err := create("c7", f.now.Add(time.Hour+2*time.Second), 24*time.Hour, f.g1); !errors.As(err, &tooMany) {
			t.Errorf("right after the window again: %v, want TooManyMailsError", err)
		}
		wantCode(t, "unknown guardian", create("c8", f.now, time.Hour, 99999), ecardbot.ENOTFOUND)
	})
}

// TestEmailConfirmationLimitConcurrent asks for more confirmations at once than the limit
// allows: the limit holds because a guardian's requests are serialised.
func TestEmailConfirmationLimitConcurrent(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSettingsFixture(t, b)
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				_ = f.svc.CreateEmailConfirmationLimited(ctx, fmt.Sprint("c", i), f.g1, "a@example.com", f.now, f.now.Add(24*time.Hour), 5, time.Hour)
			})
		}
		wg.Wait()
		if n := count(t, f.db, "email_confirmations"); n != 5 {
			t.Errorf("%d confirmations stored, want 5", n)
		}
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
