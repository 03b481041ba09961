package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// at returns the instant hh:mm:ss of day (YYYY-MM-DD) in Taipei.
func at(tb testing.TB, day string, hh, mm, ss int) time.Time {
	tb.Helper()
	d, err := time.ParseInLocation(time.DateOnly, day, taipeiZone)
	if err != nil {
		tb.Fatal(err)
	}
	return time.Date(d.Year(), d.Month(), d.Day(), hh, mm, ss, 0, taipeiZone)
}

// sweepFixture is a migrated database with two schools in different districts, gate and
// sweep services sharing one clock, and a class at 313601.
type sweepFixture struct {
	db       *DB
	clock    *testClock
	gate     *GateService
	sweeps   *SweepService
	songshan *ecardbot.School // 313601, 松山區, cutoff 08:30
	daan     *ecardbot.School // 333601, 大安區, cutoff 07:50
}

func newSweepFixture(t *testing.T, b backend) *sweepFixture {
	t.Helper()
	db := MustOpenMigrated(t, b)
	f := &sweepFixture{db: db, clock: &testClock{t: tp(7, 0, 0)}}
	f.songshan = mustSchool(t, db, "313601", "松山區", ecardbot.DefaultCutoff)
	f.daan = mustSchool(t, db, "333601", "大安區", 7*60+50)
	f.gate = NewGateService(db, GateConfig{Location: taipeiZone, Now: f.clock.Now})
	f.sweeps = NewSweepService(db, SweepConfig{Location: taipeiZone, Now: f.clock.Now})
	return f
}

// sweep runs the school's sweep for day at now and fails the test on error.
func (f *sweepFixture) sweep(t *testing.T, now time.Time, school *ecardbot.School, day string) ecardbot.SweepResult {
	t.Helper()
	f.clock.Set(now)
	res, err := f.sweeps.Sweep(context.Background(), school, day)
	if err != nil {
		t.Fatalf("Sweep(%s, %s) at %s: %v", school.Code, day, now, err)
	}
	return res
}

func absentNotice(no, day string, cutoff time.Time, stale bool) noticeView {
	return noticeView{StudentNo: no, Day: day, Kind: "absent", At: cutoff.UTC(), Stale: stale}
}

// sweepRun is a row of sweep_runs as tests compare it.
type sweepRun struct {
	School                                         string
	Day                                            string
	SchoolDay                                      bool
	Reason                                         string
	Students, Arrived, OnLeave, Absent, Deliveries int
	Stale                                          bool
	Finished                                       bool
}

func listSweepRuns(tb testing.TB, db *DB) []sweepRun {
	tb.Helper()
	var rows []struct {
		Code                                           string
		Day                                            string
		SchoolDay                                      bool
		Reason                                         string
		Students, Arrived, OnLeave, Absent, Deliveries int
		Stale                                          bool
		StartedAt                                      time.Time
		FinishedAt                                     *time.Time
	}
	err := db.gorm.Raw(`SELECT s.code, r.day, r.school_day, r.reason, r.students, r.arrived, r.on_leave, r.absent,
	r.deliveries, r.stale, r.started_at, r.finished_at
FROM sweep_runs r JOIN schools s ON s.id = r.school_id ORDER BY r.day, s.code`).Scan(&rows).Error
	if err != nil {
		tb.Fatalf("list sweep runs: %v", err)
	}
	var runs []sweepRun
	for _, r := range rows {
		runs = append(runs, sweepRun{r.Code, r.Day, r.SchoolDay, r.Reason, r.Students, r.Arrived, r.OnLeave, r.Absent,
			r.Deliveries, r.Stale, r.FinishedAt != nil && !r.FinishedAt.Before(r.StartedAt)})
	}
	return runs
}

