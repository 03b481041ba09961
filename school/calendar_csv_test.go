package school_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/school"
)

const calendarHeader = "date,school_code,kind,note\n"

func TestParseCalendar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []ecardbot.CalendarEntry
	}{
		{name: "city holiday, school make-up day and closure on one date",
			in: calendarHeader + "2026-10-09,,holiday,國慶日補假\n2026-09-26,313601,schoolday,補 10/9 課\n2026-09-26,313601,closure,停電\n",
			want: []ecardbot.CalendarEntry{
				{Line: 2, Date: "2026-10-09", Kind: ecardbot.CalendarHoliday, Note: "國慶日補假"},
				{Line: 3, Date: "2026-09-26", SchoolCode: "313601", Kind: ecardbot.CalendarSchoolDay, Note: "補 10/9 課"},
				{Line: 4, Date: "2026-09-26", SchoolCode: "313601", Kind: ecardbot.CalendarClosure, Note: "停電"},
			}},
		{name: "Excel: byte-order mark, CRLF, spaces, case, columns in another order",
			in: "\uFEFFKind, note ,School_Code,date\r\n HOLIDAY ,\"春節, 除夕\", 363f01 ,2027-02-05\r\n",
			want: []ecardbot.CalendarEntry{
				{Line: 2, Date: "2027-02-05", SchoolCode: "363F01", Kind: ecardbot.CalendarHoliday, Note: "春節, 除夕"},
			}},
		{name: "the same date for two schools and the city",
			in: calendarHeader + "2026-12-25,,holiday,\n2026-12-25,313601,schoolday,\n2026-12-25,313501,schoolday,\n",
			want: []ecardbot.CalendarEntry{
				{Line: 2, Date: "2026-12-25", Kind: ecardbot.CalendarHoliday},
				{Line: 3, Date: "2026-12-25", SchoolCode: "313601", Kind: ecardbot.CalendarSchoolDay},
				{Line: 4, Date: "2026-12-25", SchoolCode: "313501", Kind: ecardbot.CalendarSchoolDay},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := school.ParseCalendar(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCalendarErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []school.LineError
	}{
		{name: "empty file", in: "",
			want: []school.LineError{{1, "empty file: the first line must be the header date,school_code,kind,note"}}},
		{name: "header only", in: calendarHeader, want: []school.LineError{{2, "no entries after the header"}}},
		{name: "a district column is not part of the file", in: "date,district,kind,note\n2026-09-28,松山區,closure,\n",
			want: []school.LineError{{1, `unknown column "district"; missing column "school_code"; the header must be date,school_code,kind,note`}}},
		{name: "every bad line at once",
			in: calendarHeader +
				"2026-10-09,,holiday,ok\n" +
				"2026-02-30,,holiday,\n" +
				"2026/10/10,31360,typhoon,\n" +
				"2026-10-09,,schoolday,contradicts line 2\n" +
				"2026-10-09,,closure,beside line 2: fine\n" +
				"2026-10-09,,closure,twice\n" +
				"2026-10-11,,holiday," + strings.Repeat("長", 201) + "\n" +
				"2026-10-12,,holiday\n",
			want: []school.LineError{
				{3, "date must be a date as YYYY-MM-DD"},
				{4, "date must be a date as YYYY-MM-DD; school_code must be 6 letters or digits, e.g. 313601, or empty for every school; kind must be holiday, closure or schoolday"},
				{5, "2026-10-09 for city repeats line 2"},
				{7, "2026-10-09 for city repeats line 6"},
				{8, "note is longer than 200 characters"},
				{9, "has 3 fields, the header has 4"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := school.ParseCalendar(strings.NewReader(tt.in))
			var perr *school.ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if got != nil {
				t.Errorf("entries %v returned with an error", got)
			}
			if diff := cmp.Diff(tt.want, perr.Lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("code %s, want %s", ecardbot.ErrorCode(err), ecardbot.EINVALID)
			}
		})
	}
}
