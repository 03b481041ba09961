package store

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// mustSchool imports a school in the district with the cutoff and returns it.
func mustSchool(tb testing.TB, db *DB, code, district string, cutoff ecardbot.Clock) *ecardbot.School {
	tb.Helper()
	sc := testSchool(code)
	sc.District, sc.Cutoff = district, cutoff
	s := NewSchoolService(db)
	if _, _, err := s.ImportSchools(context.Background(), []ecardbot.School{sc}); err != nil {
		tb.Fatalf("ImportSchools: %v", err)
	}
	found, err := s.FindSchool(context.Background(), code)
	if err != nil {
		tb.Fatalf("FindSchool: %v", err)
	}
	return found
}

// mustCalendar imports entries, numbering their lines from 2 as a file would.
func mustCalendar(tb testing.TB, db *DB, entries ...ecardbot.CalendarEntry) int {
	tb.Helper()
	for i := range entries {
		entries[i].Line = i + 2
	}
	n, err := NewCalendarService(db).ImportCalendar(context.Background(), entries)
	if err != nil {
		tb.Fatalf("ImportCalendar: %v", err)
	}
	return n
}

func cityEntry(date string, kind ecardbot.CalendarKind, note string) ecardbot.CalendarEntry {
	return ecardbot.CalendarEntry{Date: date, Kind: kind, Note: note}
}

func schoolEntry(code, date string, kind ecardbot.CalendarKind, note string) ecardbot.CalendarEntry {
	return ecardbot.CalendarEntry{Date: date, SchoolCode: code, Kind: kind, Note: note}
}

func districtEntry(district, date string, kind ecardbot.CalendarKind, note string) ecardbot.CalendarEntry {
	return ecardbot.CalendarEntry{Date: date, District: district, Kind: kind, Note: note}
}

const (
	holiday   = ecardbot.CalendarHoliday
	closure   = ecardbot.CalendarClosure
	schoolday = ecardbot.CalendarSchoolDay
)

func TestCalendarImport(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		mustSchool(t, db, "313601", "松山區", ecardbot.DefaultCutoff)
		cal := NewCalendarService(db)
		file := func() []ecardbot.CalendarEntry {
			return []ecardbot.CalendarEntry{
				cityEntry("2026-10-09", holiday, "國慶日補假"),
				cityEntry("2026-10-10", holiday, "國慶日"),
				schoolEntry("313601", "2026-09-26", schoolday, "補 10/9 課"),
				schoolEntry("313601", "2026-09-26", closure, "停電"), // beside the make-up day
				districtEntry("松山區", "2026-09-28", closure, "颱風停課"),
			}
		}
		if n := mustCalendar(t, db, file()...); n != 5 {
			t.Errorf("first import changed %d, want 5", n)
		}
		if n := mustCalendar(t, db, file()...); n != 0 {
			t.Errorf("the same file again changed %d, want 0", n)
		}
		// A corrected note, and the city turning 10-09 into a make-up day: the holiday is
		// replaced, not kept beside it.
		changed := file()
		changed[1].Note = "國慶日（週六）"
		changed[0].Kind, changed[0].Note = schoolday, "改為上課"
		if n := mustCalendar(t, db, changed...); n != 2 {
			t.Errorf("corrected file changed %d, want 2", n)
		}
		if n := count(t, db, "calendar_days"); n != 3 {
			t.Errorf("%d planned days, want 3", n)
		}
		if n := count(t, db, "calendar_closures"); n != 2 {
			t.Errorf("%d closures, want 2", n)
		}
		days, err := cal.SchoolDays(ctx, "313601", "2026-10-09", "2026-10-10")
		if err != nil {
			t.Fatal(err)
		}
		if !days[0].SchoolDay || days[0].Entry.Note != "改為上課" || days[1].SchoolDay || days[1].Entry.Note != "國慶日（週六）" {
			t.Errorf("after correction: %+v %+v", days[0], *days[1].Entry)
		}

		for _, tt := range []struct {
			name    string
			entries []ecardbot.CalendarEntry
			want    string // in the message
		}{
			{"unknown school, after good lines", []ecardbot.CalendarEntry{
				cityEntry("2026-12-25", holiday, "行憲紀念日"),
				schoolEntry("999999", "2026-12-26", schoolday, ""),
			}, "line 3: no school has code 999999"},
			{"holiday and schoolday for one date and school", []ecardbot.CalendarEntry{
				schoolEntry("313601", "2026-12-25", holiday, ""),
				schoolEntry("313601", "2026-12-25", schoolday, ""),
			}, "line 3: 2026-12-25 for school 313601 repeats line 2"},
			{"a closure repeated", []ecardbot.CalendarEntry{
				cityEntry("2026-12-25", holiday, ""),
				districtEntry("松山區", "2026-12-25", closure, ""),
				districtEntry("松山區", "2026-12-25", closure, "again"),
			}, "line 4: 2026-12-25 for 松山區 repeats line 3"},
			{"bad date", []ecardbot.CalendarEntry{cityEntry("2026-02-30", holiday, "")}, `line 2: date "2026-02-30"`},
			{"bad kind", []ecardbot.CalendarEntry{cityEntry("2026-12-25", "typhoon", "")}, `line 2: kind "typhoon"`},
			{"bad district", []ecardbot.CalendarEntry{districtEntry("松山", "2026-12-25", closure, "")}, `"松山" is not a Taipei district`},
			{"school and district", []ecardbot.CalendarEntry{{Date: "2026-12-25", SchoolCode: "313601", District: "松山區", Kind: closure}},
				"not both"},
			{"long note", []ecardbot.CalendarEntry{cityEntry("2026-12-25", holiday, strings.Repeat("颱", MaxCalendarNote+1))}, "longer than"},
		} {
			for i := range tt.entries {
				tt.entries[i].Line = i + 2
			}
			_, err := cal.ImportCalendar(ctx, tt.entries)
			if ecardbot.ErrorCode(err) != ecardbot.EINVALID || !strings.Contains(ecardbot.ErrorMessage(err), tt.want) {
				t.Errorf("%s: err = %v, want EINVALID containing %q", tt.name, err, tt.want)
			}
		}
		// Nothing of the bad imports was applied.
		if n := count(t, db, "calendar_days") + count(t, db, "calendar_closures"); n != 5 {
			t.Errorf("%d entries after failed imports, want 5", n)
		}
		if n, err := cal.ImportCalendar(ctx, nil); n != 0 || err != nil {
			t.Errorf("empty import: %d, %v", n, err)
		}
	})
}

