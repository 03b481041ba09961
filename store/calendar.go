package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// MaxCalendarNote is the longest note a calendar entry keeps, in characters: enough for
// "颱風停課（依臺北市政府公告）" many times over, short enough that a misaligned CSV column
// is refused rather than stored.
const MaxCalendarNote = 200

// CalendarService keeps the school calendars in the database (tables calendar_days and
// calendar_closures; see migrate0003 for their shape). Deciding a day is ecardbot.DecideDay's
// job; this service only selects the entries that concern a school.
type CalendarService struct {
	db  *DB
	now func() time.Time
}

var _ ecardbot.CalendarService = (*CalendarService)(nil)

// NewCalendarService returns the service over db, which must be migrated.
func NewCalendarService(db *DB) *CalendarService {
	return &CalendarService{db: db, now: time.Now}
}

// calendarKey identifies an entry's row: closures and planned days are separate tables, so a
// closure and a holiday of the same date and scope are different rows.
type calendarKey struct {
	closure    bool
	date       string
	schoolCode string
	district   string
}

func keyOf(e *ecardbot.CalendarEntry) calendarKey {
	return calendarKey{e.Kind == ecardbot.CalendarClosure, e.Date, e.SchoolCode, e.District}
}

// linePrefix is "line N: " for an entry from a file, and nothing for one typed on a command
// line (line 0).
func linePrefix(line int) string {
	if line <= 0 {
		return ""
	}
	return fmt.Sprintf("line %d: ", line)
}

// validateEntry checks what can be checked without the database.
func validateEntry(e *ecardbot.CalendarEntry) error {
	switch {
	case !validDate(e.Date):
		return ecardbot.Errorf(ecardbot.EINVALID, "%sdate %q is not a date written YYYY-MM-DD", linePrefix(e.Line), e.Date)
	case !ecardbot.ValidCalendarKind(e.Kind):
		return ecardbot.Errorf(ecardbot.EINVALID, "%skind %q is not holiday, closure or schoolday", linePrefix(e.Line), e.Kind)
	case e.SchoolCode != "" && e.District != "":
		return ecardbot.Errorf(ecardbot.EINVALID, "%san entry is for a school or for a district, not both", linePrefix(e.Line))
	case e.District != "" && !ecardbot.ValidDistrict(e.District):
		return ecardbot.Errorf(ecardbot.EINVALID, "%s%q is not a Taipei district", linePrefix(e.Line), e.District)
	case utf8.RuneCountInString(e.Note) > MaxCalendarNote:
		return ecardbot.Errorf(ecardbot.EINVALID, "%sthe note is longer than %d characters", linePrefix(e.Line), MaxCalendarNote)
	}
	return nil
}

