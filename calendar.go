package ecardbot

import (
	"context"
	"time"
)

// CalendarKind is what an entry of a school calendar says about a date.
type CalendarKind string

// The kinds of calendar entries, as calendar files spell them.
const (
	// CalendarHoliday is a planned day without school: a national holiday or its 補假, the
	// winter and summer vacations, a school's own anniversary day off.
	CalendarHoliday CalendarKind = "holiday"
	// CalendarClosure is an unplanned closure (停課), typically a typhoon day announced the
	// evening before, for the whole city, some districts or one school. It beats every other
	// entry.
	CalendarClosure CalendarKind = "closure"
	// CalendarSchoolDay is a planned school day on a date that would otherwise have none: the
	// Saturday make-up day (補課) that Taiwan schedules when a bridge holiday is given.
	CalendarSchoolDay CalendarKind = "schoolday"
)

// CalendarKinds lists the kinds in the order operators read them.
var CalendarKinds = []CalendarKind{CalendarHoliday, CalendarClosure, CalendarSchoolDay}

// ValidCalendarKind reports whether k is one of CalendarKinds, compared exactly.
func ValidCalendarKind(k CalendarKind) bool {
	for _, c := range CalendarKinds {
		if c == k {
			return true
		}
	}
	return false
}

// CalendarEntry is one fact of the calendar: a date, the schools it concerns and its kind.
// Its scope is one school (SchoolCode), one district (District) or, with both empty, every
// school of the city.
type CalendarEntry struct {
	Line       int    // line in the file, for errors; 0 when not from a file
	Date       string // YYYY-MM-DD, a calendar date in the service's zone
	SchoolCode string // one school; empty for a district or the whole city
	District   string // one of Districts, only when SchoolCode is empty; both empty: the city
	Kind       CalendarKind
	Note       string // why, for operators: "國慶日", "颱風停課", "補 10/9 課"
}

// Scope describes who the entry concerns, for operators: "city", a district name, or
// "school 313601".
func (e CalendarEntry) Scope() string {
	switch {
	case e.SchoolCode != "":
		return "school " + e.SchoolCode
	case e.District != "":
		return e.District
	}
	return "city"
}

// specificity ranks scopes: a school's own entry is more specific than its district's, which
// is more specific than the city's.
func (e CalendarEntry) specificity() int {
	switch {
	case e.SchoolCode != "":
		return 2
	case e.District != "":
		return 1
	}
	return 0
}

// Day reasons that are not entry kinds: the default rule decided.
const (
	DayWeekday = "weekday"
	DayWeekend = "weekend"
)

// CalendarDay is what the calendar decides for one school on one date.
type CalendarDay struct {
	Date      string // YYYY-MM-DD
	SchoolDay bool
	// Reason is DayWeekday or DayWeekend when no entry applies, else the Kind of the entry
	// that decided, as a string.
	Reason string
	// Entry is the entry that decided; nil when the weekday rule did.
	Entry *CalendarEntry
}

// Weekday returns the day of the week of Date, for listings; Sunday for a malformed date.
func (d CalendarDay) Weekday() time.Weekday {
	t, _ := time.Parse(time.DateOnly, d.Date)
	return t.Weekday()
}

// DecideDay decides whether date (YYYY-MM-DD) is a school day for one school, given the entries
// that apply to it: the city's, its district's and its own (entries of other dates are
// ignored; the caller selects the scopes). The rules, and why:
//
//   - Any closure makes it a day without school, whatever else applies: a typhoon closes a
//     make-up Saturday as surely as a weekday, and a city-wide closure must not depend on each
//     school removing its own make-up entry. The most specific closure is reported.
//   - Otherwise the most specific planned entry (holiday or school day) decides, the school's
//     over its district's over the city's: the city's calendar sets the holidays, and a school
//     that makes up a day on its own, or takes its anniversary off, says so for itself.
//   - With no entry, Monday to Friday are school days and Saturday and Sunday are not.
//
// Returns EINVALID for a date that is not a real date written YYYY-MM-DD.
func DecideDay(date string, entries []CalendarEntry) (CalendarDay, error) {
	t, err := time.Parse(time.DateOnly, date)
	if err != nil || t.Format(time.DateOnly) != date {
		return CalendarDay{}, Errorf(EINVALID, "Date %q is not a date written YYYY-MM-DD.", date)
	}
	var closure, plan *CalendarEntry
	for i := range entries {
		e := &entries[i]
		if e.Date != date {
			continue
		}
		switch e.Kind {
		case CalendarClosure:
			if closure == nil || e.specificity() > closure.specificity() {
				closure = e
			}
		case CalendarHoliday, CalendarSchoolDay:
			if plan == nil || e.specificity() > plan.specificity() {
				plan = e
			}
		}
	}
	day := CalendarDay{Date: date}
	switch {
	case closure != nil:
		c := *closure
		day.Reason, day.Entry = string(c.Kind), &c
	case plan != nil:
		p := *plan
		day.SchoolDay, day.Reason, day.Entry = p.Kind == CalendarSchoolDay, string(p.Kind), &p
	case t.Weekday() == time.Saturday || t.Weekday() == time.Sunday:
		day.Reason = DayWeekend
	default:
		day.SchoolDay, day.Reason = true, DayWeekday
	}
	return day, nil
}

// MaxCalendarRange is the longest range of dates SchoolDays lists at once: a school year.
const MaxCalendarRange = 366

// CalendarService keeps the school calendars: which dates are school days for which school.
// The 未到校 sweep runs only on school days; gate taps notify on any day.
type CalendarService interface {
	// ImportCalendar stores entries, all or nothing, and returns how many were new or
	// changed. An entry replaces the stored one of the same date and scope and layer: a
	// holiday and a make-up school day replace each other, while a closure stands beside
	// them. Importing a file again therefore changes nothing. Returns EINVALID naming the
	// line for an unknown school code, a district that is not Taipei's, both a school and a
	// district, a malformed date or kind, or an entry repeated in entries.
	ImportCalendar(ctx context.Context, entries []CalendarEntry) (changed int, err error)

	// Reopen removes the closure of exactly the entry's date and scope (its Kind and Note are
	// ignored), for a closure entered by mistake. Returns ENOTFOUND when there is none.
	Reopen(ctx context.Context, entry CalendarEntry) error

	// SchoolDays decides every date from from to to (YYYY-MM-DD, inclusive) for the school.
	// Returns ENOTFOUND for an unknown school, and EINVALID for a malformed or reversed
	// range or one longer than MaxCalendarRange days.
	SchoolDays(ctx context.Context, schoolCode, from, to string) ([]CalendarDay, error)

	// IsSchoolDay reports whether date (YYYY-MM-DD) is a school day for the school (by its
	// ID). Returns ENOTFOUND for an unknown school and EINVALID for a malformed date.
	IsSchoolDay(ctx context.Context, school *School, date string) (bool, error)
}
