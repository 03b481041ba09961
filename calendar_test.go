package ecardbot_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

func TestDecideDay(t *testing.T) {
	t.Parallel()
	// 2026-10-09 is a Friday, 2026-10-10 a Saturday, 2026-10-11 a Sunday.
	city := func(date string, kind ecardbot.CalendarKind, note string) ecardbot.CalendarEntry {
		return ecardbot.CalendarEntry{Date: date, Kind: kind, Note: note}
	}
	district := func(date string, kind ecardbot.CalendarKind) ecardbot.CalendarEntry {
		return ecardbot.CalendarEntry{Date: date, District: "松山區", Kind: kind}
	}
	own := func(date string, kind ecardbot.CalendarKind) ecardbot.CalendarEntry {
		return ecardbot.CalendarEntry{Date: date, SchoolCode: "313601", Kind: kind}
	}
	tests := []struct {
		name       string
		date       string
		entries    []ecardbot.CalendarEntry
		wantSchool bool
		wantReason string
		wantScope  string // of the deciding entry; "" for none
	}{
		{"a weekday", "2026-10-09", nil, true, ecardbot.DayWeekday, ""},
		{"a Saturday", "2026-10-10", nil, false, ecardbot.DayWeekend, ""},
		{"a Sunday", "2026-10-11", nil, false, ecardbot.DayWeekend, ""},
		{"entries of other dates are ignored", "2026-10-09",
			[]ecardbot.CalendarEntry{city("2026-10-08", ecardbot.CalendarHoliday, ""), city("2026-10-10", ecardbot.CalendarClosure, "")},
			true, ecardbot.DayWeekday, ""},
		{"a city holiday on a weekday", "2026-10-09",
			[]ecardbot.CalendarEntry{city("2026-10-09", ecardbot.CalendarHoliday, "國慶日補假")}, false, "holiday", "city"},
		{"a make-up Saturday", "2026-10-10",
			[]ecardbot.CalendarEntry{city("2026-10-10", ecardbot.CalendarSchoolDay, "補課")}, true, "schoolday", "city"},
		{"the school's own make-up day beats the city's holiday", "2026-10-09",
			[]ecardbot.CalendarEntry{city("2026-10-09", ecardbot.CalendarHoliday, ""), own("2026-10-09", ecardbot.CalendarSchoolDay)},
			true, "schoolday", "school 313601"},
		{"the school's anniversary beats the city's make-up day", "2026-10-10",
			[]ecardbot.CalendarEntry{own("2026-10-10", ecardbot.CalendarHoliday), city("2026-10-10", ecardbot.CalendarSchoolDay, "")},
			false, "holiday", "school 313601"},
		{"a district entry beats the city's", "2026-10-10",
			[]ecardbot.CalendarEntry{city("2026-10-10", ecardbot.CalendarHoliday, ""), district("2026-10-10", ecardbot.CalendarSchoolDay)},
			true, "schoolday", "松山區"},
		{"a district closure on a weekday", "2026-10-09",
			[]ecardbot.CalendarEntry{district("2026-10-09", ecardbot.CalendarClosure)}, false, "closure", "松山區"},
		{"a city closure beats the school's make-up day", "2026-10-10",
			[]ecardbot.CalendarEntry{own("2026-10-10", ecardbot.CalendarSchoolDay), city("2026-10-10", ecardbot.CalendarClosure, "颱風停課")},
			false, "closure", "city"},
		{"the most specific closure is reported", "2026-10-09",
			[]ecardbot.CalendarEntry{city("2026-10-09", ecardbot.CalendarClosure, ""), own("2026-10-09", ecardbot.CalendarClosure),
				district("2026-10-09", ecardbot.CalendarClosure)},
			false, "closure", "school 313601"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ecardbot.DecideDay(tt.date, tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			var scope string
			if got.Entry != nil {
				scope = got.Entry.Scope()
			}
			if got.Date != tt.date || got.SchoolDay != tt.wantSchool || got.Reason != tt.wantReason || scope != tt.wantScope {
				t.Errorf("DecideDay = %+v (scope %q), want school day %v, reason %q, scope %q",
					got, scope, tt.wantSchool, tt.wantReason, tt.wantScope)
			}
		})
	}

	t.Run("the entry is a copy", func(t *testing.T) {
		t.Parallel()
		entries := []ecardbot.CalendarEntry{city("2026-10-09", ecardbot.CalendarHoliday, "國慶日補假")}
		got, err := ecardbot.DecideDay("2026-10-09", entries)
		if err != nil {
			t.Fatal(err)
		}
		got.Entry.Note = "changed"
		if entries[0].Note != "國慶日補假" {
			t.Error("DecideDay returned a pointer into its input")
		}
	})

	for _, bad := range []string{"", "2026-02-30", "2026-2-3", "10/10/2026", "2026-10-10T00:00:00Z"} {
		if _, err := ecardbot.DecideDay(bad, nil); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
			t.Errorf("DecideDay(%q): err = %v, want code %s", bad, err, ecardbot.EINVALID)
		}
	}
}

func TestCalendarDayWeekday(t *testing.T) {
	t.Parallel()
	got := ecardbot.CalendarDay{Date: "2026-11-27"}.Weekday()
	if diff := cmp.Diff(time.Friday, got); diff != "" {
		t.Errorf("Weekday (-want +got):\n%s", diff)
	}
}

func TestValidCalendarKind(t *testing.T) {
	t.Parallel()
	for _, k := range ecardbot.CalendarKinds {
		if !ecardbot.ValidCalendarKind(k) {
			t.Errorf("ValidCalendarKind(%q) = false", k)
		}
	}
	for _, k := range []ecardbot.CalendarKind{"", "Holiday", "typhoon", "school day"} {
		if ecardbot.ValidCalendarKind(k) {
			t.Errorf("ValidCalendarKind(%q) = true", k)
		}
	}
}
