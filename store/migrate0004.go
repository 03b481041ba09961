package store

import (
	"time"

	"gorm.io/gorm"
)

// migrate0004 adds the state of account linking (design.md §2.2): TaipeiPASS logins in progress,
// account-link nonces, and what is kept of each TaipeiPASS account that logged in.
//
// Design choices that the code relies on:
//   - States and nonces are stored only as keyed hashes, as primary keys: a copy of the database
//     cannot complete a link, and taking one is a single DELETE … RETURNING by key, which
//     succeeds for exactly one caller however many replicas race.
//   - Both tables have an index on expires_at: creating an attempt or a nonce deletes the
//     expired rows, so the tables hold about ten minutes of logins without a separate job.
//   - link_nonces references taipeipass_accounts, so a nonce is always bound to a real login.
//     guardians.taipeipass_id does not: guardians imported from the old portal never logged in.
//   - taipeipass_accounts keeps no name and no national ID: linking needs only the member UUID
//     and whether the member is gold.
func migrate0004(tx *gorm.DB) error {
	return tx.Migrator().CreateTable(&linkAttempt0004{}, &taipeiPassAccount0004{}, &linkNonce0004{})
}

// rollback0004 drops the tables of migration 0004.
func rollback0004(tx *gorm.DB) error {
	return tx.Migrator().DropTable(&linkNonce0004{}, &taipeiPassAccount0004{}, &linkAttempt0004{})
}

// linkAttempt0004 is link_attempts as migration 0004 created it: one TaipeiPASS login in
// progress, keyed by the hash of its OAuth2 state.
type linkAttempt0004 struct {
	StateHash string    `gorm:"primaryKey;type:text"`
	LinkToken string    `gorm:"type:text;not null"`
	Verifier  string    `gorm:"type:text;not null"`
	CreatedAt time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null;index:idx_link_attempts_expires"`
}

func (linkAttempt0004) TableName() string { return "link_attempts" }

// taipeiPassAccount0004 is taipeipass_accounts as migration 0004 created it.
type taipeiPassAccount0004 struct {
	ID          string    `gorm:"primaryKey;type:text"` // member UUID
	VerifyLevel string    `gorm:"type:text;not null"`
	LastLoginAt time.Time `gorm:"not null"`
	CreatedAt   time.Time `gorm:"not null"`
	UpdatedAt   time.Time `gorm:"not null"`
}

func (taipeiPassAccount0004) TableName() string { return "taipeipass_accounts" }

// linkNonce0004 is link_nonces as migration 0004 created it: an account-link nonce, keyed by
// its hash, bound to the account that logged in.
type linkNonce0004 struct {
	NonceHash    string                `gorm:"primaryKey;type:text"`
	TaipeipassID string                `gorm:"column:taipeipass_id;type:text;not null;index:idx_link_nonces_account"`
	Account      taipeiPassAccount0004 `gorm:"foreignKey:TaipeipassID;constraint:OnDelete:CASCADE"`
	CreatedAt    time.Time             `gorm:"not null"`
	ExpiresAt    time.Time             `gorm:"not null;index:idx_link_nonces_expires"`
}

func (linkNonce0004) TableName() string { return "link_nonces" }
