package store

import (
	"time"

	"gorm.io/gorm"
)

// migrate0002 creates everything between a school's roster and a guardian's delivery: schools
// and their gate keys, students, gate events, notices, guardians with what they subscribed to,
// deliveries (the outbox) and leave records.
//
// Design choices that the code relies on:
//   - Days are text (YYYY-MM-DD in the service's zone), not dates: the day a tap belongs to is
//     decided once, in Go, where the zone is known, and compares the same in both dialects.
//   - students has a partial unique index on card_uid over active students with a card: a card
//     UID identifies one pupil at a time (cards are reissued, pupils leave), while past pupils
//     keep the UID they had for history.
//   - gate_events is unique on (school_id, event_id) and notices on (student_id, day, kind), so
//     a resent batch or a concurrent one is absorbed by ON CONFLICT DO NOTHING, and only the
//     transaction that inserted a notice creates its deliveries.
//   - deliveries has a text UUID primary key, generated in Go when the row is created; it is the
//     X-Line-Retry-Key of every attempt, so it must never change.
//   - Removing a guardian removes their guardianships and subscriptions (and deliveries): an
//     unlinked parent must never be written to again.
func migrate0002(tx *gorm.DB) error {
	return tx.Migrator().CreateTable(
		&school0002{},
		&schoolAPIKey0002{},
		&student0002{},
		&gateEvent0002{},
		&notice0002{},
		&guardian0002{},
		&guardianship0002{},
		&subscription0002{},
		&delivery0002{},
		&leave0002{},
	)
}

// rollback0002 drops the tables of migration 0002; given the models, gorm drops children
// before their parents.
func rollback0002(tx *gorm.DB) error {
	return tx.Migrator().DropTable(
		&school0002{}, &schoolAPIKey0002{}, &student0002{}, &gateEvent0002{}, &notice0002{},
		&guardian0002{}, &guardianship0002{}, &subscription0002{}, &delivery0002{}, &leave0002{},
	)
}

// school0002 is schools as migration 0002 created it.
type school0002 struct {
	ID                   int64     `gorm:"primaryKey;autoIncrement"`
	Code                 string    `gorm:"type:text;not null;uniqueIndex:idx_schools_code"`
	Name                 string    `gorm:"type:text;not null"`
	District             string    `gorm:"type:text;not null"`
	Level                string    `gorm:"type:text;not null"`
	CutoffMinutes        int       `gorm:"type:integer;not null"`
	EarliestLeaveMinutes int       `gorm:"type:integer;not null"`
	CreatedAt            time.Time `gorm:"not null"`
	UpdatedAt            time.Time `gorm:"not null"`
}

func (school0002) TableName() string { return "schools" }

// schoolAPIKey0002 is school_api_keys as migration 0002 created it. Only the keyed hash of a
// key is stored.
type schoolAPIKey0002 struct {
	ID        int64      `gorm:"primaryKey;autoIncrement"`
	SchoolID  int64      `gorm:"not null;index:idx_school_api_keys_school"`
	School    school0002 `gorm:"constraint:OnDelete:CASCADE"`
	KeyHash   string     `gorm:"type:text;not null;uniqueIndex:idx_school_api_keys_hash"`
	CreatedAt time.Time  `gorm:"not null"`
	RevokedAt *time.Time
}

func (schoolAPIKey0002) TableName() string { return "school_api_keys" }

// student0002 is students as migration 0002 created it.
type student0002 struct {
	ID             int64      `gorm:"primaryKey;autoIncrement"`
	SchoolID       int64      `gorm:"not null;uniqueIndex:idx_students_school_no,priority:1"`
	School         school0002 `gorm:"constraint:OnDelete:CASCADE"`
	StudentNo      string     `gorm:"type:text;not null;uniqueIndex:idx_students_school_no,priority:2"`
	Name           string     `gorm:"type:text;not null"`
	BirthDate      string     `gorm:"type:text;not null"`
	NationalIDHash string     `gorm:"type:text;not null;index:idx_students_national_id_hash"`
	CardUID        string     `gorm:"type:text;not null;default:'';index:idx_students_active_card,unique,where:active AND card_uid <> ''"`
	Grade          string     `gorm:"type:text;not null"`
	Class          string     `gorm:"type:text;not null"`
	Active         bool       `gorm:"not null"`
	CreatedAt      time.Time  `gorm:"not null"`
	UpdatedAt      time.Time  `gorm:"not null"`
}

func (student0002) TableName() string { return "students" }

// gateEvent0002 is gate_events as migration 0002 created it. The card UID is kept as the
// reader sent it: the student it was matched to at the time is in student_id.
type gateEvent0002 struct {
	ID         int64       `gorm:"primaryKey;autoIncrement"`
	SchoolID   int64       `gorm:"not null;uniqueIndex:idx_gate_events_school_event,priority:1"`
	School     school0002  `gorm:"constraint:OnDelete:CASCADE"`
	EventID    string      `gorm:"type:text;not null;uniqueIndex:idx_gate_events_school_event,priority:2"`
	StudentID  int64       `gorm:"not null;index:idx_gate_events_student_day,priority:1"`
	Student    student0002 `gorm:"constraint:OnDelete:CASCADE"`
	CardUID    string      `gorm:"type:text;not null"`
	Direction  string      `gorm:"type:text;not null;check:chk_gate_events_direction,direction IN ('in', 'out', '')"`
	At         time.Time   `gorm:"not null"`
	Day        string      `gorm:"type:text;not null;index:idx_gate_events_student_day,priority:2"`
	Gate       string      `gorm:"type:text;not null"`
	ReceivedAt time.Time   `gorm:"not null"`
}

func (gateEvent0002) TableName() string { return "gate_events" }

