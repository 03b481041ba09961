package store

import (
	"context"
	"fmt"
	"time"

	"github.com/taipei-doit/ecardbot"
)

// lineUser is a row of line_users.
type lineUser struct {
	ID        string
	Following bool
	Language  string
	StateAt   time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (lineUser) TableName() string { return "line_users" }

func (u *lineUser) domain() *ecardbot.LineUser {
	return &ecardbot.LineUser{
		ID:        u.ID,
		Following: u.Following,
		Language:  u.Language,
		StateAt:   u.StateAt.UTC(),
		CreatedAt: u.CreatedAt.UTC(),
		UpdatedAt: u.UpdatedAt.UTC(),
	}
}

// LineUserService keeps LINE users in the database.
//
// LINE may deliver a follow and an unfollow out of order, and several replicas may handle events
// of one user at the same time. Each change is therefore one INSERT … ON CONFLICT DO UPDATE …
// WHERE state_at < new state_at: the database applies it atomically, and only if it is newer
// than what is stored, so the final state is that of the newest event whatever the arrival order.
// Times are compared at microsecond precision; LINE's are milliseconds.
type LineUserService struct {
	db  *DB
	now func() time.Time
}

var _ ecardbot.LineUserService = (*LineUserService)(nil)

// NewLineUserService returns the service over db, which must be migrated.
func NewLineUserService(db *DB) *LineUserService {
	return &LineUserService{db: db, now: time.Now}
}

// upsertFollow and upsertUnfollow differ only in whether the language is updated: an unfollow
// event carries no profile language, so it keeps the one we have.
const (
	upsertFollow = `INSERT INTO line_users (id, following, language, state_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET following = excluded.following, language = excluded.language,
	state_at = excluded.state_at, updated_at = excluded.updated_at
WHERE line_users.state_at < excluded.state_at`

	upsertUnfollow = `INSERT INTO line_users (id, following, language, state_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET following = excluded.following,
	state_at = excluded.state_at, updated_at = excluded.updated_at
WHERE line_users.state_at < excluded.state_at`
)

// Follow records that the user follows the bot as of at, in language, creating the user when
// new. A follow no newer than the stored state changes nothing.
func (s *LineUserService) Follow(ctx context.Context, userID, language string, at time.Time) error {
	if err := s.upsert(ctx, upsertFollow, userID, true, language, at); err != nil {
		return fmt.Errorf("follow line user: %w", err)
	}
	return nil
}

// Unfollow records that the user blocked the bot as of at. An unfollow no newer than the stored
// state changes nothing; an unknown user is created as not following, in LangZhTW, so a later
// but older follow cannot make them reachable.
func (s *LineUserService) Unfollow(ctx context.Context, userID string, at time.Time) error {
	if err := s.upsert(ctx, upsertUnfollow, userID, false, ecardbot.LangZhTW, at); err != nil {
		return fmt.Errorf("unfollow line user: %w", err)
	}
	return nil
}

func (s *LineUserService) upsert(ctx context.Context, query, userID string, following bool, language string, at time.Time) error {
	if userID == "" {
		return ecardbot.Errorf(ecardbot.EINVALID, "Missing LINE user ID.")
	}
	if at.IsZero() {
		return ecardbot.Errorf(ecardbot.EINVALID, "Missing event time.")
	}
	now := s.db.timeArg(s.now())
	err := s.db.gorm.WithContext(ctx).
		Exec(query, userID, following, language, s.db.timeArg(at), now, now).Error
	return mapError(err)
}

// FindLineUser returns the user. Returns ENOTFOUND if the user never followed nor unfollowed.
func (s *LineUserService) FindLineUser(ctx context.Context, userID string) (*ecardbot.LineUser, error) {
	var u lineUser
	if err := s.db.gorm.WithContext(ctx).Where("id = ?", userID).Take(&u).Error; err != nil {
		return nil, fmt.Errorf("find line user: %w", mapError(err))
	}
	return u.domain(), nil
}
