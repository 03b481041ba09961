package ecardbot

import (
	"context"
	"time"
)

// Purposes of KeyedHash for the secrets of account linking. The OAuth2 state and the account-link
// nonce are stored only as these hashes, so a copy of the database cannot complete anyone's link.
const (
	PurposeLinkState = "link-state"
	PurposeLinkNonce = "link-nonce"
)

// LinkAttempt is one TaipeiPASS login in progress (design.md §2.2 step 2), stored under the hash
// of its OAuth2 state until the browser comes back or ExpiresAt passes.
type LinkAttempt struct {
	LinkToken string // the LINE link token /link was opened with: a secret, never logged
	Verifier  string // the PKCE code verifier: a secret, never logged
	CreatedAt time.Time
	ExpiresAt time.Time
}

// TaipeiPassAccount is what the service keeps of a TaipeiPASS member after a login: no name, no
// national ID, nothing the service does not need to link the account.
type TaipeiPassAccount struct {
	ID          string // member UUID, the stable key of the account (Guardian.TaipeiPassID)
	VerifyLevel string // "0" for an ordinary member; anything else is gold
	LastLoginAt time.Time
}

// Gold reports whether the account is real-name verified (金質會員), the only kind that may link.
// An empty level is not: a record without it proves nothing.
func (a TaipeiPassAccount) Gold() bool { return a.VerifyLevel != "" && a.VerifyLevel != "0" }

// LinkResult is what binding a TaipeiPASS account to a LINE user changed. The accountLink event
// proves both accounts at once, so the newest link wins (see GuardianService.LinkGuardian).
type LinkResult struct {
	Guardian *Guardian // the guardian now linked
	// MovedFrom is the LINE user the account was linked to until now, "" when it was not linked
	// to another one. That user no longer gets notices and may be told so.
	MovedFrom string
	// Unlinked is the guardian the LINE user was linked to until now, 0 when none. It was
	// unlinked as GuardianService.UnlinkGuardian does.
	Unlinked int64
}

// LinkStore keeps the short-lived state of account linking. The keys are passed in already
// hashed (KeyedHash with PurposeLinkState or PurposeLinkNonce): the OAuth2 state and the
// account-link nonce are never stored, so a copy of the database cannot complete anyone's link.
// A LinkAttempt's LinkToken and Verifier are stored as they are, in plain text: the callback
// needs both in clear (the verifier for the PKCE token exchange, the link token for the URL of
// LINE's account-link dialog), and a hash could give neither back. They live 10 minutes at most
// (linking.DefaultLife; expired rows are purged) and their row is deleted when the callback
// takes it. Taking a row uses it up in one statement, so a state or nonce works once even when
// replicas race for it.
type LinkStore interface {
	// CreateLinkAttempt stores a TaipeiPASS login in progress under the hash of its state, and
	// deletes expired attempts and nonces on the way.
	CreateLinkAttempt(ctx context.Context, stateHash string, a LinkAttempt) error

	// TakeLinkAttempt returns the attempt and deletes it. Returns ENOTFOUND when no attempt has
	// that state, or it was taken already, or it expired at or before now.
	TakeLinkAttempt(ctx context.Context, stateHash string, now time.Time) (LinkAttempt, error)

	// RecordTaipeiPassLogin creates or updates the account as of a. LastLoginAt.
	RecordTaipeiPassLogin(ctx context.Context, a TaipeiPassAccount) error

	// CreateLinkNonce stores the hash of an account-link nonce bound to the TaipeiPASS account,
	// usable until expiresAt. Returns ENOTFOUND for an account never recorded.
	CreateLinkNonce(ctx context.Context, nonceHash, taipeiPassID string, expiresAt time.Time) error

	// CompleteLink uses up the nonce and binds its account to the LINE user, as LinkGuardian
	// does, in one transaction: when binding fails the nonce stays usable. Returns ENOTFOUND
	// when the nonce is unknown, used or expired at now, EINVALID for a malformed LINE user ID.
	CompleteLink(ctx context.Context, nonceHash, lineUserID string, now time.Time) (LinkResult, error)

	// DiscardLinkNonce uses up a nonce without binding, for a failed accountLink event. Returns
	// ENOTFOUND when the nonce is unknown, used or expired at now.
	DiscardLinkNonce(ctx context.Context, nonceHash string, now time.Time) error
}

// AccountLinker links LINE users to TaipeiPASS accounts (design.md §2.2) for the chat. Its web
// side (the /link pages) turns a LINE link token into a nonce; the bot then completes or
// discards the nonce when LINE's accountLink event arrives.
type AccountLinker interface {
	// LinkURL returns the page that starts linking with a LINE link token, on the public URL.
	LinkURL(linkToken string) string

	// Complete binds the TaipeiPASS account of the nonce to the LINE user (the newest link
	// wins). Returns EFORBIDDEN when the nonce is unknown, used or expired.
	Complete(ctx context.Context, lineUserID, nonce string) (LinkResult, error)

	// Discard uses up the nonce of a failed accountLink. Returns EFORBIDDEN when the nonce is
	// unknown, used or expired.
	Discard(ctx context.Context, nonce string) error

	// Unlink ends the LINE user's link (GuardianService.UnlinkGuardian). Returns ENOTFOUND when
	// the user is not linked.
	Unlink(ctx context.Context, lineUserID string) (*Guardian, error)
}
