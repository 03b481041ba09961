package store

import (
	"context"
	"testing"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// TestSchema0002 checks the constraints the services rely on, directly in SQL.
func TestSchema0002(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenMigrated(t, b)
		school := MustImportSchool(t, db, "313601")
		now := db.timeArg(seedNow)
		exec := func(q string, args ...any) error { return mapError(db.gorm.Exec(q, args...).Error) }
		student := func(no, card string, active bool) error {
			return exec(`INSERT INTO students (school_id, student_no, name, birth_date, national_id_hash, card_uid, grade, "class", active, created_at, updated_at)
VALUES (?, ?, 'n', '2019-01-01', 'h', ?, '1', '1', ?, ?, ?)`, school.ID, no, card, active, now, now)
		}

		t.Run("card UIDs are unique among active students only", func(t *testing.T) {
			for _, tt := range []struct {
				no, card string
				active   bool
				code     string
			}{
				{"1", "CARD", true, ""},
				{"2", "CARD", true, ecardbot.ECONFLICT},
				{"3", "CARD", false, ""},
				{"4", "CARD", false, ""},
				{"5", "", true, ""},
				{"6", "", true, ""},
				{"1", "OTHER", true, ecardbot.ECONFLICT}, // student number taken in the school
			} {
				if code := ecardbot.ErrorCode(student(tt.no, tt.card, tt.active)); code != tt.code {
					t.Errorf("insert student %s card %q active %v: code %q, want %q", tt.no, tt.card, tt.active, code, tt.code)
				}
			}
		})

		t.Run("a delivery starts pending", func(t *testing.T) {
			if err := student("10", "", true); err != nil {
				t.Fatal(err)
			}
			st := studentID(t, db, school, "10")
			g := mustGuardian(t, db, seedGuardian{taipeiPass: "tp"})
			var noticeID int64
			if err := db.gorm.Raw(`INSERT INTO notices (student_id, day, kind, at, stale, created_at)
VALUES (?, ?, 'absent', ?, ?, ?) RETURNING id`, st, testDay, now, false, now).Scan(&noticeID).Error; err != nil {
				t.Fatal(err)
			}
			if err := exec(`INSERT INTO deliveries (id, notice_id, guardian_id, channel, created_at, updated_at)
VALUES ('9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d', ?, ?, 'email', ?, ?)`, noticeID, g, now, now); err != nil {
				t.Fatal(err)
			}
			var got struct {
				State, LastError, LineRequestID, DeadReason string
				Attempts                                    int
			}
			if err := db.gorm.Raw(`SELECT state, attempts, last_error, line_request_id, dead_reason FROM deliveries`).Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got.State != "pending" || got.Attempts != 0 || got.LastError != "" || got.LineRequestID != "" || got.DeadReason != "" {
				t.Errorf("defaults of a delivery: %+v", got)
			}
			if err := exec(`INSERT INTO deliveries (id, notice_id, guardian_id, channel, created_at, updated_at)
VALUES ('another', ?, ?, 'email', ?, ?)`, noticeID, g, now, now); ecardbot.ErrorCode(err) != ecardbot.ECONFLICT {
				t.Errorf("second delivery for (notice, guardian, channel): err = %v, want ECONFLICT", err)
			}
		})

		t.Run("check constraints", func(t *testing.T) {
			if err := student("20", "", true); err != nil {
				t.Fatal(err)
			}
			st := studentID(t, db, school, "20")
			g := mustGuardian(t, db, seedGuardian{taipeiPass: "tp-20"})
			for name, err := range map[string]error{
				"notice kind": exec(`INSERT INTO notices (student_id, day, kind, at, stale, created_at) VALUES (?, ?, 'late', ?, ?, ?)`,
					st, testDay, now, false, now),
				"subscription channel": exec(`INSERT INTO subscriptions (guardian_id, student_id, kind, channel) VALUES (?, ?, 'arrived', 'sms')`, g, st),
				"subscription kind":    exec(`INSERT INTO subscriptions (guardian_id, student_id, kind, channel) VALUES (?, ?, 'late', 'line')`, g, st),
				"gate event direction": exec(`INSERT INTO gate_events (school_id, event_id, student_id, card_uid, direction, at, day, gate, received_at)
VALUES (?, 'e', ?, 'c', 'sideways', ?, ?, '', ?)`, school.ID, st, now, testDay, now),
			} {
				if err == nil {
					t.Errorf("%s: a bad value was accepted", name)
				}
			}
		})
	})
}

// TestRollback0002 rolls migration 0002 back and applies it again.
func TestRollback0002(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenMigrated(t, b)
		school := MustImportSchool(t, db, "313601")
		MustImportRoster(t, db, "313601", entry(2, "1001", "C1"))
		st := studentID(t, db, school, "1001")
		mustGuardian(t, db, seedGuardian{taipeiPass: "tp", lineUser: "U1", lineRow: true, following: true,
			students: []int64{st}, subs: allSubs(st, ecardbot.ChannelLINE)})
		f := &gateFixture{db: db, school: school, clock: &testClock{t: tp(7, 40, 0)}}
		f.gate = NewGateService(db, GateConfig{Location: taipeiZone, Now: f.clock.Now})
		f.ingest(t, tp(7, 40, 0), tap("e1", "C1", in, tp(7, 30, 0)))

		m := gormigrate.New(db.gorm, &gormigrate.Options{TableName: migrationsTable, IDColumnName: "id", IDColumnSize: 255}, migrations())
		if err := m.RollbackTo("0001_line_users"); err != nil {
			t.Fatalf("RollbackTo: %v", err)
		}
		if diff := cmp.Diff([]string{"0001_line_users"}, appliedMigrations(t, db)); diff != "" {
			t.Errorf("after rollback (-want +got):\n%s", diff)
		}
		for _, table := range []string{"schools", "deliveries", "leaves"} {
			if db.gorm.Migrator().HasTable(table) {
				t.Errorf("table %s survived the rollback", table)
			}
		}
		if !db.gorm.Migrator().HasTable("line_users") {
			t.Error("rollback of 0002 dropped line_users")
		}
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate after rollback: %v", err)
		}
		MustImportSchool(t, db, "313601")
	})
}
