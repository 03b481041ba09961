package ecardbot

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Guardian is a parent or other guardian, known by their TaipeiPASS (臺北通) account. The LINE
// binding comes from account linking (design.md §2.2) or from the old portal's subscribers
// import (§3.5).
type Guardian struct {
	ID           int64
	TaipeiPassID string // the TaipeiPASS member UUID, the stable key of the account
	LineUserID   string // "" when the account is not linked to a LINE user
	// Email is where e-mail notices go, "" when none. Notices are mailed only once the address
	// is confirmed (EmailConfirmedAt set): an unconfirmed address may be someone else's.
	Email            string
	EmailConfirmedAt *time.Time
	Language         string // LangZhTW or LangEn
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Subscription is one notice kind a guardian wants for one of their students on one channel.
type Subscription struct {
	StudentID int64
	Kind      NoticeKind
	Channel   Channel
}

// SubscriberEntry is one line of a subscribers file from the old portal (design.md §3.5): a
// linked guardian, one of their students and the notices they get. The kinds are wanted on
// LINE, and on e-mail too when Email is set.
type SubscriberEntry struct {
	Line         int // line number in the file, for errors
	LineUserID   string
	TaipeiPassID string
	SchoolCode   string
	StudentNo    string
	Kinds        []NoticeKind // may be empty: the guardian stays linked to the pupil, without notices
	Email        string       // "" for no e-mail notices
}

// SubscriberImportOptions change how ImportSubscribers treats a file.
type SubscriberImportOptions struct {
	// EmailConfirmed makes the imported addresses count as confirmed, so e-mail notices go out
	// at once. The old portal was already mailing them; without it every migrated parent would
	// stop getting e-mail until they confirmed the address again.
	EmailConfirmed bool
	// DryRun checks and applies the file inside a transaction that is then rolled back: the
	// result says what an import would change, and nothing is stored.
	DryRun bool
}

// SubscriberImportResult counts what a subscribers import changed.
type SubscriberImportResult struct {
	GuardiansCreated     int
	GuardiansUpdated     int // linked to the LINE user, or given the file's e-mail address
	LineUsersCreated     int // LINE users not seen before, recorded as following
	GuardianshipsCreated int
	SubscriptionsAdded   int
	SubscriptionsRemoved int // of the file's guardian and student pairs, those the file no longer lists
}

// EntryError is what is wrong with one entry of an import, by the line of its file.
type EntryError struct {
	Line    int
	Code    string // EINVALID, ENOTFOUND or ECONFLICT
	Message string
}

// Error returns "line N: message".
func (e EntryError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

// MaxEntryErrors is how many entries an ImportError lists; Total counts them all.
const MaxEntryErrors = 50

// ImportError is an import that was refused because of some of its entries: nothing of it was
// applied. It lists every bad entry (up to MaxEntryErrors) so one run tells the operator all
// there is to fix.
type ImportError struct {
	Entries []EntryError // in line order
	Total   int          // bad entries, including those not listed
}

// Error sums the import up on one line; Entries has the detail.
func (e *ImportError) Error() string {
	if len(e.Entries) == 0 {
		return "bad entries"
	}
	if e.Total == 1 {
		return e.Entries[0].Error()
	}
	return fmt.Sprintf("%d bad lines, the first: %s", e.Total, e.Entries[0].Error())
}

// Unwrap gives the error the code of its first entry, so ErrorCode and ErrorMessage work on it.
func (e *ImportError) Unwrap() error {
	code := EINVALID
	if len(e.Entries) > 0 {
		code = e.Entries[0].Code
	}
	return Errorf(code, "%s", e.Error())
}

// GuardianService keeps guardians, the students they proved to be guardians of (歸戶) and the
// notices they subscribed to. The settings pages and the subscribers import share it, so the
// rules (one LINE user per account and the other way round, subscriptions only for one's own
// students) live in one place. The gate fan-out reads what it stores.
type GuardianService interface {
	// LinkGuardian binds the TaipeiPASS account to the LINE user, creating the guardian when the
	// account is new; linking again to the same user changes nothing. Only LINE's accountLink
	// event calls it, and that event proves both accounts, so the newest link wins, in one
	// transaction: an account linked to another LINE user moves to this one with its children
	// and subscriptions (the same parent on a new phone) but not with its settings sessions and
	// settings links, which end, and a LINE user linked to another account is first unlinked
	// from it as UnlinkGuardian does. The result says what moved.
	// Returns EINVALID for a malformed LINE user ID or an empty account.
	LinkGuardian(ctx context.Context, taipeiPassID, lineUserID string) (LinkResult, error)

	// UnlinkGuardian ends the LINE user's link at once: the binding, every subscription and
	// every settings session and settings link go, and deliveries to the guardian that are not
	// sent yet are cancelled. The guardianships stay, so linking the same TaipeiPASS account
	// again brings the children back (their notices must be chosen again). Returns the guardian
	// as it is now, or ENOTFOUND when the user is not linked.
	UnlinkGuardian(ctx context.Context, lineUserID string) (*Guardian, error)

	// FindGuardianByLineUser returns the guardian linked to the LINE user. Returns ENOTFOUND
	// when the user is not linked.
	FindGuardianByLineUser(ctx context.Context, lineUserID string) (*Guardian, error)

	// AddGuardianship records that the guardian is a guardian of the student; adding it again
	// changes nothing. Returns ENOTFOUND for an unknown guardian or a student who is not on an
	// active roster.
	AddGuardianship(ctx context.Context, guardianID, studentID int64) error

	// RemoveGuardianship ends the guardian's tie to the student at once: the subscriptions go,
	// and deliveries of the student's notices to the guardian that are still pending are
	// cancelled, so nothing more about the child reaches them. Returns ENOTFOUND when the
	// guardian is not a guardian of the student.
	RemoveGuardianship(ctx context.Context, guardianID, studentID int64) error

	// SetEmail sets the guardian's e-mail address, confirmed or not; "" removes it. Returns
	// EINVALID for a malformed address and ENOTFOUND for an unknown guardian.
	SetEmail(ctx context.Context, guardianID int64, email string, confirmed bool) error

	// Subscriptions returns the guardian's subscriptions ordered by student, kind and channel.
	Subscriptions(ctx context.Context, guardianID int64) ([]Subscription, error)

	// SetSubscriptions makes subs the guardian's complete set of subscriptions for the student.
	// Every element must name that student. Returns EINVALID for another student, an unknown
	// kind or channel, and ENOTFOUND when the guardian is not a guardian of the student.
	SetSubscriptions(ctx context.Context, guardianID, studentID int64, subs []Subscription) error

	// ImportSubscribers applies a subscribers file in one transaction: guardians are created or
	// linked, their LINE users recorded as following unless already known, each entry's student
	// added to the guardian, and the subscriptions of every (guardian, student) pair of the file
	// made exactly those of the file. Importing the same file again changes nothing.
	//
	// Entries that cannot be applied fail the whole import with an *ImportError listing each of
	// them: EINVALID for a malformed entry or one that repeats or contradicts another line,
	// ENOTFOUND for a student not on the active roster of the school, ECONFLICT for a LINE user
	// or TaipeiPASS account already linked to another.
	ImportSubscribers(ctx context.Context, entries []SubscriberEntry, opts SubscriberImportOptions) (SubscriberImportResult, error)
}

// ValidLineUserID reports whether id has the form of a LINE user ID: "U" and 32 lower-case
// hexadecimal digits. LINE compares IDs exactly, so an upper-cased one would never match.
func ValidLineUserID(id string) bool {
	if len(id) != 33 || id[0] != 'U' {
		return false
	}
	for _, c := range id[1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MaxEmailLen is the longest address RFC 5321 lets through an SMTP server.
const MaxEmailLen = 254

// ValidateEmail checks that s is one bare e-mail address (local@domain, no display name, no
// angle brackets) and returns it trimmed. Returns EINVALID otherwise; the message never quotes
// the address.
func ValidateEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	invalid := Errorf(EINVALID, "E-mail address is not valid: write it as name@example.com.")
	if s == "" || utf8.RuneCountInString(s) > MaxEmailLen {
		return "", invalid
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", invalid
	}
	// net/mail accepts a domain without a dot ("a@localhost"), which no parent has.
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", invalid
	}
	return s, nil
}

// ValidKind reports whether k is one of NoticeKinds.
func ValidKind(k NoticeKind) bool {
	return k == KindArrived || k == KindLeft || k == KindAbsent
}

// ValidChannel reports whether c is ChannelLINE or ChannelEmail.
func ValidChannel(c Channel) bool {
	return c == ChannelLINE || c == ChannelEmail
}
