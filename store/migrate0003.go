package store

import (
	"time"

	"gorm.io/gorm"
)

// migrate0003 adds the school calendars and the record of 未到校 sweeps, and the indexes the
// retention job deletes by.
//
// Design choices that the code relies on:
//   - A calendar entry's scope is one school (school_id set), one district (school_id NULL,
//     district set) or the whole city (school_id NULL, district empty). Each scope has one
//     partial unique index, because NULLs never conflict in a unique index: the upserts name
//     the index's predicate in their ON CONFLICT target.
//   - Planned days (holiday, schoolday) and closures live in two tables, each with one row per
//     date and scope. A holiday and a make-up day for the same date and scope contradict each
//     other, so importing one replaces the other; a closure (a typhoon) overrides a make-up
//     day without erasing it, so that reopening restores the plan.
//   - sweep_runs is unique on (school_id, day). The sweep inserts its row first, in the
//     transaction that creates the notices: a second replica's insert waits for that
//     transaction and then finds the row, and a crash rolls the claim back with the notices,
//     so the day is swept again later and never half.
//   - gate_events and notices get an index on day, leaves one on date: retention deletes the
//     oldest days in small batches, each of which must find its rows without a full scan.
func migrate0003(tx *gorm.DB) error {
	if err := tx.Migrator().CreateTable(&calendarDay0003{}, &calendarClosure0003{}, &sweepRun0003{}); err != nil {
		return err
	}
	for _, ddl := range []string{
		`CREATE INDEX idx_gate_events_day ON gate_events (day)`,
		`CREATE INDEX idx_notices_day ON notices (day)`,
		`CREATE INDEX idx_leaves_date ON leaves (date)`,
	} {
		if err := tx.Exec(ddl).Error; err != nil {
			return err
		}
	}
	return nil
}

// rollback0003 drops what migration 0003 created.
func rollback0003(tx *gorm.DB) error {
	for _, idx := range []string{"idx_gate_events_day", "idx_notices_day", "idx_leaves_date"} {
		if err := tx.Exec(`DROP INDEX IF EXISTS ` + idx).Error; err != nil {
			return err
		}
	}
	return tx.Migrator().DropTable(&calendarDay0003{}, &calendarClosure0003{}, &sweepRun0003{})
}

// calendarDay0003 is calendar_days as migration 0003 created it: the planned holidays and
// make-up school days.
type calendarDay0003 struct {
	ID        int64       `gorm:"primaryKey;autoIncrement"`
	SchoolID  *int64      `gorm:"uniqueIndex:idx_calendar_days_school,priority:1,where:school_id IS NOT NULL;check:chk_calendar_days_scope,school_id IS NULL OR district = ''"`
	School    *school0002 `gorm:"constraint:OnDelete:CASCADE"`
	District  string      `gorm:"type:text;not null;default:'';uniqueIndex:idx_calendar_days_area,priority:1,where:school_id IS NULL"`
	Day       string      `gorm:"type:text;not null;uniqueIndex:idx_calendar_days_school,priority:2;uniqueIndex:idx_calendar_days_area,priority:2"`
	Kind      string      `gorm:"type:text;not null;check:chk_calendar_days_kind,kind IN ('holiday', 'schoolday')"`
	Note      string      `gorm:"type:text;not null;default:''"`
	CreatedAt time.Time   `gorm:"not null"`
	UpdatedAt time.Time   `gorm:"not null"`
}

func (calendarDay0003) TableName() string { return "calendar_days" }

// calendarClosure0003 is calendar_closures as migration 0003 created it: closures such as
// typhoon days.
type calendarClosure0003 struct {
	ID        int64       `gorm:"primaryKey;autoIncrement"`
	SchoolID  *int64      `gorm:"uniqueIndex:idx_calendar_closures_school,priority:1,where:school_id IS NOT NULL;check:chk_calendar_closures_scope,school_id IS NULL OR district = ''"`
	School    *school0002 `gorm:"constraint:OnDelete:CASCADE"`
	District  string      `gorm:"type:text;not null;default:'';uniqueIndex:idx_calendar_closures_area,priority:1,where:school_id IS NULL"`
	Day       string      `gorm:"type:text;not null;uniqueIndex:idx_calendar_closures_school,priority:2;uniqueIndex:idx_calendar_closures_area,priority:2"`
	Note      string      `gorm:"type:text;not null;default:''"`
	CreatedAt time.Time   `gorm:"not null"`
	UpdatedAt time.Time   `gorm:"not null"`
}

func (calendarClosure0003) TableName() string { return "calendar_closures" }

// sweepRun0003 is sweep_runs as migration 0003 created it: one row per school and day whose
// 未到校 sweep ran, school day or not, with what it found. FinishedAt is set by the same
// transaction as StartedAt; it is nullable only because the row is inserted first, as the
// claim.
type sweepRun0003 struct {
	ID         int64      `gorm:"primaryKey;autoIncrement"`
	SchoolID   int64      `gorm:"not null;uniqueIndex:idx_sweep_runs_school_day,priority:1"`
	School     school0002 `gorm:"constraint:OnDelete:CASCADE"`
	Day        string     `gorm:"type:text;not null;uniqueIndex:idx_sweep_runs_school_day,priority:2;index:idx_sweep_runs_day"`
	SchoolDay  bool       `gorm:"not null"`
	Reason     string     `gorm:"type:text;not null;default:''"`
	Students   int        `gorm:"type:integer;not null;default:0"`
	Arrived    int        `gorm:"type:integer;not null;default:0"`
	OnLeave    int        `gorm:"type:integer;not null;default:0"`
	Absent     int        `gorm:"type:integer;not null;default:0"`
	Deliveries int        `gorm:"type:integer;not null;default:0"`
	Stale      bool       `gorm:"not null;default:false"`
	StartedAt  time.Time  `gorm:"not null"`
	FinishedAt *time.Time
}

func (sweepRun0003) TableName() string { return "sweep_runs" }
