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
	// ever succeeds, across replicas. Returns ECONFLICT for a link already used, or expired
	// while its row is still kept, and ENOTFOUND for an unknown token. Expired rows are
	// deleted (when the guardian gets a new link, and by the retention sweep), so an expired
	// link may well get ENOTFOUND instead: callers must treat both as "no entry".
	UseSettingsLink(ctx context.Context, tokenHash string, now time.Time) (guardianID int64, page SettingsPage, err error)

	// CreateSession stores a session. Returns ENOTFOUND for an unknown guardian.
	CreateSession(ctx context.Context, idHash string, s SettingsSession, now time.Time) error
	// FindSession returns the session. Returns ENOTFOUND for an unknown or expired one, and
	// for the session of a guardian who is no longer linked to a LINE user: unlinking ends
	// every way into the guardian's settings.
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

	// CreateEmailConfirmationLimited stores a confirmation of address for the guardian, valid
	// until expiresAt, unless max confirmations of the guardian were already created in the
	// window before now: then it stores nothing and returns a *TooManyMailsError. Every
	// confirmation is a mail sent to an address the parent typed, so the limit bounds the
	// mail a session can make the relay send. Concurrent calls for one guardian are
	// serialised, so the limit holds across replicas. Returns ENOTFOUND for an unknown
	// guardian.
	CreateEmailConfirmationLimited(ctx context.Context, tokenHash string, guardianID int64, email string, now, expiresAt time.Time, max int, window time.Duration) error
	// PeekEmailConfirmation returns the guardian and address of a confirmation that can still
	// be used, without using it: opening the link from the mail only shows what a button
	// would confirm, since mail scanners open links too. Its errors are UseEmailConfirmation's.
	PeekEmailConfirmation(ctx context.Context, tokenHash string, now time.Time) (guardianID int64, email string, err error)
	// UseEmailConfirmation marks the confirmation used and, in the same transaction, marks the
	// guardian's address confirmed, in one conditional statement: only while the guardian's
	// address is still the confirmation's. Only one caller ever succeeds. It returns the
	// guardian and the confirmed address. Returns ErrEmailChanged (code ECONFLICT) when the
	// guardian's address changed since the mail was sent (the confirmation is used up all the
	// same), ECONFLICT for a confirmation already used, or expired while its row is still
	// kept, and ENOTFOUND for an unknown token. Expired rows are deleted (when the guardian
	// asks for another confirmation, and by the retention sweep), so an expired confirmation
	// may well get ENOTFOUND instead.
	UseEmailConfirmation(ctx context.Context, tokenHash string, now time.Time) (guardianID int64, email string, err error)
}

// ErrEmailChanged is UseEmailConfirmation's answer when the guardian's address is no longer
// the one the confirmation was mailed to: nothing is confirmed. Test for it with errors.Is.
var ErrEmailChanged = Errorf(ECONFLICT, "The e-mail address has changed since this confirmation was sent.")

// TooManyMailsError refuses a confirmation mail because the guardian had too many sent
// lately. Its code is ERATELIMITED.
type TooManyMailsError struct {
	RetryAt time.Time // when the oldest counted confirmation leaves the window
}

func (e *TooManyMailsError) Error() string {
	return "too many confirmation mails; retry at " + e.RetryAt.UTC().Format(time.RFC3339)
}

// Unwrap gives the error its code, so ErrorCode works on it.
func (e *TooManyMailsError) Unwrap() error {
	return Errorf(ERATELIMITED, "Too many confirmation mails.")
}
