package bot

import (
	"context"
	"fmt"
	"net/url"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"

	"github.com/taipei-doit/ecardbot"
)

// handle acts on one event and reports whether it was of a kind the bot acts on.
func (b *Bot) handle(ctx context.Context, e *event) (bool, error) {
	switch ev := e.typed.(type) {
	case webhook.FollowEvent:
		return true, b.follow(ctx, e, ev.ReplyToken)
	case webhook.UnfollowEvent:
		return true, b.unfollow(ctx, e)
	case webhook.MessageEvent:
		return true, b.message(ctx, e, ev)
	case webhook.PostbackEvent:
		return true, b.postback(ctx, e, ev)
	case webhook.AccountLinkEvent:
		return true, b.accountLink(ctx, e, ev)
	default:
		// LINE adds event types without notice; what the bot does not know it leaves alone.
		return false, nil
	}
}

// follow remembers the user as reachable in their language and welcomes them, with the
// quick-reply button that starts linking, the first thing a new parent has to do. The language
// comes from the profile; when LINE cannot tell, the user is answered in Chinese.
func (b *Bot) follow(ctx context.Context, e *event, replyToken string) error {
	userID := e.Source.UserID
	if userID == "" {
		return nil // a group or room source: the service talks to parents one to one
	}
	lang := ecardbot.LangZhTW
	if p, err := b.line.Profile(ctx, userID); err != nil {
		b.eventLog(e).Warn("profile unavailable; answering in zh-TW", "error", err)
	} else {
		lang = ecardbot.LanguageOf(p.Language)
	}
	if err := b.users.Follow(ctx, userID, lang, e.time()); err != nil {
		return fmt.Errorf("record follow: %w", err)
	}
	t := textsFor(lang)
	return b.reply(ctx, e, replyToken, text(t.welcome, postbackAction(t.linkLabel, "action="+actionLink)))
}

// unfollow means the user blocked the bot: no LINE push may go to them until they return.
func (b *Bot) unfollow(ctx context.Context, e *event) error {
	if e.Source.UserID == "" {
		return nil
	}
	if err := b.users.Unfollow(ctx, e.Source.UserID, e.time()); err != nil {
		return fmt.Errorf("record unfollow: %w", err)
	}
	return nil
}

// message answers the keywords of design.md §2.1 with their action, anything else with help.
func (b *Bot) message(ctx context.Context, e *event, ev webhook.MessageEvent) error {
	if e.Source.UserID == "" || e.standby() {
		return nil
	}
	action := actionHelp
	if m, ok := ev.Message.(webhook.TextMessageContent); ok {
		action = keywordAction(m.Text)
	}
	return b.act(ctx, e, ev.ReplyToken, action, "")
}

// postback runs a rich-menu or quick-reply action, its data a URL query (action=…&…); a
// postback of no chat action gets no answer.
func (b *Bot) postback(ctx context.Context, e *event, ev webhook.PostbackEvent) error {
	if e.Source.UserID == "" || e.standby() || ev.Postback == nil {
		return nil
	}
	q, err := url.ParseQuery(ev.Postback.Data)
	if err != nil {
		q = url.Values{}
	}
	switch action := q.Get("action"); action {
	case actionLink, actionSettings, actionHistory, actionHelp, actionUnlink:
		return b.act(ctx, e, ev.ReplyToken, action, q.Get("confirm"))
	default:
		// Rich-menu tab switches and actions of later versions: nothing to answer.
		b.eventLog(e).Debug("postback without a chat action")
		return nil
	}
}

// language is the user's recorded language; a user the bot has not met yet gets Chinese.
func (b *Bot) language(ctx context.Context, e *event) string {
	u, err := b.users.FindLineUser(ctx, e.Source.UserID)
	if err != nil {
		if ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			b.eventLog(e).Warn("line user unavailable; answering in zh-TW", "error", err)
		}
		return ecardbot.LangZhTW
	}
	return u.Language
}

// reply sends messages with the event's reply token, unless the event came in standby mode,
// where another channel answers the chat.
func (b *Bot) reply(ctx context.Context, e *event, replyToken string, msgs ...messaging_api.MessageInterface) error {
	if e.standby() || replyToken == "" {
		return nil
	}
	res, err := b.line.Reply(ctx, replyToken, msgs)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	b.eventLog(e).Debug("replied", "line_request_id", res.RequestID)
	return nil
}
