package ecardbot

import (
	"context"
	"time"
)

// Languages a LINE user can be answered in. Anything that is not English is answered in
// Traditional Chinese, the service's own language.
const (
	LangZhTW = "zh-TW"
	LangEn   = "en"
)

// LanguageOf maps a LINE profile language tag (BCP 47, e.g. "en", "en-US", "zh-Hant-TW")
// to one of the languages the service speaks.
func LanguageOf(tag string) string {
	if tag == "en" || len(tag) > 3 && tag[:3] == "en-" {
		return LangEn
	}
	return LangZhTW
}

// LineUser is a LINE user who has added @taipei as a friend at least once.
type LineUser struct {
	ID        string // LINE user ID ("U" + 32 hex digits)
	Following bool   // false after an unfollow (a block): no LINE push may go to them
	Language  string // LangZhTW or LangEn
	// StateAt is the LINE timestamp of the follow or unfollow that set Following. Events can
	// arrive out of order; an older one never overrides a newer one.
	StateAt   time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LineUserService keeps what the service knows about LINE users.
type LineUserService interface {
	// Follow records that the user follows the bot as of at, in the given language, creating
	// the user when new. A follow older than the user's last recorded state changes nothing.
	Follow(ctx context.Context, userID, language string, at time.Time) error

	// Unfollow records that the user blocked the bot as of at. An unfollow older than the
	// user's last recorded state changes nothing; an unknown user is created as not following.
	Unfollow(ctx context.Context, userID string, at time.Time) error

	// FindLineUser returns the user. Returns ENOTFOUND if the user never followed.
	FindLineUser(ctx context.Context, userID string) (*LineUser, error)
}

// EventClaimer makes each LINE webhook event act once although LINE may deliver it several times.
type EventClaimer interface {
	// Claim reports whether the caller is the first to claim the webhook event ID.
	Claim(ctx context.Context, webhookEventID string) (bool, error)

	// Release gives up a claim whose handling failed, so a later delivery can act on it.
	Release(ctx context.Context, webhookEventID string) error
}
