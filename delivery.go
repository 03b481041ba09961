package ecardbot

import (
	"context"
	"time"
)

// Delivery states, in the order a delivery normally passes through them.
const (
	DeliveryPending   = "pending"   // created with its notice; the relay has not queued it yet
	DeliveryQueued    = "queued"    // in the Redis queue
	DeliverySent      = "sent"      // LINE accepted it (200 or 409) or the mail server took it
	DeliveryDead      = "dead"      // given up: DeadReason says why; operators can replay it
	DeliveryCancelled = "cancelled" // must never be sent: the guardianship ended, the address is unconfirmed, or e-mail replaced it
)

// DeliveryDetail is everything a sender needs to write one notice to one guardian.
type DeliveryDetail struct {
	ID         string // UUID fixed at creation: the LINE X-Line-Retry-Key on every attempt
	Channel    Channel
	State      string
	Attempts   int
	CreatedAt  time.Time
	Kind       NoticeKind
	At         time.Time // the tap, or the cutoff for 未到校
	StudentID  int64
	ChildName  string // personal data: never log it
	SchoolName string
	GuardianID int64
	Language   string // LangZhTW or LangEn
	LineUserID string // for ChannelLINE
	Email      string // for ChannelEmail; personal data: never log it
	// Reachable is false when, since the delivery was created, the guardian stopped being
	// reachable on the channel (blocked the bot, unlinked, removed the child, e-mail removed):
	// the sender drops it instead of sending.
	Reachable bool
}

// DeadLetter is a delivery given up on, as operators list it before replaying it.
type DeadLetter struct {
	ID         string
	Channel    Channel
	Attempts   int
	DeadReason string // LINE's message, "unreachable", or "retry window (23 h) exceeded"
	LastError  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// PendingDelivery is a delivery the relay has yet to queue: the channel picks the queue.
type PendingDelivery struct {
	ID      string
	Channel Channel
}

// SentMark is one delivery the channel accepted, with LINE's request ID ("" for e-mail).
type SentMark struct {
	ID            string
	LineRequestID string
}

// DeliveryService moves deliveries through their states for the push relay and workers.
// Every transition is conditional on the state it leaves, so a retried or duplicated task can
// repeat it harmlessly, and a sent delivery never goes back.
type DeliveryService interface {
	// PendingBatch returns up to limit pending deliveries, oldest first.
	PendingBatch(ctx context.Context, limit int) ([]PendingDelivery, error)
	// MarkQueued records that a task holds the pending or queued deliveries among ids: they
	// are queued as of now, which keeps the relay from taking them for lost (ClaimStaleQueued).
	// Others are left alone.
	MarkQueued(ctx context.Context, ids []string) error
	// ClaimStaleQueued returns up to limit deliveries that have been queued, untouched, since
	// before olderThan, and marks them touched now: the relay puts back the task of each one
	// Redis no longer holds (a Redis without persistence restarted, or one that lost its last
	// writes). Each stale delivery is claimed by one caller per period.
	ClaimStaleQueued(ctx context.Context, olderThan time.Time, limit int) ([]PendingDelivery, error)
	// Detail returns what a sender needs, with Reachable computed now. ENOTFOUND when the
	// delivery no longer exists (its guardian was removed).
	Detail(ctx context.Context, id string) (DeliveryDetail, error)
	// Details is Detail for many deliveries at once, in no particular order; those that no
	// longer exist are left out.
	Details(ctx context.Context, ids []string) ([]DeliveryDetail, error)
	// MarkSent records that the channel accepted the delivery.
	MarkSent(ctx context.Context, id, lineRequestID string) error
	// MarkSentBatch is MarkSent for many deliveries in one statement.
	MarkSentBatch(ctx context.Context, marks []SentMark) error
	// MarkRetry counts a failed attempt and keeps its error.
	MarkRetry(ctx context.Context, id, lastError string) error
	// MarkDead gives up on a pending or queued delivery, with the reason operators see.
	MarkDead(ctx context.Context, id, reason string) error
	// MarkCancelled cancels a pending or queued delivery that must never be sent, with the
	// reason operators see. Unlike a dead letter it cannot be replayed.
	MarkCancelled(ctx context.Context, id, reason string) error
	// ReplaceWithEmail hands a pending or queued LINE delivery over to e-mail, for when LINE
	// cannot send (the monthly limit): in one transaction it creates the pending e-mail delivery
	// of the same notice to the same guardian unless one exists, and cancels the LINE delivery,
	// so the guardian gets the notice once, by e-mail. It returns the e-mail delivery's ID and
	// true. It changes nothing and returns false when the LINE delivery is no longer pending or
	// queued, when the guardian has no confirmed address or no longer guards the student, or when
	// the notice's e-mail to them already failed (dead or cancelled): the LINE delivery then
	// waits for LINE. Returns ENOTFOUND for an unknown delivery and EINVALID for one that is not
	// on LINE.
	ReplaceWithEmail(ctx context.Context, lineDeliveryID string) (emailDeliveryID string, replaced bool, err error)
	// ListDead returns up to limit dead letters, newest first.
	ListDead(ctx context.Context, limit int) ([]DeadLetter, error)
	// Replay moves dead deliveries back to pending (attempts kept) and returns how many moved.
	Replay(ctx context.Context, ids []string) (int, error)
}
