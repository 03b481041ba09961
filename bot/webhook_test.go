package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/bot"
	"github.com/taipei-doit/ecardbot/linesim"
)

func TestFollowWelcomesInTheProfileLanguage(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	tests := []struct {
		name     string
		language string // the LINE profile's
		want     string // start of the welcome
		wantLang string
	}{
		{name: "Chinese profile", language: "zh-TW", want: "歡迎加入臺北市政府 @taipei", wantLang: ecardbot.LangZhTW},
		{name: "English profile", language: "en", want: "Welcome to Taipei City Government @taipei", wantLang: ecardbot.LangEn},
		{name: "Japanese profile gets Chinese", language: "ja", want: "歡迎加入", wantLang: ecardbot.LangZhTW},
		{name: "no profile language", language: "", want: "歡迎加入", wantLang: ecardbot.LangZhTW},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := h.mustFriend(t, tt.language)
			inbox := h.sim.Inbox(id)
			if len(inbox) != 1 || inbox[0].Via != "reply" || !strings.HasPrefix(inbox[0].Text, tt.want) {
				t.Fatalf("inbox = %+v, want one reply starting %q", inbox, tt.want)
			}
			u, err := h.users.FindLineUser(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !u.Following || u.Language != tt.wantLang {
				t.Errorf("user = %+v, want following in %s", u, tt.wantLang)
			}
		})
	}
}

func TestUnfollowMakesUnreachableAndRefollowReachable(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.mustFriend(t, "zh-TW")

	delivered(t)(h.sim.Unfollow(ctx, id))
	h.drain(t)
	if u, err := h.users.FindLineUser(ctx, id); err != nil || u.Following {
		t.Fatalf("after unfollow: user %+v, err %v; want not following", u, err)
	}
	if got := len(h.sim.Inbox(id)); got != 1 {
		t.Errorf("unfollow was answered: inbox has %d messages, want the welcome only", got)
	}

	d := delivered(t)(h.sim.Follow(ctx, id))
	h.drain(t)
	if !d.Events[0].Follow.IsUnblocked {
		t.Error("emulator did not mark the refollow as an unblock")
	}
	if u, err := h.users.FindLineUser(ctx, id); err != nil || !u.Following {
		t.Fatalf("after refollow: user %+v, err %v; want following", u, err)
	}
	if got := len(h.sim.Inbox(id)); got != 2 {
		t.Errorf("inbox has %d messages, want a welcome per follow", got)
	}
}

func TestTextGetsHelpInTheUsersLanguage(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	for lang, want := range map[string]string{"zh-TW": "這裡是臺北市「到離校訊息通知」", "en": "This is Taipei City's school arrival notice service"} {
		id := h.mustFriend(t, lang)
		delivered(t)(h.sim.SendText(ctx, id, "我的孩子到校了嗎？"))
		h.drain(t)
		inbox := h.sim.Inbox(id)
		if len(inbox) != 2 || !strings.HasPrefix(inbox[1].Text, want) {
			t.Errorf("%s: inbox = %+v, want the welcome then help starting %q", lang, inbox, want)
		}
	}
}

func TestDuplicatesAndRedeliveriesActOnce(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.mustUser(t, "zh-TW")
	ev := h.followEvent(id)

	// The same event twice in one body, again in a second body, then as LINE's redelivery.
	delivered(t)(h.sim.SendEvents(ctx, ev, ev))
	delivered(t)(h.sim.SendEvents(ctx, ev))
	h.drain(t)
	delivered(t)(h.sim.Redeliver(ctx, ev.WebhookEventID))
	h.drain(t)

	if got := h.replies(); got != 1 {
		t.Errorf("LINE accepted %d replies, want 1", got)
	}
	if got := h.eventCount(t, "follow", "duplicate"); got != 3 {
		t.Errorf("duplicates counted = %v, want 3", got)
	}
}

