package linesim

import (
	"context"
	"errors"
	"fmt"
)

// System notes in a conversation, in the chat page's two languages.
const (
	noteFollow     = "已加入好友 Added as friend"
	noteUnblock    = "已解除封鎖 Unblocked"
	noteUnfollow   = "已封鎖 Blocked"
	noteLinkOK     = "帳號連結完成 Account linked"
	noteLinkFailed = "帳號連結失敗 Account link failed"
)

// friendLocked returns the user if they are a friend, else ErrUnknownUser or ErrNotFriend:
// LINE delivers no messages or postbacks from users who blocked the bot.
func (s *Server) friendLocked(userID string) (*user, error) {
	u := s.users[userID]
	if u == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownUser, userID)
	}
	if !u.Friend {
		return nil, fmt.Errorf("%w: %s", ErrNotFriend, userID)
	}
	return u, nil
}

// Follow makes the user a friend and sends a follow event with a reply token;
// follow.isUnblocked is true when the user had followed before. Returns ErrUnknownUser or
// ErrAlreadyFriend without sending anything; ErrDeliveryFailed (with the Delivery) when the bot
// did not answer 2xx, although the user is a friend either way.
func (s *Server) Follow(ctx context.Context, userID string) (Delivery, error) {
	s.mu.Lock()
	u := s.users[userID]
	if u == nil || u.Friend {
		s.mu.Unlock()
		if u == nil {
			return Delivery{}, fmt.Errorf("%w: %s", ErrUnknownUser, userID)
		}
		return Delivery{}, fmt.Errorf("%w: %s", ErrAlreadyFriend, userID)
	}
	ev := s.newEventLocked("follow", userID, true)
	ev.Follow = &FollowDetail{IsUnblocked: u.everFollowed}
	u.Friend, u.everFollowed = true, true
	note := noteFollow
	if ev.Follow.IsUnblocked {
		note = noteUnblock
	}
	s.addEntryLocked(u, Entry{From: "system", Text: note})
	s.mu.Unlock()
	return s.deliverEvents(ctx, []Event{ev}, true)
}

// Unfollow blocks the bot: the user stops being a friend and an unfollow event (which has no
// reply token) is sent. Returns ErrUnknownUser or ErrNotFriend without sending anything.
func (s *Server) Unfollow(ctx context.Context, userID string) (Delivery, error) {
	s.mu.Lock()
	u, err := s.friendLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Delivery{}, err
	}
	u.Friend = false
	ev := s.newEventLocked("unfollow", userID, false)
	s.addEntryLocked(u, Entry{From: "system", Text: noteUnfollow})
	s.mu.Unlock()
	return s.deliverEvents(ctx, []Event{ev}, true)
}

// SendText sends a text message event from the user, with a message ID, quote token and reply
// token. The user must be a friend.
func (s *Server) SendText(ctx context.Context, userID, text string) (Delivery, error) {
	if text == "" {
		return Delivery{}, errors.New("send text: empty text")
	}
	s.mu.Lock()
	u, err := s.friendLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Delivery{}, err
	}
	ev := s.newEventLocked("message", userID, true)
	ev.Message = &MessageContent{Type: "text", ID: newMessageID(), Text: text, QuoteToken: newQuoteToken()}
	s.addEntryLocked(u, Entry{From: "user", Text: text})
	s.mu.Unlock()
	return s.deliverEvents(ctx, []Event{ev}, true)
}

// Postback sends a postback event from the user with data and optional params (date, time,
// datetime, newRichMenuAliasId, status). The user must be a friend.
func (s *Server) Postback(ctx context.Context, userID, data string, params map[string]string) (Delivery, error) {
	return s.postback(ctx, userID, data, params, "")
}

// postback sends a postback event; a non-empty displayText is shown as the user's message.
func (s *Server) postback(ctx context.Context, userID, data string, params map[string]string, displayText string) (Delivery, error) {
	s.mu.Lock()
	u, err := s.friendLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Delivery{}, err
	}
	ev := s.newEventLocked("postback", userID, true)
	ev.Postback = &PostbackContent{Data: data, Params: params}
	if displayText != "" {
		s.addEntryLocked(u, Entry{From: "user", Text: displayText})
	}
	s.mu.Unlock()
	return s.deliverEvents(ctx, []Event{ev}, true)
}

