package lineapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/taipei-doit/ecardbot/lineapi"
)

const (
	userID    = "U4af4980629a1b2c3d4e5f60718293a4b"
	requestID = "f70dd685-499a-4231-a441-f24b8d4fba21"
	acceptID  = "a8b7c3f1-0b2c-4d5e-8f90-123456789abc"
	// secretText stands for what a parent reads: it must never show up in an error.
	secretText = "Wang Xiaoming arrived at school 07:42"
)

var (
	retryKey = uuid.MustParse("123e4567-e89b-12d3-a456-426614174000")
	msgs     = []messaging_api.MessageInterface{messaging_api.TextMessage{Text: secretText}}
)

func TestPush(t *testing.T) {
	fake := MustFakeLINEAlways(t, lineResponse{
		status:  http.StatusOK,
		headers: map[string]string{"x-line-request-id": requestID},
		body:    `{"sentMessages":[{"id":"461230966842064897","quoteToken":"IStG5h1Tz7b..."}]}`,
	})
	c := MustClient(t, fake.URL, 0)

	got, err := c.Push(context.Background(), retryKey, userID, msgs)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if diff := cmp.Diff(lineapi.Result{Status: 200, RequestID: requestID}, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}

	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if req.method != http.MethodPost || req.path != "/v2/bot/message/push" {
		t.Errorf("request %s %s, want POST /v2/bot/message/push", req.method, req.path)
	}
	if req.auth != "Bearer "+channelToken {
		t.Errorf("Authorization %q, want the channel token", req.auth)
	}
	if !req.hasRetryKey || req.retryKey != retryKey.String() {
		t.Errorf("X-Line-Retry-Key %q (present %v), want %q", req.retryKey, req.hasRetryKey, retryKey)
	}
	var body struct {
		To       string `json:"to"`
		Messages []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(req.body), &body); err != nil {
		t.Fatalf("decode request body: %v", err)
	}
	if body.To != userID || len(body.Messages) != 1 || body.Messages[0].Type != "text" || body.Messages[0].Text != secretText {
		t.Errorf("request body %s, want one text message to %s", req.body, userID)
	}
}

func TestPush_nilRetryKey(t *testing.T) {
	fake := MustFakeLINEAlways(t, lineResponse{status: http.StatusOK, body: `{"sentMessages":[]}`})
	c := MustClient(t, fake.URL, 0)

	_, err := c.Push(context.Background(), uuid.Nil, userID, msgs)
	if err == nil {
		t.Fatal("push with uuid.Nil: got no error")
	}
	if lineapi.IsRetryable(err) {
		t.Errorf("nil retry key error %q is retryable; retrying cannot fix it", err)
	}
	if n := len(fake.requests()); n != 0 {
		t.Errorf("%d requests reached LINE, want 0", n)
	}
}

