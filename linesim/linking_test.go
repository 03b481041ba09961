package linesim

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"
)

func TestLinkTokens(t *testing.T) {
	s, u, clock := MustStart(t, Options{})
	api, _ := MustClient(t, s, u)
	bot := MustBot(t, s)
	alice, bob := MustFriend(t, s), MustFriend(t, s)
	stranger, _ := s.AddUser(User{})

	if res, _, _ := api.IssueLinkTokenWithHttpInfo(stranger.ID); res.StatusCode != http.StatusBadRequest {
		t.Errorf("link token for a non-friend: %d, want 400", res.StatusCode)
	}
	issue := func(user string) string {
		t.Helper()
		res, err := api.IssueLinkToken(user)
		if err != nil {
			t.Fatal(err)
		}
		return res.LinkToken
	}
	tok := issue(alice)
	info, ok := s.LinkTokenInfo(tok)
	if !ok || info.UserID != alice || info.Used || !info.ExpiresAt.Equal(clock.Now().Add(10*time.Minute)) {
		t.Fatalf("token info = %+v, %v", info, ok)
	}
	if got := s.LinkTokens(alice); len(got) != 1 || got[0].Token != tok {
		t.Errorf("LinkTokens(alice) = %+v", got)
	}

	const nonce = "n0nce-bm9uY2Utb2stMTIzNDU2"
	tests := []struct {
		name       string
		user       string
		token      func() string
		nonce      string
		wantErr    error // nil: a webhook goes out
		wantResult string
	}{
		{"ok", alice, func() string { return tok }, nonce, nil, "ok"},
		{"reused", alice, func() string { return tok }, nonce, ErrLinkTokenUsed, ""},
		{"unknown", alice, func() string { return "nope" }, nonce, ErrLinkTokenUnknown, ""},
		{"expired", alice, func() string { t := issue(alice); clock.Advance(10 * time.Minute); return t }, nonce, ErrLinkTokenExpired, ""},
		{"other user", bob, func() string { return issue(alice) }, nonce, nil, "failed"},
		{"short nonce", alice, func() string { return issue(alice) }, "short", errors.New("any"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(bot.Requests())
			d, err := s.CompleteAccountLink(ctxT(t), tt.user, tt.token(), tt.nonce)
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr.Error() != "any" && !errors.Is(err, tt.wantErr)) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if n := len(bot.Requests()) - before; n != 0 {
					t.Errorf("%d webhooks sent, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reqs := bot.Requests()
			ev, ok := reqs[len(reqs)-1].Parsed.Events[0].(webhook.AccountLinkEvent)
			if !ok || string(ev.Link.Result) != tt.wantResult || ev.Link.Nonce != tt.nonce {
				t.Fatalf("event = %#v, want %s", reqs[len(reqs)-1].Parsed.Events[0], tt.wantResult)
			}
			if tt.wantResult == "failed" && (ev.Source != nil || ev.ReplyToken != "") {
				t.Errorf("failed link has source %v reply token %q", ev.Source, ev.ReplyToken)
			}
			if tt.wantResult == "ok" && (ev.Source.(webhook.UserSource).UserId != tt.user || d.Events[0].ReplyToken == "") {
				t.Errorf("ok link from %v", ev.Source)
			}
		})
	}
	if info, _ := s.LinkTokenInfo(tok); !info.Used {
		t.Error("token not marked used")
	}
}

func TestAccountLinkDialog(t *testing.T) {
	s, base, _ := MustStart(t, Options{})
	api, _ := MustClient(t, s, base)
	bot := MustBot(t, s)
	alice := MustFriend(t, s)
	res, err := api.IssueLinkToken(alice)
	if err != nil {
		t.Fatal(err)
	}
	link := base + "/dialog/bot/accountLink?" + url.Values{"linkToken": {res.LinkToken}, "nonce": {"bm9uY2UtZGlhbG9nLTAx"}}.Encode()
	open := func(cookie string) (int, string) {
		req, _ := http.NewRequest("GET", link, nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "linesim_user", Value: cookie})
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, _ := open(""); status != http.StatusBadRequest {
		t.Errorf("without the chat page's user: %d, want 400", status)
	}
	if status, page := open(alice); status != http.StatusOK || !strings.Contains(page, "Account linked") {
		t.Errorf("dialog: %d %s", status, page)
	}
	if status, page := open(alice); status != http.StatusBadRequest || !strings.Contains(page, "no longer valid") {
		t.Errorf("second use: %d %s", status, page)
	}
	var links int
	for _, r := range bot.Requests() {
		if _, ok := r.Parsed.Events[0].(webhook.AccountLinkEvent); ok {
			links++
		}
	}
	if links != 1 {
		t.Errorf("bot got %d accountLink events, want 1", links)
	}
}
