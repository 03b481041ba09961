package store

import (
	"context"
	"testing"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// TestSchema0003 checks the constraints of the calendar tables directly in SQL.
func TestSchema0003(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenMigrated(t, b)
		sc := mustSchool(t, db, "313601", "松山區", ecardbot.DefaultCutoff)
		now := db.timeArg(seedNow)
		insert := func(schoolID any, district, day string) error {
			return mapError(db.gorm.Exec(`INSERT INTO calendar_closures (school_id, district, day, note, created_at, updated_at)
VALUES (?, ?, ?, '', ?, ?)`, schoolID, district, day, now, now).Error)
		}
		for _, tt := range []struct {
			name     string
			schoolID any
			district string
			wantErr  bool
		}{
			{"city", nil, "", false},
			{"city again", nil, "", true},
			{"a district", nil, "松山區", false},
			{"the district again", nil, "松山區", true},
			{"a school", sc.ID, "", false},
			{"the school again", sc.ID, "", true},
			{"a school with a district", sc.ID, "松山區", true},
			{"an unknown school", int64(99999), "", true},
		} {
			if err := insert(tt.schoolID, tt.district, "2026-09-28"); (err != nil) != tt.wantErr {
				t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			}
		}
		if err := db.gorm.Exec(`INSERT INTO calendar_days (district, day, kind, note, created_at, updated_at)
VALUES ('', '2026-09-28', 'closure', '', ?, ?)`, now, now).Error; err == nil {
			t.Error("calendar_days accepted kind closure")
		}
		if err := mapError(db.gorm.Exec(`INSERT INTO sweep_runs (school_id, day, school_day, started_at) VALUES (?, '2026-09-28', ?, ?), (?, '2026-09-28', ?, ?)`,
			sc.ID, true, now, sc.ID, true, now).Error); ecardbot.ErrorCode(err) != ecardbot.ECONFLICT {
			t.Errorf("two sweep runs for one school and day: %v, want ECONFLICT", err)
		}
	})
}

// TestRollback0003 rolls migration 0003 back, keeping 0002's data, and applies it again.
func TestRollback0003(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := MustOpenMigrated(t, b)
		sc := mustSchool(t, db, "313601", "松山區", ecardbot.DefaultCutoff)
		MustImportRoster(t, db, "313601", entry(2, "1001", "C1"))
		mustCalendar(t, db, cityEntry("2026-10-09", holiday, ""))
		sweeps := NewSweepService(db, SweepConfig{Location: taipeiZone, Now: func() time.Time { return tp(9, 0, 0) }})
		if _, err := sweeps.Sweep(context.Background(), sc, testDay); err != nil {
			t.Fatal(err)
		}

		m := gormigrate.New(db.gorm, &gormigrate.Options{TableName: migrationsTable, IDColumnName: "id", IDColumnSize: 255}, migrations())
		if err := m.RollbackTo("0002_schools"); err != nil {
			t.Fatalf("RollbackTo: %v", err)
		}
		if diff := cmp.Diff([]string{"0001_line_users", "0002_schools"}, appliedMigrations(t, db)); diff != "" {
			t.Errorf("after rollback (-want +got):\n%s", diff)
		}
		for _, table := range []string{"calendar_days", "calendar_closures", "sweep_runs"} {
			if db.gorm.Migrator().HasTable(table) {
				t.Errorf("table %s survived the rollback", table)
			}
		}
		for table, idx := range map[string]string{"gate_events": "idx_gate_events_day", "notices": "idx_notices_day", "leaves": "idx_leaves_date"} {
			if db.gorm.Migrator().HasIndex(table, idx) {
				t.Errorf("index %s survived the rollback", idx)
			}
		}
		if n := count(t, db, "notices"); n != 1 {
			t.Errorf("%d notices after the rollback, want the sweep's 1", n)
		}
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate after rollback: %v", err)
		}
		mustCalendar(t, db, cityEntry("2026-10-09", holiday, ""))
	})
}
