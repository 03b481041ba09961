package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// RosterService keeps each school's roster in the database.
type RosterService struct {
	db  *DB
	now func() time.Time
}

var _ ecardbot.RosterService = (*RosterService)(nil)

// NewRosterService returns the service over db, which must be migrated.
func NewRosterService(db *DB) *RosterService {
	return &RosterService{db: db, now: time.Now}
}

// errCardTaken is what a unique violation of idx_students_active_card means during an import.
// It can only come from another import committed between our check and our write.
var errCardTaken = ecardbot.Errorf(ecardbot.ECONFLICT, "A card UID already belongs to another active student; import again to see which line.")

const upsertStudentsHead = `INSERT INTO students (school_id, student_no, name, birth_date, national_id_hash, card_uid, grade, "class", active, created_at, updated_at) VALUES `

// The WHERE leaves identical rows alone, so updated_at, and the Updated count, show what the
// file actually changed.
const upsertStudentsTail = `
ON CONFLICT (school_id, student_no) DO UPDATE SET name = excluded.name,
	birth_date = excluded.birth_date, national_id_hash = excluded.national_id_hash,
	card_uid = excluded.card_uid, grade = excluded.grade, "class" = excluded."class",
	active = excluded.active, updated_at = excluded.updated_at
WHERE students.name <> excluded.name OR students.birth_date <> excluded.birth_date
	OR students.national_id_hash <> excluded.national_id_hash OR students.card_uid <> excluded.card_uid
	OR students.grade <> excluded.grade OR students."class" <> excluded."class" OR NOT students.active`

// ImportRoster makes entries the school's active roster in one transaction. Students are matched
// by student number and updated in place (their id, and so their guardians and history, stay);
// new numbers are created; active students missing from entries become inactive and keep their
// last card UID for the record. Updated counts existing students whose row changed, reactivated
// ones included.
//
// A card UID identifies one active pupil across the city (a reader only knows the card), so an
// entry whose card belongs to an active student of another school, or that repeats another
// entry's card, fails the whole import with ECONFLICT naming its line; the other school must
// import first when a pupil changes schools. Cards may move freely between students of this
// school, e.g. two pupils who swapped cards: cards that change are cleared before any is
// written, so the unique index never sees an intermediate state with one card twice.
//
// Returns ENOTFOUND for an unknown school and EINVALID, naming the line, for an entry without a
// student number, name or national ID hash, a birth date that is not YYYY-MM-DD, a repeated
// student number, or an empty roster (which would deactivate every pupil of the school, and is
// far more likely a wrong file than a closed school).
func (s *RosterService) ImportRoster(ctx context.Context, schoolCode string, entries []ecardbot.RosterEntry) (ecardbot.RosterResult, error) {
	if err := validateRoster(entries); err != nil {
		return ecardbot.RosterResult{}, fmt.Errorf("import roster: %w", err)
	}
	var result ecardbot.RosterResult
	now := s.db.timeArg(s.now())
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		result, err = s.importRoster(tx, schoolCode, entries, now)
		return err
	})
	if err != nil {
		if isUniqueViolation(err) {
			err = errCardTaken
		}
		return ecardbot.RosterResult{}, fmt.Errorf("import roster: %w", mapError(err))
	}
	return result, nil
}

func validateRoster(entries []ecardbot.RosterEntry) error {
	if len(entries) == 0 {
		return ecardbot.Errorf(ecardbot.EINVALID, "The roster has no students.")
	}
	byNo := make(map[string]int, len(entries))
	byCard := make(map[string]int, len(entries))
	for _, e := range entries {
		switch {
		case e.StudentNo == "":
			return ecardbot.Errorf(ecardbot.EINVALID, "line %d: missing student number", e.Line)
		case e.Name == "":
			return ecardbot.Errorf(ecardbot.EINVALID, "line %d: missing name", e.Line)
		case e.NationalIDHash == "":
			return ecardbot.Errorf(ecardbot.EINVALID, "line %d: missing national ID", e.Line)
		case !validDate(e.BirthDate):
			return ecardbot.Errorf(ecardbot.EINVALID, "line %d: birth date is not YYYY-MM-DD", e.Line)
		}
		if line, ok := byNo[e.StudentNo]; ok {
			return ecardbot.Errorf(ecardbot.EINVALID, "line %d: student number %s is also on line %d", e.Line, e.StudentNo, line)
		}
		byNo[e.StudentNo] = e.Line
		if e.CardUID == "" {
			continue
		}
		if line, ok := byCard[e.CardUID]; ok {
			return ecardbot.Errorf(ecardbot.ECONFLICT, "line %d: card UID is also on line %d", e.Line, line)
		}
		byCard[e.CardUID] = e.Line
	}
	return nil
}

