package linesim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
)

func simCall(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return res.StatusCode
}

func TestChatPageIsSelfContained(t *testing.T) {
	_, url, _ := MustStart(t, Options{})
	res, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	page := string(b)
	if res.StatusCode != 200 || !strings.Contains(page, `lang="zh-TW"`) || !strings.Contains(page, "Add friend") {
		t.Fatalf("page: %d %.200s", res.StatusCode, page)
	}
	if external := regexp.MustCompile(`(src|href)="(https?:)?//`).FindString(page); external != "" {
		t.Errorf("page loads an external asset: %s", external)
	}
}

type pollResponse struct {
	Version int64   `json:"version"`
	User    simUser `json:"user"`
	Entries []Entry `json:"entries"`
}

func TestChatFlow(t *testing.T) {
	s, base, _ := MustStart(t, Options{})
	api, _ := MustClient(t, s, base)
	bot := MustBot(t, s)
	// The bot answers every text with a buttons template and every postback with a text.
	bot.SetReact(func(cb *webhook.CallbackRequest) {
		var token string
		var msg messaging_api.MessageInterface
		switch ev := cb.Events[0].(type) {
		case webhook.MessageEvent:
			token = ev.ReplyToken
			msg = messaging_api.TemplateMessage{AltText: "選單 Menu", Template: &messaging_api.ButtonsTemplate{
				Text: "要做什麼？ What next?",
				Actions: []messaging_api.ActionInterface{
					messaging_api.PostbackAction{Label: "設定 Settings", Data: "action=settings", DisplayText: "設定"},
				},
			}}
		case webhook.PostbackEvent:
			token = ev.ReplyToken
			msg = messaging_api.TextMessage{Text: "postback " + ev.Postback.Data}
		default:
			return
		}
		if _, err := api.ReplyMessage(&messaging_api.ReplyMessageRequest{ReplyToken: token, Messages: []messaging_api.MessageInterface{msg}}); err != nil {
			t.Errorf("reply: %v", err)
		}
	})

	var u User
	if st := simCall(t, "POST", base+"/sim/users", map[string]string{"displayName": "Amy", "language": "en"}, &u); st != 200 || !ValidUserID(u.ID) || u.Language != "en" {
		t.Fatalf("create user: %d %+v", st, u)
	}
	var users []User
	simCall(t, "GET", base+"/sim/users", nil, &users)
	if len(users) != 1 || users[0].ID != u.ID {
		t.Errorf("users = %+v", users)
	}
	userURL := base + "/sim/users/" + u.ID
	var result map[string]any
	if simCall(t, "POST", userURL+"/follow", nil, &result); result["ok"] != true {
		t.Fatalf("follow: %v", result)
	}
	if simCall(t, "POST", userURL+"/text", map[string]string{"text": "hi"}, &result); result["ok"] != true {
		t.Fatalf("text: %v", result)
	}

	var p pollResponse
	simCall(t, "GET", userURL+"/poll?after=0", nil, &p)
	if !p.User.Friend || len(p.Entries) != 3 {
		t.Fatalf("poll = %+v", p)
	}
	buttons := p.Entries[2].Message
	if buttons == nil || len(buttons.Actions) != 1 || buttons.Actions[0].Data != "action=settings" {
		t.Fatalf("bot entry = %+v", p.Entries[2])
	}

	// Long poll: waits for the next change, which the tap below causes.
	done := make(chan pollResponse)
	go func() {
		var next pollResponse
		req, _ := http.Get(userURL + "/poll?after=" + strconv.FormatInt(p.Entries[2].Seq, 10) + "&v=" + strconv.FormatInt(p.Version, 10))
		if req != nil {
			_ = json.NewDecoder(req.Body).Decode(&next)
			req.Body.Close()
		}
		done <- next
	}()
	if simCall(t, "POST", userURL+"/tap", map[string]any{"action": buttons.Actions[0]}, &result); result["ok"] != true {
		t.Fatalf("tap: %v", result)
	}
	next := <-done
	if len(next.Entries) == 0 || next.Entries[0].Text != "設定" {
		t.Errorf("long poll = %+v, want the postback's displayText first", next)
	}
	var got []string
	for _, e := range s.Conversation(u.ID, 0) {
		got = append(got, e.From+":"+strings.ReplaceAll(e.Text, "\n", "|"))
	}
	want := []string{
		"system:" + noteFollow, "user:hi", "bot:選單 Menu|[設定 Settings]", "user:設定", "bot:postback action=settings",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conversation (-want +got):\n%s", diff)
	}

	if simCall(t, "POST", userURL+"/unfollow", nil, &result); result["ok"] != true {
		t.Fatalf("unfollow: %v", result)
	}
	if st := simCall(t, "POST", userURL+"/text", map[string]string{"text": "hi"}, &result); st != http.StatusBadRequest {
		t.Errorf("text after block: %d, want 400", st)
	}
	if st := simCall(t, "POST", base+"/sim/users/"+NewUserID()+"/follow", nil, &result); st != http.StatusNotFound {
		t.Errorf("unknown user: %d, want 404", st)
	}
}

func TestChatReportsBotFailure(t *testing.T) {
	s, base, _ := MustStart(t, Options{})
	bot := MustBot(t, s)
	bot.SetStatus(500)
	u, _ := s.AddUser(User{})
	var result map[string]any
	simCall(t, "POST", base+"/sim/users/"+u.ID+"/follow", nil, &result)
	if result["ok"] != false || result["status"] != float64(500) {
		t.Errorf("result = %v, want ok false with status 500", result)
	}
}