func TestIsSchoolDay(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		songshan := mustSchool(t, db, "313601", "松山區", ecardbot.DefaultCutoff)
		daan := mustSchool(t, db, "333601", "大安區", 7*60+50)
		cal := NewCalendarService(db)
		mustCalendar(t, db,
			cityEntry("2026-10-09", holiday, "國慶日補假"),
			schoolEntry("313601", "2026-09-26", schoolday, "補課"),
			districtEntry("松山區", "2026-11-30", closure, "颱風停課"),
			schoolEntry("333601", "2026-12-01", closure, "校舍消毒"),
			cityEntry("2026-12-05", schoolday, "全市補課"),
			schoolEntry("333601", "2026-12-05", holiday, "校慶補假"),
		)
		check := func(sc *ecardbot.School, date string, want bool) {
			t.Helper()
			got, err := cal.IsSchoolDay(ctx, sc, date)
			if err != nil {
				t.Fatalf("IsSchoolDay(%s, %s): %v", sc.Code, date, err)
			}
			if got != want {
				t.Errorf("IsSchoolDay(%s, %s) = %v, want %v", sc.Code, date, got, want)
			}
		}
		for _, tt := range []struct {
			date           string
			songshan, daan bool
		}{
			{"2026-11-27", true, true},   // Friday
			{"2026-11-28", false, false}, // Saturday
			{"2026-11-29", false, false}, // Sunday
			{"2026-10-09", false, false}, // city holiday
			{"2026-09-26", true, false},  // 313601's make-up Saturday
			{"2026-11-30", false, true},  // typhoon in 松山區 only
			{"2026-12-01", true, false},  // one school closed
			{"2026-12-05", true, false},  // city make-up Saturday; 333601 takes its anniversary off
		} {
			check(songshan, tt.date, tt.songshan)
			check(daan, tt.date, tt.daan)
		}

		// A city-wide typhoon beats the make-up day; reopening restores it.
		mustCalendar(t, db, cityEntry("2026-09-26", closure, "颱風停課"))
		check(songshan, "2026-09-26", false)
		reopen := ecardbot.CalendarEntry{Date: "2026-09-26"}
		if err := cal.Reopen(ctx, reopen); err != nil {
			t.Fatal(err)
		}
		check(songshan, "2026-09-26", true)
		if err := cal.Reopen(ctx, reopen); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("second Reopen: %v, want ENOTFOUND", err)
		}
		// Reopening one school leaves its district's closure alone.
		if err := cal.Reopen(ctx, ecardbot.CalendarEntry{Date: "2026-11-30", SchoolCode: "313601"}); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("Reopen of a school under a district closure: %v, want ENOTFOUND", err)
		}
		if err := cal.Reopen(ctx, ecardbot.CalendarEntry{Date: "2026-12-01", SchoolCode: "333601"}); err != nil {
			t.Fatal(err)
		}
		check(daan, "2026-12-01", true)
		if err := cal.Reopen(ctx, ecardbot.CalendarEntry{Date: "2026-11-30", District: "松山區"}); err != nil {
			t.Fatal(err)
		}
		check(songshan, "2026-11-30", true)

		// The district comes from the database, not from the caller's copy.
		stale := *daan
		stale.District = "松山區"
		mustCalendar(t, db, districtEntry("大安區", "2026-12-02", closure, ""))
		check(&stale, "2026-12-02", false)

		for _, tt := range []struct {
			school *ecardbot.School
			date   string
			code   string
		}{
			{nil, "2026-11-27", ecardbot.EINVALID},
			{songshan, "2026-11-31", ecardbot.EINVALID},
			{&ecardbot.School{ID: 99999}, "2026-11-27", ecardbot.ENOTFOUND},
		} {
			if _, err := cal.IsSchoolDay(ctx, tt.school, tt.date); ecardbot.ErrorCode(err) != tt.code {
				t.Errorf("IsSchoolDay(%v, %s): %v, want %s", tt.school, tt.date, err, tt.code)
			}
		}
	})
}

