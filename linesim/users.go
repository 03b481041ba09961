package linesim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Errors of the emulator's own methods (not of the emulated API, which answers HTTP statuses).
var (
	ErrUnknownUser      = errors.New("linesim: unknown user")
	ErrNotFriend        = errors.New("linesim: user is not a friend of the bot")
	ErrAlreadyFriend    = errors.New("linesim: user is already a friend of the bot")
	ErrNoWebhookURL     = errors.New("linesim: no webhook URL set")
	ErrDeliveryFailed   = errors.New("linesim: webhook delivery failed")
	ErrUnknownEvent     = errors.New("linesim: unknown webhook event")
	ErrLinkTokenUnknown = errors.New("linesim: unknown link token")
	ErrLinkTokenExpired = errors.New("linesim: link token expired")
	ErrLinkTokenUsed    = errors.New("linesim: link token already used")
	ErrLinkTokenUser    = errors.New("linesim: link token was issued for another user")
)

// User is a LINE user known to the emulator.
type User struct {
	ID            string `json:"id"` // "U" + 32 lowercase hex; empty in AddUser means generate one
	DisplayName   string `json:"displayName"`
	Language      string `json:"language"`      // profile language such as "zh-TW" or "en"; empty leaves it out of the profile
	PictureURL    string `json:"pictureUrl"`    // optional
	StatusMessage string `json:"statusMessage"` // optional
	// Friend is whether the user follows the bot. AddUser with Friend true makes a friend without
	// a follow event, for users who followed before the test began; afterwards Follow and
	// Unfollow change it.
	Friend bool `json:"friend"`
}

type user struct {
	User
	everFollowed bool   // a later follow is an unblock
	richMenu     string // per-user rich menu; empty means the default applies
	convo        []Entry
}

// Entry is one line of a user's conversation with the bot, as the chat page shows it.
type Entry struct {
	Seq     int64     `json:"seq"`               // increases across all users; the page polls with it
	At      time.Time `json:"at"`                // emulated time
	From    string    `json:"from"`              // "user", "bot" or "system" (follow, block, link results)
	Text    string    `json:"text"`              // what the user typed, a system note, or the bot message's rendering
	Message *Message  `json:"message,omitempty"` // the bot's message, for From "bot"
}

// Message is a message the bot sent to a user.
type Message struct {
	ID        string          `json:"id"`        // the message ID returned in sentMessages
	At        time.Time       `json:"at"`        // emulated time of sending
	Via       string          `json:"via"`       // "reply", "push", "multicast" or "broadcast"
	RequestID string          `json:"requestId"` // x-line-request-id of the API call
	Type      string          `json:"type"`      // message type: "text", "flex", "template", …
	Raw       json.RawMessage `json:"raw"`       // the message object exactly as the bot sent it
	Text      string          `json:"text"`      // plain rendering: text, or altText plus "[label] uri" lines
	Lines     []string        `json:"lines"`     // visible texts of a flex or template, for the chat page
	Actions   []Action        `json:"actions"`   // buttons and quick replies, in order
}

// AddUser creates the user, or updates the profile of an existing one, and returns it as stored.
// An empty ID is generated; a malformed one is an error. Friend true makes the user a friend at
// once; Friend false never unfriends an existing user (Unfollow does).
func (s *Server) AddUser(u User) (User, error) {
	if u.ID == "" {
		u.ID = NewUserID()
	}
	if !ValidUserID(u.ID) {
		return User{}, fmt.Errorf("add user %q: not U followed by 32 lowercase hex digits", u.ID)
	}
	if u.DisplayName == "" {
		u.DisplayName = "LINE user " + u.ID[1:5]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.users[u.ID]; old != nil {
		old.DisplayName, old.Language = u.DisplayName, u.Language
		old.PictureURL, old.StatusMessage = u.PictureURL, u.StatusMessage
		if u.Friend && !old.Friend {
			old.Friend, old.everFollowed = true, true
		}
		return old.User, nil
	}
	s.users[u.ID] = &user{User: u, everFollowed: u.Friend}
	s.userOrder = append(s.userOrder, u.ID)
	return u, nil
}

// Users returns every known user in the order they were added.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.userOrder))
	for _, id := range s.userOrder {
		out = append(out, s.users[id].User)
	}
	return out
}