func TestSweepSchoolDay(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSweepFixture(t, b)
		// 1001 arrives; 1002 is absent and arrives late, after the sweep; 1003 is on leave;
		// 1004 left the school before today; 1005 has no card yet and is absent.
		MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"),
			entry(5, "1004", "C4"), entry(6, "1005", ""))
		MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"),
			entry(6, "1005", ""))
		st := func(no string) int64 { return studentID(t, f.db, f.songshan, no) }
		line, mail := ecardbot.ChannelLINE, ecardbot.ChannelEmail
		// 1002's mother wants every notice on LINE and e-mail; its father only 到校.
		mustGuardian(t, f.db, seedGuardian{taipeiPass: "g-1002-mother", lineUser: "U1", lineRow: true, following: true,
			email: "m@example.com", confirmed: true, students: []int64{st("1002")},
			subs: append(allSubs(st("1002"), line), allSubs(st("1002"), mail)...)})
		mustGuardian(t, f.db, seedGuardian{taipeiPass: "g-1002-father", lineUser: "U2", lineRow: true, following: true,
			students: []int64{st("1002")}, subs: []sub{{st("1002"), ecardbot.KindArrived, line}}})
		// 1001's guardian wants 未到校 too, but 1001 arrives.
		mustGuardian(t, f.db, seedGuardian{taipeiPass: "g-1001", lineUser: "U3", lineRow: true, following: true,
			students: []int64{st("1001")}, subs: allSubs(st("1001"), line)})
		// 1003's guardian: on leave, so nothing.
		mustGuardian(t, f.db, seedGuardian{taipeiPass: "g-1003", lineUser: "U4", lineRow: true, following: true,
			students: []int64{st("1003")}, subs: allSubs(st("1003"), line)})
		// 1005's former guardian: the guardianship is gone, the subscription was left behind.
		mustGuardian(t, f.db, seedGuardian{taipeiPass: "g-1005-former", lineUser: "U5", lineRow: true, following: true,
			students: []int64{st("1001")}, subs: allSubs(st("1005"), line)})

		f.clock.Set(tp(7, 40, 0))
		f.ingest(t, tp(7, 40, 0), tap("e1", "C1", in, tp(7, 25, 0)))
		if err := f.gate.RecordLeave(ctx, f.songshan, "1003", testDay, "sick"); err != nil {
			t.Fatal(err)
		}

		// One microsecond before the cutoff is too early.
		f.clock.Set(tp(8, 30, 0).Add(-time.Microsecond))
		if _, err := f.sweeps.Sweep(ctx, f.songshan, testDay); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
			t.Fatalf("Sweep before the cutoff: %v, want EINVALID", err)
		}

		got := f.sweep(t, tp(8, 30, 0), f.songshan, testDay)
		want := ecardbot.SweepResult{SchoolCode: "313601", Day: testDay, Ran: true, SchoolDay: true, Reason: "weekday",
			Students: 4, Arrived: 1, OnLeave: 1, Absent: 2, Deliveries: 2}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sweep (-want +got):\n%s", diff)
		}
		wantNotices := []noticeView{
			notice("1001", "arrived", tp(7, 25, 0), false),
			absentNotice("1002", testDay, tp(8, 30, 0), false),
			absentNotice("1005", testDay, tp(8, 30, 0), false),
		}
		checkNotices(t, f.db, wantNotices...)
		wantDeliveries := []deliveryView{
			{"1001", "arrived", "g-1001", "line", "pending", 0},
			{"1002", "absent", "g-1002-mother", "email", "pending", 0},
			{"1002", "absent", "g-1002-mother", "line", "pending", 0},
		}
		if diff := cmp.Diff(wantDeliveries, listDeliveries(t, f.db)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		wantRuns := []sweepRun{{School: "313601", Day: testDay, SchoolDay: true, Reason: "weekday",
			Students: 4, Arrived: 1, OnLeave: 1, Absent: 2, Deliveries: 2, Finished: true}}
		if diff := cmp.Diff(wantRuns, listSweepRuns(t, f.db)); diff != "" {
			t.Errorf("sweep runs (-want +got):\n%s", diff)
		}

		// A rerun, by this replica or another, finds the run and changes nothing.
		if got := f.sweep(t, tp(8, 31, 0), f.songshan, testDay); got != (ecardbot.SweepResult{SchoolCode: "313601", Day: testDay}) {
			t.Errorf("rerun = %+v, want Ran false and nothing else", got)
		}
		// Even with the record gone (deleted by hand), the notices are not doubled.
		if err := f.db.gorm.Exec(`DELETE FROM sweep_runs`).Error; err != nil {
			t.Fatal(err)
		}
		got = f.sweep(t, tp(8, 32, 0), f.songshan, testDay)
		if !got.Ran || got.Absent != 0 || got.Deliveries != 0 || got.Students != 4 {
			t.Errorf("rerun without the record = %+v, want Ran and no new notice", got)
		}
		checkNotices(t, f.db, wantNotices...)

		// 1002 arrives after the sweep: the usual 到校 notice, to both parents.
		f.ingest(t, tp(8, 45, 0), tap("e2", "C2", in, tp(8, 44, 0)))
		checkNotices(t, f.db,
			notice("1001", "arrived", tp(7, 25, 0), false),
			absentNotice("1002", testDay, tp(8, 30, 0), false),
			notice("1002", "arrived", tp(8, 44, 0), false),
			absentNotice("1005", testDay, tp(8, 30, 0), false),
		)
		wantDeliveries = []deliveryView{
			{"1001", "arrived", "g-1001", "line", "pending", 0},
			{"1002", "absent", "g-1002-mother", "email", "pending", 0},
			{"1002", "absent", "g-1002-mother", "line", "pending", 0},
			{"1002", "arrived", "g-1002-father", "line", "pending", 0},
			{"1002", "arrived", "g-1002-mother", "email", "pending", 0},
			{"1002", "arrived", "g-1002-mother", "line", "pending", 0},
		}
		if diff := cmp.Diff(wantDeliveries, listDeliveries(t, f.db)); diff != "" {
			t.Errorf("deliveries after the late arrival (-want +got):\n%s", diff)
		}
	})
}