// notice0002 is notices as migration 0002 created it. At is the tap that made the notice, or
// the cutoff for an absence; GateEventID is nil for an absence.
type notice0002 struct {
	ID          int64          `gorm:"primaryKey;autoIncrement"`
	StudentID   int64          `gorm:"not null;uniqueIndex:idx_notices_student_day_kind,priority:1"`
	Student     student0002    `gorm:"constraint:OnDelete:CASCADE"`
	Day         string         `gorm:"type:text;not null;uniqueIndex:idx_notices_student_day_kind,priority:2"`
	Kind        string         `gorm:"type:text;not null;uniqueIndex:idx_notices_student_day_kind,priority:3;check:chk_notices_kind,kind IN ('arrived', 'left', 'absent')"`
	At          time.Time      `gorm:"not null"`
	GateEventID *int64         `gorm:"index:idx_notices_gate_event"`
	GateEvent   *gateEvent0002 `gorm:"constraint:OnDelete:SET NULL"`
	Stale       bool           `gorm:"not null"`
	CreatedAt   time.Time      `gorm:"not null"`
}

func (notice0002) TableName() string { return "notices" }

// guardian0002 is guardians as migration 0002 created it. LineUserID is the LINE binding (nil
// when unlinked); it is not a foreign key to line_users, so a binding never depends on the order
// in which a follow and an account link were stored.
type guardian0002 struct {
	ID               int64   `gorm:"primaryKey;autoIncrement"`
	TaipeiPassID     string  `gorm:"column:taipeipass_id;type:text;not null;uniqueIndex:idx_guardians_taipeipass"`
	LineUserID       *string `gorm:"type:text;uniqueIndex:idx_guardians_line_user"`
	Email            string  `gorm:"type:text;not null;default:''"`
	EmailConfirmedAt *time.Time
	Language         string    `gorm:"type:text;not null"`
	CreatedAt        time.Time `gorm:"not null"`
	UpdatedAt        time.Time `gorm:"not null"`
}

func (guardian0002) TableName() string { return "guardians" }

// guardianship0002 is guardianships as migration 0002 created it: a guardian proved (歸戶) to be
// a student's guardian.
type guardianship0002 struct {
	GuardianID int64        `gorm:"primaryKey;autoIncrement:false"`
	Guardian   guardian0002 `gorm:"constraint:OnDelete:CASCADE"`
	StudentID  int64        `gorm:"primaryKey;autoIncrement:false;index:idx_guardianships_student"`
	Student    student0002  `gorm:"constraint:OnDelete:CASCADE"`
	CreatedAt  time.Time    `gorm:"not null"`
}

func (guardianship0002) TableName() string { return "guardianships" }

// subscription0002 is subscriptions as migration 0002 created it: one row per notice kind and
// channel a guardian wants for a student. The (student_id, kind) index serves the fan-out.
type subscription0002 struct {
	GuardianID int64        `gorm:"primaryKey;autoIncrement:false"`
	Guardian   guardian0002 `gorm:"constraint:OnDelete:CASCADE"`
	StudentID  int64        `gorm:"primaryKey;autoIncrement:false;index:idx_subscriptions_student_kind,priority:1"`
	Student    student0002  `gorm:"constraint:OnDelete:CASCADE"`
	Kind       string       `gorm:"primaryKey;type:text;index:idx_subscriptions_student_kind,priority:2;check:chk_subscriptions_kind,kind IN ('arrived', 'left', 'absent')"`
	Channel    string       `gorm:"primaryKey;type:text;check:chk_subscriptions_channel,channel IN ('line', 'email')"`
}

func (subscription0002) TableName() string { return "subscriptions" }

// delivery0002 is deliveries as migration 0002 created it.
type delivery0002 struct {
	ID            string       `gorm:"primaryKey;type:text"` // UUID, the X-Line-Retry-Key
	NoticeID      int64        `gorm:"not null;uniqueIndex:idx_deliveries_notice_guardian_channel,priority:1"`
	Notice        notice0002   `gorm:"constraint:OnDelete:CASCADE"`
	GuardianID    int64        `gorm:"not null;uniqueIndex:idx_deliveries_notice_guardian_channel,priority:2;index:idx_deliveries_guardian"`
	Guardian      guardian0002 `gorm:"constraint:OnDelete:CASCADE"`
	Channel       string       `gorm:"type:text;not null;uniqueIndex:idx_deliveries_notice_guardian_channel,priority:3;check:chk_deliveries_channel,channel IN ('line', 'email')"`
	State         string       `gorm:"type:text;not null;default:'pending';index:idx_deliveries_state,priority:1"`
	Attempts      int          `gorm:"type:integer;not null;default:0"`
	LastError     string       `gorm:"type:text;not null;default:''"`
	LineRequestID string       `gorm:"type:text;not null;default:''"`
	DeadReason    string       `gorm:"type:text;not null;default:''"`
	CreatedAt     time.Time    `gorm:"not null;index:idx_deliveries_state,priority:2"`
	UpdatedAt     time.Time    `gorm:"not null"`
	SentAt        *time.Time
}

func (delivery0002) TableName() string { return "deliveries" }

// leave0002 is leaves as migration 0002 created it.
type leave0002 struct {
	ID        int64       `gorm:"primaryKey;autoIncrement"`
	StudentID int64       `gorm:"not null;uniqueIndex:idx_leaves_student_date,priority:1"`
	Student   student0002 `gorm:"constraint:OnDelete:CASCADE"`
	Date      string      `gorm:"type:text;not null;uniqueIndex:idx_leaves_student_date,priority:2"`
	Kind      string      `gorm:"type:text;not null"`
	CreatedAt time.Time   `gorm:"not null"`
}

func (leave0002) TableName() string { return "leaves" }
