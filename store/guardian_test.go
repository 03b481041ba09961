package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// lineID returns a well-formed LINE user ID made from n.
func lineID(n int) string { return fmt.Sprintf("U%032x", n) }

var allKinds = []ecardbot.NoticeKind{ecardbot.KindArrived, ecardbot.KindLeft, ecardbot.KindAbsent}

// subEntry is a subscribers file line for student no of school 313601.
func subEntry(line, user int, account, no, email string, kinds ...ecardbot.NoticeKind) ecardbot.SubscriberEntry {
	return ecardbot.SubscriberEntry{Line: line, LineUserID: lineID(user), TaipeiPassID: account, SchoolCode: "313601",
		StudentNo: no, Kinds: kinds, Email: email}
}

// guardianFixture is a migrated database with school 313601 and pupils 1001–1004 (cards C1–C4),
// of which 1004 has left.
type guardianFixture struct {
	db     *DB
	svc    *GuardianService
	school *ecardbot.School
	t0     time.Time
}

func newGuardianFixture(t *testing.T, b backend) *guardianFixture {
	t.Helper()
	db := MustOpenMigrated(t, b)
	f := &guardianFixture{db: db, svc: NewGuardianService(db), school: MustImportSchool(t, db, "313601"),
		t0: time.Date(2026, 8, 31, 2, 0, 0, 0, time.UTC)}
	f.svc.now = func() time.Time { return f.t0 }
	MustImportRoster(t, db, "313601", entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"), entry(5, "1004", "C4"))
	MustImportRoster(t, db, "313601", entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"))
	return f
}

func (f *guardianFixture) mustImport(t *testing.T, opts ecardbot.SubscriberImportOptions, entries ...ecardbot.SubscriberEntry) ecardbot.SubscriberImportResult {
	t.Helper()
	res, err := f.svc.ImportSubscribers(context.Background(), entries, opts)
	if err != nil {
		t.Fatalf("ImportSubscribers: %v", err)
	}
	return res
}

// guardianView is a guardian as tests compare it.
type guardianView struct {
	Account   string
	LineUser  string
	Email     string
	Confirmed bool
}

func listGuardians(tb testing.TB, db *DB) []guardianView {
	tb.Helper()
	var rows []guardianRow
	if err := db.gorm.Raw(selectGuardian + `ORDER BY taipeipass_id`).Scan(&rows).Error; err != nil {
		tb.Fatal(err)
	}
	views := make([]guardianView, len(rows))
	for i, r := range rows {
		views[i] = guardianView{r.TaipeipassID, r.lineUser(), r.Email, r.EmailConfirmedAt != nil}
	}
	return views
}

// listSubscriptions returns every subscription as "account student kind channel", ordered.
func listSubscriptions(tb testing.TB, db *DB) []string {
	tb.Helper()
	var rows []string
	err := db.gorm.Raw(`SELECT g.taipeipass_id || ' ' || s.student_no || ' ' || sub.kind || ' ' || sub.channel
FROM subscriptions sub JOIN guardians g ON g.id = sub.guardian_id JOIN students s ON s.id = sub.student_id
ORDER BY 1`).Scan(&rows).Error
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// listGuardianships returns every guardianship as "account student", ordered.
// openSettings gives each account's guardian a settings session and an unused settings link,
// as the settings pages would.
func openSettings(tb testing.TB, db *DB, accounts ...string) {
	tb.Helper()
	ctx, settings, now := context.Background(), NewSettingsService(db), time.Now()
	for _, acct := range accounts {
		var id int64
		if err := db.gorm.Raw(`SELECT id FROM guardians WHERE taipeipass_id = ?`, acct).Scan(&id).Error; err != nil || id == 0 {
			tb.Fatalf("guardian %s: %d, %v", acct, id, err)
		}
		sess := ecardbot.SettingsSession{GuardianID: id, CSRFSecret: "csrf-" + acct, ExpiresAt: now.Add(time.Hour)}
		if err := settings.CreateSession(ctx, "session-"+acct, sess, now); err != nil {
			tb.Fatal(err)
		}
		if err := settings.CreateSettingsLink(ctx, "link-"+acct, id, ecardbot.SettingsHome, now, now.Add(time.Hour)); err != nil {
			tb.Fatal(err)
		}
	}
}

// listSettingsAccess returns "account session" and "account link" for every settings session
// and settings link stored.
func listSettingsAccess(tb testing.TB, db *DB) []string {
	tb.Helper()
	var rows []string
	err := db.gorm.Raw(`SELECT g.taipeipass_id || ' session' FROM settings_sessions x JOIN guardians g ON g.id = x.guardian_id
UNION ALL SELECT g.taipeipass_id || ' link' FROM settings_links x JOIN guardians g ON g.id = x.guardian_id ORDER BY 1`).Scan(&rows).Error
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

func listGuardianships(tb testing.TB, db *DB) []string {
	tb.Helper()
	var rows []string
	err := db.gorm.Raw(`SELECT g.taipeipass_id || ' ' || s.student_no FROM guardianships gs
JOIN guardians g ON g.id = gs.guardian_id JOIN students s ON s.id = gs.student_id ORDER BY 1`).Scan(&rows).Error
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// subs expands "account student" and kinds and channels into listSubscriptions lines.
func subs(pair string, channels []string, kinds ...ecardbot.NoticeKind) []string {
	var out []string
	for _, k := range kinds {
		for _, c := range channels {
			out = append(out, pair+" "+string(k)+" "+c)
		}
	}
	return out
}

func sorted(lists ...[]string) []string {
	all := slices.Concat(lists...)
	slices.Sort(all) // byte order, as the database's ORDER BY on ASCII text
	return all
}

var (
	lineOnly  = []string{"line"}
	lineEmail = []string{"email", "line"}
)

func TestImportSubscribers(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		confirmed := ecardbot.SubscriberImportOptions{EmailConfirmed: true}

		t.Run("import, import again, change", func(t *testing.T) {
			t.Parallel()
			f := newGuardianFixture(t, b)
			// A LINE user the bot already knows blocked it; one who follows with English.
			users := NewLineUserService(f.db)
			if err := users.Unfollow(ctx, lineID(3), f.t0.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := users.Follow(ctx, lineID(4), ecardbot.LangEn, f.t0.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			file := []ecardbot.SubscriberEntry{
				subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...),
				subEntry(3, 1, "tp-a", "1002", "", ecardbot.KindArrived),
				subEntry(4, 2, "tp-b", "1001", "", ecardbot.KindLeft),
				subEntry(5, 3, "tp-c", "1003", "c@example.com", ecardbot.KindArrived, ecardbot.KindAbsent),
				subEntry(6, 4, "tp-d", "1003", ""), // linked to the pupil, no notices
			}
			got := f.mustImport(t, confirmed, file...)
			want := ecardbot.SubscriberImportResult{GuardiansCreated: 4, LineUsersCreated: 2, GuardianshipsCreated: 5, SubscriptionsAdded: 12}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("first import (-want +got):\n%s", diff)
			}
			wantGuardians := []guardianView{
				{"tp-a", lineID(1), "a@example.com", true}, {"tp-b", lineID(2), "", false},
				{"tp-c", lineID(3), "c@example.com", true}, {"tp-d", lineID(4), "", false},
			}
			if diff := cmp.Diff(wantGuardians, listGuardians(t, f.db)); diff != "" {
				t.Errorf("guardians (-want +got):\n%s", diff)
			}
			wantShips := []string{"tp-a 1001", "tp-a 1002", "tp-b 1001", "tp-c 1003", "tp-d 1003"}
			if diff := cmp.Diff(wantShips, listGuardianships(t, f.db)); diff != "" {
				t.Errorf("guardianships (-want +got):\n%s", diff)
			}
			wantSubs := sorted(subs("tp-a 1001", lineEmail, allKinds...), subs("tp-a 1002", lineOnly, ecardbot.KindArrived),
				subs("tp-b 1001", lineOnly, ecardbot.KindLeft), subs("tp-c 1003", lineEmail, ecardbot.KindArrived, ecardbot.KindAbsent))
			if diff := cmp.Diff(wantSubs, listSubscriptions(t, f.db)); diff != "" {
				t.Errorf("subscriptions (-want +got):\n%s", diff)
			}
			// New LINE users follow as of the import; known ones keep their state and language.
			for n, want := range map[int]ecardbot.LineUser{
				1: {ID: lineID(1), Following: true, Language: ecardbot.LangZhTW, StateAt: f.t0},
				3: {ID: lineID(3), Following: false, Language: ecardbot.LangZhTW, StateAt: f.t0.Add(-time.Hour)},
				4: {ID: lineID(4), Following: true, Language: ecardbot.LangEn, StateAt: f.t0.Add(-time.Hour)},
			} {
				u, err := users.FindLineUser(ctx, lineID(n))
				if err != nil {
					t.Fatal(err)
				}
				if u.Following != want.Following || u.Language != want.Language || !u.StateAt.Equal(want.StateAt) {
					t.Errorf("LINE user %d = %+v, want %+v", n, u, want)
				}
			}
			if g, err := f.svc.FindGuardianByLineUser(ctx, lineID(4)); err != nil || g.Language != ecardbot.LangEn {
				t.Errorf("guardian of an English LINE user: %+v, %v", g, err)
			}

			// The same file again changes nothing.
			f.t0 = f.t0.Add(24 * time.Hour)
			if got := f.mustImport(t, confirmed, file...); got != (ecardbot.SubscriberImportResult{}) {
				t.Errorf("second import changed %+v", got)
			}
			if diff := cmp.Diff(wantSubs, listSubscriptions(t, f.db)); diff != "" {
				t.Errorf("subscriptions after the second import (-want +got):\n%s", diff)
			}

			// A corrected file: tp-a only wants 到校 for 1001 and no more e-mail; tp-b now wants
			// everything for 1001 by e-mail too. 1002 and tp-c, tp-d are not in it: left alone.
			got = f.mustImport(t, confirmed,
				subEntry(2, 1, "tp-a", "1001", "", ecardbot.KindArrived),
				subEntry(3, 2, "tp-b", "1001", "b@example.com", allKinds...),
			)
			want = ecardbot.SubscriberImportResult{GuardiansUpdated: 1, SubscriptionsAdded: 5, SubscriptionsRemoved: 5}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("corrected import (-want +got):\n%s", diff)
			}
			wantSubs = sorted(subs("tp-a 1001", lineOnly, ecardbot.KindArrived), subs("tp-a 1002", lineOnly, ecardbot.KindArrived),
				subs("tp-b 1001", lineEmail, allKinds...), subs("tp-c 1003", lineEmail, ecardbot.KindArrived, ecardbot.KindAbsent))
			if diff := cmp.Diff(wantSubs, listSubscriptions(t, f.db)); diff != "" {
				t.Errorf("subscriptions after the corrected import (-want +got):\n%s", diff)
			}
			// tp-a keeps its address (the file has none for it), tp-b gets one.
			wantGuardians[1] = guardianView{"tp-b", lineID(2), "b@example.com", true}
			if diff := cmp.Diff(wantGuardians, listGuardians(t, f.db)); diff != "" {
				t.Errorf("guardians after the corrected import (-want +got):\n%s", diff)
			}
		})

		t.Run("e-mail confirmation", func(t *testing.T) {
			t.Parallel()
			f := newGuardianFixture(t, b)
			unconfirmed := ecardbot.SubscriberImportOptions{}
			f.mustImport(t, unconfirmed, subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...))
			if got := listGuardians(t, f.db)[0]; got.Confirmed {
				t.Errorf("imported unconfirmed, got %+v", got)
			}
			// The same address, now trusted: confirmed.
			if got := f.mustImport(t, confirmed, subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...)); got.GuardiansUpdated != 1 {
				t.Errorf("confirming import: %+v", got)
			}
			if got := listGuardians(t, f.db)[0]; !got.Confirmed {
				t.Errorf("imported confirmed, got %+v", got)
			}
			// The same address, not trusted: stays confirmed.
			if got := f.mustImport(t, unconfirmed, subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...)); got != (ecardbot.SubscriberImportResult{}) {
				t.Errorf("unchanged import changed %+v", got)
			}
			// Another address, not trusted: unconfirmed.
			f.mustImport(t, unconfirmed, subEntry(2, 1, "tp-a", "1001", "new@example.com", allKinds...))
			if diff := cmp.Diff([]guardianView{{"tp-a", lineID(1), "new@example.com", false}}, listGuardians(t, f.db)); diff != "" {
				t.Errorf("changed address (-want +got):\n%s", diff)
			}
		})

		t.Run("every bad line is reported and nothing is applied", func(t *testing.T) {
			t.Parallel()
			f := newGuardianFixture(t, b)
			// Already stored: tp-x linked to user 90, user 91 linked to tp-y.
			f.mustImport(t, confirmed, subEntry(2, 90, "tp-x", "1001", "", ecardbot.KindArrived),
				subEntry(3, 91, "tp-y", "1002", "", ecardbot.KindArrived))
			before := [][]string{listSubscriptions(t, f.db), listGuardianships(t, f.db)}
			guardiansBefore := listGuardians(t, f.db)
			usersBefore := count(t, f.db, "line_users")

			bad := func(line int, mod func(*ecardbot.SubscriberEntry)) ecardbot.SubscriberEntry {
				e := subEntry(line, 100+line, fmt.Sprintf("tp-%d", line), "1001", "", allKinds...)
				mod(&e)
				return e
			}
			entries := []ecardbot.SubscriberEntry{
				subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...), // good
				bad(3, func(e *ecardbot.SubscriberEntry) { e.LineUserID = "U123" }),
				bad(4, func(e *ecardbot.SubscriberEntry) { e.LineUserID = strings.ToUpper(lineID(0xabcdef)) }),
				bad(5, func(e *ecardbot.SubscriberEntry) { e.TaipeiPassID = "" }),
				bad(6, func(e *ecardbot.SubscriberEntry) { e.Email = "not an address" }),
				bad(7, func(e *ecardbot.SubscriberEntry) { e.SchoolCode = "999999" }),
				bad(8, func(e *ecardbot.SubscriberEntry) { e.StudentNo = "9999" }),
				bad(9, func(e *ecardbot.SubscriberEntry) { e.StudentNo = "1004" }), // left the school
				subEntry(10, 1, "tp-a", "1001", "", ecardbot.KindLeft),             // repeats line 2
				subEntry(11, 2, "tp-a", "1002", "", ecardbot.KindLeft),             // tp-a with another user
				subEntry(12, 1, "tp-b", "1002", "", ecardbot.KindLeft),             // user 1 with another account
				subEntry(13, 1, "tp-a", "1003", "other@example.com"),               // tp-a with another address
				subEntry(14, 92, "tp-x", "1003", ""),                               // tp-x is linked to user 90
				subEntry(15, 91, "tp-z", "1003", ""),                               // user 91 is linked to tp-y
				bad(16, func(e *ecardbot.SubscriberEntry) { e.Kinds = []ecardbot.NoticeKind{"arrived", "arrived"} }),
				bad(17, func(e *ecardbot.SubscriberEntry) { e.SchoolCode, e.StudentNo = "", "" }),
			}
			_, err := f.svc.ImportSubscribers(ctx, entries, confirmed)
			ierr, ok := asImportError(err)
			if !ok {
				t.Fatalf("err = %v, want an *ecardbot.ImportError", err)
			}
			want := []ecardbot.EntryError{
				ee(3, ecardbot.EINVALID, "line_user_id must be U followed by 32 lower-case hexadecimal digits"),
				ee(4, ecardbot.EINVALID, "line_user_id must be U followed by 32 lower-case hexadecimal digits"),
				ee(5, ecardbot.EINVALID, "taipeipass_id is required"),
				ee(6, ecardbot.EINVALID, "email is not a valid address"),
				ee(7, ecardbot.ENOTFOUND, "no school has code 999999"),
				ee(8, ecardbot.ENOTFOUND, "student_no 9999 is not on the active roster of school 313601"),
				ee(9, ecardbot.ENOTFOUND, "student_no 1004 is not on the active roster of school 313601"),
				ee(10, ecardbot.EINVALID, "taipeipass_id, school_code and student_no repeat line 2"),
				ee(11, ecardbot.ECONFLICT, "taipeipass_id is linked to another line_user_id on line 2"),
				ee(12, ecardbot.ECONFLICT, "line_user_id is linked to another taipeipass_id on line 2"),
				ee(13, ecardbot.EINVALID, "email differs from line 2 for the same taipeipass_id: a guardian has one address"),
				ee(14, ecardbot.ECONFLICT, "taipeipass_id is already linked to another LINE user"),
				ee(15, ecardbot.ECONFLICT, "line_user_id is already linked to another TaipeiPASS account"),
				ee(16, ecardbot.EINVALID, `notice kind "arrived" is unknown or repeated`),
				ee(17, ecardbot.EINVALID, "school_code is required; student_no is required"),
			}
			if diff := cmp.Diff(want, ierr.Entries); diff != "" {
				t.Errorf("line errors (-want +got):\n%s", diff)
			}
			if ierr.Total != len(want) || ecardbot.ErrorCode(err) != ecardbot.EINVALID || !strings.HasPrefix(ecardbot.ErrorMessage(err), "15 bad lines, the first: line 3: ") {
				t.Errorf("total %d, code %s, message %q", ierr.Total, ecardbot.ErrorCode(err), ecardbot.ErrorMessage(err))
			}
			if diff := cmp.Diff(before, [][]string{listSubscriptions(t, f.db), listGuardianships(t, f.db)}); diff != "" {
				t.Errorf("a bad file changed subscriptions (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(guardiansBefore, listGuardians(t, f.db)); diff != "" {
				t.Errorf("a bad file changed guardians (-before +after):\n%s", diff)
			}
			if n := count(t, f.db, "line_users"); n != usersBefore {
				t.Errorf("a bad file stored %d LINE users", n-usersBefore)
			}

			// Only conflicts with what is stored: the error has their code.
			_, err = f.svc.ImportSubscribers(ctx, []ecardbot.SubscriberEntry{subEntry(2, 92, "tp-x", "1003", "")}, confirmed)
			if ecardbot.ErrorCode(err) != ecardbot.ECONFLICT || ecardbot.ErrorMessage(err) != "line 2: taipeipass_id is already linked to another LINE user" {
				t.Errorf("conflict only: %v", err)
			}
			if _, err := f.svc.ImportSubscribers(ctx, nil, confirmed); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("empty file: %v", err)
			}
		})

		t.Run("a guardian linked later by the bot, unlinked before", func(t *testing.T) {
			t.Parallel()
			f := newGuardianFixture(t, b)
			// The account exists without a LINE binding (e.g. unlinked): the import links it.
			if _, err := f.svc.LinkGuardian(ctx, "tp-a", lineID(9)); err != nil {
				t.Fatal(err)
			}
			if err := f.db.gorm.Exec(`UPDATE guardians SET line_user_id = NULL`).Error; err != nil {
				t.Fatal(err)
			}
			got := f.mustImport(t, confirmed, subEntry(2, 1, "tp-a", "1001", "", ecardbot.KindArrived))
			if diff := cmp.Diff(ecardbot.SubscriberImportResult{GuardiansUpdated: 1, LineUsersCreated: 1, GuardianshipsCreated: 1, SubscriptionsAdded: 1}, got); diff != "" {
				t.Errorf("import (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]guardianView{{"tp-a", lineID(1), "", false}}, listGuardians(t, f.db)); diff != "" {
				t.Errorf("guardians (-want +got):\n%s", diff)
			}
		})

		t.Run("dry run", func(t *testing.T) {
			t.Parallel()
			f := newGuardianFixture(t, b)
			got, err := f.svc.ImportSubscribers(ctx, []ecardbot.SubscriberEntry{subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...)},
				ecardbot.SubscriberImportOptions{EmailConfirmed: true, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			want := ecardbot.SubscriberImportResult{GuardiansCreated: 1, LineUsersCreated: 1, GuardianshipsCreated: 1, SubscriptionsAdded: 6}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("dry run (-want +got):\n%s", diff)
			}
			for _, table := range []string{"guardians", "line_users", "guardianships", "subscriptions"} {
				if n := count(t, f.db, table); n != 0 {
					t.Errorf("a dry run stored %d rows in %s", n, table)
				}
			}
		})

		t.Run("a large file", func(t *testing.T) {
			t.Parallel()
			// More rows than one statement carries, on a larger roster.
			db := MustOpenMigrated(t, b)
			MustImportSchool(t, db, "313601")
			var roster []ecardbot.RosterEntry
			var file []ecardbot.SubscriberEntry
			for i := range 1500 {
				no := fmt.Sprintf("S%05d", i)
				roster = append(roster, entry(i+2, no, fmt.Sprintf("CARD-%d", i)))
				file = append(file, subEntry(i+2, i+1, fmt.Sprintf("tp-%d", i), no, fmt.Sprintf("p%d@example.com", i), allKinds...))
			}
			MustImportRoster(t, db, "313601", roster...)
			svc := NewGuardianService(db)
			got, err := svc.ImportSubscribers(ctx, file, confirmed)
			if err != nil {
				t.Fatal(err)
			}
			if got.GuardiansCreated != 1500 || got.SubscriptionsAdded != 9000 {
				t.Errorf("large import: %+v", got)
			}
			for i := range file {
				file[i].Kinds, file[i].Email = []ecardbot.NoticeKind{ecardbot.KindAbsent}, ""
			}
			got, err = svc.ImportSubscribers(ctx, file, confirmed)
			if err != nil {
				t.Fatal(err)
			}
			if got.SubscriptionsRemoved != 7500 || got.SubscriptionsAdded != 0 {
				t.Errorf("large reimport: %+v", got)
			}
		})
	})
}

