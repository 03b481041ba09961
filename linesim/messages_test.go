package linesim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
)

func TestReplyFromInsideTheWebhook(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, _ := MustClient(t, s, url)
	bot := MustBot(t, s)
	var mu sync.Mutex
	var replyResp *messaging_api.ReplyMessageResponse
	bot.SetReact(func(cb *webhook.CallbackRequest) {
		ev, ok := cb.Events[0].(webhook.FollowEvent)
		if !ok {
			return
		}
		res, err := api.ReplyMessage(&messaging_api.ReplyMessageRequest{
			ReplyToken: ev.ReplyToken,
			Messages: []messaging_api.MessageInterface{
				messaging_api.TextMessage{Text: "歡迎 Welcome"},
				messaging_api.TemplateMessage{AltText: "綁定臺北通", Template: &messaging_api.ButtonsTemplate{
					Text: "請綁定 Please link",
					Actions: []messaging_api.ActionInterface{
						messaging_api.UriAction{Label: "綁定 Link", Uri: "https://bot.example/link?linkToken=x"},
						messaging_api.PostbackAction{Label: "說明 Help", Data: "action=help"},
					},
				}},
			},
		})
		if err != nil {
			t.Errorf("reply: %v", err)
		}
		mu.Lock()
		replyResp = res
		mu.Unlock()
	})
	u, _ := s.AddUser(User{DisplayName: "Amy"})
	if _, err := s.Follow(ctxT(t), u.ID); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.WaitInbox(ctxT(t), u.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if replyResp == nil || len(replyResp.SentMessages) != 2 || replyResp.SentMessages[0].Id != msgs[0].ID {
		t.Fatalf("reply response %+v does not match inbox %+v", replyResp, msgs)
	}
	if replyResp.SentMessages[0].QuoteToken == "" || replyResp.SentMessages[1].QuoteToken != "" {
		t.Errorf("quote tokens %+v: want one for text only", replyResp.SentMessages)
	}
	got := []string{msgs[0].Type + ":" + msgs[0].Via + ":" + msgs[0].Text, msgs[1].Type + ":" + msgs[1].Text}
	want := []string{"text:reply:歡迎 Welcome", "template:綁定臺北通\n[綁定 Link] https://bot.example/link?linkToken=x\n[說明 Help]"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inbox (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"請綁定 Please link"}, msgs[1].Lines); diff != "" {
		t.Errorf("template lines (-want +got):\n%s", diff)
	}
}

func TestReplyToken(t *testing.T) {
	reply := func(s *Server, url, token string) (int, []byte) {
		body := `{"replyToken":"` + token + `","messages":[{"type":"text","text":"ok"}]}`
		status, _, b := do(t, s, url, "POST", "/v2/bot/message/reply", []byte(body), nil)
		return status, b
	}
	tests := []struct {
		name  string
		steps func(s *Server, clock *fakeClock, ev Event)
		want  []int // statuses of successive replies with the token
	}{
		{"one use", func(*Server, *fakeClock, Event) {}, []int{200, 400}},
		{"valid for a minute", func(_ *Server, c *fakeClock, _ Event) { c.Advance(59 * time.Second) }, []int{200}},
		{"expired after a minute", func(_ *Server, c *fakeClock, _ Event) { c.Advance(61 * time.Second) }, []int{400}},
		{"redelivery gives a minute more", func(s *Server, c *fakeClock, ev Event) {
			c.Advance(50 * time.Second)
			if _, err := s.Redeliver(ctxT(t), ev.WebhookEventID); err != nil {
				t.Fatal(err)
			}
			c.Advance(50 * time.Second) // 100 s after the event, 50 s after the redelivery
		}, []int{200, 400}},
		{"redelivery of an old event gives nothing", func(s *Server, c *fakeClock, ev Event) {
			c.Advance(21 * time.Minute)
			if _, err := s.Redeliver(ctxT(t), ev.WebhookEventID); err != nil {
				t.Fatal(err)
			}
		}, []int{400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url, clock := MustStart(t, Options{})
			MustBot(t, s)
			u := MustFriend(t, s)
			d, err := s.SendText(ctxT(t), u, "hi")
			if err != nil {
				t.Fatal(err)
			}
			tt.steps(s, clock, d.Events[0])
			for i, want := range tt.want {
				status, body := reply(s, url, d.Events[0].ReplyToken)
				if status != want {
					t.Fatalf("reply %d: status %d (%s), want %d", i, status, body, want)
				}
				if status == 400 && errorMessage(t, body).Message != MessageInvalidReplyToken {
					t.Errorf("reply %d: %s", i, body)
				}
			}
		})
	}
}

func TestPushMulticastBroadcast(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, _ := MustClient(t, s, url)
	MustBot(t, s)
	a, b := MustFriend(t, s), MustFriend(t, s)
	blocked := MustFriend(t, s)
	if _, err := s.Unfollow(ctxT(t), blocked); err != nil {
		t.Fatal(err)
	}

	res, err := api.PushMessage(&messaging_api.PushMessageRequest{To: a, Messages: []messaging_api.MessageInterface{textMsg("到校 arrived")}}, uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.SentMessages) != 1 || res.SentMessages[0].Id == "" || res.SentMessages[0].QuoteToken == "" {
		t.Errorf("push response = %+v", res)
	}
	mres, err := api.Multicast(&messaging_api.MulticastRequest{To: []string{a, b, blocked, b}, Messages: []messaging_api.MessageInterface{textMsg("m")}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if mres == nil || len(*mres) != 0 {
		t.Errorf("multicast response = %v, want {}", mres)
	}
	if _, err := api.Broadcast(&messaging_api.BroadcastRequest{Messages: []messaging_api.MessageInterface{textMsg("b")}}, ""); err != nil {
		t.Fatal(err)
	}
	// Pushing to a blocked user is a 200 that delivers and bills nothing.
	if _, err := api.PushMessage(&messaging_api.PushMessageRequest{To: blocked, Messages: []messaging_api.MessageInterface{textMsg("x")}}, ""); err != nil {
		t.Fatalf("push to blocked user: %v", err)
	}

	vias := func(id string) []string {
		var out []string
		for _, m := range s.Inbox(id) {
			out = append(out, m.Via+":"+m.Text)
		}
		return out
	}
	if diff := cmp.Diff([]string{"push:到校 arrived", "multicast:m", "broadcast:b"}, vias(a)); diff != "" {
		t.Errorf("inbox a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"multicast:m", "broadcast:b"}, vias(b)); diff != "" {
		t.Errorf("inbox b, sent once although listed twice (-want +got):\n%s", diff)
	}
	if got := vias(blocked); len(got) != 0 {
		t.Errorf("blocked user got %v", got)
	}
	// push 1 + multicast 2 + broadcast 2; nothing for the blocked user.
	if got := s.Usage(); got != 5 {
		t.Errorf("usage = %d, want 5", got)
	}
}

func TestPushRecipients(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		to         string
		wantStatus int
		wantMsg    string
	}{
		{"malformed ID", Options{}, "U123", 400, "The property, 'to', in the request body is invalid (line: -, column: -)"},
		{"user of another provider", Options{}, NewUserID(), 400, "Failed to send messages"},
		{"auto friend", Options{AutoFriend: true}, NewUserID(), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url, _ := MustStart(t, tt.opts)
			body := `{"to":"` + tt.to + `","messages":[{"type":"text","text":"x"}]}`
			status, _, b := do(t, s, url, "POST", "/v2/bot/message/push", []byte(body), nil)
			if status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", status, b, tt.wantStatus)
			}
			if tt.wantMsg != "" && errorMessage(t, b).Message != tt.wantMsg {
				t.Errorf("message = %s", b)
			}
			if status == 200 && len(s.Inbox(tt.to)) != 1 {
				t.Errorf("auto friend got %d messages, want 1", len(s.Inbox(tt.to)))
			}
		})
	}
}

func TestMessageValidation(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	to := MustFriend(t, s)
	push := func(msgs string) string { return `{"to":"` + to + `","messages":` + msgs + `}` }
	buttons := func(actions string) string {
		return push(`[{"type":"template","altText":"a","template":{"type":"buttons","text":"t","actions":` + actions + `}}]`)
	}
	pb := `{"type":"postback","label":"l","data":"d"}`
	tests := []struct {
		name     string
		path     string
		body     string
		wantProp string // property of the first detail; empty for a 200
	}{
		{"ok text", "push", push(`[{"type":"text","text":"hi"}]`), ""},
		{"no messages", "push", `{"to":"` + to + `"}`, "messages"},
		{"six messages", "push", push(`[` + strings.Repeat(`{"type":"text","text":"x"},`, 5) + `{"type":"text","text":"x"}]`), "messages"},
		{"empty text", "push", push(`[{"type":"text","text":""}]`), "messages[0].text"},
		{"text too long", "push", push(`[{"type":"text","text":"` + strings.Repeat("字", 5001) + `"}]`), "messages[0].text"},
		{"text at limit", "push", push(`[{"type":"text","text":"` + strings.Repeat("字", 5000) + `"}]`), ""},
		{"unknown type", "push", push(`[{"type":"hologram"}]`), "messages[0].type"},
		{"flex without altText", "push", push(`[{"type":"flex","contents":{"type":"bubble"}}]`), "messages[0].altText"},
		{"flex altText too long", "push", push(`[{"type":"flex","altText":"` + strings.Repeat("a", 1501) + `","contents":{"type":"bubble"}}]`), "messages[0].altText"},
		{"flex container without type (the SDK's by-value trap)", "push", push(`[{"type":"flex","altText":"a","contents":{"type":""}}]`), "messages[0].contents.type"},
		{"template without type (the SDK's by-value trap)", "push", push(`[{"type":"template","altText":"a","template":{"type":""}}]`), "messages[0].template.type"},
		{"flex without contents", "push", push(`[{"type":"flex","altText":"a"}]`), "messages[0].contents"},
		{"flex bad button", "push", push(`[{"type":"flex","altText":"a","contents":{"type":"bubble","footer":{"type":"box","layout":"vertical","contents":[{"type":"button","action":{"type":"uri","label":"x","uri":"ftp://x"}}]}}}]`), "messages[0].contents.footer.contents[0].action.uri"},
		{"ok flex", "push", push(`[{"type":"flex","altText":"a","contents":{"type":"bubble","body":{"type":"box","layout":"vertical","contents":[{"type":"text","text":"t"}]}}}]`), ""},
		{"buttons with 4 actions", "push", buttons(`[` + strings.Repeat(pb+",", 3) + pb + `]`), ""},
		{"buttons with 5 actions", "push", buttons(`[` + strings.Repeat(pb+",", 4) + pb + `]`), "messages[0].template.actions"},
		{"buttons without label", "push", buttons(`[{"type":"postback","data":"d"}]`), "messages[0].template.actions[0].label"},
		{"postback data too long", "push", buttons(`[{"type":"postback","label":"l","data":"` + strings.Repeat("d", 301) + `"}]`), "messages[0].template.actions[0].data"},
		{"richmenuswitch in template", "push", buttons(`[{"type":"richmenuswitch","label":"l","richMenuAliasId":"a","data":"d"}]`), "messages[0].template.actions[0].type"},
		{"template without altText", "push", push(`[{"type":"template","template":{"type":"confirm","text":"t","actions":[` + pb + `,` + pb + `]}}]`), "messages[0].altText"},
		{"confirm with one action", "push", push(`[{"type":"template","altText":"a","template":{"type":"confirm","text":"t","actions":[` + pb + `]}}]`), "messages[0].template.actions"},
		{"quick reply camera ok", "push", push(`[{"type":"text","text":"t","quickReply":{"items":[{"type":"action","action":{"type":"camera","label":"c"}}]}}]`), ""},
		{"reply without token", "reply", `{"messages":[{"type":"text","text":"x"}]}`, "replyToken"},
		{"multicast with no one", "multicast", `{"to":[],"messages":[{"type":"text","text":"x"}]}`, "to"},
		{"multicast with 501", "multicast", `{"to":["` + strings.Repeat(to+`","`, 500) + to + `"],"messages":[{"type":"text","text":"x"}]}`, "to"},
		{"multicast bad ID", "multicast", `{"to":["` + to + `","nope"],"messages":[{"type":"text","text":"x"}]}`, "to[1]"},
		{"validate endpoint", "validate/push", `{"messages":[{"type":"text"}]}`, "messages[0].text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, url, "POST", "/v2/bot/message/"+tt.path, []byte(tt.body), nil)
			if tt.wantProp == "" {
				if status != http.StatusOK {
					t.Fatalf("status %d (%s), want 200", status, body)
				}
				return
			}
			e := errorMessage(t, body)
			if status != http.StatusBadRequest || len(e.Details) == 0 {
				t.Fatalf("status %d body %s, want 400 with details", status, body)
			}
			if e.Details[0].Property != tt.wantProp || !strings.HasPrefix(e.Message, "The request body has ") {
				t.Errorf("got %s, want first detail on %s", body, tt.wantProp)
			}
		})
	}
}

