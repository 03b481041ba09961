package bot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
)

// envelope is the webhook body with its events kept raw, so that one event the SDK cannot
// decode is skipped on its own instead of failing the whole batch.
type envelope struct {
	Destination string            `json:"destination"`
	Events      []json.RawMessage `json:"events"`
}

// header holds the fields every event has, whatever its type, including types the SDK does
// not know yet.
type header struct {
	Type           string `json:"type"`
	Mode           string `json:"mode"`
	Timestamp      int64  `json:"timestamp"`
	WebhookEventID string `json:"webhookEventId"`
	Source         struct {
		UserID string `json:"userId"`
	} `json:"source"`
	DeliveryContext struct {
		IsRedelivery bool `json:"isRedelivery"`
	} `json:"deliveryContext"`
}

// event is one decoded webhook event.
type event struct {
	header
	raw   json.RawMessage
	typed webhook.EventInterface
}

func (e *event) time() time.Time { return time.UnixMilli(e.Timestamp) }

// standby events come to a channel that is not the active one of a chat: the bot keeps its
// records but must stay silent.
func (e *event) standby() bool { return e.Mode == string(webhook.EventMode_STANDBY) }

// callback is the webhook: cap the body, verify the signature on the raw bytes, then hand the
// events over and answer 200 within LINE's 2 s. A failing event is logged, never returned: a
// non-2xx makes LINE count a delivery failure and, with redelivery on, resend the whole batch.
func (b *Bot) callback(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, b.cfg.MaxBodyBytes))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		b.refuse(c, http.StatusRequestEntityTooLarge, "too_large", "Request body too large.")
		return
	case err != nil:
		b.refuse(c, http.StatusBadRequest, "malformed", "Request body could not be read.")
		return
	case !webhook.ValidateSignature(b.cfg.ChannelSecret, c.GetHeader("X-Line-Signature"), body):
		b.refuse(c, http.StatusBadRequest, "bad_signature", "Invalid signature.")
		return
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Events == nil {
		// Never log err: json's errors quote the body, which holds message text.
		b.refuse(c, http.StatusBadRequest, "malformed", "Malformed webhook body.")
		return
	}
	b.metrics.requests.WithLabelValues("ok").Inc()
	b.dispatch(c.Request.Context(), b.decode(env.Events))
	c.JSON(http.StatusOK, gin.H{})
}

func (b *Bot) refuse(c *gin.Context, status int, result, message string) {
	b.metrics.requests.WithLabelValues(result).Inc()
	b.log.Info("webhook refused", "result", result, "status", status, "client_ip", c.ClientIP())
	c.AbortWithStatusJSON(status, gin.H{"error": message})
}

// decode keeps every event that has an ID; anything else is logged and dropped.
func (b *Bot) decode(raws []json.RawMessage) []*event {
	events := make([]*event, 0, len(raws))
	for i, raw := range raws {
		e := &event{raw: raw}
		if err := json.Unmarshal(raw, &e.header); err != nil || e.WebhookEventID == "" || e.Type == "" {
			b.metrics.events.WithLabelValues("malformed", "ignored").Inc()
			b.log.Warn("webhook event ignored: no type or webhookEventId", "index", i)
			continue
		}
		typed, err := webhook.UnmarshalEvent(raw)
		if err != nil {
			b.metrics.events.WithLabelValues(metricType(e.Type), "ignored").Inc()
			b.eventLog(e).Warn("webhook event ignored: undecodable")
			continue
		}
		e.typed = typed
		events = append(events, e)
	}
	return events
}

// dispatch handles each user's events in timestamp order, users side by side, and returns when
// all are done or AnswerWithin has passed; the rest finish in the background (see Drain).
func (b *Bot) dispatch(ctx context.Context, events []*event) {
	if len(events) == 0 {
		return
	}
	groups := map[string][]*event{}
	var order []string
	for _, e := range events {
		key := e.Source.UserID
		if key == "" {
			key = "event:" + e.WebhookEventID // no source, e.g. a failed accountLink
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], e)
	}

	ctx = context.WithoutCancel(ctx) // LINE hanging up must not abort a half-done event
	done := make(chan struct{}, len(order))
	for _, key := range order {
		group := groups[key]
		slices.SortStableFunc(group, func(x, y *event) int { return cmp.Compare(x.Timestamp, y.Timestamp) })
		b.inflight.Add(1)
		go func() {
			defer b.inflight.Done()
			for _, e := range group {
				b.handleOnce(ctx, e)
			}
			done <- struct{}{}
		}()
	}
	timer := time.NewTimer(b.cfg.AnswerWithin)
	defer timer.Stop()
	for range order {
		select {
		case <-done:
		case <-timer.C:
			b.log.Warn("webhook answered before all events were handled", "events", len(events))
			return
		}
	}
}

// handleOnce claims the event so that duplicates and redeliveries act once, handles it, and
// gives the claim back when handling failed so a later delivery can try again.
func (b *Bot) handleOnce(ctx context.Context, e *event) {
	log := b.eventLog(e)
	ctx, cancel := context.WithTimeout(ctx, b.cfg.EventTimeout)
	defer cancel()
	start := time.Now()

	first, err := b.claims.Claim(ctx, e.WebhookEventID)
	switch {
	case err != nil:
		// Redis is away. Handling anyway loses nothing: state changes are idempotent and a
		// duplicate reply is refused by LINE, as a reply token works only once.
		log.Warn("webhook event claim unavailable; handling without dedupe", "error", err)
	case !first:
		b.metrics.events.WithLabelValues(metricType(e.Type), "duplicate").Inc()
		log.Debug("webhook event already handled")
		return
	}

	handled, err := b.handle(ctx, e)
	b.metrics.duration.Observe(time.Since(start).Seconds())
	outcome := "handled"
	switch {
	case err != nil:
		outcome = "failed"
		log.Error("webhook event failed", "error", err)
		if err := b.claims.Release(ctx, e.WebhookEventID); err != nil {
			log.Warn("webhook event claim not released", "error", err)
		}
	case !handled:
		outcome = "ignored"
		log.Debug("webhook event ignored")
	}
	b.metrics.events.WithLabelValues(metricType(e.Type), outcome).Inc()
}

func (b *Bot) eventLog(e *event) *slog.Logger {
	return b.log.With("webhook_event_id", e.WebhookEventID, "event_type", e.Type,
		"is_redelivery", e.DeliveryContext.IsRedelivery)
}

// metricType keeps the label set bounded whatever types LINE invents.
func metricType(t string) string {
	switch t {
	case "follow", "unfollow", "message", "postback", "accountLink", "malformed":
		return t
	}
	return "other"
}