func ee(line int, code, msg string) ecardbot.EntryError {
	return ecardbot.EntryError{Line: line, Code: code, Message: msg}
}

func asImportError(err error) (*ecardbot.ImportError, bool) {
	var ierr *ecardbot.ImportError
	ok := err != nil && errors.As(err, &ierr)
	return ierr, ok
}

// Imported subscribers get their notices: a tap after the import makes deliveries on LINE and by
// e-mail, and only where the guardian is reachable.
func TestImportedSubscribersReceiveDeliveries(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newGateFixture(t, b, entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"))
		svc := NewGuardianService(f.db)
		// tp-c's LINE user had blocked the bot before the import.
		if err := NewLineUserService(f.db).Unfollow(ctx, lineID(3), tp(6, 0, 0)); err != nil {
			t.Fatal(err)
		}
		confirmed := ecardbot.SubscriberImportOptions{EmailConfirmed: true}
		if _, err := svc.ImportSubscribers(ctx, []ecardbot.SubscriberEntry{
			subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...),
			subEntry(3, 2, "tp-b", "1001", "", ecardbot.KindLeft), // no 到校 wanted
			subEntry(4, 3, "tp-c", "1002", "c@example.com", ecardbot.KindArrived),
		}, confirmed); err != nil {
			t.Fatal(err)
		}
		// tp-d's address is not trusted: LINE only until confirmed.
		if _, err := svc.ImportSubscribers(ctx, []ecardbot.SubscriberEntry{
			subEntry(2, 4, "tp-d", "1003", "d@example.com", ecardbot.KindArrived),
		}, ecardbot.SubscriberImportOptions{}); err != nil {
			t.Fatal(err)
		}

		got := f.ingest(t, tp(7, 45, 0),
			tap("e1", "C1", in, tp(7, 40, 0)), tap("e2", "C2", in, tp(7, 41, 0)), tap("e3", "C3", in, tp(7, 42, 0)))
		checkResult(t, "morning", got, ecardbot.IngestResult{Accepted: 3})
		f.ingest(t, tp(16, 5, 0), tap("e4", "C1", out, tp(16, 0, 0)))
		want := []deliveryView{
			{"1001", "arrived", "tp-a", "email", ecardbot.DeliveryPending, 0},
			{"1001", "arrived", "tp-a", "line", ecardbot.DeliveryPending, 0},
			{"1001", "left", "tp-a", "email", ecardbot.DeliveryPending, 0},
			{"1001", "left", "tp-a", "line", ecardbot.DeliveryPending, 0},
			{"1001", "left", "tp-b", "line", ecardbot.DeliveryPending, 0},
			{"1002", "arrived", "tp-c", "email", ecardbot.DeliveryPending, 0},
			{"1003", "arrived", "tp-d", "line", ecardbot.DeliveryPending, 0},
		}
		if diff := cmp.Diff(want, listDeliveries(t, f.db)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
	})
}

