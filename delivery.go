package ecardbot

import (
	"time"
)

// Delivery states, in the order a delivery normally passes through them.
const (
	DeliveryPending   = "pending"   // created with its notice; the relay has not queued it yet
	DeliveryQueued    = "queued"    // in the Redis queue
	DeliverySent      = "sent"      // LINE accepted it (200 or 409) or the mail server took it
	DeliveryDead      = "dead"      // given up: DeadReason says why; operators can replay it
	DeliveryCancelled = "cancelled" // must never be sent: the guardianship ended first
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
