package linesim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	replyTokenLife      = time.Minute
	redeliveryReplyAge  = 20 * time.Minute // a redelivered event older than this gets no fresh reply window
	maxMulticastTargets = 500
)

type replyToken struct {
	userID  string
	eventAt time.Time
	expires time.Time
	used    bool
}

// issueReplyTokenLocked creates the reply token of an event for userID at the event's time.
func (s *Server) issueReplyTokenLocked(userID string, at time.Time) string {
	tok := newReplyToken()
	s.replyTokens[tok] = &replyToken{userID: userID, eventAt: at, expires: at.Add(replyTokenLife)}
	return tok
}

// refreshReplyTokenLocked gives a redelivered event's unused token one more minute, unless the
// event is older than 20 minutes, as LINE does.
func (s *Server) refreshReplyTokenLocked(tok string) {
	rt := s.replyTokens[tok]
	now := s.now()
	if rt == nil || rt.used || now.Sub(rt.eventAt) >= redeliveryReplyAge {
		return
	}
	if exp := now.Add(replyTokenLife); exp.After(rt.expires) {
		rt.expires = exp
	}
}

// outgoing is a validated message object: its text exactly as the bot sent it, for the inbox,
// and its decoded form, for rendering.
type outgoing struct {
	raw json.RawMessage
	obj map[string]any
}

// outgoingMessages returns the message objects of body, the request body decoded for
// validation. Call it after validation, which guarantees there are some.
//
// The texts come from filling a struct, as the emulator always has: encoding/json matches its
// field in any letter case, the last match winning, so with {"messages":[a],"Messages":[b]}
// the checker sees a and the inbox gets b. Only when no other member name matches "messages"
// are the texts surely those of body["messages"], and the objects are taken from body rather
// than decoded again, which used to cost as much as the rest of a push.
func (c *call) outgoingMessages(body map[string]any) []outgoing {
	var req struct {
		Messages []json.RawMessage `json:"messages"`
	}
	_ = json.Unmarshal(c.body, &req)
	objs, _ := body["messages"].([]any)
	same := len(objs) == len(req.Messages)
	for k := range body {
		if k != "messages" && strings.EqualFold(k, "messages") { // encoding/json's folding
			same = false
		}
	}
	out := make([]outgoing, len(req.Messages))
	for i, raw := range req.Messages {
		out[i].raw = raw
		if same {
			out[i].obj, _ = objs[i].(map[string]any)
		} else {
			_ = json.Unmarshal(raw, &out[i].obj)
		}
	}
	return out
}

// decodeObject parses the body as a JSON object for validation.
func (c *call) decodeObject() (map[string]any, bool) {
	var body map[string]any
	if !c.decode(&body) {
		return nil, false
	}
	if body == nil {
		c.fail(http.StatusBadRequest, "The request body must be a JSON object")
		return nil, false
	}
	return body, true
}

func (s *Server) handleReply(c *call) {
	body, ok := c.decodeObject()
	if !ok {
		return
	}
	ck := checker{textLen: len(c.body)}
	token := ck.str(body, "", "replyToken", true, 1, 0)
	ck.messages(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return
	}
	msgs, sent := s.render("reply", c.id, c.outgoingMessages(body))
	s.mu.Lock()
	rt := s.replyTokens[token]
	if rt == nil || rt.used || s.now().After(rt.expires) {
		s.mu.Unlock()
		c.fail(http.StatusBadRequest, MessageInvalidReplyToken)
		return
	}
	rt.used = true
	var to []*user
	if u := s.users[rt.userID]; u != nil {
		to = append(to, u)
	}
	s.deliverLocked(to, msgs)
	s.mu.Unlock()
	c.json(http.StatusOK, sentMessagesBody{SentMessages: sent})
}

func (s *Server) handlePush(c *call) {
	body, ok := c.decodeObject()
	if !ok {
		return
	}
	ck := checker{textLen: len(c.body)}
	to := ck.str(body, "", "to", true, 1, 0)
	ck.messages(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return
	}
	if !ValidUserID(to) {
		c.fail(http.StatusBadRequest, "The property, 'to', in the request body is invalid (line: -, column: -)")
		return
	}
	msgs, sent := s.render("push", c.id, c.outgoingMessages(body))
	s.mu.Lock()
	u := s.userForSendLocked(to)
	if u == nil {
		s.mu.Unlock()
		// What LINE answers for a user ID issued under another provider.
		c.fail(http.StatusBadRequest, "Failed to send messages")
		return
	}
	var recipients []*user
	if u.Friend { // a user who blocked the bot costs nothing and receives nothing
		if !s.billLocked(1) {
			s.mu.Unlock()
			c.fail(http.StatusTooManyRequests, MessageMonthlyLimit)
			return
		}
		recipients = append(recipients, u)
	}
	s.deliverLocked(recipients, msgs)
	c.sent = sent
	s.mu.Unlock()
	c.json(http.StatusOK, sentMessagesBody{SentMessages: c.sent})
}

