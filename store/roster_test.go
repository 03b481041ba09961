package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// rosterRow is a student as roster tests compare it.
type rosterRow struct {
	ID             int64
	StudentNo      string
	Name           string
	BirthDate      string
	NationalIDHash string
	CardUID        string
	Grade          string
	Class          string
	Active         bool
	UpdatedAt      time.Time
}

// listStudents returns the school's students by student number.
func listStudents(tb testing.TB, db *DB, school *ecardbot.School) map[string]rosterRow {
	tb.Helper()
	var rows []rosterRow
	err := db.gorm.Raw(`SELECT id, student_no, name, birth_date, national_id_hash, card_uid, grade, "class", active, updated_at
FROM students WHERE school_id = ?`, school.ID).Scan(&rows).Error
	if err != nil {
		tb.Fatalf("list students: %v", err)
	}
	m := make(map[string]rosterRow, len(rows))
	for _, r := range rows {
		m[r.StudentNo] = r
	}
	return m
}

func TestRosterService(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()

		t.Run("create, update in place, deactivate", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			school := MustImportSchool(t, db, "313601")
			s := NewRosterService(db)
			t1 := time.Date(2026, 8, 30, 1, 0, 0, 0, time.UTC)
			s.now = func() time.Time { return t1 }

			got, err := s.ImportRoster(ctx, "313601", []ecardbot.RosterEntry{
				entry(2, "1001", "CARD-A"), entry(3, "1002", "CARD-B"), entry(4, "1003", ""), entry(5, "1004", "CARD-D"),
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ecardbot.RosterResult{Created: 4}, got); diff != "" {
				t.Errorf("first import (-want +got):\n%s", diff)
			}
			before := listStudents(t, db, school)

			// 1001 unchanged, 1002 renamed and moved class, 1003 gets a card, 1004 left the school,
			// 1005 is new.
			t2 := t1.Add(24 * time.Hour)
			s.now = func() time.Time { return t2 }
			e2 := entry(3, "1002", "CARD-B")
			e2.Name, e2.Class, e2.Grade = "改名", "201", "2"
			got, err = s.ImportRoster(ctx, "313601", []ecardbot.RosterEntry{
				entry(2, "1001", "CARD-A"), e2, entry(4, "1003", "CARD-C"), entry(5, "1005", "CARD-E"),
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ecardbot.RosterResult{Created: 1, Updated: 2, Deactivated: 1}, got); diff != "" {
				t.Errorf("second import (-want +got):\n%s", diff)
			}
			after := listStudents(t, db, school)
			for _, no := range []string{"1001", "1002", "1003", "1004"} {
				if after[no].ID != before[no].ID {
					t.Errorf("student %s: id changed from %d to %d", no, before[no].ID, after[no].ID)
				}
			}
			if r := after["1001"]; !r.UpdatedAt.Equal(t1) || !r.Active {
				t.Errorf("unchanged student 1001: %+v, want active and updated_at %v", r, t1)
			}
			if r := after["1002"]; r.Name != "改名" || r.Class != "201" || r.Grade != "2" || !r.UpdatedAt.Equal(t2) {
				t.Errorf("student 1002 not updated: %+v", r)
			}
			if r := after["1003"]; r.CardUID != "CARD-C" {
				t.Errorf("student 1003: card %q, want CARD-C", r.CardUID)
			}
			if r := after["1004"]; r.Active || r.CardUID != "CARD-D" || !r.UpdatedAt.Equal(t2) {
				t.Errorf("student 1004: %+v, want inactive, keeping its card", r)
			}
			if r, ok := after["1005"]; !ok || !r.Active || r.NationalIDHash != "hash-1005" || r.BirthDate != "2019-04-01" {
				t.Errorf("student 1005: %+v, %v", r, ok)
			}

			// Back on the roster: reactivated, counted as updated.
			got = MustImportRoster(t, db, "313601", entry(2, "1001", "CARD-A"), entry(3, "1004", "CARD-D"))
			if diff := cmp.Diff(ecardbot.RosterResult{Updated: 1, Deactivated: 3}, got); diff != "" {
				t.Errorf("third import (-want +got):\n%s", diff)
			}
			if r := listStudents(t, db, school)["1004"]; !r.Active {
				t.Errorf("student 1004 not reactivated: %+v", r)
			}
		})

		t.Run("students swap cards", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			school := MustImportSchool(t, db, "313601")
			MustImportRoster(t, db, "313601", entry(2, "1001", "CARD-A"), entry(3, "1002", "CARD-B"), entry(4, "1003", "CARD-C"))
			// A three-way rotation and a swap in one file, plus a card that moves to a pupil who
			// left in the same file.
			got := MustImportRoster(t, db, "313601", entry(2, "1001", "CARD-B"), entry(3, "1002", "CARD-A"), entry(4, "1004", "CARD-C"))
			if diff := cmp.Diff(ecardbot.RosterResult{Created: 1, Updated: 2, Deactivated: 1}, got); diff != "" {
				t.Errorf("swap import (-want +got):\n%s", diff)
			}
			st := listStudents(t, db, school)
			for no, card := range map[string]string{"1001": "CARD-B", "1002": "CARD-A", "1004": "CARD-C"} {
				if st[no].CardUID != card || !st[no].Active {
					t.Errorf("student %s: %+v, want active with %s", no, st[no], card)
				}
			}
		})

		t.Run("card of another school's active student", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			MustImportSchool(t, db, "313601")
			other := MustImportSchool(t, db, "323602")
			MustImportRoster(t, db, "313601", entry(2, "1001", "CARD-A"), entry(3, "1002", "CARD-B"))
			MustImportRoster(t, db, "323602", entry(2, "9001", "CARD-X"))
			before := listStudents(t, db, other)

			_, err := NewRosterService(db).ImportRoster(ctx, "323602", []ecardbot.RosterEntry{
				entry(2, "9001", "CARD-Y"), entry(3, "9002", "CARD-Z"), entry(4, "9003", ""),
				entry(7, "9004", "CARD-B"), entry(9, "9005", "CARD-A"),
			})
			if code := ecardbot.ErrorCode(err); code != ecardbot.ECONFLICT {
				t.Fatalf("err = %v, want code %s", err, ecardbot.ECONFLICT)
			}
			if msg, want := ecardbot.ErrorMessage(err), "line 7: card UID already belongs to another active student"; msg != want {
				t.Errorf("message = %q, want %q", msg, want)
			}
			if diff := cmp.Diff(before, listStudents(t, db, other)); diff != "" {
				t.Errorf("a failed import changed the roster (-before +after):\n%s", diff)
			}

			// Once the first school's roster no longer has the pupil, the card may move.
			MustImportRoster(t, db, "313601", entry(2, "1001", "CARD-A"))
			MustImportRoster(t, db, "323602", entry(2, "9001", "CARD-X"), entry(7, "9004", "CARD-B"))
		})

		t.Run("card twice in the file", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			MustImportSchool(t, db, "313601")
			_, err := NewRosterService(db).ImportRoster(ctx, "313601", []ecardbot.RosterEntry{
				entry(2, "1001", "CARD-A"), entry(3, "1002", ""), entry(4, "1003", ""), entry(5, "1004", "CARD-A"),
			})
			if code := ecardbot.ErrorCode(err); code != ecardbot.ECONFLICT {
				t.Fatalf("err = %v, want code %s", err, ecardbot.ECONFLICT)
			}
			if msg := ecardbot.ErrorMessage(err); !strings.HasPrefix(msg, "line 5: ") {
				t.Errorf("message %q does not name line 5", msg)
			}
			if n := count(t, db, "students"); n != 0 {
				t.Errorf("%d students stored from a bad file", n)
			}
		})

		t.Run("invalid rows", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			MustImportSchool(t, db, "313601")
			mod := func(line int, f func(*ecardbot.RosterEntry)) ecardbot.RosterEntry {
				e := entry(line, "1002", "")
				f(&e)
				return e
			}
			tests := []struct {
				name     string
				bad      ecardbot.RosterEntry
				wantLine string
			}{
				{"no student number", mod(8, func(e *ecardbot.RosterEntry) { e.StudentNo = "" }), "line 8: "},
				{"no name", mod(8, func(e *ecardbot.RosterEntry) { e.Name = "" }), "line 8: "},
				{"no national id", mod(8, func(e *ecardbot.RosterEntry) { e.NationalIDHash = "" }), "line 8: "},
				{"birth date", mod(8, func(e *ecardbot.RosterEntry) { e.BirthDate = "2019/04/01" }), "line 8: "},
				{"impossible date", mod(8, func(e *ecardbot.RosterEntry) { e.BirthDate = "2019-02-30" }), "line 8: "},
				{"number twice", mod(8, func(e *ecardbot.RosterEntry) { e.StudentNo = "1001" }), "line 8: "},
			}
			for _, tt := range tests {
				_, err := NewRosterService(db).ImportRoster(ctx, "313601", []ecardbot.RosterEntry{entry(2, "1001", ""), tt.bad})
				if code := ecardbot.ErrorCode(err); code != ecardbot.EINVALID {
					t.Errorf("%s: err = %v, want code %s", tt.name, err, ecardbot.EINVALID)
				} else if msg := ecardbot.ErrorMessage(err); !strings.HasPrefix(msg, tt.wantLine) {
					t.Errorf("%s: message %q does not start with %q", tt.name, msg, tt.wantLine)
				}
			}
			if _, err := NewRosterService(db).ImportRoster(ctx, "313601", nil); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("empty roster: err = %v, want code %s", err, ecardbot.EINVALID)
			}
			if n := count(t, db, "students"); n != 0 {
				t.Errorf("%d students stored from bad files", n)
			}
		})

		t.Run("unknown school", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			_, err := NewRosterService(db).ImportRoster(ctx, "999999", []ecardbot.RosterEntry{entry(2, "1001", "")})
			if code := ecardbot.ErrorCode(err); code != ecardbot.ENOTFOUND {
				t.Errorf("err = %v, want code %s", err, ecardbot.ENOTFOUND)
			}
		})

		t.Run("a large roster", func(t *testing.T) {
			t.Parallel()
			// Many more rows than one statement carries (maxParams).
			db := MustOpenMigrated(t, b)
			MustImportSchool(t, db, "313601")
			var entries []ecardbot.RosterEntry
			for i := range 1000 {
				entries = append(entries, entry(i+2, fmt.Sprintf("S%05d", i), fmt.Sprintf("CARD-%d", i)))
			}
			if got := MustImportRoster(t, db, "313601", entries...); got.Created != 1000 {
				t.Errorf("created %d, want 1000", got.Created)
			}
			// Everyone's card rotates by one.
			for i := range entries {
				entries[i].CardUID = fmt.Sprintf("CARD-%d", (i+1)%len(entries))
			}
			if got := MustImportRoster(t, db, "313601", entries...); got.Updated != 1000 {
				t.Errorf("updated %d, want 1000", got.Updated)
			}
		})
	})
}
