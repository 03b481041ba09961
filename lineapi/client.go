// Package lineapi is the one adapter over the LINE Messaging API client of line-bot-sdk-go.
// No other package imports the SDK client: this one fixes its traps in one place.
//
//   - The SDK's WithContext mutates the shared client, so concurrent calls would swap contexts.
//     Every call here runs on its own copy of the client with the caller's context.
//   - The SDK's default HTTP client has no timeout; Client owns one that has.
//   - The SDK's errors are untyped strings that embed the response body. Every call here uses
//     the …WithHttpInfo variant and returns an *Error with LINE's status, request IDs and
//     reason, classified as retryable or permanent.
package lineapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Client. The zero value, apart from ChannelToken, talks to LINE's
// production endpoints with a 10 s timeout and no metrics.
type Config struct {
	// ChannelToken is the channel access token. Required. It is a secret: never log it.
	ChannelToken string
	// APIURL is the base URL of the Messaging API. Empty means https://api.line.me. Tests and
	// the sandbox point it at the LINE emulator; a path prefix is kept.
	APIURL string
	// Timeout bounds each call, including reading the response body, whatever the caller's
	// context allows. Zero means 10 s.
	Timeout time.Duration
	// Registerer receives the client's metrics. Nil means no metrics.
	Registerer prometheus.Registerer
}

// Client calls the LINE Messaging API. It is safe for concurrent use: the SDK clients it holds
// are never modified after New.
type Client struct {
	api     *messaging_api.MessagingApiAPI
	metrics *metrics
}

// Result is LINE's answer to an accepted send. LINE keeps no logs for us, so the caller stores
// RequestID with the delivery: it is what LINE support asks for.
type Result struct {
	// Status is 200, or 409 for a push whose retry key LINE had already accepted.
	Status int
	// RequestID is LINE's X-Line-Request-Id of this attempt.
	RequestID string
	// AcceptedRequestID is LINE's X-Line-Accepted-Request-Id: on a duplicate push, the request
	// ID of the attempt that actually delivered the message.
	AcceptedRequestID string
	// Duplicate reports a 409: an earlier attempt with the same retry key was accepted, so the
	// message was delivered once and this attempt sent nothing.
	Duplicate bool
}

// Profile is the part of a LINE user's profile the service uses. DisplayName is personal data:
// never log it.
type Profile struct {
	UserID      string
	DisplayName string
	// Language is the user's BCP 47 language tag, "" until the user accepts LINE's privacy
	// policy. ecardbot.LanguageOf maps it to a language the service speaks.
	Language string
}

// Quota is the channel's monthly message target, for operators and quota alerts.
type Quota struct {
	// Limited is false when LINE sets no target (type "none").
	Limited bool
	// Value is the number of messages the channel may send this month when Limited.
	Value int64
}

const defaultTimeout = 10 * time.Second