// ingest posts events at now for 313601.
func (f *sweepFixture) ingest(t *testing.T, now time.Time, events ...ecardbot.GateEvent) {
	t.Helper()
	f.clock.Set(now)
	if _, err := f.gate.Ingest(context.Background(), f.songshan, events); err != nil {
		t.Fatalf("Ingest: %v", err)
	}
}

func TestSweepCalendar(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newSweepFixture(t, b)
		MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"))
		MustImportRoster(t, f.db, "333601", entry(2, "2001", "D1"))
		mustCalendar(t, f.db,
			cityEntry("2026-10-09", holiday, "國慶日補假"),
			cityEntry("2026-09-26", schoolday, "補課"),
			districtEntry("松山區", "2026-11-30", closure, "颱風停課"),
		)
		for _, tt := range []struct {
			name       string
			day        string
			school     *ecardbot.School
			wantSchool bool
			wantReason string
			wantNo     string // student with a 未到校 notice; "" for none
		}{
			{"a holiday: no sweep", "2026-10-09", f.songshan, false, "holiday", ""},
			{"a weekend: no sweep", "2026-10-10", f.songshan, false, "weekend", ""},
			{"a make-up Saturday: swept", "2026-09-26", f.songshan, true, "schoolday", "1001"},
			{"a typhoon in the school's district: no sweep", "2026-11-30", f.songshan, false, "closure", ""},
			{"the same typhoon, another district: swept", "2026-11-30", f.daan, true, "weekday", "2001"},
		} {
			before := count(t, f.db, "notices")
			got := f.sweep(t, at(t, tt.day, 9, 0, 0), tt.school, tt.day)
			if !got.Ran || got.SchoolDay != tt.wantSchool || got.Reason != tt.wantReason {
				t.Errorf("%s: %+v, want school day %v because %s", tt.name, got, tt.wantSchool, tt.wantReason)
			}
			added := count(t, f.db, "notices") - before
			switch {
			case tt.wantNo == "" && (added != 0 || got.Absent != 0 || got.Students != 0):
				t.Errorf("%s: %d notices, result %+v; want nothing", tt.name, added, got)
			case tt.wantNo != "" && (added != 1 || got.Absent != 1 || got.Students != 1):
				t.Errorf("%s: %d notices, result %+v; want one 未到校", tt.name, added, got)
			}
			// The decision is recorded either way, so the day is not swept again.
			if again := f.sweep(t, at(t, tt.day, 9, 1, 0), tt.school, tt.day); again.Ran {
				t.Errorf("%s: swept twice", tt.name)
			}
		}
		var runs []struct {
			Day       string
			SchoolDay bool
			Reason    string
		}
		if err := f.db.gorm.Raw(`SELECT day, school_day, reason FROM sweep_runs ORDER BY day, school_id`).Scan(&runs).Error; err != nil {
			t.Fatal(err)
		}
		if len(runs) != 5 {
			t.Errorf("sweep runs %+v, want 5", runs)
		}
	})
}

