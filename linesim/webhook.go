package linesim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Event is a webhook event as LINE sends it. Only the kinds the emulator produces have fields
// here; SendRaw covers anything else.
type Event struct {
	Type            string           `json:"type"`
	Mode            string           `json:"mode"`
	Timestamp       int64            `json:"timestamp"`
	Source          *Source          `json:"source,omitempty"`
	WebhookEventID  string           `json:"webhookEventId"`
	DeliveryContext DeliveryContext  `json:"deliveryContext"`
	ReplyToken      string           `json:"replyToken,omitempty"`
	Message         *MessageContent  `json:"message,omitempty"`
	Follow          *FollowDetail    `json:"follow,omitempty"`
	Postback        *PostbackContent `json:"postback,omitempty"`
	Link            *LinkContent     `json:"link,omitempty"`
}

// Source is the event's sender. Failed accountLink events have none.
type Source struct {
	Type   string `json:"type"` // always "user" here
	UserID string `json:"userId,omitempty"`
}

// DeliveryContext tells a redelivery from the first delivery.
type DeliveryContext struct {
	IsRedelivery bool `json:"isRedelivery"`
}

// MessageContent is the message of a "message" event (text only).
type MessageContent struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Text       string `json:"text"`
	QuoteToken string `json:"quoteToken"`
}

// FollowDetail is the "follow" field of a follow event.
type FollowDetail struct {
	IsUnblocked bool `json:"isUnblocked"`
}

// PostbackContent is the "postback" field of a postback event.
type PostbackContent struct {
	Data   string            `json:"data"`
	Params map[string]string `json:"params,omitempty"`
}

// LinkContent is the "link" field of an accountLink event.
type LinkContent struct {
	Result string `json:"result"` // "ok" or "failed"
	Nonce  string `json:"nonce"`
}

// callbackRequest is the webhook body.
type callbackRequest struct {
	Destination string  `json:"destination"`
	Events      []Event `json:"events"`
}

// Delivery is one webhook body and every attempt to deliver it.
type Delivery struct {
	Events   []Event   // the events as first sent (isRedelivery false unless sent by Redeliver)
	Attempts []Attempt // the first delivery, then each redelivery
}

// OK reports whether the last attempt got a 2xx in time.
func (d Delivery) OK() bool {
	return len(d.Attempts) > 0 && d.Attempts[len(d.Attempts)-1].OK()
}

// Attempt is one POST of a webhook body to the bot.
type Attempt struct {
	At         time.Time     // emulated time of sending
	Body       []byte        // the body exactly as signed and sent
	Signature  string        // the X-Line-Signature sent; empty when the header was left out
	Redelivery bool          // isRedelivery was true in this body
	Status     int           // the bot's status; 0 when no answer came
	Duration   time.Duration // real time until the answer or the failure
	TimedOut   bool          // no answer within the webhook timeout (LINE: request_timeout)
	Err        string        // transport error, if any
}

// OK reports whether the bot answered 2xx within the timeout.
func (a Attempt) OK() bool { return a.Err == "" && a.Status/100 == 2 }

// Signature returns the X-Line-Signature of body: Base64 of HMAC-SHA256 keyed by the secret.
func Signature(channelSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(channelSecret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Deliveries returns every webhook delivery so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = Delivery{Events: slices.Clone(d.Events), Attempts: slices.Clone(d.Attempts)}
	}
	return out
}

// NewEvent returns an event of type typ from userID stamped like LINE's: mode "active", the
// emulated time, a fresh webhookEventId and, when withReplyToken, a live reply token. An empty
// userID leaves out the source. Tests adjust it and pass it to SendEvents.
func (s *Server) NewEvent(typ, userID string, withReplyToken bool) Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newEventLocked(typ, userID, withReplyToken)
}

func (s *Server) newEventLocked(typ, userID string, withReplyToken bool) Event {
	at := s.now()
	ev := Event{Type: typ, Mode: "active", Timestamp: at.UnixMilli(), WebhookEventID: newEventID(at)}
	if userID != "" {
		ev.Source = &Source{Type: "user", UserID: userID}
	}
	if withReplyToken {
		ev.ReplyToken = s.issueReplyTokenLocked(userID, at)
	}
	return ev
}

// SendEvents delivers events in one webhook body, as given.
func (s *Server) SendEvents(ctx context.Context, events ...Event) (Delivery, error) {
	return s.deliverEvents(ctx, events, true)
}

// CheckConnectivity sends LINE's connectivity check, a body with no events.
func (s *Server) CheckConnectivity(ctx context.Context) (Delivery, error) {
	return s.deliverEvents(ctx, []Event{}, false)
}

// SendRaw POSTs body as a webhook, correctly signed, for tests of malformed input.
func (s *Server) SendRaw(ctx context.Context, body []byte) (Delivery, error) {
	return s.SendRawSigned(ctx, body, Signature(s.secret, body))
}

// SendRawSigned POSTs body with the given X-Line-Signature; an empty signature leaves the header
// out. For tests of the bot's signature check.
func (s *Server) SendRawSigned(ctx context.Context, body []byte, signature string) (Delivery, error) {
	url := s.WebhookURL()
	if url == "" {
		return Delivery{}, ErrNoWebhookURL
	}
	d := Delivery{Attempts: []Attempt{s.post(ctx, url, body, signature, false)}}
	return s.finishDelivery(d)
}

// Redeliver sends a past event again, alone, with isRedelivery true and the same webhookEventId
// and reply token; an unused token gets one more minute unless the event is over 20 minutes old.
// Returns ErrUnknownEvent for an ID the emulator never sent.
func (s *Server) Redeliver(ctx context.Context, webhookEventID string) (Delivery, error) {
	s.mu.Lock()
	ev, ok := s.events[webhookEventID]
	s.mu.Unlock()
	if !ok {
		return Delivery{}, ErrUnknownEvent
	}
	ev.DeliveryContext.IsRedelivery = true
	return s.deliverEvents(ctx, []Event{ev}, false)
}

