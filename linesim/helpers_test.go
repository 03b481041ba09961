package linesim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
)

// fakeClock is a settable clock; tests move it instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 27, 7, 42, 10, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// MustStart starts an emulator with a fake clock on 127.0.0.1:0 and stops it after the test.
func MustStart(tb testing.TB, opts Options) (*Server, string, *fakeClock) {
	tb.Helper()
	clock := newFakeClock()
	if opts.Clock == nil {
		opts.Clock = clock.Now
	}
	s, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s, url, clock
}

// MustClient returns the real SDK client pointed at the emulator (both endpoints).
func MustClient(tb testing.TB, s *Server, url string) (*messaging_api.MessagingApiAPI, *messaging_api.MessagingApiBlobAPI) {
	tb.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	api, err := messaging_api.NewMessagingApiAPI(s.ChannelToken(), messaging_api.WithEndpoint(url), messaging_api.WithHTTPClient(hc))
	if err != nil {
		tb.Fatal(err)
	}
	blob, err := messaging_api.NewMessagingApiBlobAPI(s.ChannelToken(), messaging_api.WithBlobEndpoint(url), messaging_api.WithBlobHTTPClient(hc))
	if err != nil {
		tb.Fatal(err)
	}
	return api, blob
}

// MustFriend adds a user who is already a friend (no webhook needed).
func MustFriend(tb testing.TB, s *Server) string {
	tb.Helper()
	u, err := s.AddUser(User{DisplayName: "王小明", Language: "zh-TW", Friend: true})
	if err != nil {
		tb.Fatal(err)
	}
	return u.ID
}

// botRequest is one webhook request the fake bot received.
type botRequest struct {
	Header http.Header
	Body   []byte
	Parsed *webhook.CallbackRequest // nil when the signature or JSON was bad
}

// fakeBot is a webhook receiver that checks signatures with the SDK, records what it got and
// can react (for example reply through the SDK) and choose its status.
type fakeBot struct {
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	requests []botRequest
	status   []int // statuses to answer in turn; the last repeats; empty means 200
	react    func(cb *webhook.CallbackRequest)
	delay    time.Duration
}

func MustBot(tb testing.TB, s *Server) *fakeBot {
	tb.Helper()
	b := &fakeBot{secret: s.ChannelSecret()}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	tb.Cleanup(b.srv.Close)
	s.SetWebhookURL(b.srv.URL + "/callback")
	return b
}

func (b *fakeBot) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := botRequest{Header: r.Header.Clone(), Body: body}
	status := http.StatusOK
	if webhook.ValidateSignature(b.secret, r.Header.Get("X-Line-Signature"), body) {
		var cb webhook.CallbackRequest
		if err := json.Unmarshal(body, &cb); err == nil {
			req.Parsed = &cb
		}
	}
	if req.Parsed == nil {
		status = http.StatusBadRequest
	}
	b.mu.Lock()
	b.requests = append(b.requests, req)
	if len(b.status) > 0 && req.Parsed != nil {
		status = b.status[0]
		if len(b.status) > 1 {
			b.status = b.status[1:]
		}
	}
	react, delay := b.react, b.delay
	b.mu.Unlock()
	if react != nil && req.Parsed != nil {
		react(req.Parsed)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	w.WriteHeader(status)
}

func (b *fakeBot) Requests() []botRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]botRequest(nil), b.requests...)
}

func (b *fakeBot) SetDelay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delay = d
}

func (b *fakeBot) SetReact(f func(cb *webhook.CallbackRequest)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.react = f
}

func (b *fakeBot) SetStatus(statuses ...int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = statuses
}

// do sends a raw API request to the emulator with the channel token and returns status,
// headers and body.
func do(tb testing.TB, s *Server, url, method, path string, body []byte, header map[string]string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.ChannelToken())
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// errorMessage decodes LINE's error body.
func errorMessage(tb testing.TB, body []byte) messaging_api.ErrorResponse {
	tb.Helper()
	var e messaging_api.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil {
		tb.Fatalf("error body %q: %v", body, err)
	}
	return e
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func textMsg(s string) messaging_api.MessageInterface {
	return messaging_api.TextMessage{Text: s}
}

// decodeJSON decodes a response body (the SDK re-buffers it on errors).
func decodeJSON(res *http.Response, v any) error {
	return json.NewDecoder(res.Body).Decode(v)
}