func TestSweepLate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSweepFixture(t, b)
		MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"))
		MustImportRoster(t, f.db, "333601", entry(2, "2001", "D1"))
		for _, sc := range []*ecardbot.School{f.songshan, f.daan} {
			no := "1001"
			if sc == f.daan {
				no = "2001"
			}
			st := studentID(t, f.db, sc, no)
			mustGuardian(t, f.db, seedGuardian{taipeiPass: "g-" + no, lineUser: "U" + no, lineRow: true, following: true,
				students: []int64{st}, subs: allSubs(st, ecardbot.ChannelLINE)})
		}
		// The scheduler was down all morning. 313601's cutoff (08:30) is exactly at the
		// staleness limit at 10:30: still sent. 333601's (07:50) is older: recorded only.
		got := f.sweep(t, tp(10, 30, 0), f.songshan, testDay)
		if !got.Ran || got.Absent != 1 || got.Deliveries != 1 || got.Stale {
			t.Errorf("late within the limit: %+v, want one notice delivered", got)
		}
		got = f.sweep(t, tp(10, 30, 0), f.daan, testDay)
		if !got.Ran || got.Absent != 1 || got.Deliveries != 0 || !got.Stale {
			t.Errorf("late beyond the limit: %+v, want one stale notice, no delivery", got)
		}
		checkNotices(t, f.db,
			absentNotice("1001", testDay, tp(8, 30, 0), false),
			absentNotice("2001", testDay, tp(7, 50, 0), true),
		)
		if diff := cmp.Diff([]deliveryView{{"1001", "absent", "g-1001", "line", "pending", 0}}, listDeliveries(t, f.db)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		runs := listSweepRuns(t, f.db)
		if len(runs) != 2 || runs[0].Stale || !runs[1].Stale {
			t.Errorf("sweep runs %+v: want 333601's stale", runs)
		}

		// Bad calls.
		for _, tt := range []struct {
			school *ecardbot.School
			day    string
			code   string
		}{
			{nil, testDay, ecardbot.EINVALID},
			{f.songshan, "27/11/2026", ecardbot.EINVALID},
			{f.songshan, "2026-11-28", ecardbot.EINVALID}, // tomorrow's cutoff is in the future
			{&ecardbot.School{ID: 99999}, testDay, ecardbot.ENOTFOUND},
		} {
			if _, err := f.sweeps.Sweep(ctx, tt.school, tt.day); ecardbot.ErrorCode(err) != tt.code {
				t.Errorf("Sweep(%v, %s): %v, want %s", tt.school, tt.day, err, tt.code)
			}
		}
		schools, err := f.sweeps.SweepSchools(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(schools) != 2 || schools[0].Code != "313601" || schools[1].Cutoff != 7*60+50 {
			t.Errorf("SweepSchools = %+v", schools)
		}
	})
}

// TestRemovedGuardianshipStopsDeliveries removes a guardianship between two notices of each
// path: the deliveries still waiting are cancelled at once, and later notices of the gate and
// the sweep reach nobody.
func TestRemovedGuardianshipStopsDeliveries(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newSweepFixture(t, b)
		MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"))
		st := studentID(t, f.db, f.songshan, "1001")
		g := mustGuardian(t, f.db, seedGuardian{taipeiPass: "g", lineUser: "U1", lineRow: true, following: true,
			email: "g@example.com", confirmed: true, students: []int64{st},
			subs: append(allSubs(st, ecardbot.ChannelLINE), allSubs(st, ecardbot.ChannelEmail)...)})
		f.ingest(t, tp(7, 40, 0), tap("e1", "C1", in, tp(7, 30, 0)))
		if n := count(t, f.db, "deliveries"); n != 2 {
			t.Fatalf("%d deliveries before the removal, want 2", n)
		}
		guardians := NewGuardianService(f.db)
		if err := guardians.RemoveGuardianship(context.Background(), g, st); err != nil {
			t.Fatal(err)
		}
		if err := guardians.RemoveGuardianship(context.Background(), g, st); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("second removal: %v, want ENOTFOUND", err)
		}
		var states []string
		if err := f.db.gorm.Raw(`SELECT state || '/' || dead_reason FROM deliveries ORDER BY channel`).Scan(&states).Error; err != nil {
			t.Fatal(err)
		}
		if want := []string{"cancelled/guardianship removed", "cancelled/guardianship removed"}; !slices.Equal(states, want) {
			t.Errorf("deliveries after the removal: %q, want %q", states, want)
		}
		if subs, err := guardians.Subscriptions(context.Background(), g); err != nil || len(subs) != 0 {
			t.Errorf("subscriptions after the removal: %v, %v; want none", subs, err)
		}
		f.ingest(t, tp(16, 0, 0), tap("e2", "C1", out, tp(15, 55, 0)))
		day := "2026-11-30" // Monday
		if got := f.sweep(t, at(t, day, 8, 30, 0), f.songshan, day); got.Absent != 1 || got.Deliveries != 0 {
			t.Errorf("sweep after the removal: %+v, want a notice without deliveries", got)
		}
		if n := count(t, f.db, "notices"); n != 3 {
			t.Errorf("%d notices, want 3", n)
		}
		if n := count(t, f.db, "deliveries"); n != 2 {
			t.Errorf("%d deliveries after the removal, want the 2 cancelled ones from before", n)
		}
	})
}