// deliverEvents signs and POSTs the events, redelivering on failure when that is switched on.
func (s *Server) deliverEvents(ctx context.Context, events []Event, redeliver bool) (Delivery, error) {
	url := s.WebhookURL()
	s.mu.Lock()
	for _, ev := range events {
		if ev.DeliveryContext.IsRedelivery {
			s.refreshReplyTokenLocked(ev.ReplyToken)
		}
		ev.DeliveryContext.IsRedelivery = false
		s.events[ev.WebhookEventID] = ev
	}
	s.mu.Unlock()
	d := Delivery{Events: slices.Clone(events)}
	if url == "" {
		return d, ErrNoWebhookURL
	}
	body := mustJSON(callbackRequest{Destination: s.botUserID, Events: events})
	d.Attempts = append(d.Attempts, s.post(ctx, url, body, Signature(s.secret, body), isRedelivery(events)))
	if redeliver && s.opts.Redelivery {
		again := slices.Clone(events)
		for i := range again {
			again[i].DeliveryContext.IsRedelivery = true
		}
		redelivered := mustJSON(callbackRequest{Destination: s.botUserID, Events: again})
		for n := 0; n < s.redeliveryAttempts() && !d.OK() && len(events) > 0; n++ {
			if !sleepCtx(ctx, s.opts.RedeliveryDelay) {
				break
			}
			s.mu.Lock()
			for _, ev := range again {
				s.refreshReplyTokenLocked(ev.ReplyToken)
			}
			s.mu.Unlock()
			d.Attempts = append(d.Attempts, s.post(ctx, url, redelivered, Signature(s.secret, redelivered), true))
		}
	}
	return s.finishDelivery(d)
}

func isRedelivery(events []Event) bool {
	return len(events) > 0 && events[0].DeliveryContext.IsRedelivery
}

func (s *Server) redeliveryAttempts() int {
	if s.opts.RedeliveryAttempts > 0 {
		return s.opts.RedeliveryAttempts
	}
	return 3
}

func (s *Server) finishDelivery(d Delivery) (Delivery, error) {
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	if !d.OK() {
		last := d.Attempts[len(d.Attempts)-1]
		if last.Err != "" {
			return d, fmt.Errorf("%w: %s", ErrDeliveryFailed, last.Err)
		}
		return d, fmt.Errorf("%w: status %d", ErrDeliveryFailed, last.Status)
	}
	return d, nil
}

// post sends one webhook request the way LINE does: JSON with charset, LINE's User-Agent, and
// a 2 s limit for the whole exchange.
func (s *Server) post(ctx context.Context, url string, body []byte, signature string, redelivery bool) Attempt {
	a := Attempt{At: s.now(), Body: body, Signature: signature, Redelivery: redelivery}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		a.Err = err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "LineBotWebhook/2.0")
	if signature != "" {
		req.Header.Set("X-Line-Signature", signature)
	}
	start := time.Now()
	resp, err := s.webhook.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		a.Status = resp.StatusCode
	}
	a.Duration = time.Since(start)
	if err != nil {
		a.Err = err.Error()
		var ne net.Error
		a.TimedOut = errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
	}
	s.log.Info("webhook delivered", "status", a.Status, "is_redelivery", redelivery,
		"duration_ms", a.Duration.Milliseconds(), "timed_out", a.TimedOut)
	return a
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// webhookEndpointRequest is the body of PUT /v2/bot/channel/webhook/endpoint and of the test call.
type webhookEndpointRequest struct {
	Endpoint string `json:"endpoint"`
}

func (s *Server) handleGetWebhookEndpoint(c *call) {
	u := s.WebhookURL()
	c.json(http.StatusOK, map[string]any{"endpoint": u, "active": u != ""})
}

func (s *Server) handleSetWebhookEndpoint(c *call) {
	var req webhookEndpointRequest
	if !c.decode(&req) {
		return
	}
	// LINE insists on https; the emulator also takes http because the bot runs locally.
	if len(req.Endpoint) > 500 || !strings.HasPrefix(req.Endpoint, "https://") && !strings.HasPrefix(req.Endpoint, "http://") {
		c.invalid([]errorDetail{{Message: "must be an HTTPS URL of at most 500 characters", Property: "endpoint"}})
		return
	}
	s.SetWebhookURL(req.Endpoint)
	c.json(http.StatusOK, struct{}{})
}

// handleTestWebhook sends a connectivity check and reports the bot's answer the way LINE's
// "test webhook endpoint" API does.
func (s *Server) handleTestWebhook(c *call) {
	var req webhookEndpointRequest
	if len(bytes.TrimSpace(c.body)) > 0 && !c.decode(&req) {
		return
	}
	url := req.Endpoint
	if url == "" {
		url = s.WebhookURL()
	}
	if url == "" {
		c.fail(http.StatusBadRequest, "The webhook endpoint is not set")
		return
	}
	body := mustJSON(callbackRequest{Destination: s.botUserID, Events: []Event{}})
	a := s.post(c.r.Context(), url, body, Signature(s.secret, body), false)
	reason := "OK"
	switch {
	case a.TimedOut:
		reason = "REQUEST_TIMEOUT"
	case a.Err != "":
		reason = "COULD_NOT_CONNECT"
	case !a.OK():
		reason = "ERROR_STATUS_CODE"
	}
	c.json(http.StatusOK, map[string]any{
		"success": a.OK(), "timestamp": a.At.UTC().Format(time.RFC3339), "statusCode": a.Status,
		"reason": reason, "detail": fmt.Sprint(a.Status),
	})
}
