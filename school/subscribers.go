package school

import (
	"fmt"
	"io"
	"strings"

	"github.com/taipei-doit/ecardbot"
)

// SubscriberColumns is the header of a subscribers file from the old portal (design.md §3.5), in
// its documented order.
var SubscriberColumns = []string{"line_user_id", "taipeipass_id", "school_code", "student_no", "arrive", "leave", "absent", "email"}

// subscriberKinds maps the file's boolean columns to the notices they stand for.
var subscriberKinds = []struct {
	column string
	kind   ecardbot.NoticeKind
}{{"arrive", ecardbot.KindArrived}, {"leave", ecardbot.KindLeft}, {"absent", ecardbot.KindAbsent}}

// ParseSubscribers reads a subscribers file, UTF-8 with the header
// line_user_id,taipeipass_id,school_code,student_no,arrive,leave,absent,email (an Excel
// byte-order mark is allowed). Each line checks on its own: line_user_id is "U" and 32
// lower-case hexadecimal digits, taipeipass_id, school_code (upper-cased) and student_no are
// required, arrive, leave and absent are exactly 1 or 0, and email is empty or one bare address.
// What needs the other lines or the database (repeats, conflicting links, unknown pupils) is the
// ecardbot.GuardianService's to check.
//
// A bad file returns a *ParseError listing every bad line, together with the entries of the good
// lines: the caller imports nothing, but can check those against the database (a dry run) so
// that one pass reports every problem of the file.
func ParseSubscribers(r io.Reader) ([]ecardbot.SubscriberEntry, error) {
	return parseRows(r, SubscriberColumns, "no subscribers after the header", func(line int, rec record) (ecardbot.SubscriberEntry, []string) {
		var problems []string
		e := ecardbot.SubscriberEntry{
			Line:         line,
			LineUserID:   rec.get("line_user_id"),
			TaipeiPassID: rec.get("taipeipass_id"),
			SchoolCode:   strings.ToUpper(rec.get("school_code")),
			StudentNo:    rec.get("student_no"),
			Kinds:        []ecardbot.NoticeKind{},
		}
		if !ecardbot.ValidLineUserID(e.LineUserID) {
			problems = append(problems, "line_user_id must be U followed by 32 lower-case hexadecimal digits")
		}
		if e.TaipeiPassID == "" {
			problems = append(problems, "taipeipass_id is required")
		}
		problems = checkLen(problems, "taipeipass_id", e.TaipeiPassID, 128)
		switch {
		case e.SchoolCode == "":
			problems = append(problems, "school_code is required")
		case !validSchoolCode(e.SchoolCode):
			problems = append(problems, "school_code must be 6 letters or digits, e.g. 313601")
		}
		if e.StudentNo == "" {
			problems = append(problems, "student_no is required")
		}
		problems = checkLen(problems, "student_no", e.StudentNo, 32)
		for _, c := range subscriberKinds {
			switch rec.get(c.column) {
			case "1":
				e.Kinds = append(e.Kinds, c.kind)
			case "0":
			default:
				problems = append(problems, fmt.Sprintf("%s must be 1 or 0", c.column))
			}
		}
		if email := rec.get("email"); email != "" {
			// ValidateEmail's message never quotes the address, and neither does this one.
			if _, err := ecardbot.ValidateEmail(email); err != nil {
				problems = append(problems, "email is not a valid address (write it as name@example.com)")
			}
			e.Email = email
		}
		return e, problems
	})
}