// ImportCalendar stores entries in one transaction and returns how many rows were new or
// changed: a file imported twice reports 0 the second time. Entries are upserted, never
// removed: a file need not hold the whole calendar (the city's holidays and one school's
// make-up days come from different people), so a date missing from a file says nothing.
//
// Returns EINVALID naming the first bad line for a malformed date, kind or note, a school and
// a district together, a district that is not Taipei's, a school code that is not imported,
// or an entry whose date, scope and layer (closure, or holiday/schoolday) repeat an earlier
// one: a file that says both holiday and schoolday for one date and school contradicts
// itself.
func (s *CalendarService) ImportCalendar(ctx context.Context, entries []ecardbot.CalendarEntry) (int, error) {
	seen := make(map[calendarKey]int, len(entries))
	for i := range entries {
		e := &entries[i]
		if err := validateEntry(e); err != nil {
			return 0, fmt.Errorf("import calendar: %w", err)
		}
		if line, ok := seen[keyOf(e)]; ok {
			return 0, fmt.Errorf("import calendar: %w", ecardbot.Errorf(ecardbot.EINVALID,
				"%s%s for %s repeats line %d", linePrefix(e.Line), e.Date, e.Scope(), line))
		}
		seen[keyOf(e)] = e.Line
	}
	if len(entries) == 0 {
		return 0, nil
	}
	now := s.db.timeArg(s.now())
	var changed int64
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		changed = 0
		ids, err := s.schoolIDs(tx, entries)
		if err != nil {
			return err
		}
		for _, g := range calendarGroups {
			var rows []ecardbot.CalendarEntry
			for _, e := range entries {
				if (e.Kind == ecardbot.CalendarClosure) == g.closure && (e.SchoolCode != "") == g.school {
					rows = append(rows, e)
				}
			}
			for chunk := range chunks(rows, g.cols) {
				args := make([]any, 0, len(chunk)*g.cols)
				for _, e := range chunk {
					var schoolID any // NULL for a district or the city
					if e.SchoolCode != "" {
						schoolID = ids[e.SchoolCode]
					}
					args = append(args, schoolID, e.District, e.Date)
					if !g.closure {
						args = append(args, string(e.Kind))
					}
					args = append(args, e.Note, now, now)
				}
				res := tx.Exec(g.head+placeholders(len(chunk), g.cols)+g.tail, args...)
				if res.Error != nil {
					return res.Error
				}
				changed += res.RowsAffected
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("import calendar: %w", s.db.unavailable(ctx, mapError(err)))
	}
	return int(changed), nil
}

// calendarGroup is one of the four upserts of an import: planned days or closures, for schools
// or for areas (district or city), each against its own partial unique index. The WHERE of DO
// UPDATE leaves identical rows alone, so the count shows what the file changed.
type calendarGroup struct {
	closure, school bool
	cols            int
	head, tail      string
}

var calendarGroups = []calendarGroup{
	{closure: false, school: true, cols: 7,
		head: `INSERT INTO calendar_days (school_id, district, day, kind, note, created_at, updated_at) VALUES `,
		tail: `
ON CONFLICT (school_id, day) WHERE school_id IS NOT NULL DO UPDATE SET kind = excluded.kind, note = excluded.note,
	updated_at = excluded.updated_at
WHERE calendar_days.kind <> excluded.kind OR calendar_days.note <> excluded.note`},
	{closure: false, school: false, cols: 7,
		head: `INSERT INTO calendar_days (school_id, district, day, kind, note, created_at, updated_at) VALUES `,
		tail: `
ON CONFLICT (district, day) WHERE school_id IS NULL DO UPDATE SET kind = excluded.kind, note = excluded.note,
	updated_at = excluded.updated_at
WHERE calendar_days.kind <> excluded.kind OR calendar_days.note <> excluded.note`},
	{closure: true, school: true, cols: 6,
		head: `INSERT INTO calendar_closures (school_id, district, day, note, created_at, updated_at) VALUES `,
		tail: `
ON CONFLICT (school_id, day) WHERE school_id IS NOT NULL DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at
WHERE calendar_closures.note <> excluded.note`},
	{closure: true, school: false, cols: 6,
		head: `INSERT INTO calendar_closures (school_id, district, day, note, created_at, updated_at) VALUES `,
		tail: `
ON CONFLICT (district, day) WHERE school_id IS NULL DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at
WHERE calendar_closures.note <> excluded.note`},
}

// schoolIDs maps the school codes of entries to ids. An unknown code is EINVALID naming the
// first line that has it: in a calendar file it is a typo, not a missing record.
func (s *CalendarService) schoolIDs(tx *gorm.DB, entries []ecardbot.CalendarEntry) (map[string]int64, error) {
	var codes []string
	seen := map[string]bool{}
	for _, e := range entries {
		if e.SchoolCode != "" && !seen[e.SchoolCode] {
			seen[e.SchoolCode] = true
			codes = append(codes, e.SchoolCode)
		}
	}
	ids := make(map[string]int64, len(codes))
	for chunk := range chunks(codes, 1) {
		var found []struct {
			ID   int64
			Code string
		}
		if err := tx.Raw(`SELECT id, code FROM schools WHERE code IN ?`, chunk).Scan(&found).Error; err != nil {
			return nil, err
		}
		for _, f := range found {
			ids[f.Code] = f.ID
		}
	}
	byLine := slices.SortedFunc(slices.Values(entries), func(a, b ecardbot.CalendarEntry) int { return cmp.Compare(a.Line, b.Line) })
	for _, e := range byLine {
		if _, ok := ids[e.SchoolCode]; e.SchoolCode != "" && !ok {
			return nil, ecardbot.Errorf(ecardbot.EINVALID, "%sno school has code %s (import it first with `ecardbot school import`)", linePrefix(e.Line), e.SchoolCode)
		}
	}
	return ids, nil
}

// Reopen removes the closure of exactly the entry's date and scope. Closures of other scopes
// that also cover the school stay: reopening one school does not undo its district's typhoon
// day. Returns EINVALID for a malformed entry and ENOTFOUND when there is no such closure.
func (s *CalendarService) Reopen(ctx context.Context, e ecardbot.CalendarEntry) error {
	e.Kind, e.Note = ecardbot.CalendarClosure, ""
	if err := validateEntry(&e); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	db := s.db.gorm.WithContext(ctx)
	var res *gorm.DB
	if e.SchoolCode != "" {
		res = db.Exec(`DELETE FROM calendar_closures WHERE day = ? AND school_id IN (SELECT id FROM schools WHERE code = ?)`, e.Date, e.SchoolCode)
	} else {
		res = db.Exec(`DELETE FROM calendar_closures WHERE day = ? AND school_id IS NULL AND district = ?`, e.Date, e.District)
	}
	if res.Error != nil {
		return fmt.Errorf("reopen: %w", s.db.unavailable(ctx, mapError(res.Error)))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("reopen: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "No closure on %s for %s.", e.Date, e.Scope()))
	}
	return nil
}

// SchoolDays decides every date from from to to, inclusive, for the school with the code.
func (s *CalendarService) SchoolDays(ctx context.Context, schoolCode, from, to string) ([]ecardbot.CalendarDay, error) {
	switch {
	case !validDate(from):
		return nil, fmt.Errorf("list school days: %w", ecardbot.Errorf(ecardbot.EINVALID, "Date %q is not a date written YYYY-MM-DD.", from))
	case !validDate(to):
		return nil, fmt.Errorf("list school days: %w", ecardbot.Errorf(ecardbot.EINVALID, "Date %q is not a date written YYYY-MM-DD.", to))
	case to < from:
		return nil, fmt.Errorf("list school days: %w", ecardbot.Errorf(ecardbot.EINVALID, "The range ends (%s) before it starts (%s).", to, from))
	}
	start, _ := time.Parse(time.DateOnly, from)
	end, _ := time.Parse(time.DateOnly, to)
	if n := int(end.Sub(start).Hours()/24) + 1; n > ecardbot.MaxCalendarRange {
		return nil, fmt.Errorf("list school days: %w", ecardbot.Errorf(ecardbot.EINVALID, "The range has %d days; list at most %d at once.", n, ecardbot.MaxCalendarRange))
	}
	db := s.db.gorm.WithContext(ctx)
	var sc schoolRow
	if err := db.Where("code = ?", schoolCode).Take(&sc).Error; err != nil {
		err = mapError(err)
		if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
			err = ecardbot.Errorf(ecardbot.ENOTFOUND, "No school has code %q.", schoolCode)
		}
		return nil, fmt.Errorf("list school days: %w", s.db.unavailable(ctx, err))
	}
	entries, err := calendarEntries(db, &sc, from, to)
	if err != nil {
		return nil, fmt.Errorf("list school days: %w", s.db.unavailable(ctx, err))
	}
	byDate := make(map[string][]ecardbot.CalendarEntry)
	for _, e := range entries {
		byDate[e.Date] = append(byDate[e.Date], e)
	}
	var days []ecardbot.CalendarDay
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		date := d.Format(time.DateOnly)
		day, err := ecardbot.DecideDay(date, byDate[date])
		if err != nil {
			return nil, fmt.Errorf("list school days: %w", err)
		}
		days = append(days, day)
	}
	return days, nil
}