// AccountLink sends an accountLink event with result "ok" or "failed" and the nonce. An ok event
// comes from the user, who must be a friend, and has a reply token; a failed one has neither a
// source nor a reply token, as on LINE, and userID only chooses whose chat shows the failure
// (it may be empty). Tests of the whole dialog use CompleteAccountLink instead.
func (s *Server) AccountLink(ctx context.Context, userID, result, nonce string) (Delivery, error) {
	s.mu.Lock()
	ev, err := s.accountLinkEventLocked(userID, result, nonce)
	s.mu.Unlock()
	if err != nil {
		return Delivery{}, err
	}
	return s.deliverEvents(ctx, []Event{ev}, true)
}

func (s *Server) accountLinkEventLocked(userID, result, nonce string) (Event, error) {
	switch result {
	case "ok":
		u, err := s.friendLocked(userID)
		if err != nil {
			return Event{}, err
		}
		ev := s.newEventLocked("accountLink", userID, true)
		ev.Link = &LinkContent{Result: "ok", Nonce: nonce}
		s.addEntryLocked(u, Entry{From: "system", Text: noteLinkOK})
		return ev, nil
	case "failed":
		ev := s.newEventLocked("accountLink", "", false)
		ev.Link = &LinkContent{Result: "failed", Nonce: nonce}
		if u := s.users[userID]; u != nil {
			s.addEntryLocked(u, Entry{From: "system", Text: noteLinkFailed})
		}
		return ev, nil
	default:
		return Event{}, fmt.Errorf("account link result %q: want ok or failed", result)
	}
}

// Tap performs an action as the user's tap would: a postback sends a postback event (its
// displayText appears as the user's message), a message action sends its text, a datetime
// picker sends a postback with params (pass {"date": "2026-01-31"} or "time"/"datetime"), and a
// richmenuswitch switches the user's rich menu and sends its postback. URI, clipboard, camera and
// location actions happen on the phone only: Tap returns an empty Delivery and no error.
func (s *Server) Tap(ctx context.Context, userID string, a Action, params map[string]string) (Delivery, error) {
	switch a.Type {
	case "postback":
		return s.postback(ctx, userID, a.Data, nil, a.DisplayText)
	case "message":
		return s.SendText(ctx, userID, a.Text)
	case "datetimepicker":
		return s.postback(ctx, userID, a.Data, params, "")
	case "richmenuswitch":
		return s.RichMenuSwitch(ctx, userID, a.RichMenuAliasID, a.Data)
	case "uri", "clipboard", "camera", "cameraRoll", "location":
		return Delivery{}, nil
	default:
		return Delivery{}, fmt.Errorf("tap %q action: not an action type", a.Type)
	}
}

// RichMenuSwitch is a tap on a richmenuswitch area: on success the alias's menu becomes the
// user's per-user menu (so later default changes stop reaching them) and a postback is sent with
// params newRichMenuAliasId and status SUCCESS; otherwise status is RICHMENU_ALIAS_ID_NOTFOUND or
// RICHMENU_NOTFOUND and the menu stays.
func (s *Server) RichMenuSwitch(ctx context.Context, userID, aliasID, data string) (Delivery, error) {
	s.mu.Lock()
	u, err := s.friendLocked(userID)
	if err != nil {
		s.mu.Unlock()
		return Delivery{}, err
	}
	params := map[string]string{}
	menuID, ok := s.aliases[aliasID]
	switch {
	case !ok:
		params["status"] = "RICHMENU_ALIAS_ID_NOTFOUND"
	case s.menus[menuID] == nil:
		params["status"] = "RICHMENU_NOTFOUND"
	default:
		params["status"] = "SUCCESS"
		params["newRichMenuAliasId"] = aliasID
		u.richMenu = menuID
	}
	ev := s.newEventLocked("postback", userID, true)
	ev.Postback = &PostbackContent{Data: data, Params: params}
	s.mu.Unlock()
	return s.deliverEvents(ctx, []Event{ev}, true)
}
