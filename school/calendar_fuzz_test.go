package school_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/school"
)

// FuzzParseCalendar feeds arbitrary files to the calendar parser: it never panics, a bad file is
// a *ParseError whose lines exist, and every entry it returns is one the store accepts.
func FuzzParseCalendar(f *testing.F) {
	f.Add(calendarHeader + "2026-10-09,,holiday,國慶日補假\n2026-09-26,313601,schoolday,補課\n")
	f.Add("\uFEFF" + calendarHeader + "2026-09-26,313601,CLOSURE,\"颱風\n停課\"\n\"unterminated")
	f.Add(calendarHeader + "2026-13-01,,,\n\x00,\xff,\"\",\n")
	f.Fuzz(func(t *testing.T, file string) {
		lines := strings.Count(file, "\n") + 1
		entries, err := school.ParseCalendar(strings.NewReader(file))
		if err != nil {
			var perr *school.ParseError
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			for _, l := range perr.Lines {
				if l.Line < 1 || l.Line > lines+1 || l.Message == "" {
					t.Fatalf("line error %+v in a file of %d lines", l, lines)
				}
			}
			return
		}
		for _, e := range entries {
			if _, err := ecardbot.DecideDay(e.Date, []ecardbot.CalendarEntry{e}); err != nil || !ecardbot.ValidCalendarKind(e.Kind) || e.Line < 2 {
				t.Fatalf("entry %+v: %v", e, err)
			}
		}
	})
}
