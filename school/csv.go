package school

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/taipei-doit/ecardbot"
)

// MaxLineErrors is how many bad lines a ParseError lists. A file saved in the wrong encoding or
// with shifted columns is bad on every line; the first fifty say what to fix, the rest only
// scroll the operator's terminal.
const MaxLineErrors = 50

// SchoolColumns is the header of a school file (design.md §3.1), in its documented order.
var SchoolColumns = []string{"code", "name", "district", "level", "cutoff"}

// RosterColumns is the header of a roster file (design.md §3.4), in its documented order.
var RosterColumns = []string{"student_no", "name", "birth_date", "national_id", "card_uid", "grade", "class"}

// LineError is what is wrong with one line of a CSV file: every problem of the line, joined by
// "; ", so one pass over the file tells the operator everything to fix.
type LineError struct {
	Line    int // 1 is the header
	Message string
}

// Error returns "line N: reason".
func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

// ParseError is a CSV file that cannot be imported, with its bad lines. Nothing of such a file
// is imported: a roster applied up to its first typo would deactivate the pupils after it.
type ParseError struct {
	Lines []LineError // in file order, at most MaxLineErrors
	Total int         // bad lines in the file, including those not listed
}

// Error sums the file up on one line; Lines has the detail.
func (e *ParseError) Error() string {
	if len(e.Lines) == 0 {
		return "bad file"
	}
	if e.Total == 1 {
		return e.Lines[0].Error()
	}
	return fmt.Sprintf("%d bad lines, the first: %s", e.Total, e.Lines[0].Error())
}

// Unwrap gives the error the EINVALID code, so callers that map codes see a client mistake.
func (e *ParseError) Unwrap() error {
	return ecardbot.Errorf(ecardbot.EINVALID, "%s", e.Error())
}

func (e *ParseError) add(line int, problems ...string) {
	e.Total++
	if len(e.Lines) < MaxLineErrors {
		e.Lines = append(e.Lines, LineError{Line: line, Message: strings.Join(problems, "; ")})
	}
}

func (e *ParseError) orNil() error {
	if e.Total == 0 {
		return nil
	}
	return e
}

// parseRows is the loop every parser shares: read the header, turn each line into a row or the
// problems that keep it out (all of them, so one run reports every bad line), and refuse a file
// with no rows, saying empty. It returns the good rows and, when any line is bad, a *ParseError.
func parseRows[T any](r io.Reader, columns []string, empty string, row func(line int, rec record) (T, []string)) ([]T, error) {
	errs := &ParseError{}
	t, err := newTable(r, columns, errs)
	if err != nil {
		return nil, err
	}
	var rows []T
	for {
		line, rec, ok, err := t.next()
		if err != nil {
			return nil, err
		} else if !ok {
			break
		}
		v, problems := row(line, rec)
		if len(problems) > 0 {
			errs.add(line, problems...)
			continue
		}
		rows = append(rows, v)
	}
	if errs.Total == 0 && len(rows) == 0 {
		errs.add(2, empty)
	}
	return rows, errs.orNil()
}

// whole keeps a file all or nothing: no rows at all when any line is bad.
func whole[T any](rows []T, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// table reads a CSV file whose first line names its columns. Columns are found by name, so a
// file exported with its columns in another order still imports; a missing, unknown or
// repeated column fails the file, since it usually means a misspelt header.
type table struct {
	r     *csv.Reader
	index map[string]int // column name → field position
	width int            // fields in the header
	errs  *ParseError
}

// utf8BOM is what Excel puts in front of a file saved as "CSV UTF-8".
const utf8BOM = "\uFEFF"

func newTable(r io.Reader, columns []string, errs *ParseError) (*table, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked per line, with a message that names the line
	t := &table{r: cr, index: map[string]int{}, errs: errs}

	header, err := cr.Read()
	var perr *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		errs.add(1, "empty file: the first line must be the header "+strings.Join(columns, ","))
		return nil, errs
	case errors.As(err, &perr):
		errs.add(1, "malformed header: "+perr.Err.Error())
		return nil, errs
	case err != nil:
		return nil, fmt.Errorf("read csv: %w", err)
	}
	var problems []string
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(name))
		switch _, dup := t.index[name]; {
		case dup:
			problems = append(problems, fmt.Sprintf("column %q appears twice", name))
		case !slices.Contains(columns, name):
			problems = append(problems, fmt.Sprintf("unknown column %q", name))
		}
		t.index[name] = i
	}
	for _, name := range columns {
		if _, ok := t.index[name]; !ok {
			problems = append(problems, fmt.Sprintf("missing column %q", name))
		}
	}
	if len(problems) > 0 {
		problems = append(problems, "the header must be "+strings.Join(columns, ","))
		errs.add(1, problems...)
		return nil, errs
	}
	t.width = len(header)
	return t, nil
}

