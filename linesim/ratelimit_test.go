package linesim

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
)

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		route  string
		burst  int           // requests accepted at once
		refill time.Duration // time after which exactly one more is accepted
	}{
		{"push default", Options{}, RoutePush, 2000, time.Second / 2000},
		{"push configured", Options{PushRate: 5}, RoutePush, 5, time.Second / 5},
		{"multicast default", Options{}, RouteMulticast, 200, time.Second / 200},
		{"override by route", Options{RateLimits: map[string]Rate{RouteMulticast: {Count: 3, Per: time.Minute}}}, RouteMulticast, 3, 20 * time.Second},
		{"rich menu create", Options{}, RouteRichMenuCreate, 100, time.Hour / 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, clock := MustStart(t, tt.opts)
			for i := range tt.burst {
				if !s.allow(tt.route) {
					t.Fatalf("request %d refused within the burst of %d", i, tt.burst)
				}
			}
			if s.allow(tt.route) {
				t.Fatal("request beyond the burst allowed")
			}
			if !s.allow("GET /v2/bot/message/quota") {
				t.Error("another route shares the bucket")
			}
			clock.Advance(tt.refill)
			if !s.allow(tt.route) || s.allow(tt.route) {
				t.Errorf("after %v want exactly one more request", tt.refill)
			}
		})
	}
}

func TestRateLimitOverHTTP(t *testing.T) {
	s, url, clock := MustStart(t, Options{PushRate: 2})
	to := MustFriend(t, s)
	body := []byte(`{"to":"` + to + `","messages":[{"type":"text","text":"x"}]}`)
	var got []int
	for range 3 {
		status, _, b := do(t, s, url, "POST", "/v2/bot/message/push", body, nil)
		got = append(got, status)
		if status == http.StatusTooManyRequests && errorMessage(t, b).Message != MessageRateLimit {
			t.Errorf("429 body = %s", b)
		}
	}
	clock.Advance(500 * time.Millisecond)
	status, _, _ := do(t, s, url, "POST", "/v2/bot/message/push", body, nil)
	got = append(got, status)
	if diff := cmp.Diff([]int{200, 200, 429, 200}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if n := len(s.Inbox(to)); n != 3 {
		t.Errorf("inbox has %d, want 3", n)
	}
}

func TestUnlimitedRate(t *testing.T) {
	s, _, _ := MustStart(t, Options{PushRate: -1})
	for i := range 5000 {
		if !s.allow(RoutePush) {
			t.Fatalf("request %d refused with no limit", i)
		}
	}
}

func TestMonthlyQuota(t *testing.T) {
	s, url, clock := MustStart(t, Options{MonthlyQuota: 3})
	api, _ := MustClient(t, s, url)
	a, b := MustFriend(t, s), MustFriend(t, s)

	q, err := api.GetMessageQuota()
	if err != nil {
		t.Fatal(err)
	}
	if q.Type != messaging_api.QuotaType_LIMITED || q.Value != 3 {
		t.Errorf("quota = %+v, want limited 3", q)
	}
	if _, err := api.Multicast(&messaging_api.MulticastRequest{To: []string{a, b}, Messages: []messaging_api.MessageInterface{textMsg("1"), textMsg("2")}}, ""); err != nil {
		t.Fatal(err)
	}
	// Two recipients, whatever the number of messages; a multicast to two would pass the quota.
	res, _, _ := api.MulticastWithHttpInfo(&messaging_api.MulticastRequest{To: []string{a, b}, Messages: []messaging_api.MessageInterface{textMsg("3")}}, "")
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", res.StatusCode)
	}
	var body messaging_api.ErrorResponse
	_ = decodeJSON(res, &body)
	if body.Message != MessageMonthlyLimit {
		t.Errorf("429 message %q, want %q", body.Message, MessageMonthlyLimit)
	}
	if _, err := api.PushMessage(&messaging_api.PushMessageRequest{To: a, Messages: []messaging_api.MessageInterface{textMsg("4")}}, ""); err != nil {
		t.Errorf("push of the last recipient: %v", err)
	}
	if res, _, _ := api.PushMessageWithHttpInfo(&messaging_api.PushMessageRequest{To: a, Messages: []messaging_api.MessageInterface{textMsg("5")}}, ""); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("push over quota: %d, want 429", res.StatusCode)
	}
	c, err := api.GetMessageQuotaConsumption()
	if err != nil || c.TotalUsage != 3 {
		t.Errorf("consumption = %+v, %v; want 3", c, err)
	}
	// A new month (in Japan time) starts from zero.
	clock.Advance(5 * 24 * time.Hour)
	if _, err := api.PushMessage(&messaging_api.PushMessageRequest{To: a, Messages: []messaging_api.MessageInterface{textMsg("6")}}, ""); err != nil {
		t.Errorf("push in December: %v", err)
	}
	s.SetMonthlyQuota(0)
	if q, _ := api.GetMessageQuota(); q.Type != messaging_api.QuotaType_NONE {
		t.Errorf("quota with no limit = %+v, want none", q)
	}
}
