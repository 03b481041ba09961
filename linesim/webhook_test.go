package linesim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
	"github.com/oklog/ulid/v2"
)

func TestSignatureMatchesLINEExample(t *testing.T) {
	const (
		secret = "8c570fa6dd201bb328f1c1eac23a96d8"
		body   = `{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}`
		want   = "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs="
	)
	if got := Signature(secret, []byte(body)); got != want {
		t.Errorf("Signature = %q, want %q", got, want)
	}
}

func TestConnectivityCheckIsSignedEmptyEvents(t *testing.T) {
	s, _, _ := MustStart(t, Options{ChannelSecret: "8c570fa6dd201bb328f1c1eac23a96d8", BotUserID: "U8e742f61d673b39c7fff3cecb7536ef0"})
	bot := MustBot(t, s)
	d, err := s.CheckConnectivity(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	reqs := bot.Requests()
	if len(reqs) != 1 {
		t.Fatalf("bot got %d requests, want 1", len(reqs))
	}
	if diff := cmp.Diff(`{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}`, string(reqs[0].Body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if got := reqs[0].Header.Get("X-Line-Signature"); got != "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs=" {
		t.Errorf("signature = %q", got)
	}
	for k, want := range map[string]string{"Content-Type": "application/json; charset=utf-8", "User-Agent": "LineBotWebhook/2.0"} {
		if got := reqs[0].Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !d.OK() || d.Attempts[0].Status != http.StatusOK {
		t.Errorf("delivery = %+v, want one 200 attempt", d.Attempts)
	}
}

// webhookSpec loads LINE's webhook.yml, skipping outside CI when the file is absent.
func webhookSpec(t *testing.T) *openapi3.T {
	t.Helper()
	path := filepath.Join("..", "..", "shared", "line-openapi", "webhook.yml")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("LINE's webhook.yml must be at %s in CI: %v", path, err)
		}
		t.Skipf("LINE's webhook.yml not found at %s; skipping the spec check", path)
	}
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// specChecker validates a value against a schema and also reports properties the schema does
// not define, following allOf and discriminator mappings: LINE's schemas allow extra properties,
// so a misspelt field would otherwise pass.
type specChecker struct {
	t   *testing.T
	doc *openapi3.T
}

func (c specChecker) schema(ref string) *openapi3.Schema {
	name := strings.TrimPrefix(ref, "#/components/schemas/")
	sr := c.doc.Components.Schemas[name]
	if sr == nil {
		c.t.Fatalf("schema %s not in spec", name)
	}
	return sr.Value
}

func (c specChecker) check(path string, s *openapi3.Schema, v any) {
	if err := s.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		c.t.Errorf("%s: %v", path, err)
	}
	switch x := v.(type) {
	case []any:
		if s.Items != nil {
			for i, item := range x {
				c.check(path+"["+strconv.Itoa(i)+"]", s.Items.Value, item)
			}
		}
	case map[string]any:
		props := map[string]*openapi3.Schema{}
		additional := false
		seen := map[*openapi3.Schema]bool{}
		var collect func(s *openapi3.Schema)
		collect = func(s *openapi3.Schema) {
			if seen[s] {
				return
			}
			seen[s] = true
			for k, p := range s.Properties {
				props[k] = p.Value
			}
			if s.AdditionalProperties.Schema != nil || s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has {
				additional = true
			}
			for _, a := range s.AllOf {
				collect(a.Value)
			}
			if d := s.Discriminator; d != nil {
				typ, _ := x[d.PropertyName].(string)
				m, ok := d.Mapping[typ]
				if !ok {
					c.t.Errorf("%s: %s %q has no schema", path, d.PropertyName, typ)
					return
				}
				mapped := c.schema(m.Ref)
				if err := mapped.VisitJSON(v, openapi3.MultiErrors()); err != nil {
					c.t.Errorf("%s as %s: %v", path, m.Ref, err)
				}
				collect(mapped)
			}
		}
		collect(s)
		for k, val := range x {
			p, ok := props[k]
			if !ok {
				if !additional {
					c.t.Errorf("%s.%s: not defined in LINE's schema", path, k)
				}
				continue
			}
			c.check(path+"."+k, p, val)
		}
	}
}

func TestWebhookBodiesMatchLINESpec(t *testing.T) {
	doc := webhookSpec(t)
	s, _, _ := MustStart(t, Options{})
	bot := MustBot(t, s)
	ctx := ctxT(t)
	u, _ := s.AddUser(User{DisplayName: "Amy", Language: "en"})
	steps := []func() (Delivery, error){
		func() (Delivery, error) { return s.Follow(ctx, u.ID) },
		func() (Delivery, error) { return s.SendText(ctx, u.ID, "綁定") },
		func() (Delivery, error) { return s.Postback(ctx, u.ID, "action=settings", nil) },
		func() (Delivery, error) {
			return s.Postback(ctx, u.ID, "action=date", map[string]string{"date": "2026-11-27"})
		},
		func() (Delivery, error) { return s.AccountLink(ctx, u.ID, "ok", "bm9uY2Utb2stMTIzNDU2") },
		func() (Delivery, error) { return s.AccountLink(ctx, u.ID, "failed", "bm9uY2UtZmFpbGVkLTEy") },
		func() (Delivery, error) { return s.Unfollow(ctx, u.ID) },
		func() (Delivery, error) { return s.Follow(ctx, u.ID) },
		func() (Delivery, error) { return s.CheckConnectivity(ctx) },
	}
	for i, step := range steps {
		if _, err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	reqs := bot.Requests()
	if len(reqs) != len(steps) {
		t.Fatalf("bot got %d webhooks, want %d", len(reqs), len(steps))
	}
	c := specChecker{t: t, doc: doc}
	root := c.schema("CallbackRequest")
	for i, r := range reqs {
		var v any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatal(err)
		}
		c.check("webhook["+strconv.Itoa(i)+"]", root, v)
		if r.Parsed == nil {
			t.Errorf("webhook %d: the SDK could not parse or verify %s", i, r.Body)
		}
	}
}

func TestEventsAsTheSDKReadsThem(t *testing.T) {
	s, _, clock := MustStart(t, Options{})
	bot := MustBot(t, s)
	ctx := ctxT(t)
	u, _ := s.AddUser(User{DisplayName: "Amy"})
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	var events []webhook.EventInterface
	send := func(f func() (Delivery, error)) Event {
		t.Helper()
		d, err := f()
		if err != nil {
			t.Fatal(err)
		}
		reqs := bot.Requests()
		events = append(events, reqs[len(reqs)-1].Parsed.Events...)
		return d.Events[0]
	}
	follow := send(func() (Delivery, error) { return s.Follow(ctx, u.ID) })
	text := send(func() (Delivery, error) { return s.SendText(ctx, u.ID, "hello") })
	pb := send(func() (Delivery, error) {
		return s.Postback(ctx, u.ID, "a=1", map[string]string{"newRichMenuAliasId": "linked", "status": "SUCCESS"})
	})
	okLink := send(func() (Delivery, error) { return s.AccountLink(ctx, u.ID, "ok", "nonce-0123456789") })
	failed := send(func() (Delivery, error) { return s.AccountLink(ctx, u.ID, "failed", "nonce-9876543210") })
	unfollow := send(func() (Delivery, error) { return s.Unfollow(ctx, u.ID) })
	refollow := send(func() (Delivery, error) { return s.Follow(ctx, u.ID) })

	for i, ev := range []Event{follow, text, pb, okLink, failed, unfollow, refollow} {
		if _, err := ulid.ParseStrict(ev.WebhookEventID); err != nil {
			t.Errorf("event %d: webhookEventId %q is not a ULID: %v", i, ev.WebhookEventID, err)
		}
		if ev.Mode != "active" || ev.DeliveryContext.IsRedelivery || ev.Timestamp != clock.Now().UnixMilli() {
			t.Errorf("event %d: mode %q redelivery %v timestamp %d", i, ev.Mode, ev.DeliveryContext.IsRedelivery, ev.Timestamp)
		}
		wantToken := ev.Type != "unfollow" && !(ev.Type == "accountLink" && ev.Link.Result == "failed")
		if got := ev.ReplyToken != ""; got != wantToken || got && !hex32.MatchString(ev.ReplyToken) {
			t.Errorf("event %d (%s): reply token %q, want one: %v", i, ev.Type, ev.ReplyToken, wantToken)
		}
	}

	if got, ok := events[0].(webhook.FollowEvent); !ok || got.Follow.IsUnblocked {
		t.Errorf("first follow = %#v, want FollowEvent with isUnblocked false", events[0])
	}
	if got, ok := events[6].(webhook.FollowEvent); !ok || !got.Follow.IsUnblocked {
		t.Errorf("refollow = %#v, want isUnblocked true", events[6])
	}
	if got, ok := events[1].(webhook.MessageEvent); !ok {
		t.Errorf("text = %#v, want MessageEvent", events[1])
	} else if m, ok := got.Message.(webhook.TextMessageContent); !ok || m.Text != "hello" || m.Id == "" || m.QuoteToken == "" {
		t.Errorf("text message = %#v", got.Message)
	} else if src, ok := got.Source.(webhook.UserSource); !ok || src.UserId != u.ID {
		t.Errorf("text source = %#v", got.Source)
	}
	if got, ok := events[2].(webhook.PostbackEvent); !ok || got.Postback.Data != "a=1" || got.Postback.Params["status"] != "SUCCESS" {
		t.Errorf("postback = %#v", events[2])
	}
	if got, ok := events[3].(webhook.AccountLinkEvent); !ok || got.Link.Result != webhook.LinkContentRESULT_OK || got.Link.Nonce != "nonce-0123456789" {
		t.Errorf("account link ok = %#v", events[3])
	}
	if got, ok := events[4].(webhook.AccountLinkEvent); !ok || got.Source != nil || got.ReplyToken != "" || got.Link.Result != webhook.LinkContentRESULT_FAILED {
		t.Errorf("account link failed = %#v, want no source and no reply token", events[4])
	}
	if _, ok := events[5].(webhook.UnfollowEvent); !ok {
		t.Errorf("unfollow = %#v", events[5])
	}
}

func TestUserStateErrors(t *testing.T) {
	s, _, _ := MustStart(t, Options{})
	MustBot(t, s)
	ctx := ctxT(t)
	friend := MustFriend(t, s)
	stranger, _ := s.AddUser(User{})
	tests := []struct {
		name string
		do   func() (Delivery, error)
		want error
	}{
		{"follow a friend", func() (Delivery, error) { return s.Follow(ctx, friend) }, ErrAlreadyFriend},
		{"unknown user", func() (Delivery, error) { return s.Follow(ctx, NewUserID()) }, ErrUnknownUser},
		{"text from non-friend", func() (Delivery, error) { return s.SendText(ctx, stranger.ID, "hi") }, ErrNotFriend},
		{"unfollow non-friend", func() (Delivery, error) { return s.Unfollow(ctx, stranger.ID) }, ErrNotFriend},
		{"postback from non-friend", func() (Delivery, error) { return s.Postback(ctx, stranger.ID, "x", nil) }, ErrNotFriend},
		{"redeliver unknown", func() (Delivery, error) { return s.Redeliver(ctx, "01ARZ3NDEKTSV4RRFFQ69G5FAV") }, ErrUnknownEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.do()
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if len(d.Attempts) != 0 {
				t.Errorf("sent %d webhooks, want none", len(d.Attempts))
			}
		})
	}
}

func TestNoWebhookURL(t *testing.T) {
	s, _, _ := MustStart(t, Options{})
	u, _ := s.AddUser(User{})
	if _, err := s.Follow(ctxT(t), u.ID); !errors.Is(err, ErrNoWebhookURL) {
		t.Fatalf("err = %v, want ErrNoWebhookURL", err)
	}
	// The user's side happened regardless, as on LINE when the bot is down.
	if got, _ := s.User(u.ID); !got.Friend {
		t.Error("user is not a friend after follow without webhook")
	}
}

func TestBadSignatureReachesBotAs400(t *testing.T) {
	s, _, _ := MustStart(t, Options{})
	bot := MustBot(t, s)
	body := []byte(`{"destination":"` + s.BotUserID() + `","events":[]}`)
	tests := []struct {
		name      string
		signature string
		wantSig   string
	}{
		{"wrong signature", Signature("other secret", body), Signature("other secret", body)},
		{"no signature", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := s.SendRawSigned(ctxT(t), body, tt.signature)
			if !errors.Is(err, ErrDeliveryFailed) || d.Attempts[0].Status != http.StatusBadRequest {
				t.Fatalf("err %v, attempts %+v; want delivery failed with 400", err, d.Attempts)
			}
			reqs := bot.Requests()
			if got := reqs[len(reqs)-1].Header.Get("X-Line-Signature"); got != tt.wantSig {
				t.Errorf("signature header = %q, want %q", got, tt.wantSig)
			}
		})
	}
	if d, err := s.SendRaw(ctxT(t), body); err != nil || !d.OK() {
		t.Errorf("SendRaw with the right signature: %v", err)
	}
}

