package kv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
)

// DefaultClaimTTL is how long a claimed webhook event ID is remembered when NewEventClaims gets
// zero: long enough to outlast LINE's redeliveries of an event, short enough that the keys clean
// themselves up.
const DefaultClaimTTL = 48 * time.Hour

// EventClaims makes each LINE webhook event act once across all replicas: the first Claim of an
// ID sets a Redis key with SET NX, so every later delivery of the same event, on any replica,
// finds it taken.
type EventClaims struct {
	c   *Client
	ttl time.Duration
}

var _ ecardbot.EventClaimer = (*EventClaims)(nil)

// NewEventClaims returns claims stored under c's prefix for ttl (DefaultClaimTTL when zero).
func NewEventClaims(c *Client, ttl time.Duration) *EventClaims {
	if ttl <= 0 {
		ttl = DefaultClaimTTL
	}
	return &EventClaims{c: c, ttl: ttl}
}

func (e *EventClaims) key(id string) string { return e.c.Key("webhook-event", id) }

// Claim reports whether the caller is the first to claim webhookEventID. On error it reports
// false: the caller cannot know, and must not act as if it had the claim. Returns EINVALID for
// an empty ID.
func (e *EventClaims) Claim(ctx context.Context, webhookEventID string) (bool, error) {
	if webhookEventID == "" {
		return false, ecardbot.Errorf(ecardbot.EINVALID, "Missing webhook event ID.")
	}
	err := e.c.rdb.SetArgs(ctx, e.key(webhookEventID), time.Now().UTC().Format(time.RFC3339),
		redis.SetArgs{Mode: "NX", TTL: e.ttl}).Err()
	switch {
	case errors.Is(err, redis.Nil): // NX refused: someone claimed it first
		return false, nil
	case err != nil:
		return false, fmt.Errorf("claim webhook event: %w", err)
	}
	return true, nil
}

// Release gives up a claim whose handling failed, so LINE's redelivery can act on the event.
// Releasing an unclaimed ID is not an error.
func (e *EventClaims) Release(ctx context.Context, webhookEventID string) error {
	if webhookEventID == "" {
		return ecardbot.Errorf(ecardbot.EINVALID, "Missing webhook event ID.")
	}
	if err := e.c.rdb.Del(ctx, e.key(webhookEventID)).Err(); err != nil {
		return fmt.Errorf("release webhook event: %w", err)
	}
	return nil
}
