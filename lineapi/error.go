package lineapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
)

// Error is a failed LINE API call: either LINE answered with a non-2xx status (Status > 0) or
// the request never got an answer (Status 0: timeout, refused connection, cancelled context).
// It carries what a delivery record and an operator need, because LINE keeps no logs for us:
// the request IDs to quote to LINE support, and LINE's own reason for a dead letter.
type Error struct {
	// Status is LINE's HTTP status, or 0 when no response arrived.
	Status int
	// RequestID is LINE's X-Line-Request-Id for this attempt ("" without a response).
	RequestID string
	// AcceptedRequestID is LINE's X-Line-Accepted-Request-Id: the earlier request that used
	// the same retry key, when LINE sends one.
	AcceptedRequestID string
	// Message is LINE's "message" field. It is LINE's reason, safe to store with a dead letter,
	// and the only way to tell the two kinds of 429 apart. It is not part of Error().
	Message string
	// Details is LINE's "details" field, e.g. which property of a message was invalid.
	Details []Detail
	// Retryable reports whether the same request may succeed later: LINE-side failures (5xx),
	// the rate limit, and calls whose answer never arrived whole (timeout, refused connection,
	// cancelled context, a 2xx body cut short). Retrying a push is safe only with the
	// same retry key, which LINE uses to drop the duplicate.
	Retryable bool

	endpoint string // metric endpoint label, e.g. "push"
	err      error  // cause when no usable response arrived; nil for plain status errors
}

// Detail is one entry of the "details" array LINE adds to a 400, naming the offending property.
type Detail struct {
	Message  string
	Property string
}

// LINE's 429 texts. Both kinds share status and headers; only the message tells them apart
// (line-platform.md §4).
const (
	rateLimitText    = "rate limit"    // "The API rate limit has been exceeded. Try again later."
	monthlyLimitText = "monthly limit" // "You have reached your monthly limit."
)

// Error describes the failure without LINE's message, the request body or any token, so it
// can be logged as is.
func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("LINE %s: no response: %s", e.endpoint, causeText(e.err))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "LINE %s: status %d", e.endpoint, e.Status)
	switch {
	case e.MonthlyLimit():
		b.WriteString(" (monthly limit)")
	case e.RateLimited():
		b.WriteString(" (rate limited)")
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, ", request id %s", e.RequestID)
	}
	if e.err != nil {
		fmt.Fprintf(&b, ": %s", causeText(e.err))
	}
	return b.String()
}

// Unwrap returns the transport or decoding error, so errors.Is(err, context.DeadlineExceeded)
// and similar checks keep working through an *Error.
func (e *Error) Unwrap() error { return e.err }

// RateLimited reports whether LINE refused the call for its per-second rate limit: back off and
// retry with the same retry key.
func (e *Error) RateLimited() bool {
	return e.Status == http.StatusTooManyRequests && strings.Contains(strings.ToLower(e.Message), rateLimitText)
}

// MonthlyLimit reports whether the channel has used up its monthly message quota. Retrying does
// not help until the quota changes, so the caller should pause LINE sending and alert rather
// than dead-letter the delivery.
func (e *Error) MonthlyLimit() bool {
	return e.Status == http.StatusTooManyRequests && strings.Contains(strings.ToLower(e.Message), monthlyLimitText)
}

// IsRetryable reports whether err is an *Error that may succeed on a later attempt. Any other
// error (a nil retry key, an invalid user ID, a message the SDK cannot encode) is our own bug
// and will fail the same way again.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// newError turns the outcome of an SDK …WithHttpInfo call that returned err into an *Error.
// It returns err unchanged when the request was never sent (the SDK could not build it).
func newError(endpoint string, res *http.Response, err error) error {
	if res == nil {
		// http.Client.Do returns only *url.Error; anything else failed before sending.
		var ue *url.Error
		if !errors.As(err, &ue) {
			return fmt.Errorf("LINE %s: build request: %w", endpoint, err)
		}
		return &Error{Retryable: true, endpoint: endpoint, err: err}
	}
	r := result(res)
	e := &Error{Status: r.Status, RequestID: r.RequestID, AcceptedRequestID: r.AcceptedRequestID, endpoint: endpoint}
	if res.StatusCode/100 == 2 {
		// LINE accepted the call but the body could not be read or decoded (e.g. the timeout
		// fired while reading it). The calls are idempotent or guarded by a retry key.
		e.Retryable = true
		e.err = err
		return e
	}
	// The SDK has read the error body and put it back into res.Body as a bytes.Reader.
	var body messaging_api.ErrorResponse
	if b, rerr := io.ReadAll(res.Body); rerr == nil && json.Unmarshal(b, &body) == nil {
		e.Message = body.Message
		for _, d := range body.Details {
			e.Details = append(e.Details, Detail{Message: d.Message, Property: d.Property})
		}
	}
	e.Retryable = res.StatusCode >= 500 || (res.StatusCode == http.StatusTooManyRequests && !e.MonthlyLimit())
	return e
}

// causeText is err's text without the request URL a *url.Error adds: the URL can hold a user ID.
func causeText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