func TestGuardianService(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newGuardianFixture(t, b)
		svc := f.svc

		linked, err := svc.LinkGuardian(ctx, "tp-a", lineID(1))
		if err != nil {
			t.Fatal(err)
		}
		g := linked.Guardian
		if g.TaipeiPassID != "tp-a" || g.LineUserID != lineID(1) || g.Language != ecardbot.LangZhTW || g.ID == 0 || !g.CreatedAt.Equal(f.t0) ||
			linked.MovedFrom != "" || linked.Unlinked != 0 {
			t.Errorf("linked = %+v, guardian %+v", linked, g)
		}
		if again, err := svc.LinkGuardian(ctx, "tp-a", lineID(1)); err != nil || again.Guardian.ID != g.ID || again.MovedFrom != "" || again.Unlinked != 0 {
			t.Errorf("linking again: %+v, %v", again, err)
		}
		for _, tt := range []struct {
			name, account, user, code string
		}{
			{"malformed user", "tp-b", "U1", ecardbot.EINVALID},
			{"no account", "", lineID(2), ecardbot.EINVALID},
		} {
			if _, err := svc.LinkGuardian(ctx, tt.account, tt.user); ecardbot.ErrorCode(err) != tt.code {
				t.Errorf("%s: %v, want code %s", tt.name, err, tt.code)
			}
		}
		if found, err := svc.FindGuardianByLineUser(ctx, lineID(1)); err != nil || found.ID != g.ID {
			t.Errorf("find: %+v, %v", found, err)
		}
		if _, err := svc.FindGuardianByLineUser(ctx, lineID(2)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("find unlinked: %v", err)
		}

		st1001, st1004 := studentID(t, f.db, f.school, "1001"), studentID(t, f.db, f.school, "1004")
		if err := svc.SetSubscriptions(ctx, g.ID, st1001, nil); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("subscriptions without guardianship: %v", err)
		}
		for range 2 {
			if err := svc.AddGuardianship(ctx, g.ID, st1001); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.AddGuardianship(ctx, g.ID, st1004); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("guardianship of a pupil who left: %v", err)
		}
		if err := svc.AddGuardianship(ctx, g.ID+100, st1001); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("guardianship of an unknown guardian: %v", err)
		}

		want := []ecardbot.Subscription{
			{StudentID: st1001, Kind: ecardbot.KindArrived, Channel: ecardbot.ChannelEmail},
			{StudentID: st1001, Kind: ecardbot.KindArrived, Channel: ecardbot.ChannelLINE},
			{StudentID: st1001, Kind: ecardbot.KindLeft, Channel: ecardbot.ChannelLINE},
		}
		if err := svc.SetSubscriptions(ctx, g.ID, st1001, append(want, want[0])); err != nil {
			t.Fatal(err)
		}
		got, err := svc.Subscriptions(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("subscriptions (-want +got):\n%s", diff)
		}
		if err := svc.SetSubscriptions(ctx, g.ID, st1001, want[2:]); err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.Subscriptions(ctx, g.ID); len(got) != 1 || got[0] != want[2] {
			t.Errorf("after narrowing: %+v", got)
		}
		for _, bad := range []ecardbot.Subscription{
			{StudentID: st1004, Kind: ecardbot.KindArrived, Channel: ecardbot.ChannelLINE},
			{StudentID: st1001, Kind: "late", Channel: ecardbot.ChannelLINE},
			{StudentID: st1001, Kind: ecardbot.KindArrived, Channel: "sms"},
		} {
			if err := svc.SetSubscriptions(ctx, g.ID, st1001, []ecardbot.Subscription{bad}); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("SetSubscriptions(%+v): %v, want EINVALID", bad, err)
			}
		}

		if err := svc.SetEmail(ctx, g.ID, " a@example.com ", false); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]guardianView{{"tp-a", lineID(1), "a@example.com", false}}, listGuardians(t, f.db)); diff != "" {
			t.Errorf("unconfirmed address (-want +got):\n%s", diff)
		}
		if err := svc.SetEmail(ctx, g.ID, "a@example.com", true); err != nil {
			t.Fatal(err)
		}
		if got := listGuardians(t, f.db)[0]; !got.Confirmed {
			t.Errorf("confirmed address: %+v", got)
		}
		if err := svc.SetEmail(ctx, g.ID, "", true); err != nil {
			t.Fatal(err)
		}
		if got := listGuardians(t, f.db)[0]; got.Email != "" || got.Confirmed {
			t.Errorf("removed address: %+v", got)
		}
		if err := svc.SetEmail(ctx, g.ID, "a@b", false); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
			t.Errorf("bad address: %v", err)
		}
		if err := svc.SetEmail(ctx, g.ID+100, "a@example.com", false); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("unknown guardian: %v", err)
		}
	})
}

