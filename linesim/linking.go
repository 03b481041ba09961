package linesim

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"
	"unicode/utf8"
)

const linkTokenLife = 10 * time.Minute

// LinkToken is an account-link token the bot issued for a user.
type LinkToken struct {
	Token     string
	UserID    string
	IssuedAt  time.Time
	ExpiresAt time.Time // 10 minutes after issue
	Used      bool
}

func (s *Server) handleLinkToken(c *call) {
	id := c.r.PathValue("userId")
	if !ValidUserID(id) {
		c.fail(http.StatusBadRequest, "The value for the 'userId' parameter is invalid")
		return
	}
	s.mu.Lock()
	u := s.users[id]
	if u == nil || !u.Friend {
		s.mu.Unlock()
		// LINE documents that the user must be a friend but not the error text; this one is ours.
		c.fail(http.StatusBadRequest, "The user is not a friend of the LINE Official Account")
		return
	}
	now := s.now()
	t := &LinkToken{Token: newLinkToken(), UserID: id, IssuedAt: now, ExpiresAt: now.Add(linkTokenLife)}
	s.linkTokens[t.Token] = t
	s.mu.Unlock()
	c.json(http.StatusOK, map[string]string{"linkToken": t.Token})
}

// LinkTokenInfo returns a link token's state; false for a token never issued.
func (s *Server) LinkTokenInfo(token string) (LinkToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.linkTokens[token]
	if !ok {
		return LinkToken{}, false
	}
	return *t, true
}

// LinkTokens returns the link tokens issued for a user, in no particular order.
func (s *Server) LinkTokens(userID string) []LinkToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LinkToken
	for _, t := range s.linkTokens {
		if t.UserID == userID {
			out = append(out, *t)
		}
	}
	return out
}

// ConsumeLinkToken uses up a link token for userID, as LINE's account-link dialog does. Returns
// ErrLinkTokenUnknown, ErrLinkTokenExpired, ErrLinkTokenUsed, or ErrLinkTokenUser when the
// token was issued for someone else (the token then stays usable by its owner).
func (s *Server) ConsumeLinkToken(token, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumeLinkTokenLocked(token, userID)
}

func (s *Server) consumeLinkTokenLocked(token, userID string) error {
	t := s.linkTokens[token]
	switch {
	case t == nil:
		return ErrLinkTokenUnknown
	case t.Used:
		return ErrLinkTokenUsed
	case !s.now().Before(t.ExpiresAt):
		return ErrLinkTokenExpired
	case t.UserID != userID:
		return ErrLinkTokenUser
	}
	t.Used = true
	return nil
}

// CompleteAccountLink is the user opening LINE's account-link dialog
// (access.line.me/dialog/bot/accountLink?linkToken=…&nonce=…). A valid token issued for this
// user is used up and an "ok" accountLink event with the nonce follows. A token issued for
// another user sends a "failed" event (no source, no reply token): LINE's defence against
// binding an attacker's LINE account to a victim's service account. An unknown, used or expired
// token, or a nonce outside 10–255 characters, returns an error and sends nothing, as LINE only
// shows an error page then.
func (s *Server) CompleteAccountLink(ctx context.Context, userID, linkToken, nonce string) (Delivery, error) {
	if n := utf8.RuneCountInString(nonce); n < 10 || n > 255 {
		return Delivery{}, fmt.Errorf("account link: nonce must have 10 to 255 characters, has %d", n)
	}
	s.mu.Lock()
	result := "ok"
	if err := s.consumeLinkTokenLocked(linkToken, userID); errors.Is(err, ErrLinkTokenUser) {
		result = "failed"
	} else if err != nil {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("account link: %w", err)
	}
	ev, err := s.accountLinkEventLocked(userID, result, nonce)
	s.mu.Unlock()
	if err != nil {
		return Delivery{}, err
	}
	return s.deliverEvents(ctx, []Event{ev}, true)
}

// userCookie names the cookie in which the chat page keeps the LINE user it plays, so that the
// account-link dialog knows who opened it, as the LINE app does.
const userCookie = "linesim_user"

var dialogPage = template.Must(template.New("dialog").Parse(`<!doctype html>
<html lang="zh-TW"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>LINE 帳號連結 Account link</title>
<style>body{font-family:sans-serif;max-width:420px;margin:2em auto;padding:0 1em;color:#222}
.ok{color:#06c755}.err{color:#c00}a{color:#06c755}</style></head>
<body><h1 class="{{.Class}}">{{.Title}}</h1><p>{{.Detail}}</p>
<p><a href="/">回到聊天 Back to the chat</a></p></body></html>`))

type dialogView struct{ Class, Title, Detail string }

// serveAccountLinkDialog stands in for https://access.line.me/dialog/bot/accountLink. Set
// ECARDBOT_LINE_ACCESS_URL to the emulator's URL and the bot's redirect lands here.
func (s *Server) serveAccountLinkDialog(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	show := func(status int, v dialogView) {
		w.WriteHeader(status)
		_ = dialogPage.Execute(w, v)
	}
	ck, err := r.Cookie(userCookie)
	if err != nil || ck.Value == "" {
		show(http.StatusBadRequest, dialogView{"err", "無法連結 Cannot link", "請從聊天頁面選擇使用者後再開啟連結。 Choose a user on the chat page first, then open the link from the chat."})
		return
	}
	q := r.URL.Query()
	d, err := s.CompleteAccountLink(r.Context(), ck.Value, q.Get("linkToken"), q.Get("nonce"))
	switch {
	case err != nil && !errors.Is(err, ErrDeliveryFailed):
		show(http.StatusBadRequest, dialogView{"err", "連結已失效 Link no longer valid", "連結無效、已使用或已逾時，請回到聊天重新開始。 The link is invalid, used or expired; start again from the chat."})
	case len(d.Events) > 0 && d.Events[0].Link.Result == "failed":
		show(http.StatusOK, dialogView{"err", "帳號連結失敗 Account link failed", "這個連結是發給另一位 LINE 使用者的。 This link was issued to another LINE user."})
	default:
		show(http.StatusOK, dialogView{"ok", "帳號連結完成 Account linked", "請回到聊天。 Go back to the chat."})
	}
}