func TestWebhookTimeout(t *testing.T) {
	s, _, _ := MustStart(t, Options{WebhookTimeout: 50 * time.Millisecond})
	bot := MustBot(t, s)
	bot.SetDelay(time.Second)
	_, err := s.CheckConnectivity(ctxT(t))
	if !errors.Is(err, ErrDeliveryFailed) {
		t.Fatalf("err = %v, want ErrDeliveryFailed", err)
	}
	d := s.Deliveries()[0]
	if a := d.Attempts[0]; !a.TimedOut || a.Status != 0 || a.Duration < 50*time.Millisecond {
		t.Errorf("attempt = %+v, want timed out after ≥50ms", a)
	}
}

func TestRedelivery(t *testing.T) {
	tests := []struct {
		name         string
		opts         Options
		statuses     []int
		wantAttempts int
		wantErr      bool
	}{
		{"off by default", Options{}, []int{500, 200}, 1, true},
		{"until success", Options{Redelivery: true}, []int{500, 503, 200}, 3, false},
		{"bounded", Options{Redelivery: true, RedeliveryAttempts: 2}, []int{500}, 3, true},
		{"not after success", Options{Redelivery: true}, []int{200, 500}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _ := MustStart(t, tt.opts)
			bot := MustBot(t, s)
			bot.SetStatus(tt.statuses...)
			u, _ := s.AddUser(User{})
			d, err := s.Follow(ctxT(t), u.ID)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			reqs := bot.Requests()
			if len(d.Attempts) != tt.wantAttempts || len(reqs) != tt.wantAttempts {
				t.Fatalf("attempts %d, bot saw %d, want %d", len(d.Attempts), len(reqs), tt.wantAttempts)
			}
			first := reqs[0].Parsed.Events[0].(webhook.FollowEvent)
			for i, r := range reqs {
				ev := r.Parsed.Events[0].(webhook.FollowEvent)
				if ev.DeliveryContext.IsRedelivery != (i > 0) || d.Attempts[i].Redelivery != (i > 0) {
					t.Errorf("attempt %d: isRedelivery %v", i, ev.DeliveryContext.IsRedelivery)
				}
				if ev.WebhookEventId != first.WebhookEventId || ev.ReplyToken != first.ReplyToken || ev.Timestamp != first.Timestamp {
					t.Errorf("attempt %d changed the event: %+v vs %+v", i, ev, first)
				}
			}
		})
	}
}