// IsSchoolDay reports whether date is a school day for the school. The school's district is
// read from the database, not from school, so a stale copy cannot pick the wrong district's
// typhoon closure.
func (s *CalendarService) IsSchoolDay(ctx context.Context, school *ecardbot.School, date string) (bool, error) {
	if school == nil || school.ID == 0 {
		return false, fmt.Errorf("is school day: %w", ecardbot.Errorf(ecardbot.EINVALID, "Missing school."))
	}
	if !validDate(date) {
		return false, fmt.Errorf("is school day: %w", ecardbot.Errorf(ecardbot.EINVALID, "Date %q is not a date written YYYY-MM-DD.", date))
	}
	db := s.db.gorm.WithContext(ctx)
	sc, err := loadSchool(db, school.ID)
	if err != nil {
		return false, fmt.Errorf("is school day: %w", s.db.unavailable(ctx, err))
	}
	day, err := decideDay(db, sc, date)
	if err != nil {
		return false, fmt.Errorf("is school day: %w", s.db.unavailable(ctx, err))
	}
	return day.SchoolDay, nil
}

// loadSchool reads the school with the id. Returns ENOTFOUND for an unknown id.
func loadSchool(db *gorm.DB, id int64) (*schoolRow, error) {
	var sc schoolRow
	if err := db.Where("id = ?", id).Take(&sc).Error; err != nil {
		err = mapError(err)
		if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
			err = ecardbot.Errorf(ecardbot.ENOTFOUND, "No school has id %d.", id)
		}
		return nil, err
	}
	return &sc, nil
}

// decideDay decides one date for the school, reading its entries through db (which may be a
// transaction).
func decideDay(db *gorm.DB, sc *schoolRow, date string) (ecardbot.CalendarDay, error) {
	entries, err := calendarEntries(db, sc, date, date)
	if err != nil {
		return ecardbot.CalendarDay{}, err
	}
	return ecardbot.DecideDay(date, entries)
}

// calendarEntries returns the entries from from to to that concern the school: its own, its
// district's and the city's.
func calendarEntries(db *gorm.DB, sc *schoolRow, from, to string) ([]ecardbot.CalendarEntry, error) {
	var rows []struct {
		Day      string
		Kind     string
		Note     string
		District string
		SchoolID *int64
	}
	const scope = `day >= ? AND day <= ? AND (school_id = ? OR (school_id IS NULL AND district IN ('', ?)))`
	err := db.Raw(`SELECT day, kind, note, district, school_id FROM calendar_days WHERE `+scope+`
UNION ALL
SELECT day, 'closure', note, district, school_id FROM calendar_closures WHERE `+scope,
		from, to, sc.ID, sc.District, from, to, sc.ID, sc.District).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	entries := make([]ecardbot.CalendarEntry, len(rows))
	for i, r := range rows {
		entries[i] = ecardbot.CalendarEntry{Date: r.Day, Kind: ecardbot.CalendarKind(r.Kind), Note: r.Note, District: r.District}
		if r.SchoolID != nil {
			entries[i].SchoolCode = sc.Code
		}
	}
	return entries, nil
}