func TestBodyTooLargeAndAuth(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	to := MustFriend(t, s)
	big := []byte(`{"to":"` + to + `","messages":[{"type":"text","text":"` + strings.Repeat("x", 2<<20) + `"}]}`)
	if status, h, _ := do(t, s, url, "POST", "/v2/bot/message/push", big, nil); status != http.StatusRequestEntityTooLarge || h.Get("X-Line-Request-Id") == "" {
		t.Errorf("2 MB push: status %d, request id %q; want 413 with an id", status, h.Get("X-Line-Request-Id"))
	}
	tests := []struct {
		name, auth string
	}{
		{"missing", ""},
		{"wrong", "Bearer nope"},
		{"not bearer", "Basic " + s.ChannelToken()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url+"/v2/bot/message/quota", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var e messaging_api.ErrorResponse
			_ = json.NewDecoder(res.Body).Decode(&e)
			if res.StatusCode != http.StatusUnauthorized || e.Message == "" || res.Header.Get("X-Line-Request-Id") == "" {
				t.Errorf("status %d message %q id %q", res.StatusCode, e.Message, res.Header.Get("X-Line-Request-Id"))
			}
		})
	}
}

func TestRetryKey(t *testing.T) {
	s, url, clock := MustStart(t, Options{})
	api, _ := MustClient(t, s, url)
	to := MustFriend(t, s)
	req := &messaging_api.PushMessageRequest{To: to, Messages: []messaging_api.MessageInterface{textMsg("once")}}
	key := uuid.NewString()

	res1, first, err := api.PushMessageWithHttpInfo(req, key)
	if err != nil {
		t.Fatal(err)
	}
	res2, _, err := api.PushMessageWithHttpInfo(req, key)
	if err == nil || res2.StatusCode != http.StatusConflict {
		t.Fatalf("repeat: status %v err %v, want 409", res2.StatusCode, err)
	}
	if got, want := res2.Header.Get("X-Line-Accepted-Request-Id"), res1.Header.Get("X-Line-Request-Id"); got != want || got == "" {
		t.Errorf("accepted request id = %q, want the first request's %q", got, want)
	}
	if res2.Header.Get("X-Line-Request-Id") == res1.Header.Get("X-Line-Request-Id") {
		t.Error("the repeat must have its own x-line-request-id")
	}
	var body messaging_api.ErrorResponse
	_ = json.NewDecoder(res2.Body).Decode(&body)
	if body.Message != MessageRetryKeyAccepted || len(body.SentMessages) != 1 || body.SentMessages[0].Id != first.SentMessages[0].Id {
		t.Errorf("409 body = %+v, want the original sentMessages", body)
	}
	if n := len(s.Inbox(to)); n != 1 {
		t.Errorf("inbox has %d messages, want 1", n)
	}

	clock.Advance(24*time.Hour - time.Second)
	if res, _, _ := api.PushMessageWithHttpInfo(req, key); res.StatusCode != http.StatusConflict {
		t.Errorf("just under 24 h: status %d, want 409", res.StatusCode)
	}
	clock.Advance(time.Second)
	if res, _, err := api.PushMessageWithHttpInfo(req, key); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("after 24 h: status %d err %v, want 200", res.StatusCode, err)
	}

	tests := []struct {
		name, method, path, key, body string
		want                          int
	}{
		{"not a UUID", "POST", "/v2/bot/message/push", "not-a-uuid", `{"to":"` + to + `","messages":[{"type":"text","text":"x"}]}`, 400},
		{"UUID without hyphens", "POST", "/v2/bot/message/push", strings.ReplaceAll(uuid.NewString(), "-", ""), `{"to":"` + to + `","messages":[{"type":"text","text":"x"}]}`, 400},
		{"on reply", "POST", "/v2/bot/message/reply", uuid.NewString(), `{"replyToken":"x","messages":[{"type":"text","text":"x"}]}`, 400},
		{"on profile", "GET", "/v2/bot/profile/" + to, uuid.NewString(), "", 400},
		{"on multicast", "POST", "/v2/bot/message/multicast", uuid.NewString(), `{"to":["` + to + `"],"messages":[{"type":"text","text":"x"}]}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, b := do(t, s, url, tt.method, tt.path, []byte(tt.body), map[string]string{"X-Line-Retry-Key": tt.key})
			if status != tt.want {
				t.Errorf("status %d (%s), want %d", status, b, tt.want)
			}
		})
	}
}

func TestRetryKeyInFlightAndAfterFailure(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	to := MustFriend(t, s)
	body := []byte(`{"to":"` + to + `","messages":[{"type":"text","text":"x"}]}`)
	key := map[string]string{"X-Line-Retry-Key": uuid.NewString()}

	// A 500 frees the key: the retry is processed.
	s.AddFault(Fault{PathPrefix: "/v2/bot/message/push", Status: 500, Times: 1})
	if status, _, _ := do(t, s, url, "POST", "/v2/bot/message/push", body, key); status != 500 {
		t.Fatalf("status %d, want the injected 500", status)
	}

	// Hold the retry in flight; a third attempt meanwhile is refused.
	reached, release := make(chan struct{}), make(chan struct{})
	s.AddFault(Fault{PathPrefix: "/v2/bot/message/push", Times: 1, OnMatch: func(*http.Request) {
		close(reached)
		<-release
	}})
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("POST", url+"/v2/bot/message/push", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.ChannelToken())
		req.Header.Set("X-Line-Retry-Key", key["X-Line-Retry-Key"])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	<-reached
	status, h, b := do(t, s, url, "POST", "/v2/bot/message/push", body, key)
	if status != http.StatusConflict || errorMessage(t, b).Message != MessageRetryKeyAccepted || h.Get("X-Line-Accepted-Request-Id") != "" {
		t.Errorf("while in flight: status %d body %s accepted id %q; want 409 without an accepted id", status, b, h.Get("X-Line-Accepted-Request-Id"))
	}
	close(release)
	if got := <-done; got != http.StatusOK {
		t.Errorf("held request: status %d, want 200", got)
	}
	if n := len(s.Inbox(to)); n != 1 {
		t.Errorf("inbox has %d messages, want 1", n)
	}
}

func TestProfile(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, _ := MustClient(t, s, url)
	MustBot(t, s)
	u, _ := s.AddUser(User{DisplayName: "Amy", Language: "en", PictureURL: "https://example.com/p.png", Friend: true})
	got, err := api.GetProfile(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &messaging_api.UserProfileResponse{UserId: u.ID, DisplayName: "Amy", Language: "en", PictureUrl: "https://example.com/p.png"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
	if _, err := s.Unfollow(ctxT(t), u.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{u.ID, NewUserID()} {
		if res, _, _ := api.GetProfileWithHttpInfo(id); res.StatusCode != http.StatusNotFound {
			t.Errorf("profile of blocked or unknown user: status %d, want 404", res.StatusCode)
		}
	}
}

func TestRequestsAreRecorded(t *testing.T) {
	s, url, clock := MustStart(t, Options{})
	to := MustFriend(t, s)
	body := []byte(`{"to":"` + to + `","messages":[{"type":"text","text":"x"}]}`)
	status, h, resp := do(t, s, url, "POST", "/v2/bot/message/push", body, map[string]string{"X-Line-Retry-Key": "8a4b1f7e-0c1d-4e8f-9a2b-3c4d5e6f7a8b"})
	do(t, s, url, "GET", "/v2/bot/nowhere", nil, nil)
	got := s.RequestsTo(RoutePush)
	if len(got) != 1 {
		t.Fatalf("recorded %d pushes, want 1", len(got))
	}
	r := got[0]
	if r.ID != h.Get("X-Line-Request-Id") || r.Status != status || !bytes.Equal(r.Body, body) || !bytes.Equal(r.Response, resp) ||
		r.RetryKey() != "8a4b1f7e-0c1d-4e8f-9a2b-3c4d5e6f7a8b" || !r.Time.Equal(clock.Now()) || r.Method != "POST" {
		t.Errorf("record = %+v", r)
	}
	// Copies: changing one must not change the store.
	got[0].Body[0] = 'X'
	if s.RequestsTo(RoutePush)[0].Body[0] != '{' {
		t.Error("Requests returned the stored slice")
	}
	all := s.Requests()
	if len(all) != 2 || all[1].Status != http.StatusNotFound || all[1].Route != "" {
		t.Errorf("unknown path record = %+v", all[len(all)-1])
	}
	s.ResetRequests()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d records after reset", n)
	}
}

func TestRecordLimit(t *testing.T) {
	s, url, _ := MustStart(t, Options{RecordLimit: 2})
	for range 3 {
		do(t, s, url, "GET", "/v2/bot/message/quota", nil, nil)
	}
	do(t, s, url, "GET", "/v2/bot/message/quota/consumption", nil, nil)
	got := s.Requests()
	if len(got) != 2 || got[1].Path != "/v2/bot/message/quota/consumption" {
		t.Errorf("kept %d records, last %q; want the latest 2", len(got), got[len(got)-1].Path)
	}
}

func TestConversationLimit(t *testing.T) {
	s, url, _ := MustStart(t, Options{ConversationLimit: 2})
	to := MustFriend(t, s)
	for _, text := range []string{"1", "2", "3"} {
		body := []byte(`{"to":"` + to + `","messages":[{"type":"text","text":"` + text + `"}]}`)
		if status, _, b := do(t, s, url, "POST", "/v2/bot/message/push", body, nil); status != 200 {
			t.Fatalf("push: %d %s", status, b)
		}
	}
	var got []string
	for _, m := range s.Inbox(to) {
		got = append(got, m.Text)
	}
	if diff := cmp.Diff([]string{"2", "3"}, got); diff != "" {
		t.Errorf("inbox (-want +got):\n%s", diff)
	}
}