func TestEventsOfOneUserAreHandledInTimestampOrder(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.mustUser(t, "zh-TW")
	follow := h.followEvent(id)
	unfollow := h.sim.NewEvent("unfollow", id, false)
	unfollow.Timestamp = follow.Timestamp + 1000

	delivered(t)(h.sim.SendEvents(ctx, unfollow, follow)) // LINE does not guarantee order
	h.drain(t)
	if u, err := h.users.FindLineUser(ctx, id); err != nil || u.Following {
		t.Fatalf("user %+v, err %v; want not following: the unfollow is newer", u, err)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{cfg: bot.Config{MaxBodyBytes: 64 << 10}})
	ctx := context.Background()
	id := h.mustUser(t, "zh-TW")
	ev := h.followEvent(id)
	good, err := json.Marshal(map[string]any{"destination": h.sim.BotUserID(), "events": []any{ev}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		body      []byte
		signature string // "" leaves the header out; "sign" signs body correctly
		want      int
	}{
		{name: "missing signature", body: good, signature: "", want: http.StatusBadRequest},
		{name: "wrong signature", body: good, signature: linesim.Signature("another secret", good), want: http.StatusBadRequest},
		{name: "signature not base64", body: good, signature: "not base64!", want: http.StatusBadRequest},
		{name: "malformed JSON, valid signature", body: []byte(`{"destination":"U1","events":[`), signature: "sign", want: http.StatusBadRequest},
		{name: "no events field", body: []byte(`{"destination":"U1"}`), signature: "sign", want: http.StatusBadRequest},
		{name: "events not an array", body: []byte(`{"events":{"type":"follow"}}`), signature: "sign", want: http.StatusBadRequest},
		{name: "body over the cap", body: bytes.Repeat([]byte(" "), 64<<10+1), signature: "sign", want: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.signature
			if sig == "sign" {
				sig = linesim.Signature(h.sim.ChannelSecret(), tt.body)
			}
			d, _ := h.sim.SendRawSigned(ctx, tt.body, sig)
			if got := d.Attempts[0].Status; got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
		})
	}
	h.drain(t)
	if _, err := h.users.FindLineUser(ctx, id); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
		t.Errorf("FindLineUser after refused bodies: err = %v, want ENOTFOUND", err)
	}
	if got := h.replies(); got != 0 {
		t.Errorf("LINE accepted %d replies to refused bodies, want 0", got)
	}
}

func TestLINEsDocumentedSignatureIsAccepted(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{sim: linesim.Options{ChannelSecret: "8c570fa6dd201bb328f1c1eac23a96d8"}})
	body := []byte(`{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}`)
	d, _ := h.sim.SendRawSigned(context.Background(), body, "GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs=")
	if got := d.Attempts[0].Status; got != http.StatusOK {
		t.Errorf("status = %d, want 200 for LINE's example", got)
	}
	delivered(t)(h.sim.CheckConnectivity(context.Background()))
}

func TestUnknownAndMalformedEventsAreIgnoredOthersHandled(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.mustFollower(t, "zh-TW")
	follow := h.followEvent(id)
	followJSON, err := json.Marshal(follow)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Appendf(nil, `{"destination":%q,"events":[
		{"type":"edit","mode":"active","timestamp":1,"webhookEventId":"01JUNKNOWNTYPE0000000000000","source":{"type":"user","userId":%q},"deliveryContext":{"isRedelivery":false},"newField":{"x":1}},
		{"type":"accountLink","mode":"active","timestamp":2,"webhookEventId":"01JFAILEDLINK00000000000000","deliveryContext":{"isRedelivery":false},"link":{"result":"failed","nonce":"abcdefghijklmnop"}},
		{"type":"follow","mode":"active","timestamp":3},
		"not an event",
		{"type":"message","mode":"active","timestamp":4,"webhookEventId":"01JBADSOURCE000000000000000","source":"nonsense"},
		%s]}`, h.sim.BotUserID(), id, followJSON)
	delivered(t)(h.sim.SendRaw(ctx, body))
	h.drain(t)

	if inbox := h.sim.Inbox(id); len(inbox) != 1 {
		t.Errorf("inbox = %+v, want the welcome of the one good event", inbox)
	}
	if got := h.eventCount(t, "other", "ignored"); got != 1 {
		t.Errorf("unknown types ignored = %v, want 1", got)
	}
	if got := h.eventCount(t, "malformed", "ignored"); got != 3 {
		t.Errorf("malformed events ignored = %v, want 3", got)
	}
}

func TestStandbyEventsAreRecordedButNotAnswered(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.mustUser(t, "zh-TW")
	ev := h.sim.NewEvent("follow", id, false)
	ev.Mode, ev.Follow = "standby", &linesim.FollowDetail{}
	delivered(t)(h.sim.SendEvents(ctx, ev))
	h.drain(t)
	if u, err := h.users.FindLineUser(ctx, id); err != nil || !u.Following {
		t.Errorf("user %+v, err %v; want following", u, err)
	}
	if got := len(h.sim.RequestsTo(linesim.RouteReply)); got != 0 {
		t.Errorf("%d reply requests in standby mode, want 0", got)
	}
}