func TestSendEventsAsGiven(t *testing.T) {
	s, _, _ := MustStart(t, Options{})
	bot := MustBot(t, s)
	u := MustFriend(t, s)
	standby := s.NewEvent("message", u, false)
	standby.Mode = "standby"
	standby.Message = &MessageContent{Type: "text", ID: "1", Text: "x", QuoteToken: "q"}
	edit := s.NewEvent("edit", u, false)
	if _, err := s.SendEvents(ctxT(t), standby, edit); err != nil {
		t.Fatal(err)
	}
	cb := bot.Requests()[0].Parsed
	if len(cb.Events) != 2 {
		t.Fatalf("got %d events, want 2", len(cb.Events))
	}
	if ev, ok := cb.Events[0].(webhook.MessageEvent); !ok || ev.Mode != webhook.EventMode_STANDBY || ev.ReplyToken != "" {
		t.Errorf("standby event = %#v", cb.Events[0])
	}
	if ev, ok := cb.Events[1].(webhook.UnknownEvent); !ok || ev.Type != "edit" {
		t.Errorf("unknown event = %#v", cb.Events[1])
	}
}

func TestWebhookEndpointAPI(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	api, _ := MustClient(t, s, url)
	bot := MustBot(t, s)
	botURL := s.WebhookURL()
	s.SetWebhookURL("")
	if got, err := api.GetWebhookEndpoint(); err != nil || got.Active {
		t.Errorf("endpoint before set = %+v, %v", got, err)
	}
	if _, err := api.SetWebhookEndpoint(&messaging_api.SetWebhookEndpointRequest{Endpoint: botURL}); err != nil {
		t.Fatal(err)
	}
	if got, err := api.GetWebhookEndpoint(); err != nil || got.Endpoint != botURL || !got.Active {
		t.Errorf("endpoint = %+v, %v", got, err)
	}
	res, err := api.TestWebhookEndpoint(&messaging_api.TestWebhookEndpointRequest{})
	if err != nil || !res.Success || res.StatusCode != 200 || res.Reason != "OK" {
		t.Errorf("test = %+v, %v", res, err)
	}
	bot.SetStatus(500)
	if res, err := api.TestWebhookEndpoint(&messaging_api.TestWebhookEndpointRequest{}); err != nil || res.Success || res.StatusCode != 500 || res.Reason != "ERROR_STATUS_CODE" {
		t.Errorf("test against a failing bot = %+v, %v", res, err)
	}
	if n := len(bot.Requests()); n != 2 {
		t.Errorf("bot got %d connectivity checks, want 2", n)
	}
}

func TestWaitInboxGivesUpWithContext(t *testing.T) {
	s, _, _ := MustStart(t, Options{})
	u := MustFriend(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	msgs, err := s.WaitInbox(ctx, u, 1)
	if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
		t.Errorf("WaitInbox = %v, %v; want no messages and the deadline", msgs, err)
	}
}
