package bot

import (
	"context"
	"fmt"

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
		return true, b.message(ctx, e, ev.ReplyToken)
	default:
		// LINE adds event types without notice; what the bot does not know it leaves alone.
		return false, nil
	}
}

// follow remembers the user as reachable in their language and welcomes them. The language
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
	return b.reply(ctx, e, replyToken, textsFor(lang).welcome)
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

// message answers anything a user writes with the help text in their language.
func (b *Bot) message(ctx context.Context, e *event, replyToken string) error {
	if e.Source.UserID == "" {
		return nil
	}
	return b.reply(ctx, e, replyToken, textsFor(b.language(ctx, e)).help)
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

// reply sends text with the event's reply token, unless the event came in standby mode, where
// another channel answers the chat.
func (b *Bot) reply(ctx context.Context, e *event, replyToken, text string) error {
	if e.standby() || replyToken == "" {
		return nil
	}
	res, err := b.line.Reply(ctx, replyToken, []messaging_api.MessageInterface{
		messaging_api.TextMessage{Text: text},
	})
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	b.eventLog(e).Debug("replied", "line_request_id", res.RequestID)
	return nil
}