// A failing event is logged and its claim released, the webhook still answers 200 and the
// other events of the batch are handled; a later redelivery of the failed one acts.
func TestOneFailingEventDoesNotFailTheBatch(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	a, b := h.mustFollower(t, "zh-TW"), h.mustFollower(t, "zh-TW")
	evA, evB := h.followEvent(a), h.followEvent(b)
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/reply", Times: 1, Status: http.StatusInternalServerError})

	delivered(t)(h.sim.SendEvents(ctx, evA, evB))
	h.drain(t)
	failed, ok := evA, len(h.sim.Inbox(b)) == 1
	if len(h.sim.Inbox(a)) == 1 {
		failed, ok = evB, len(h.sim.Inbox(b)) == 0
	}
	if !ok {
		t.Fatalf("inboxes: a=%d b=%d, want exactly one welcome", len(h.sim.Inbox(a)), len(h.sim.Inbox(b)))
	}
	if got := h.eventCount(t, "follow", "failed"); got != 1 {
		t.Errorf("failed events = %v, want 1", got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, `"msg":"webhook event failed"`) || !strings.Contains(logs, failed.WebhookEventID) {
		t.Errorf("the failure was not logged with its webhook event id")
	}

	delivered(t)(h.sim.Redeliver(ctx, failed.WebhookEventID))
	h.drain(t)
	if got := len(h.sim.Inbox(failed.Source.UserID)); got != 1 {
		t.Errorf("after redelivery the failed user has %d messages, want the welcome", got)
	}
}

func TestAnswersInTimeWhileLINEIsSlow(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{cfg: bot.Config{AnswerWithin: 200 * time.Millisecond}})
	id := h.mustUser(t, "zh-TW")
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/reply", Times: 1, Delay: 2 * time.Second})

	d := delivered(t)(h.sim.Follow(context.Background(), id))
	if got := d.Attempts[0].Duration; got >= time.Second {
		t.Errorf("webhook answered after %s, want well inside LINE's 2 s", got)
	}
	h.drain(t) // the reply finishes in the background
	if got := len(h.sim.Inbox(id)); got != 1 {
		t.Errorf("inbox has %d messages after drain, want the welcome", got)
	}
}

func TestRedisAwayStillHandlesEvents(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	h := mustHarness(t, harnessOptions{redisURL: "redis://" + mr.Addr()})
	mr.Close() // Redis goes away after start

	id := h.mustFriend(t, "zh-TW")
	if got := len(h.sim.Inbox(id)); got != 1 {
		t.Errorf("inbox has %d messages, want the welcome although Redis is away", got)
	}
	if !strings.Contains(h.logs.String(), "webhook event claim unavailable") {
		t.Error("the missing dedupe was not logged")
	}
}

func TestDatabaseAwayAnswers200AndReleasesTheClaim(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.mustUser(t, "zh-TW")
	h.db.Close()

	d := delivered(t)(h.sim.Follow(ctx, id))
	h.drain(t)
	if got := len(h.sim.Inbox(id)); got != 0 {
		t.Errorf("inbox has %d messages, want none: the follow was not recorded", got)
	}
	claimed, err := h.kv.Redis().Exists(ctx, h.kv.Key("webhook-event", d.Events[0].WebhookEventID)).Result()
	if err != nil || claimed != 0 {
		t.Errorf("claim still held (exists=%d, err=%v); a redelivery could not act", claimed, err)
	}
}

func TestLogsCarryNoMessageTextNamesOrTokens(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.mustFriend(t, "zh-TW")
	const secretText = "我的身分證字號是A123456789"
	d := delivered(t)(h.sim.SendText(ctx, id, secretText))
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/reply", Times: 1, Status: http.StatusBadRequest})
	delivered(t)(h.sim.SendText(ctx, id, secretText))
	if d, _ := h.sim.SendRaw(ctx, []byte(`{"events":[{"type":"message","text":"`+secretText+`"`)); d.Attempts[0].Status != http.StatusBadRequest {
		t.Errorf("truncated body: status %d, want 400", d.Attempts[0].Status)
	}
	h.drain(t)

	logs := h.logs.String()
	for _, leak := range []string{secretText, "A123456789", "王小明", d.Events[0].ReplyToken, h.sim.ChannelToken()} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q", leak)
		}
	}
	if !strings.Contains(logs, d.Events[0].WebhookEventID) {
		t.Error("logs do not carry the webhook event id")
	}
}