// User returns one user. Returns ErrUnknownUser for an ID the emulator has not seen.
func (s *Server) User(id string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		return User{}, ErrUnknownUser
	}
	return u.User, nil
}

// userForSendLocked finds the recipient of a push. With AutoFriend an unseen, well-formed ID
// becomes a friend, so benchmarks need not register every user first.
func (s *Server) userForSendLocked(id string) *user {
	u := s.users[id]
	if u == nil && s.opts.AutoFriend && ValidUserID(id) {
		u = &user{User: User{ID: id, DisplayName: "LINE user " + id[1:5], Friend: true}, everFollowed: true}
		s.users[id] = u
		s.userOrder = append(s.userOrder, id)
	}
	return u
}

// addEntryLocked appends to a conversation and wakes every waiter.
func (s *Server) addEntryLocked(u *user, e Entry) Entry {
	s.seq++
	e.Seq = s.seq
	e.At = s.now()
	u.convo = append(u.convo, e)
	if lim := s.opts.ConversationLimit; lim > 0 && len(u.convo) > lim {
		u.convo = append(u.convo[:0:0], u.convo[len(u.convo)-lim:]...)
	}
	s.notifyLocked()
	return e
}

// notifyLocked wakes WaitInbox and the chat page's long polls after any change they show:
// conversations, friendship, rich menus.
func (s *Server) notifyLocked() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

// Inbox returns the messages the bot has sent to the user (reply, push, multicast, broadcast),
// oldest first. Messages to a user who had blocked the bot are not there: LINE drops them.
func (s *Server) Inbox(userID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inboxLocked(userID)
}

func (s *Server) inboxLocked(userID string) []Message {
	u := s.users[userID]
	if u == nil {
		return nil
	}
	var out []Message
	for _, e := range u.convo {
		if e.Message != nil {
			out = append(out, *e.Message)
		}
	}
	return out
}

// WaitInbox blocks until the user's inbox holds at least n messages and returns them, or
// returns ctx's error with what arrived so far.
func (s *Server) WaitInbox(ctx context.Context, userID string, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs := s.inboxLocked(userID)
		ch := s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, fmt.Errorf("wait for %d messages to %s, have %d: %w", n, userID, len(msgs), ctx.Err())
		}
	}
}

// Conversation returns the user's conversation entries with Seq greater than after.
func (s *Server) Conversation(userID string, after int64) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conversationLocked(userID, after)
}

func (s *Server) conversationLocked(userID string, after int64) []Entry {
	u := s.users[userID]
	if u == nil {
		return nil
	}
	i, _ := slices.BinarySearchFunc(u.convo, after+1, func(e Entry, seq int64) int { return cmp.Compare(e.Seq, seq) })
	out := slices.Clone(u.convo[i:])
	for j := range out {
		if m := out[j].Message; m != nil { // a message is shared by the recipients of a multicast
			cp := *m
			out[j].Message = &cp
		}
	}
	return out
}

// waitConversation is the chat page's long poll: it returns entries after seq as soon as there
// are some, or none when ctx ends or the server closes.
func (s *Server) waitConversation(ctx context.Context, userID string, after int64) []Entry {
	for {
		s.mu.Lock()
		entries := s.conversationLocked(userID, after)
		ch := s.changed
		s.mu.Unlock()
		if len(entries) > 0 {
			return entries
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		}
	}
}

func (s *Server) handleProfile(c *call) {
	s.mu.Lock()
	u := s.users[c.r.PathValue("userId")]
	var p map[string]string
	if u != nil && u.Friend {
		p = map[string]string{"userId": u.ID, "displayName": u.DisplayName}
		for k, v := range map[string]string{"pictureUrl": u.PictureURL, "statusMessage": u.StatusMessage, "language": u.Language} {
			if v != "" {
				p[k] = v
			}
		}
	}
	s.mu.Unlock()
	if p == nil {
		// LINE answers 404 alike for unknown users and for users who blocked the bot.
		c.fail(http.StatusNotFound, "Not found")
		return
	}
	c.json(http.StatusOK, p)
}

func (s *Server) handleBotInfo(c *call) {
	c.json(http.StatusOK, map[string]string{
		"userId": s.botUserID, "basicId": "@linesim", "displayName": "linesim bot",
		"chatMode": "bot", "markAsReadMode": "auto",
	})
}
