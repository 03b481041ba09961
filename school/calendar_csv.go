package school

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/taipei-doit/ecardbot"
)

// CalendarColumns is the header of a calendar file, in its documented order.
var CalendarColumns = []string{"date", "school_code", "kind", "note"}

// maxCalendarNote matches the store's limit (store.MaxCalendarNote), checked here too so every
// bad line of a file is reported at once.
const maxCalendarNote = 200

// ParseCalendar reads a calendar file, UTF-8 with the header date,school_code,kind,note (an
// Excel byte-order mark is allowed). date is YYYY-MM-DD; school_code is a school's code, or
// empty for every school of the city; kind is holiday, closure or schoolday (case-insensitive);
// note is free text for operators. District-wide closures are not in files: they are announced
// the evening before and entered with `ecardbot calendar close --district`.
//
// A line repeating the date, school and layer of an earlier one is an error: holiday and
// schoolday for one date and school contradict each other, while a closure may stand beside
// either. Whether the school codes exist is the store's to check.
//
// A bad file returns a *ParseError listing every bad line and no entries.
func ParseCalendar(r io.Reader) ([]ecardbot.CalendarEntry, error) {
	type key struct {
		closure      bool
		date, school string
	}
	seen := map[key]int{} // → line
	return whole(parseRows(r, CalendarColumns, "no entries after the header", func(line int, rec record) (ecardbot.CalendarEntry, []string) {
		var problems []string
		e := ecardbot.CalendarEntry{
			Line:       line,
			Date:       rec.get("date"),
			SchoolCode: strings.ToUpper(rec.get("school_code")),
			Kind:       ecardbot.CalendarKind(strings.ToLower(rec.get("kind"))),
			Note:       rec.get("note"),
		}
		dateOK := false
		if d, err := time.Parse(time.DateOnly, e.Date); err != nil || d.Format(time.DateOnly) != e.Date {
			problems = append(problems, "date must be a date as YYYY-MM-DD")
		} else {
			dateOK = true
		}
		if e.SchoolCode != "" && !validSchoolCode(e.SchoolCode) {
			problems = append(problems, "school_code must be 6 letters or digits, e.g. 313601, or empty for every school")
		}
		kindOK := ecardbot.ValidCalendarKind(e.Kind)
		if !kindOK {
			problems = append(problems, "kind must be holiday, closure or schoolday")
		}
		problems = checkLen(problems, "note", e.Note, maxCalendarNote)
		if dateOK && kindOK {
			k := key{e.Kind == ecardbot.CalendarClosure, e.Date, e.SchoolCode}
			if prev := seen[k]; prev != 0 {
				problems = append(problems, fmt.Sprintf("%s for %s repeats line %d", e.Date, e.Scope(), prev))
			} else {
				seen[k] = line
			}
		}
		return e, problems
	}))
}