// New returns a Client for cfg. It returns an error when the channel token is missing, a URL
// does not parse, or the metrics cannot be registered.
func New(cfg Config) (*Client, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("new LINE client: negative timeout %s", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	// Pushes run at up to 2,000 requests/s to one host: keep enough idle connections that a
	// burst does not open (and TLS-handshake) a new connection per request.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 512
	transport.MaxIdleConnsPerHost = 256
	hc := &http.Client{Transport: transport, Timeout: cfg.Timeout}

	apiOpts := []messaging_api.MessagingApiAPIOption{messaging_api.WithHTTPClient(hc)}
	if cfg.APIURL != "" {
		apiOpts = append(apiOpts, messaging_api.WithEndpoint(cfg.APIURL))
	}
	api, err := messaging_api.NewMessagingApiAPI(cfg.ChannelToken, apiOpts...)
	if err != nil {
		return nil, fmt.Errorf("new LINE client: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new LINE client: %w", err)
	}
	return &Client{api: api, metrics: m}, nil
}

// Reply answers a webhook event with up to 5 messages. Replies are free but the token works
// once, within a minute: a retryable error is worth retrying only right away.
func (c *Client) Reply(ctx context.Context, replyToken string, msgs []messaging_api.MessageInterface) (Result, error) {
	res, _, err := call(ctx, c, "reply", func(api *messaging_api.MessagingApiAPI) (*http.Response, *messaging_api.ReplyMessageResponse, error) {
		return api.ReplyMessageWithHttpInfo(&messaging_api.ReplyMessageRequest{ReplyToken: replyToken, Messages: msgs})
	})
	if err != nil {
		return Result{}, err
	}
	return result(res), nil
}

// Push sends up to 5 messages to one user. retryKey must stay the same for every attempt of one
// delivery, from the first: LINE remembers it for 24 h and answers a repeat with 409 instead of
// sending again, so a retry after a timeout never doubles a message. A 409 is therefore not an
// error but a Result with Duplicate set. The SDK sends its retry-key header even when empty,
// so uuid.Nil is refused before anything is sent.
func (c *Client) Push(ctx context.Context, retryKey uuid.UUID, to string, msgs []messaging_api.MessageInterface) (Result, error) {
	if retryKey == uuid.Nil {
		return Result{}, errors.New("LINE push: nil retry key")
	}
	res, _, err := call(ctx, c, "push", func(api *messaging_api.MessagingApiAPI) (*http.Response, *messaging_api.PushMessageResponse, error) {
		return api.PushMessageWithHttpInfo(&messaging_api.PushMessageRequest{To: to, Messages: msgs}, retryKey.String())
	})
	if res != nil && res.StatusCode == http.StatusConflict {
		r := result(res)
		r.Duplicate = true
		return r, nil
	}
	if err != nil {
		return Result{}, err
	}
	return result(res), nil
}

// Profile returns the user's profile. LINE answers 404 (a permanent *Error) for a user who
// blocked the bot or never followed it.
func (c *Client) Profile(ctx context.Context, userID string) (Profile, error) {
	if err := checkUserID(userID); err != nil {
		return Profile{}, fmt.Errorf("LINE profile: %w", err)
	}
	_, p, err := call(ctx, c, "profile", func(api *messaging_api.MessagingApiAPI) (*http.Response, *messaging_api.UserProfileResponse, error) {
		return api.GetProfileWithHttpInfo(userID)
	})
	if err != nil {
		return Profile{}, err
	}
	return Profile{UserID: p.UserId, DisplayName: p.DisplayName, Language: p.Language}, nil
}

// IssueLinkToken issues the token that starts account linking for a user who follows the bot.
// The token is single use, valid 10 minutes, and a secret: never log it.
func (c *Client) IssueLinkToken(ctx context.Context, userID string) (string, error) {
	if err := checkUserID(userID); err != nil {
		return "", fmt.Errorf("LINE link token: %w", err)
	}
	_, t, err := call(ctx, c, "link_token", func(api *messaging_api.MessagingApiAPI) (*http.Response, *messaging_api.IssueLinkTokenResponse, error) {
		return api.IssueLinkTokenWithHttpInfo(userID)
	})
	if err != nil {
		return "", err
	}
	return t.LinkToken, nil
}

// Quota returns the channel's monthly message target, so operators can see how close pushes
// are to the monthly limit before LINE starts refusing them.
func (c *Client) Quota(ctx context.Context) (Quota, error) {
	_, q, err := call(ctx, c, "quota", (*messaging_api.MessagingApiAPI).GetMessageQuotaWithHttpInfo)
	if err != nil {
		return Quota{}, err
	}
	return Quota{Limited: q.Type == messaging_api.QuotaType_LIMITED, Value: q.Value}, nil
}

// QuotaConsumption returns LINE's approximate count of messages sent this month, including
// those sent from LINE Official Account Manager, to compare with Quota.
func (c *Client) QuotaConsumption(ctx context.Context) (int64, error) {
	_, q, err := call(ctx, c, "quota_consumption", (*messaging_api.MessagingApiAPI).GetMessageQuotaConsumptionWithHttpInfo)
	if err != nil {
		return 0, err
	}
	return q.TotalUsage, nil
}

// call runs one SDK …WithHttpInfo call with ctx and records its metrics. The SDK client is
// copied per call because its WithContext writes to the client it is called on: on the shared
// client, concurrent calls would race and run under each other's contexts. The copy shares
// only the *http.Client and the parsed endpoint, which the SDK reads and never writes.
// endpoint is a fixed label ("push"), never a URL: URLs hold user IDs.
func call[T any](ctx context.Context, c *Client, endpoint string, f func(*messaging_api.MessagingApiAPI) (*http.Response, T, error)) (*http.Response, T, error) {
	api := *c.api
	api.WithContext(ctx)
	start := time.Now()
	res, body, err := f(&api)
	c.metrics.observe(endpoint, res, time.Since(start))
	if err != nil {
		return res, body, newError(endpoint, res, err)
	}
	return res, body, nil
}

func result(res *http.Response) Result {
	return Result{
		Status:            res.StatusCode,
		RequestID:         res.Header.Get("X-Line-Request-Id"),
		AcceptedRequestID: res.Header.Get("X-Line-Accepted-Request-Id"),
	}
}

// checkUserID refuses user IDs that are not plain letters and digits. The SDK pastes the ID
// into the URL path unescaped, so "../message/quota" or "x?y" would call another endpoint.
// LINE user IDs are "U" followed by 32 hex digits.
func checkUserID(id string) error {
	if id == "" {
		return errors.New("empty user ID")
	}
	for _, r := range id {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return errors.New("user ID has characters other than letters and digits")
		}
	}
	return nil
}
