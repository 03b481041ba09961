package ecardbot

import (
	"context"
	"time"
)

// SettingsPage names a settings page that a link from chat can open. Links open only these
// pages, so a link can never send a parent anywhere else.
type SettingsPage string

// The settings pages reachable from chat.
const (
	SettingsHome     SettingsPage = ""             // the guardian's children and their notices
	SettingsAddChild SettingsPage = "children/new" // 歸戶: prove guardianship of a child
	SettingsHistory  SettingsPage = "history"      // recent notices and their delivery state
)

// SettingsLinker makes the short-lived, single-use signed URLs with which a linked guardian
// opens their settings pages from chat (design.md §2.3). The bot sends them; the settings pages
// consume them and start a session.
type SettingsLinker interface {
	SettingsURL(ctx context.Context, guardianID int64, page SettingsPage) (string, error)
}

// Purposes of KeyedHash for the settings pages. Their tokens are random, so the hash is not
// there to resist guessing: it keeps a copied database, or a row read over a shoulder, from
// opening a parent's settings.
const (
	PurposeSettingsLink = "settings-link"
	PurposeSession      = "settings-session"
	PurposeCSRF         = "settings-csrf"
	PurposeEmailConfirm = "email-confirm"
)

// ValidSettingsPage reports whether p is one of the SettingsPage constants: a stored or
// requested page is checked with it before anyone is sent there.
func ValidSettingsPage(p SettingsPage) bool {
	return p == SettingsHome || p == SettingsAddChild || p == SettingsHistory
}

// SettingsSession is a parent's session on the settings pages.
type SettingsSession struct {
	GuardianID int64
	CSRFSecret string // random; the forms' CSRF token is derived from it
	ExpiresAt  time.Time
}

// Child is a student a guardian proved to be a guardian of, as the settings pages list them.
type Child struct {
	StudentID  int64
	Name       string // personal data: never log it
	StudentNo  string
	Grade      string
	Class      string
	SchoolName string
	Active     bool // false once the pupil left the school's roster
}

// StudentQuery is what a parent types on the 歸戶 page to name their child. Every field must
// match one active student of the school.
type StudentQuery struct {
	SchoolID       int64
	StudentNo      string
	Name           string
	BirthDate      string // YYYY-MM-DD
	NationalIDHash string // KeyedHash(PurposeNationalID, normalised ID)
}

// HistoryEntry is one notice about one of a guardian's children, with how it reached the
// guardian on each channel.
type HistoryEntry struct {
	NoticeID   int64
	StudentID  int64
	ChildName  string // personal data: never log it
	SchoolName string
	Kind       NoticeKind
	At         time.Time
	Deliveries []HistoryDelivery // by channel; empty when the guardian was not subscribed
}

// HistoryDelivery is the state of a notice's delivery to the guardian on one channel.
type HistoryDelivery struct {
	Channel Channel
	State   string // one of the Delivery* states
}

// TooManyAttemptsError refuses a 歸戶 attempt because the guardian failed too many times
// lately. Its code is ERATELIMITED.
type TooManyAttemptsError struct {
	RetryAt time.Time // when the oldest counted failure leaves the window
}

func (e *TooManyAttemptsError) Error() string {
	return "too many failed attempts; retry at " + e.RetryAt.UTC().Format(time.RFC3339)
}

// Unwrap gives the error its code, so ErrorCode works on it.
func (e *TooManyAttemptsError) Unwrap() error {
	return Errorf(ERATELIMITED, "Too many failed attempts.")
}

// SettingsService keeps what the settings pages need beyond GuardianService: single-use links,
// sessions, failed 歸戶 attempts and e-mail confirmations, and the views the pages show. Tokens
// and session IDs reach it only as keyed hashes. Every method that takes now compares expiry
// with it, so all replicas and tests agree on one clock: the caller's.
type SettingsService interface {
	// CreateSettingsLink stores a link for the guardian to page, valid until expiresAt.
	// Returns ENOTFOUND for an unknown guardian.
	CreateSettingsLink(ctx context.Context, tokenHash string, guardianID int64, page SettingsPage, now, expiresAt time.Time) error
	// UseSettingsLink marks the link used and returns its guardian and page. Only one caller
	// ever succeeds, across replicas. Returns ENOTFOUND for an unknown token and ECONFLICT for
	// one already used or expired.
	UseSettingsLink(ctx context.Context, tokenHash string, now time.Time) (guardianID int64, page SettingsPage, err error)

	// CreateSession stores a session. Returns ENOTFOUND for an unknown guardian.
	CreateSession(ctx context.Context, idHash string, s SettingsSession, now time.Time) error
	// FindSession returns the session. Returns ENOTFOUND for an unknown or expired one.
	FindSession(ctx context.Context, idHash string, now time.Time) (SettingsSession, error)

	// Guardian returns the guardian. Returns ENOTFOUND for an unknown one.
	Guardian(ctx context.Context, guardianID int64) (*Guardian, error)
	// Schools returns the schools of a district and level, by name.
	Schools(ctx context.Context, district, level string) ([]School, error)
	// Children returns the guardian's students in the order they were added.
	Children(ctx context.Context, guardianID int64) ([]Child, error)
	// History returns the notices since the given time about the guardian's current students,
	// newest first, at most limit of them.
	History(ctx context.Context, guardianID int64, since time.Time, limit int) ([]HistoryEntry, error)

	// MatchStudent finds the active student q describes, for 歸戶. A guardian with max failed
	// attempts inside the window before now is refused before any matching with a
	// *TooManyAttemptsError. A query that matches nobody is recorded as a failed attempt and
	// returns ENOTFOUND with one message whatever field was wrong. Concurrent calls for one
	// guardian are serialised, so the limit holds across replicas.
	MatchStudent(ctx context.Context, guardianID int64, q StudentQuery, now time.Time, max int, window time.Duration) (studentID int64, err error)

	// CreateEmailConfirmation stores a confirmation of address for the guardian, valid until
	// expiresAt. Returns ENOTFOUND for an unknown guardian.
	CreateEmailConfirmation(ctx context.Context, tokenHash string, guardianID int64, email string, now, expiresAt time.Time) error
	// UseEmailConfirmation marks the confirmation used and returns its guardian and address.
	// Only one caller ever succeeds. Returns ENOTFOUND for an unknown token and ECONFLICT for
	// one already used or expired.
	UseEmailConfirmation(ctx context.Context, tokenHash string, now time.Time) (guardianID int64, email string, err error)
}