// TestPush_responses reproduces LINE's answers to a push (line-platform.md §4).
func TestPush_responses(t *testing.T) {
	lineHeaders := map[string]string{"x-line-request-id": requestID}
	tests := []struct {
		name         string
		resp         lineResponse
		want         lineapi.Result // when wantErr is nil
		wantErr      *lineapi.Error
		rateLimited  bool
		monthlyLimit bool
	}{
		{
			name: "409 retry key already accepted is a duplicate, not an error",
			resp: lineResponse{
				status:  http.StatusConflict,
				headers: map[string]string{"x-line-request-id": requestID, "x-line-accepted-request-id": acceptID},
				body:    `{"message":"The retry key is already accepted","sentMessages":[{"id":"461230966842064897","quoteToken":"IStG5h1Tz7b..."}]}`,
			},
			want: lineapi.Result{Status: 409, RequestID: requestID, AcceptedRequestID: acceptID, Duplicate: true},
		},
		{
			name:        "429 rate limit is retryable",
			resp:        lineResponse{status: 429, headers: lineHeaders, body: `{"message":"The API rate limit has been exceeded. Try again later."}`},
			wantErr:     &lineapi.Error{Status: 429, RequestID: requestID, Message: "The API rate limit has been exceeded. Try again later.", Retryable: true},
			rateLimited: true,
		},
		{
			name:         "429 monthly limit is not retryable",
			resp:         lineResponse{status: 429, headers: lineHeaders, body: `{"message":"You have reached your monthly limit."}`},
			wantErr:      &lineapi.Error{Status: 429, RequestID: requestID, Message: "You have reached your monthly limit.", Retryable: false},
			monthlyLimit: true,
		},
		{
			name:    "429 with undocumented text is treated as a rate limit",
			resp:    lineResponse{status: 429, headers: lineHeaders, body: `{"message":"Too many requests to the same user"}`},
			wantErr: &lineapi.Error{Status: 429, RequestID: requestID, Message: "Too many requests to the same user", Retryable: true},
		},
		{
			name:    "500 is retryable",
			resp:    lineResponse{status: 500, headers: lineHeaders, body: `{"message":"Internal server error"}`},
			wantErr: &lineapi.Error{Status: 500, RequestID: requestID, Message: "Internal server error", Retryable: true},
		},
		{
			name:    "502 HTML from a proxy is retryable",
			resp:    lineResponse{status: 502, headers: map[string]string{"content-type": "text/html"}, body: `<html><body>Bad Gateway</body></html>`},
			wantErr: &lineapi.Error{Status: 502, Retryable: true},
		},
		{
			name: "400 with details is permanent",
			resp: lineResponse{status: 400, headers: lineHeaders, body: `{"message":"The request body has 2 error(s)","details":[` +
				`{"message":"May not be empty","property":"messages[0].text"},` +
				`{"message":"Must be one of the following values: [text, image, video, audio, location, sticker, template, imagemap]","property":"messages[1].type"}]}`},
			wantErr: &lineapi.Error{Status: 400, RequestID: requestID, Message: "The request body has 2 error(s)", Details: []lineapi.Detail{
				{Message: "May not be empty", Property: "messages[0].text"},
				{Message: "Must be one of the following values: [text, image, video, audio, location, sticker, template, imagemap]", Property: "messages[1].type"},
			}},
		},
		{
			name:    "401 bad channel token is permanent",
			resp:    lineResponse{status: 401, headers: lineHeaders, body: `{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}`},
			wantErr: &lineapi.Error{Status: 401, RequestID: requestID, Message: "Authentication failed. Confirm that the access token in the authorization header is valid."},
		},
		{
			name:    "403 API not allowed is permanent",
			resp:    lineResponse{status: 403, headers: lineHeaders, body: `{"message":"Access to this API is not available for your account"}`},
			wantErr: &lineapi.Error{Status: 403, RequestID: requestID, Message: "Access to this API is not available for your account"},
		},
		{
			name:    "413 body too large is permanent",
			resp:    lineResponse{status: 413, headers: lineHeaders, body: `{"message":"Request entity too large"}`},
			wantErr: &lineapi.Error{Status: 413, RequestID: requestID, Message: "Request entity too large"},
		},
		{
			name:    "415 bad media type is permanent",
			resp:    lineResponse{status: 415, headers: lineHeaders, body: `{"message":"Unsupported media type"}`},
			wantErr: &lineapi.Error{Status: 415, RequestID: requestID, Message: "Unsupported media type"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := MustFakeLINEAlways(t, tt.resp)
			c := MustClient(t, fake.URL, 0)

			got, err := c.Push(context.Background(), retryKey, userID, msgs)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("push: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				return
			}
			var e *lineapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("push: got error %v (%T), want *lineapi.Error", err, err)
			}
			if diff := cmp.Diff(tt.wantErr, e, cmpopts.IgnoreUnexported(lineapi.Error{})); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if got := e.RateLimited(); got != tt.rateLimited {
				t.Errorf("RateLimited() = %v, want %v", got, tt.rateLimited)
			}
			if got := e.MonthlyLimit(); got != tt.monthlyLimit {
				t.Errorf("MonthlyLimit() = %v, want %v", got, tt.monthlyLimit)
			}
			if got := lineapi.IsRetryable(err); got != tt.wantErr.Retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.wantErr.Retryable)
			}
			text := err.Error()
			if !strings.Contains(text, fmt.Sprint(tt.wantErr.Status)) || !strings.Contains(text, tt.wantErr.RequestID) {
				t.Errorf("Error() = %q, want status %d and request id %q in it", text, tt.wantErr.Status, tt.wantErr.RequestID)
			}
			for _, secret := range []string{channelToken, secretText, userID, tt.resp.body} {
				if strings.Contains(text, secret) {
					t.Errorf("Error() = %q contains %q", text, secret)
				}
			}
		})
	}
}