func TestSchoolDays(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		mustSchool(t, db, "313601", "松山區", ecardbot.DefaultCutoff)
		cal := NewCalendarService(db)
		mustCalendar(t, db,
			schoolEntry("313601", "2026-09-26", schoolday, "補課"),
			districtEntry("松山區", "2026-09-28", closure, "颱風停課"),
			districtEntry("大安區", "2026-09-29", closure, "not ours"),
		)
		got, err := cal.SchoolDays(ctx, "313601", "2026-09-25", "2026-09-29")
		if err != nil {
			t.Fatal(err)
		}
		type day struct {
			Date      string
			SchoolDay bool
			Reason    string
			Scope     string
			Note      string
		}
		var views []day
		for _, d := range got {
			v := day{Date: d.Date, SchoolDay: d.SchoolDay, Reason: d.Reason}
			if d.Entry != nil {
				v.Scope, v.Note = d.Entry.Scope(), d.Entry.Note
			}
			views = append(views, v)
		}
		want := []day{
			{"2026-09-25", true, "weekday", "", ""},
			{"2026-09-26", true, "schoolday", "school 313601", "補課"},
			{"2026-09-27", false, "weekend", "", ""},
			{"2026-09-28", false, "closure", "松山區", "颱風停課"},
			{"2026-09-29", true, "weekday", "", ""},
		}
		if diff := cmp.Diff(want, views); diff != "" {
			t.Errorf("school days (-want +got):\n%s", diff)
		}
		if got, err := cal.SchoolDays(ctx, "313601", "2026-01-01", "2026-12-31"); err != nil || len(got) != 365 {
			t.Errorf("a whole year: %d days, %v", len(got), err)
		}

		for _, tt := range []struct {
			code, from, to, err string
		}{
			{"999999", "2026-09-25", "2026-09-29", ecardbot.ENOTFOUND},
			{"313601", "2026-09-29", "2026-09-25", ecardbot.EINVALID},
			{"313601", "2026-01-01", "2027-01-02", ecardbot.EINVALID},
			{"313601", "2026-9-1", "2026-09-25", ecardbot.EINVALID},
			{"313601", "2026-09-01", "", ecardbot.EINVALID},
		} {
			if _, err := cal.SchoolDays(ctx, tt.code, tt.from, tt.to); ecardbot.ErrorCode(err) != tt.err {
				t.Errorf("SchoolDays(%s, %s, %s): %v, want %s", tt.code, tt.from, tt.to, err, tt.err)
			}
		}
	})
}
