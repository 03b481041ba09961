package store

import (
	"time"

	"gorm.io/gorm"
)

// migrate0005 adds what the settings pages keep: single-use links from chat, sessions, failed
// 歸戶 attempts and e-mail confirmations.
//
// Design choices that the code relies on:
//   - Tokens and session IDs are stored only as keyed hashes, each unique: a stolen table opens
//     nothing, and a lookup is one index probe.
//   - A link or a confirmation is used by one UPDATE … WHERE used_at IS NULL AND expires_at > now
//     RETURNING: the row lock makes exactly one replica win. Used rows stay until they expire,
//     so a second use can be told apart from a token that never existed.
//   - Every table hangs off guardians with ON DELETE CASCADE: removing a guardian removes their
//     way in.
//   - settings_attempts is indexed on (guardian_id, at): the limit counts one guardian's recent
//     failures.
func migrate0005(tx *gorm.DB) error {
	return tx.Migrator().CreateTable(&settingsLink0005{}, &settingsSession0005{}, &settingsAttempt0005{}, &emailConfirmation0005{})
}

// rollback0005 drops the tables of migration 0005.
func rollback0005(tx *gorm.DB) error {
	return tx.Migrator().DropTable(&settingsLink0005{}, &settingsSession0005{}, &settingsAttempt0005{}, &emailConfirmation0005{})
}

// settingsLink0005 is settings_links as migration 0005 created it.
type settingsLink0005 struct {
	ID         int64        `gorm:"primaryKey;autoIncrement"`
	TokenHash  string       `gorm:"type:text;not null;uniqueIndex:idx_settings_links_token"`
	GuardianID int64        `gorm:"not null;index:idx_settings_links_guardian"`
	Guardian   guardian0002 `gorm:"constraint:OnDelete:CASCADE"`
	Page       string       `gorm:"type:text;not null"`
	ExpiresAt  time.Time    `gorm:"not null"`
	UsedAt     *time.Time
	CreatedAt  time.Time `gorm:"not null"`
}

func (settingsLink0005) TableName() string { return "settings_links" }

// settingsSession0005 is settings_sessions as migration 0005 created it.
type settingsSession0005 struct {
	ID         int64        `gorm:"primaryKey;autoIncrement"`
	IDHash     string       `gorm:"column:id_hash;type:text;not null;uniqueIndex:idx_settings_sessions_id"`
	GuardianID int64        `gorm:"not null;index:idx_settings_sessions_guardian"`
	Guardian   guardian0002 `gorm:"constraint:OnDelete:CASCADE"`
	CSRFSecret string       `gorm:"column:csrf_secret;type:text;not null"`
	ExpiresAt  time.Time    `gorm:"not null"`
	CreatedAt  time.Time    `gorm:"not null"`
}

func (settingsSession0005) TableName() string { return "settings_sessions" }

// settingsAttempt0005 is settings_attempts as migration 0005 created it: one row per failed
// 歸戶 attempt.
type settingsAttempt0005 struct {
	ID         int64        `gorm:"primaryKey;autoIncrement"`
	GuardianID int64        `gorm:"not null;index:idx_settings_attempts_guardian_at,priority:1"`
	Guardian   guardian0002 `gorm:"constraint:OnDelete:CASCADE"`
	At         time.Time    `gorm:"not null;index:idx_settings_attempts_guardian_at,priority:2"`
}

func (settingsAttempt0005) TableName() string { return "settings_attempts" }

// emailConfirmation0005 is email_confirmations as migration 0005 created it. Email is the
// address the link confirms: a guardian who changed it since gets nothing confirmed.
type emailConfirmation0005 struct {
	ID         int64        `gorm:"primaryKey;autoIncrement"`
	TokenHash  string       `gorm:"type:text;not null;uniqueIndex:idx_email_confirmations_token"`
	GuardianID int64        `gorm:"not null;index:idx_email_confirmations_guardian"`
	Guardian   guardian0002 `gorm:"constraint:OnDelete:CASCADE"`
	Email      string       `gorm:"type:text;not null"`
	ExpiresAt  time.Time    `gorm:"not null"`
	UsedAt     *time.Time
	CreatedAt  time.Time `gorm:"not null"`
}

func (emailConfirmation0005) TableName() string { return "email_confirmations" }