func TestReply(t *testing.T) {
	const replyToken = "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA"
	tests := []struct {
		name    string
		resp    lineResponse
		want    lineapi.Result
		wantErr *lineapi.Error
	}{
		{
			name: "200",
			resp: lineResponse{status: 200, headers: map[string]string{"x-line-request-id": requestID},
				body: `{"sentMessages":[{"id":"461230966842064897","quoteToken":"IStG5h1Tz7b..."}]}`},
			want: lineapi.Result{Status: 200, RequestID: requestID},
		},
		{
			name:    "400 used reply token is permanent",
			resp:    lineResponse{status: 400, headers: map[string]string{"x-line-request-id": requestID}, body: `{"message":"Invalid reply token"}`},
			wantErr: &lineapi.Error{Status: 400, RequestID: requestID, Message: "Invalid reply token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := MustFakeLINEAlways(t, tt.resp)
			c := MustClient(t, fake.URL, 0)

			got, err := c.Reply(context.Background(), replyToken, msgs)
			if tt.wantErr != nil {
				var e *lineapi.Error
				if !errors.As(err, &e) {
					t.Fatalf("reply: got error %v, want *lineapi.Error", err)
				}
				if diff := cmp.Diff(tt.wantErr, e, cmpopts.IgnoreUnexported(lineapi.Error{})); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				if strings.Contains(err.Error(), replyToken) {
					t.Errorf("Error() = %q contains the reply token", err)
				}
			} else {
				if err != nil {
					t.Fatalf("reply: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			}

			reqs := fake.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			if reqs[0].method != http.MethodPost || reqs[0].path != "/v2/bot/message/reply" {
				t.Errorf("request %s %s, want POST /v2/bot/message/reply", reqs[0].method, reqs[0].path)
			}
			// LINE answers 400 to a retry key on anything but push, multicast, narrowcast, broadcast.
			if reqs[0].hasRetryKey {
				t.Error("reply carries X-Line-Retry-Key")
			}
			var body struct {
				ReplyToken string            `json:"replyToken"`
				Messages   []json.RawMessage `json:"messages"`
			}
			if err := json.Unmarshal([]byte(reqs[0].body), &body); err != nil {
				t.Fatalf("decode request body: %v", err)
			}
			if body.ReplyToken != replyToken || len(body.Messages) != 1 {
				t.Errorf("request body %s, want reply token %q and one message", reqs[0].body, replyToken)
			}
		})
	}
}

func TestProfile(t *testing.T) {
	tests := []struct {
		name    string
		resp    lineResponse
		want    lineapi.Profile
		wantErr *lineapi.Error
	}{
		{
			name: "200",
			resp: lineResponse{status: 200, headers: map[string]string{"x-line-request-id": requestID},
				body: `{"displayName":"LINE taro","userId":"` + userID + `","language":"en","pictureUrl":"https://profile.line-scdn.net/ch/v2/p/uf9da5ee2b...","statusMessage":"Hello, LINE!"}`},
			want: lineapi.Profile{UserID: userID, DisplayName: "LINE taro", Language: "en"},
		},
		{
			name: "200 without language before the privacy policy is accepted",
			resp: lineResponse{status: 200, headers: map[string]string{"x-line-request-id": requestID},
				body: `{"displayName":"LINE taro","userId":"` + userID + `"}`},
			want: lineapi.Profile{UserID: userID, DisplayName: "LINE taro"},
		},
		{
			name:    "404 blocked or unknown user is permanent",
			resp:    lineResponse{status: 404, headers: map[string]string{"x-line-request-id": requestID}, body: `{"message":"Not found"}`},
			wantErr: &lineapi.Error{Status: 404, RequestID: requestID, Message: "Not found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := MustFakeLINEAlways(t, tt.resp)
			c := MustClient(t, fake.URL, 0)

			got, err := c.Profile(context.Background(), userID)
			if tt.wantErr != nil {
				var e *lineapi.Error
				if !errors.As(err, &e) {
					t.Fatalf("profile: got error %v, want *lineapi.Error", err)
				}
				if diff := cmp.Diff(tt.wantErr, e, cmpopts.IgnoreUnexported(lineapi.Error{})); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			} else {
				if err != nil {
					t.Fatalf("profile: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("profile (-want +got):\n%s", diff)
				}
			}
			reqs := fake.requests()
			if len(reqs) != 1 || reqs[0].method != http.MethodGet || reqs[0].path != "/v2/bot/profile/"+userID {
				t.Errorf("requests %+v, want one GET /v2/bot/profile/%s", reqs, userID)
			}
		})
	}
}

// TestUserIDInPath checks that a user ID cannot steer the SDK, which pastes it into the URL
// path unescaped, to another endpoint.
func TestUserIDInPath(t *testing.T) {
	fake := MustFakeLINEAlways(t, lineResponse{status: 200, body: `{"type":"none"}`})
	c := MustClient(t, fake.URL, 0)
	for _, id := range []string{"", "../message/quota", "U1?x=1", "U1/richmenu", "U1%2F", "U1 "} {
		t.Run(id, func(t *testing.T) {
			if _, err := c.Profile(context.Background(), id); err == nil || lineapi.IsRetryable(err) {
				t.Errorf("Profile(%q): error %v, want a permanent error", id, err)
			}
			if _, err := c.IssueLinkToken(context.Background(), id); err == nil || lineapi.IsRetryable(err) {
				t.Errorf("IssueLinkToken(%q): error %v, want a permanent error", id, err)
			}
		})
	}
	if reqs := fake.requests(); len(reqs) != 0 {
		t.Errorf("requests reached LINE: %+v", reqs)
	}
}

func TestIssueLinkToken(t *testing.T) {
	const linkToken = "NMZTNuVrPTqlr2IF8Bnymkb7rXfYv5EY"
	fake := MustFakeLINEAlways(t, lineResponse{status: 200, headers: map[string]string{"x-line-request-id": requestID},
		body: `{"linkToken":"` + linkToken + `"}`})
	c := MustClient(t, fake.URL, 0)

	got, err := c.IssueLinkToken(context.Background(), userID)
	if err != nil {
		t.Fatalf("issue link token: %v", err)
	}
	if got != linkToken {
		t.Errorf("link token %q, want %q", got, linkToken)
	}
	reqs := fake.requests()
	if len(reqs) != 1 || reqs[0].method != http.MethodPost || reqs[0].path != "/v2/bot/user/"+userID+"/linkToken" {
		t.Errorf("requests %+v, want one POST /v2/bot/user/%s/linkToken", reqs, userID)
	}
}

func TestQuota(t *testing.T) {
	tests := []struct {
		name string
		body string
		want lineapi.Quota
	}{
		{name: "none", body: `{"type":"none"}`, want: lineapi.Quota{}},
		{name: "limited", body: `{"type":"limited","value":15000}`, want: lineapi.Quota{Limited: true, Value: 15000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := MustFakeLINEAlways(t, lineResponse{status: 200, headers: map[string]string{"x-line-request-id": requestID}, body: tt.body})
			c := MustClient(t, fake.URL, 0)

			got, err := c.Quota(context.Background())
			if err != nil {
				t.Fatalf("quota: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("quota (-want +got):\n%s", diff)
			}
			if reqs := fake.requests(); len(reqs) != 1 || reqs[0].method != http.MethodGet || reqs[0].path != "/v2/bot/message/quota" {
				t.Errorf("requests %+v, want one GET /v2/bot/message/quota", reqs)
			}
		})
	}
}

func TestQuotaConsumption(t *testing.T) {
	fake := MustFakeLINEAlways(t, lineResponse{status: 200, headers: map[string]string{"x-line-request-id": requestID}, body: `{"totalUsage":500}`})
	c := MustClient(t, fake.URL, 0)

	got, err := c.QuotaConsumption(context.Background())
	if err != nil {
		t.Fatalf("quota consumption: %v", err)
	}
	if got != 500 {
		t.Errorf("total usage %d, want 500", got)
	}
	if reqs := fake.requests(); len(reqs) != 1 || reqs[0].path != "/v2/bot/message/quota/consumption" {
		t.Errorf("requests %+v, want one GET /v2/bot/message/quota/consumption", reqs)
	}
}

func TestTransportError(t *testing.T) {
	c := MustClient(t, MustClosedURL(t), 0)
	tests := []struct {
		name string
		call func() error
	}{
		{name: "push", call: func() error { _, err := c.Push(context.Background(), retryKey, userID, msgs); return err }},
		{name: "profile", call: func() error { _, err := c.Profile(context.Background(), userID); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *lineapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v (%T), want *lineapi.Error", err, err)
			}
			if e.Status != 0 || !e.Retryable || !lineapi.IsRetryable(err) {
				t.Errorf("error %+v: want status 0 and retryable", e)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("errors.Is(%v, ECONNREFUSED) = false", err)
			}
			// The request URL of a profile call holds the user ID.
			if text := err.Error(); strings.Contains(text, userID) || strings.Contains(text, channelToken) {
				t.Errorf("Error() = %q contains the user ID or the token", text)
			}
		})
	}
}

// TestTimeout checks that Config.Timeout bounds a call whatever the caller's context allows,
// both before LINE answers and while its body is still arriving.
func TestTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
	}{
		{
			name: "no answer",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
		},
		{
			name: "headers then a stalled body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["x-line-request-id"] = []string{requestID}
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte(`{"displayName":`))
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := httptest.NewServer(tt.handler)
			t.Cleanup(fake.Close)
			c := MustClient(t, fake.URL, timeout)

			start := time.Now()
			_, err := c.Profile(context.Background(), userID)
			elapsed := time.Since(start)

			if elapsed < timeout || elapsed > 2*time.Second {
				t.Errorf("call took %s, want about %s", elapsed, timeout)
			}
			var e *lineapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v (%T), want *lineapi.Error", err, err)
			}
			if e.Status != tt.wantStatus || !lineapi.IsRetryable(err) {
				t.Errorf("error %+v: want status %d and retryable", e, tt.wantStatus)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
			}
		})
	}
}