// deliveryStates returns every delivery as "account student kind channel state", ordered.
func deliveryStates(tb testing.TB, db *DB) []string {
	tb.Helper()
	var rows []string
	err := db.gorm.Raw(`SELECT g.taipeipass_id || ' ' || s.student_no || ' ' || n.kind || ' ' || d.channel || ' ' || d.state
FROM deliveries d JOIN notices n ON n.id = d.notice_id JOIN students s ON s.id = n.student_id JOIN guardians g ON g.id = d.guardian_id
ORDER BY 1`).Scan(&rows).Error
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// Unlinking ends every notice at once, on both channels, and keeps the children: linking the same
// account again brings them back, without notices until the parent chooses them again.
func TestUnlinkGuardian(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newGateFixture(t, b, entry(2, "1001", "C1"), entry(3, "1002", "C2"))
		svc := NewGuardianService(f.db)
		if _, err := svc.ImportSubscribers(ctx, []ecardbot.SubscriberEntry{
			subEntry(2, 1, "tp-a", "1001", "a@example.com", allKinds...),
			subEntry(3, 1, "tp-a", "1002", "a@example.com", ecardbot.KindArrived),
			subEntry(4, 2, "tp-b", "1001", "", ecardbot.KindArrived),
		}, ecardbot.SubscriberImportOptions{EmailConfirmed: true}); err != nil {
			t.Fatal(err)
		}
		f.ingest(t, tp(7, 45, 0), tap("e1", "C1", in, tp(7, 40, 0)), tap("e2", "C2", in, tp(7, 41, 0)))
		// One of tp-a's deliveries is in the queue already, one was sent.
		if err := f.db.gorm.Exec(`UPDATE deliveries SET state = 'queued' WHERE channel = 'line' AND guardian_id = (SELECT id FROM guardians WHERE taipeipass_id = 'tp-a')
AND notice_id = (SELECT n.id FROM notices n JOIN students s ON s.id = n.student_id WHERE s.student_no = '1002')`).Error; err != nil {
			t.Fatal(err)
		}
		if err := f.db.gorm.Exec(`UPDATE deliveries SET state = 'sent' WHERE channel = 'email' AND guardian_id = (SELECT id FROM guardians WHERE taipeipass_id = 'tp-a')
AND notice_id = (SELECT n.id FROM notices n JOIN students s ON s.id = n.student_id WHERE s.student_no = '1002')`).Error; err != nil {
			t.Fatal(err)
		}
		openSettings(t, f.db, "tp-a", "tp-b")

		g, err := svc.UnlinkGuardian(ctx, lineID(1))
		if err != nil {
			t.Fatal(err)
		}
		if g.TaipeiPassID != "tp-a" || g.LineUserID != "" {
			t.Errorf("unlinked guardian = %+v", g)
		}
		want := []string{
			"tp-a 1001 arrived email cancelled",
			"tp-a 1001 arrived line cancelled",
			"tp-a 1002 arrived email sent",
			"tp-a 1002 arrived line cancelled",
			"tp-b 1001 arrived line pending",
		}
		if diff := cmp.Diff(want, deliveryStates(t, f.db)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(subs("tp-b 1001", lineOnly, ecardbot.KindArrived), listSubscriptions(t, f.db)); diff != "" {
			t.Errorf("subscriptions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"tp-a 1001", "tp-a 1002", "tp-b 1001"}, listGuardianships(t, f.db)); diff != "" {
			t.Errorf("guardianships (-want +got):\n%s", diff)
		}
		// The unlinked parent's settings sessions and links end with the link; tp-b's stay.
		if diff := cmp.Diff([]string{"tp-b link", "tp-b session"}, listSettingsAccess(t, f.db)); diff != "" {
			t.Errorf("settings sessions and links (-want +got):\n%s", diff)
		}
		if _, err := svc.FindGuardianByLineUser(ctx, lineID(1)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("find after unlink: %v", err)
		}
		if _, err := svc.UnlinkGuardian(ctx, lineID(1)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("unlink twice: %v", err)
		}

		// A later tap reaches tp-b only.
		f.ingest(t, tp(16, 5, 0), tap("e3", "C1", out, tp(16, 0, 0)))
		if got := deliveryStates(t, f.db); slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "tp-a 1001 left") }) {
			t.Errorf("an unlinked guardian got a new delivery: %v", got)
		}

		// Linking the account again, from another LINE user too, restores the children.
		res, err := svc.LinkGuardian(ctx, "tp-a", lineID(3))
		if err != nil {
			t.Fatal(err)
		}
		if res.Guardian.ID != g.ID || res.MovedFrom != "" || res.Unlinked != 0 {
			t.Errorf("relink = %+v", res)
		}
		if diff := cmp.Diff([]string{"tp-a 1001", "tp-a 1002", "tp-b 1001"}, listGuardianships(t, f.db)); diff != "" {
			t.Errorf("guardianships after relinking (-want +got):\n%s", diff)
		}
	})
}

