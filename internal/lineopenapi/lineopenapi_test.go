package lineopenapi_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"

	"github.com/taipei-doit/ecardbot/internal/lineopenapi"
	"github.com/taipei-doit/ecardbot/linesim"
)

// recordingTB stands in for the test so that a check expected to fail can be asserted on
// instead of failing the real test. Fatal and Skip still go to the real test: a missing spec
// must skip or fail it as usual.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recordingTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// env is an emulator, the real SDK pointed at it, and a friend to send to.
type env struct {
	sim    *linesim.Server
	url    string
	api    *messaging_api.MessagingApiAPI
	friend string
}

func mustEnv(tb testing.TB) *env {
	tb.Helper()
	sim, err := linesim.New(linesim.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sim.Close() })
	api, err := messaging_api.NewMessagingApiAPI(sim.ChannelToken(), messaging_api.WithEndpoint(url),
		messaging_api.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		tb.Fatal(err)
	}
	u, err := sim.AddUser(linesim.User{DisplayName: "王小明", Language: "zh-TW", Friend: true})
	if err != nil {
		tb.Fatal(err)
	}
	return &env{sim: sim, url: url, api: api, friend: u.ID}
}

// mustReplyToken follows the bot as a new user and returns the reply token LINE gave the event.
func (e *env) mustReplyToken(tb testing.TB) string {
	tb.Helper()
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tb.Cleanup(hook.Close)
	e.sim.SetWebhookURL(hook.URL)
	u, err := e.sim.AddUser(linesim.User{DisplayName: "Amy", Language: "en"})
	if err != nil {
		tb.Fatal(err)
	}
	d, err := e.sim.Follow(context.Background(), u.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return d.Events[0].ReplyToken
}

// raw sends a request by hand, as a buggy client would, with the channel token unless
// noAuth.
func (e *env) raw(tb testing.TB, method, path, body string, noAuth bool) {
	tb.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if !noAuth {
		req.Header.Set("Authorization", "Bearer "+e.sim.ChannelToken())
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
}

func text(s string) []messaging_api.MessageInterface {
	return []messaging_api.MessageInterface{messaging_api.TextMessage{Text: s}}
}

func TestCheckRequests(t *testing.T) {
	tests := []struct {
		name string
		send func(t *testing.T, e *env)
		// want are substrings of the single error expected; none means the requests must pass.
		want []string
	}{
		{
			name: "push through the SDK",
			send: func(t *testing.T, e *env) {
				if _, err := e.api.PushMessage(&messaging_api.PushMessageRequest{To: e.friend, Messages: text("hi")}, ""); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "reply through the SDK",
			send: func(t *testing.T, e *env) {
				tok := e.mustReplyToken(t)
				if _, err := e.api.ReplyMessage(&messaging_api.ReplyMessageRequest{ReplyToken: tok, Messages: text("hi")}); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "profile, link token and quota through the SDK",
			send: func(t *testing.T, e *env) {
				if _, err := e.api.GetProfile(e.friend); err != nil {
					t.Fatal(err)
				}
				if _, err := e.api.IssueLinkToken(e.friend); err != nil {
					t.Fatal(err)
				}
				if _, err := e.api.GetMessageQuota(); err != nil {
					t.Fatal(err)
				}
				if _, err := e.api.GetMessageQuotaConsumption(); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "push without to",
			send: func(t *testing.T, e *env) {
				e.raw(t, http.MethodPost, "/v2/bot/message/push", `{"messages":[{"type":"text","text":"hi"}]}`, false)
			},
			want: []string{"POST /v2/bot/message/push", "request: body", `"to"`},
		},
		{
			name: "message of an unknown type",
			send: func(t *testing.T, e *env) {
				e.raw(t, http.MethodPost, "/v2/bot/message/push", `{"to":"`+e.friend+`","messages":[{"type":"txt","text":"hi"}]}`, false)
			},
			want: []string{"POST /v2/bot/message/push", "/messages/0", "txt"},
		},
		{
			// An SDK trap the emulator lets through: FlexMessage's MarshalJSON has a pointer
			// receiver, so a value loses the container's "type" and LINE would answer 400.
			name: "flex message as a value through the SDK",
			send: func(t *testing.T, e *env) {
				msg := messaging_api.FlexMessage{AltText: "card", Contents: messaging_api.FlexBubble{}}
				_, _ = e.api.PushMessage(&messaging_api.PushMessageRequest{To: e.friend, Messages: []messaging_api.MessageInterface{msg}}, "")
			},
			want: []string{"POST /v2/bot/message/push", "/messages/0/contents", `type ""`},
		},
		{
			name: "retry key that is not a UUID",
			send: func(t *testing.T, e *env) {
				// linesim answers 400 as LINE does; the check must say so on its own.
				_, _ = e.api.PushMessage(&messaging_api.PushMessageRequest{To: e.friend, Messages: text("hi")}, "job-42")
			},
			want: []string{"POST /v2/bot/message/push", `parameter "X-Line-Retry-Key" in header`},
		},
		{
			name: "relative image URL",
			send: func(t *testing.T, e *env) {
				e.raw(t, http.MethodPost, "/v2/bot/message/validate/push",
					`{"messages":[{"type":"image","originalContentUrl":"/a.png","previewImageUrl":"https://example.com/a.png"}]}`, false)
			},
			want: []string{"/messages/0/originalContentUrl", "absolute"},
		},
		{
			name: "no bearer token",
			send: func(t *testing.T, e *env) {
				e.raw(t, http.MethodGet, "/v2/bot/profile/"+e.friend, "", true)
			},
			want: []string{"GET /v2/bot/profile/", "Authorization: Bearer"},
		},
		{
			name: "path LINE does not have",
			send: func(t *testing.T, e *env) {
				e.raw(t, http.MethodGet, "/v2/bot/message/quota/remaining", "", false)
			},
			want: []string{"GET /v2/bot/message/quota/remaining", "no such operation"},
		},
		{
			// An injected fault's answer is the test's choice, not the emulator's, so only the
			// request is checked: a valid push answered with an HTML error page passes.
			name: "valid push answered by a fault",
			send: func(t *testing.T, e *env) {
				e.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 1, Status: http.StatusOK, Body: []byte("<html>")})
				_, _ = e.api.PushMessage(&messaging_api.PushMessageRequest{To: e.friend, Messages: text("hi")}, "")
			},
		},
		{
			name: "invalid push answered by a fault",
			send: func(t *testing.T, e *env) {
				e.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 1, Status: http.StatusInternalServerError})
				e.raw(t, http.MethodPost, "/v2/bot/message/push", `{"to":"`+e.friend+`"}`, false)
			},
			want: []string{"POST /v2/bot/message/push", `"messages"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEnv(t)
			tt.send(t, e)
			reqs := e.sim.Requests()
			if len(reqs) == 0 {
				t.Fatal("the emulator recorded no requests")
			}
			rec := &recordingTB{TB: t}
			lineopenapi.CheckRequests(rec, reqs)
			got := rec.errors()
			if len(tt.want) == 0 {
				for _, g := range got {
					t.Errorf("unexpected mismatch: %s", g)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d mismatches, want 1:\n%s", len(got), strings.Join(got, "\n"))
			}
			for _, w := range tt.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("mismatch %q does not mention %q", got[0], w)
				}
			}
			if tok := e.sim.ChannelToken(); strings.Contains(got[0], tok) {
				t.Errorf("mismatch %q contains the channel token", got[0])
			}
		})
	}
}

// TestCheckResponses feeds hand-made records, since the emulator is not supposed to give the
// wrong answers this must catch.
func TestCheckResponses(t *testing.T) {
	push := func(status int, response string, fault bool) linesim.Request {
		return linesim.Request{
			Method:   http.MethodPost,
			Path:     "/v2/bot/message/push",
			Header:   http.Header{"Authorization": {"Bearer secret-token"}, "Content-Type": {"application/json"}},
			Body:     []byte(`{"to":"U0123456789abcdef0123456789abcdef","messages":[{"type":"text","text":"hi"}]}`),
			Status:   status,
			Response: []byte(response),
			Fault:    fault,
		}
	}
	tests := []struct {
		name string
		req  linesim.Request
		want string // substring of the single error expected; empty means none
	}{
		{"valid answer", push(200, `{"sentMessages":[{"id":"1","quoteToken":"q"}]}`, false), ""},
		{"required field missing", push(200, `{}`, false), `"sentMessages" is missing`},
		{"invented field", push(200, `{"sentMessages":[{"id":"1","sentAt":1}]}`, false), "/sentMessages/0/sentAt: property not defined"},
		{"not JSON", push(200, `<html>`, false), "response 200"},
		{"status LINE does not answer", push(202, `{}`, false), "status is not supported"},
		{"bad answer from an injected fault", push(200, `<html>`, true), ""},
		{"error answers are not checked", push(500, `<html>`, false), ""},
		{"client left during an injected delay", push(0, ``, true), ""},
		{"method LINE does not have", linesim.Request{Method: http.MethodDelete, Path: "/v2/bot/message/push", Header: http.Header{"Authorization": {"Bearer secret-token"}}, Status: 405}, "no such operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			lineopenapi.CheckRequests(rec, []linesim.Request{tt.req})
			got := rec.errors()
			if tt.want == "" {
				for _, g := range got {
					t.Errorf("unexpected mismatch: %s", g)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Errorf("got %q, want one mismatch mentioning %q", got, tt.want)
			}
			for _, g := range got {
				if strings.Contains(g, "secret-token") {
					t.Errorf("mismatch %q contains the bearer token", g)
				}
			}
		})
	}
}

// TestSDKNullsAreTheOnlyTolerance shows that the customAggregationUnits allowance is narrow: the
// SDK's null passes, but a wrong non-null value in the same field is still reported.
func TestSDKNullsAreTheOnlyTolerance(t *testing.T) {
	e := mustEnv(t)
	e.raw(t, http.MethodPost, "/v2/bot/message/push",
		`{"to":"`+e.friend+`","messages":[{"type":"text","text":"hi"}],"customAggregationUnits":"unit"}`, false)
	rec := &recordingTB{TB: t}
	lineopenapi.CheckRequests(rec, e.sim.Requests())
	got := rec.errors()
	if len(got) != 1 || !strings.Contains(got[0], "customAggregationUnits") {
		t.Errorf("got %q, want one mismatch about customAggregationUnits", got)
	}
}

// TestEmulatorTourMatchesSpec drives the emulator through the SDK calls it implements beyond the
// bot's own, so that its answers are held to LINE's spec even before the bot uses them.
func TestEmulatorTourMatchesSpec(t *testing.T) {
	e := mustEnv(t)
	blob, err := messaging_api.NewMessagingApiBlobAPI(e.sim.ChannelToken(), messaging_api.WithBlobEndpoint(e.url))
	if err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err = e.api.GetBotInfo()
	must("bot info", err)
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hook.Close)
	_, err = e.api.SetWebhookEndpoint(&messaging_api.SetWebhookEndpointRequest{Endpoint: hook.URL})
	must("set webhook endpoint", err)
	_, err = e.api.GetWebhookEndpoint()
	must("get webhook endpoint", err)
	_, err = e.api.TestWebhookEndpoint(&messaging_api.TestWebhookEndpointRequest{})
	must("test webhook endpoint", err)
	_, err = e.api.PushMessage(&messaging_api.PushMessageRequest{To: e.friend, Messages: variety()}, "")
	must("push of every kind the emulator renders", err)
	_, err = e.api.ValidateReply(&messaging_api.ValidateMessageRequest{Messages: text("hi")})
	must("validate reply", err)
	_, err = e.api.ValidateMulticast(&messaging_api.ValidateMessageRequest{Messages: text("hi")})
	must("validate multicast", err)
	_, err = e.api.ValidateBroadcast(&messaging_api.ValidateMessageRequest{Messages: text("hi")})
	must("validate broadcast", err)
	_, err = e.api.Multicast(&messaging_api.MulticastRequest{To: []string{e.friend}, Messages: text("hi")}, "")
	must("multicast", err)
	_, err = e.api.Broadcast(&messaging_api.BroadcastRequest{Messages: text("hi")}, "")
	must("broadcast", err)
	_, err = e.api.ValidatePush(&messaging_api.ValidateMessageRequest{Messages: text("hi")})
	must("validate push", err)

	menu := &messaging_api.RichMenuRequest{
		Size:        &messaging_api.RichMenuSize{Width: 2500, Height: 843},
		Selected:    false,
		Name:        "main",
		ChatBarText: "Menu",
		Areas: []messaging_api.RichMenuArea{{
			Bounds: &messaging_api.RichMenuBounds{X: 0, Y: 0, Width: 2500, Height: 843},
			Action: messaging_api.PostbackAction{Label: "settings", Data: "action=settings"},
		}},
	}
	_, err = e.api.ValidateRichMenuObject(menu)
	must("validate rich menu", err)
	created, err := e.api.CreateRichMenu(menu)
	must("create rich menu", err)
	id := created.RichMenuId
	_, err = blob.SetRichMenuImage(id, "image/png", bytes.NewReader(pngImage(t)))
	must("upload image", err)
	res, err := blob.GetRichMenuImage(id)
	must("download image", err)
	res.Body.Close()
	_, err = e.api.GetRichMenu(id)
	must("get rich menu", err)
	_, err = e.api.GetRichMenuList()
	must("list rich menus", err)
	_, err = e.api.CreateRichMenuAlias(&messaging_api.CreateRichMenuAliasRequest{RichMenuAliasId: "main", RichMenuId: id})
	must("create alias", err)
	_, err = e.api.GetRichMenuAlias("main")
	must("get alias", err)
	_, err = e.api.UpdateRichMenuAlias("main", &messaging_api.UpdateRichMenuAliasRequest{RichMenuId: id})
	must("update alias", err)
	_, err = e.api.GetRichMenuAliasList()
	must("list aliases", err)
	_, err = e.api.LinkRichMenuIdToUsers(&messaging_api.RichMenuBulkLinkRequest{RichMenuId: id, UserIds: []string{e.friend}})
	must("bulk link", err)
	_, err = e.api.UnlinkRichMenuIdFromUsers(&messaging_api.RichMenuBulkUnlinkRequest{UserIds: []string{e.friend}})
	must("bulk unlink", err)
	_, err = e.api.SetDefaultRichMenu(id)
	must("set default", err)
	_, err = e.api.GetDefaultRichMenuId()
	must("get default", err)
	_, err = e.api.LinkRichMenuIdToUser(e.friend, id)
	must("link", err)
	_, err = e.api.GetRichMenuIdOfUser(e.friend)
	must("get user's menu", err)
	_, err = e.api.UnlinkRichMenuIdFromUser(e.friend)
	must("unlink", err)
	_, err = e.api.CancelDefaultRichMenu()
	must("cancel default", err)
	_, err = e.api.DeleteRichMenuAlias("main")
	must("delete alias", err)
	_, err = e.api.DeleteRichMenu(id)
	must("delete rich menu", err)

	lineopenapi.CheckRequests(t, e.sim.Requests())
}

// pngImage is a rich menu image of the size the tour's menu declares.
func pngImage(tb testing.TB) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, image.NewGray(image.Rect(0, 0, 2500, 843))); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// variety is one message of each kind the SDK models differently: a text with quick reply, a
// sticker, an image, a buttons template and a flex bubble. Template and flex messages must be
// pointers: their MarshalJSON, which fills in the nested "type", has a pointer receiver, so a
// value in a []MessageInterface goes out with "template":{"type":""} (see TestCheckRequests).
func variety() []messaging_api.MessageInterface {
	return []messaging_api.MessageInterface{
		messaging_api.TextMessage{Text: "hi", QuickReply: &messaging_api.QuickReply{Items: []messaging_api.QuickReplyItem{
			{Type: "action", Action: messaging_api.MessageAction{Label: "yes", Text: "yes"}},
		}}},
		messaging_api.StickerMessage{PackageId: "446", StickerId: "1988"},
		messaging_api.ImageMessage{OriginalContentUrl: "https://example.com/a.png", PreviewImageUrl: "https://example.com/a.png"},
		&messaging_api.TemplateMessage{AltText: "menu", Template: &messaging_api.ButtonsTemplate{
			Text:    "choose",
			Actions: []messaging_api.ActionInterface{messaging_api.PostbackAction{Label: "settings", Data: "action=settings"}},
		}},
		&messaging_api.FlexMessage{AltText: "card", Contents: &messaging_api.FlexBubble{
			Body: &messaging_api.FlexBox{Layout: messaging_api.FlexBoxLAYOUT_VERTICAL, Contents: []messaging_api.FlexComponentInterface{
				messaging_api.FlexText{Text: "hello"},
			}},
		}},
	}
}