// TestPerCallContext runs concurrent calls, each with its own context, on one Client. With the
// SDK's WithContext on the shared client the race detector fails this test, and calls end by
// each other's contexts: a fast call gets cancelled, a slow one never ends.
func TestPerCallContext(t *testing.T) {
	fake := MustFakeLINE(t, func(r *http.Request, body string) lineResponse {
		var req struct {
			To string `json:"to"`
		}
		_ = json.Unmarshal([]byte(body), &req)
		if strings.HasPrefix(req.To, "Uslow") {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return lineResponse{status: 500}
		}
		// Echo the recipient as the request ID so each caller can tell its own answer.
		return lineResponse{status: 200, headers: map[string]string{"x-line-request-id": req.To}, body: `{"sentMessages":[]}`}
	})
	c := MustClient(t, fake.URL, 30*time.Second)

	const calls = 50
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			key := uuid.New()
			ctx := context.Background()
			var want error // nil: the call must succeed
			to := fmt.Sprintf("Ufast%d", i)
			switch i % 3 {
			case 0:
				cctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(time.Duration(10+i%7)*time.Millisecond, cancel)
				ctx, want, to = cctx, context.Canceled, fmt.Sprintf("Uslow%d", i)
			case 1:
				dctx, cancel := context.WithTimeout(ctx, time.Duration(20+i%11)*time.Millisecond)
				defer cancel()
				ctx, want, to = dctx, context.DeadlineExceeded, fmt.Sprintf("Uslow%d", i)
			}

			start := time.Now()
			got, err := c.Push(ctx, key, to, msgs)
			elapsed := time.Since(start)

			if want == nil {
				if err != nil {
					t.Errorf("call %d: %v", i, err)
				} else if got.RequestID != to {
					t.Errorf("call %d: got the answer for %q", i, got.RequestID)
				}
				return
			}
			if !errors.Is(err, want) || !lineapi.IsRetryable(err) {
				t.Errorf("call %d: error %v, want retryable %v", i, err, want)
			}
			if elapsed > 5*time.Second {
				t.Errorf("call %d took %s: its context was not honoured", i, elapsed)
			}
		})
	}
	wg.Wait()
	// A cancelled call may end before its request reaches LINE; every other one arrives once.
	fast := 0
	for _, r := range fake.requests() {
		if strings.Contains(r.body, `"to":"Ufast`) {
			fast++
		}
	}
	if want := calls / 3; fast != want {
		t.Errorf("LINE got %d uncancelled requests, want %d", fast, want)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	fake := MustFakeLINE(t, func(r *http.Request, _ string) lineResponse {
		if strings.HasPrefix(r.URL.Path, "/v2/bot/profile/") {
			return lineResponse{status: 404, headers: map[string]string{"x-line-request-id": requestID}, body: `{"message":"Not found"}`}
		}
		return lineResponse{status: 200, headers: map[string]string{"x-line-request-id": requestID}, body: `{"sentMessages":[]}`}
	})
	live, err := lineapi.New(lineapi.Config{ChannelToken: channelToken, APIURL: fake.URL, Registerer: reg})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	// A second client on the same registry shares the collectors.
	dead, err := lineapi.New(lineapi.Config{ChannelToken: channelToken, APIURL: MustClosedURL(t), Registerer: reg})
	if err != nil {
		t.Fatalf("new second client on the same registry: %v", err)
	}

	ctx := context.Background()
	for range 2 {
		if _, err := live.Push(ctx, retryKey, userID, msgs); err != nil {
			t.Fatalf("push: %v", err)
		}
	}
	if _, err := live.Profile(ctx, userID); err == nil {
		t.Fatal("profile: got no error, want 404")
	}
	if _, err := dead.Push(ctx, retryKey, userID, msgs); err == nil {
		t.Fatal("push to a closed server: got no error")
	}
	if _, err := live.Push(ctx, uuid.Nil, userID, msgs); err == nil {
		t.Fatal("push with nil retry key: got no error")
	}

	const want = `
# HELP ecardbot_line_api_requests_total LINE Messaging API calls by endpoint and HTTP status ("error" when no response arrived).
# TYPE ecardbot_line_api_requests_total counter
ecardbot_line_api_requests_total{endpoint="profile",status="404"} 1
ecardbot_line_api_requests_total{endpoint="push",status="200"} 2
ecardbot_line_api_requests_total{endpoint="push",status="error"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ecardbot_line_api_requests_total"); err != nil {
		t.Error(err)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "ecardbot_line_api_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				got[l.GetName()+"="+l.GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if diff := cmp.Diff(map[string]uint64{"endpoint=profile": 1, "endpoint=push": 3}, got); diff != "" {
		t.Errorf("duration sample counts (-want +got):\n%s", diff)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  lineapi.Config
	}{
		{name: "missing channel token", cfg: lineapi.Config{}},
		{name: "bad API URL", cfg: lineapi.Config{ChannelToken: channelToken, APIURL: "not a url"}},
		{name: "negative timeout", cfg: lineapi.Config{ChannelToken: channelToken, Timeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := lineapi.New(tt.cfg)
			if err == nil {
				t.Fatalf("New: got client %v, want an error", c)
			}
			if strings.Contains(err.Error(), channelToken) {
				t.Errorf("error %q contains the channel token", err)
			}
		})
	}
}