// record is one data line, fields trimmed.
type record struct {
	t      *table
	fields []string
}

func (r record) get(column string) string { return r.fields[r.t.index[column]] }

// next returns the next well-formed line. Lines that are not CSV, have the wrong number of
// fields or are not UTF-8 are recorded in the errors and skipped. ok is false at the end.
func (t *table) next() (line int, rec record, ok bool, err error) {
	for {
		fields, err := t.r.Read()
		var perr *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			return 0, record{}, false, nil
		case errors.As(err, &perr):
			t.errs.add(perr.StartLine, "malformed CSV: "+perr.Err.Error())
			continue
		case err != nil:
			return 0, record{}, false, fmt.Errorf("read csv: %w", err)
		}
		line, _ = t.r.FieldPos(0)
		if len(fields) != t.width {
			t.errs.add(line, fmt.Sprintf("has %d fields, the header has %d", len(fields), t.width))
			continue
		}
		notUTF8, control := false, false
		for i, f := range fields {
			f = strings.TrimSpace(f)
			fields[i] = f
			notUTF8 = notUTF8 || !utf8.ValidString(f)
			// PostgreSQL refuses NUL in text; the other control characters (line breaks in a
			// quoted field included) are left-overs of a broken export.
			control = control || strings.IndexFunc(f, unicode.IsControl) >= 0
		}
		switch {
		case notUTF8:
			// Usually a file saved as Big5 by an older Excel: every line fails the same way.
			t.errs.add(line, "is not UTF-8 text (save the file as \"CSV UTF-8\")")
			continue
		case control:
			t.errs.add(line, "a field contains control characters")
			continue
		}
		return line, record{t: t, fields: fields}, true, nil
	}
}

// checkLen appends a problem when value is longer than limit characters: the limits keep a
// misaligned column (a whole address in the name) from being stored.
func checkLen(problems []string, column, value string, limit int) []string {
	if utf8.RuneCountInString(value) > limit {
		return append(problems, fmt.Sprintf("%s is longer than %d characters", column, limit))
	}
	return problems
}

// ParseSchools reads a school file, UTF-8 with the header code,name,district,level,cutoff (an
// Excel byte-order mark is allowed). district must be one of Taipei's 12 districts as written in
// Chinese (e.g. 松山區), level one of 國小 國中 高中 高職, cutoff HH:MM or empty for 08:30. A code
// is any 6 letters or digits (upper-cased): the Ministry's pattern is observed, not specified,
// so it is not enforced. Every school gets the default earliest-leave time.
//
// A bad file returns a *ParseError listing every bad line and no schools.
func ParseSchools(r io.Reader) ([]ecardbot.School, error) {
	seen := map[string]int{} // code → line
	return whole(parseRows(r, SchoolColumns, "no schools after the header", func(line int, rec record) (ecardbot.School, []string) {
		var problems []string
		s := ecardbot.School{
			Code:          strings.ToUpper(rec.get("code")),
			Name:          rec.get("name"),
			District:      rec.get("district"),
			Level:         rec.get("level"),
			Cutoff:        ecardbot.DefaultCutoff,
			EarliestLeave: ecardbot.DefaultEarliestLeave,
		}
		switch {
		case s.Code == "":
			problems = append(problems, "code is required")
		case !validSchoolCode(s.Code):
			problems = append(problems, "code must be 6 letters or digits, e.g. 313601")
		case seen[s.Code] != 0:
			problems = append(problems, fmt.Sprintf("code %s repeats line %d", s.Code, seen[s.Code]))
		default:
			seen[s.Code] = line
		}
		if s.Name == "" {
			problems = append(problems, "name is required")
		}
		problems = checkLen(problems, "name", s.Name, 100)
		if !ecardbot.ValidDistrict(s.District) {
			problems = append(problems, "district must be one of Taipei's 12 districts, e.g. 松山區")
		}
		if !ecardbot.ValidLevel(s.Level) {
			problems = append(problems, "level must be 國小, 國中, 高中 or 高職")
		}
		if c := rec.get("cutoff"); c != "" {
			var err error
			if s.Cutoff, err = ecardbot.ParseClock(c); err != nil {
				problems = append(problems, "cutoff must be a time of day as HH:MM, e.g. 08:30")
			}
		}
		return s, problems
	}))
}

func validSchoolCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range code {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// ParseRoster reads a school's roster file, UTF-8 with the header
// student_no,name,birth_date,national_id,card_uid,grade,class (design.md §3.4; an Excel
// byte-order mark is allowed). Each national_id is checked and turned into its keyed hash under
// secret at once: the clear ID is never returned and never quoted in an error, so neither a log
// nor an operator's terminal shows it. Card UIDs are upper-cased, as the gate API does with the
// cards readers post, so hexadecimal UIDs match whatever case a reader uses.
//
// A bad file returns a *ParseError listing every bad line and no entries; an empty roster is
// bad too, since importing it would deactivate every pupil of the school.
func ParseRoster(r io.Reader, secret []byte) ([]ecardbot.RosterEntry, error) {
	if len(secret) == 0 {
		return nil, errors.New("parse roster: no secret key to hash national IDs with")
	}
	var (
		students  = map[string]int{} // student_no → line
		cards     = map[string]int{} // card_uid → line
		nationals = map[string]int{} // national ID hash → line
		today     = time.Now().UTC().Format(time.DateOnly)
	)
	return whole(parseRows(r, RosterColumns, "no students after the header: importing an empty roster would deactivate every pupil", func(line int, rec record) (ecardbot.RosterEntry, []string) {
		var problems []string
		e := ecardbot.RosterEntry{
			Line:      line,
			StudentNo: rec.get("student_no"),
			Name:      rec.get("name"),
			BirthDate: rec.get("birth_date"),
			CardUID:   strings.ToUpper(rec.get("card_uid")),
			Grade:     rec.get("grade"),
			Class:     rec.get("class"),
		}
		switch {
		case e.StudentNo == "":
			problems = append(problems, "student_no is required")
		case students[e.StudentNo] != 0:
			problems = append(problems, fmt.Sprintf("student_no %s repeats line %d", e.StudentNo, students[e.StudentNo]))
		default:
			students[e.StudentNo] = line
		}
		problems = checkLen(problems, "student_no", e.StudentNo, 32)
		if e.Name == "" {
			problems = append(problems, "name is required")
		}
		problems = checkLen(problems, "name", e.Name, 100)
		if d, err := time.Parse(time.DateOnly, e.BirthDate); err != nil || d.Format(time.DateOnly) != e.BirthDate {
			problems = append(problems, "birth_date must be a date as YYYY-MM-DD")
		} else if e.BirthDate >= today || d.Year() < 1900 {
			problems = append(problems, "birth_date must be a date in the past")
		}
		if id := rec.get("national_id"); id == "" {
			problems = append(problems, "national_id is required")
		} else if norm, err := ecardbot.ValidateNationalID(id); err != nil {
			// The validator's messages never quote the ID.
			problems = append(problems, "national_id: "+strings.TrimSuffix(ecardbot.ErrorMessage(err), "."))
		} else {
			e.NationalIDHash = ecardbot.KeyedHash(secret, ecardbot.PurposeNationalID, norm)
			if prev := nationals[e.NationalIDHash]; prev != 0 {
				problems = append(problems, fmt.Sprintf("national_id repeats line %d", prev))
			} else {
				nationals[e.NationalIDHash] = line
			}
		}
		if e.CardUID != "" {
			if prev := cards[e.CardUID]; prev != 0 {
				problems = append(problems, fmt.Sprintf("card_uid %s repeats line %d", e.CardUID, prev))
			} else {
				cards[e.CardUID] = line
			}
			problems = checkLen(problems, "card_uid", e.CardUID, maxCardLen)
		}
		problems = checkLen(problems, "grade", e.Grade, 32)
		problems = checkLen(problems, "class", e.Class, 32)
		return e, problems
	}))
}