// validDate reports whether s is a real calendar date written YYYY-MM-DD.
func validDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil && len(s) == len(time.DateOnly)
}

// rosterStudent is what an import needs to know of a student already on the roster.
type rosterStudent struct {
	ID        int64
	StudentNo string
	CardUID   string
	Active    bool
}

func (s *RosterService) importRoster(tx *gorm.DB, schoolCode string, entries []ecardbot.RosterEntry, now any) (ecardbot.RosterResult, error) {
	var result ecardbot.RosterResult
	var schoolID int64
	if err := tx.Raw(`SELECT id FROM schools WHERE code = ?`, schoolCode).Scan(&schoolID).Error; err != nil {
		return result, err
	}
	if schoolID == 0 {
		return result, ecardbot.Errorf(ecardbot.ENOTFOUND, "No school has code %q.", schoolCode)
	}

	// Cards held by active students of other schools. Students of this school cannot conflict:
	// those in the file get the file's cards, which are distinct, and the others are deactivated.
	var cards []string
	for _, e := range entries {
		if e.CardUID != "" {
			cards = append(cards, e.CardUID)
		}
	}
	taken := make(map[string]bool)
	for chunk := range chunks(cards, 1) {
		var found []string
		err := tx.Raw(`SELECT card_uid FROM students WHERE active AND school_id <> ? AND card_uid IN ?`, schoolID, chunk).
			Scan(&found).Error
		if err != nil {
			return result, err
		}
		for _, c := range found {
			taken[c] = true
		}
	}
	if len(taken) > 0 {
		byLine := slices.SortedFunc(slices.Values(entries), func(a, b ecardbot.RosterEntry) int { return cmp.Compare(a.Line, b.Line) })
		for _, e := range byLine {
			if taken[e.CardUID] {
				return result, ecardbot.Errorf(ecardbot.ECONFLICT, "line %d: card UID already belongs to another active student", e.Line)
			}
		}
	}

	var current []rosterStudent
	if err := tx.Raw(`SELECT id, student_no, card_uid, active FROM students WHERE school_id = ?`, schoolID).Scan(&current).Error; err != nil {
		return result, err
	}
	inFile := make(map[string]*ecardbot.RosterEntry, len(entries))
	for i := range entries {
		inFile[entries[i].StudentNo] = &entries[i]
	}
	var clearCard, deactivate []int64
	for _, st := range current {
		e, ok := inFile[st.StudentNo]
		switch {
		case !ok && st.Active:
			deactivate = append(deactivate, st.ID)
		case ok && st.Active && st.CardUID != "" && st.CardUID != e.CardUID:
			clearCard = append(clearCard, st.ID)
		}
	}
	existing := make(map[string]bool, len(current))
	for _, st := range current {
		existing[st.StudentNo] = true
	}

	for chunk := range chunks(clearCard, 1) {
		if err := tx.Exec(`UPDATE students SET card_uid = '' WHERE id IN ?`, chunk).Error; err != nil {
			return result, err
		}
	}
	for chunk := range chunks(deactivate, 2) {
		if err := tx.Exec(`UPDATE students SET active = ?, updated_at = ? WHERE id IN ?`, false, now, chunk).Error; err != nil {
			return result, err
		}
	}
	result.Deactivated = len(deactivate)

	const cols = 11
	var changed int64
	for chunk := range chunks(entries, cols) {
		args := make([]any, 0, len(chunk)*cols)
		for _, e := range chunk {
			args = append(args, schoolID, e.StudentNo, e.Name, e.BirthDate, e.NationalIDHash, e.CardUID,
				e.Grade, e.Class, true, now, now)
		}
		res := tx.Exec(upsertStudentsHead+placeholders(len(chunk), cols)+upsertStudentsTail, args...)
		if res.Error != nil {
			return result, res.Error
		}
		changed += res.RowsAffected
	}
	for _, e := range entries {
		if !existing[e.StudentNo] {
			result.Created++
		}
	}
	result.Updated = int(changed) - result.Created
	return result, nil
}