// The accountLink event proves both accounts, so the newest link wins, either way round.
func TestRelinkNewestWins(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		setup := func(t *testing.T) (*guardianFixture, map[string]int64) {
			f := newGuardianFixture(t, b)
			f.mustImport(t, ecardbot.SubscriberImportOptions{},
				subEntry(2, 1, "tp-a", "1001", "", ecardbot.KindArrived),
				subEntry(3, 2, "tp-b", "1002", "", ecardbot.KindLeft))
			ids := map[string]int64{}
			for _, acct := range []string{"tp-a", "tp-b"} {
				var id int64
				if err := f.db.gorm.Raw(`SELECT id FROM guardians WHERE taipeipass_id = ?`, acct).Scan(&id).Error; err != nil {
					t.Fatal(err)
				}
				ids[acct] = id
			}
			openSettings(t, f.db, "tp-a", "tp-b")
			return f, ids
		}

		t.Run("the account moves to a new LINE user with its children and notices", func(t *testing.T) {
			f, ids := setup(t)
			res, err := f.svc.LinkGuardian(ctx, "tp-a", lineID(9))
			if err != nil {
				t.Fatal(err)
			}
			if res.Guardian.ID != ids["tp-a"] || res.Guardian.LineUserID != lineID(9) || res.MovedFrom != lineID(1) || res.Unlinked != 0 {
				t.Errorf("result = %+v, guardian %+v", res, res.Guardian)
			}
			want := []guardianView{{"tp-a", lineID(9), "", false}, {"tp-b", lineID(2), "", false}}
			if diff := cmp.Diff(want, listGuardians(t, f.db)); diff != "" {
				t.Errorf("guardians (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(sorted(subs("tp-a 1001", lineOnly, ecardbot.KindArrived), subs("tp-b 1002", lineOnly, ecardbot.KindLeft)),
				listSubscriptions(t, f.db)); diff != "" {
				t.Errorf("subscriptions (-want +got):\n%s", diff)
			}
			// The old LINE user's settings session and link do not follow the account.
			if diff := cmp.Diff([]string{"tp-b link", "tp-b session"}, listSettingsAccess(t, f.db)); diff != "" {
				t.Errorf("settings sessions and links (-want +got):\n%s", diff)
			}
		})

		t.Run("the LINE user leaves its old account for a new one", func(t *testing.T) {
			f, ids := setup(t)
			res, err := f.svc.LinkGuardian(ctx, "tp-new", lineID(1))
			if err != nil {
				t.Fatal(err)
			}
			if res.Guardian.TaipeiPassID != "tp-new" || res.MovedFrom != "" || res.Unlinked != ids["tp-a"] {
				t.Errorf("result = %+v", res)
			}
			want := []guardianView{{"tp-a", "", "", false}, {"tp-b", lineID(2), "", false}, {"tp-new", lineID(1), "", false}}
			if diff := cmp.Diff(want, listGuardians(t, f.db)); diff != "" {
				t.Errorf("guardians (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(subs("tp-b 1002", lineOnly, ecardbot.KindLeft), listSubscriptions(t, f.db)); diff != "" {
				t.Errorf("subscriptions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"tp-b link", "tp-b session"}, listSettingsAccess(t, f.db)); diff != "" {
				t.Errorf("settings sessions and links (-want +got):\n%s", diff)
			}
		})

		t.Run("both at once", func(t *testing.T) {
			f, ids := setup(t)
			// tp-a, linked to user 1, is linked to user 2, who was tp-b's.
			res, err := f.svc.LinkGuardian(ctx, "tp-a", lineID(2))
			if err != nil {
				t.Fatal(err)
			}
			if res.Guardian.ID != ids["tp-a"] || res.MovedFrom != lineID(1) || res.Unlinked != ids["tp-b"] {
				t.Errorf("result = %+v", res)
			}
			want := []guardianView{{"tp-a", lineID(2), "", false}, {"tp-b", "", "", false}}
			if diff := cmp.Diff(want, listGuardians(t, f.db)); diff != "" {
				t.Errorf("guardians (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(subs("tp-a 1001", lineOnly, ecardbot.KindArrived), listSubscriptions(t, f.db)); diff != "" {
				t.Errorf("subscriptions (-want +got):\n%s", diff)
			}
			if got := listSettingsAccess(t, f.db); len(got) != 0 {
				t.Errorf("settings sessions and links left: %v", got)
			}
		})

		t.Run("the import still refuses what linking would move", func(t *testing.T) {
			f, _ := setup(t)
			_, err := f.svc.ImportSubscribers(ctx, []ecardbot.SubscriberEntry{subEntry(2, 9, "tp-a", "1001", "")}, ecardbot.SubscriberImportOptions{})
			if ecardbot.ErrorCode(err) != ecardbot.ECONFLICT {
				t.Errorf("import moving an account: %v, want ECONFLICT", err)
			}
		})
	})
}