func (s *Server) handleMulticast(c *call) {
	body, ok := c.decodeObject()
	if !ok {
		return
	}
	ck := checker{textLen: len(c.body)}
	var ids []string
	for i, v := range ck.arr(body, "", "to", 1, maxMulticastTargets) {
		id, _ := v.(string)
		if !ValidUserID(id) {
			ck.add(idx("to", i), "Invalid user ID")
			continue
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	ck.messages(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return
	}
	msgs, _ := s.render("multicast", c.id, c.outgoingMessages(body))
	s.mu.Lock()
	var recipients []*user
	for _, id := range ids {
		// Unknown IDs and blocked users are skipped silently: multicast reports no per-user result.
		if u := s.userForSendLocked(id); u != nil && u.Friend {
			recipients = append(recipients, u)
		}
	}
	s.billDeliverUnlock(c, recipients, msgs)
}

func (s *Server) handleBroadcast(c *call) {
	body, ok := c.decodeObject()
	if !ok {
		return
	}
	ck := checker{textLen: len(c.body)}
	ck.messages(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return
	}
	msgs, _ := s.render("broadcast", c.id, c.outgoingMessages(body))
	s.mu.Lock()
	var recipients []*user
	for _, id := range s.userOrder {
		if u := s.users[id]; u.Friend {
			recipients = append(recipients, u)
		}
	}
	s.billDeliverUnlock(c, recipients, msgs)
}

// billDeliverUnlock bills and delivers a multicast or broadcast, releases s.mu (held by the
// caller since it chose the recipients) and answers: 429 when the monthly quota is used up,
// else "{}", never an empty body, as the SDK decodes the answer into a map.
func (s *Server) billDeliverUnlock(c *call, recipients []*user, msgs []Message) {
	billed := s.billLocked(len(recipients))
	if billed {
		s.deliverLocked(recipients, msgs)
	}
	s.mu.Unlock()
	if !billed {
		c.fail(http.StatusTooManyRequests, MessageMonthlyLimit)
		return
	}
	c.json(http.StatusOK, struct{}{})
}

// handleValidateMessages serves /v2/bot/message/validate/{push,reply,multicast,narrowcast,broadcast}.
func (s *Server) handleValidateMessages(c *call) {
	if !slices.Contains([]string{"push", "reply", "multicast", "narrowcast", "broadcast"}, c.r.PathValue("kind")) {
		c.fail(http.StatusNotFound, "Not found")
		return
	}
	body, ok := c.decodeObject()
	if !ok {
		return
	}
	ck := checker{textLen: len(c.body)}
	ck.messages(body)
	if len(ck.details) > 0 {
		c.invalid(ck.details)
		return
	}
	c.json(http.StatusOK, struct{}{})
}

// deliverLocked appends the rendered messages to every recipient's conversation.
func (s *Server) deliverLocked(recipients []*user, rendered []Message) {
	for _, u := range recipients {
		if !u.Friend {
			continue
		}
		for _, m := range rendered {
			s.addEntryLocked(u, Entry{From: "bot", Text: m.Text, Message: &m})
		}
	}
}

// render gives each message an ID (and a quote token where LINE gives one) and turns it into
// what a chat shows, before the caller takes s.mu: rendering
// walks every message, and under the lock it made each push wait for all the others.
// It also returns what the API answers about each message (sentMessages).
func (s *Server) render(via, requestID string, msgs []outgoing) ([]Message, []sentMessage) {
	rendered := make([]Message, len(msgs))
	sent := make([]sentMessage, len(msgs))
	for i, out := range msgs {
		m := renderObject(out.raw, out.obj)
		m.ID, m.Via, m.RequestID, m.At = newMessageID(), via, requestID, s.now()
		sent[i].ID = m.ID
		if slices.Contains([]string{"text", "textV2", "sticker", "image", "video"}, m.Type) {
			sent[i].QuoteToken = newQuoteToken()
		}
		rendered[i] = m
	}
	return rendered, sent
}
