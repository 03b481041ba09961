package bot

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/line/line-bot-sdk-go/v8/linebot/webhook"

	"github.com/taipei-doit/ecardbot"
)

// act answers one chat action for the event's user. confirm is the postback's "confirm" value:
// unlinking happens only with "1", after the user confirmed.
func (b *Bot) act(ctx context.Context, e *event, replyToken, action, confirm string) error {
	userID := e.Source.UserID
	t := textsFor(b.language(ctx, e))
	if action != actionLink && action != actionSettings && action != actionHistory && action != actionUnlink {
		return b.reply(ctx, e, replyToken, text(t.help))
	}
	g, err := b.guardians.FindGuardianByLineUser(ctx, userID)
	switch {
	case ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND:
		if action == actionLink {
			return b.replyLink(ctx, e, replyToken, t)
		}
		return b.replyLink(ctx, e, replyToken, t, text(t.notLinked))
	case err != nil:
		return fmt.Errorf("find guardian: %w", err)
	}
	switch action {
	case actionLink:
		return b.replySettings(ctx, e, replyToken, g.ID, ecardbot.SettingsHome, t.alreadyLinked, t.settingsLabel)
	case actionSettings:
		return b.replySettings(ctx, e, replyToken, g.ID, ecardbot.SettingsHome, t.settingsPrompt, t.settingsLabel)
	case actionHistory:
		return b.replySettings(ctx, e, replyToken, g.ID, ecardbot.SettingsHistory, t.historyPrompt, t.historyLabel)
	}
	switch confirm {
	case "1":
		// ENOTFOUND: another tap unlinked the user meanwhile, which is what was asked.
		if _, err := b.linker.Unlink(ctx, userID); err != nil && ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			return err
		}
		return b.reply(ctx, e, replyToken, text(t.unlinked))
	case "0":
		return b.reply(ctx, e, replyToken, text(t.unlinkCancelled))
	}
	return b.reply(ctx, e, replyToken, text(t.unlinkConfirm,
		postbackAction(t.unlinkYes, "action=unlink&confirm=1"),
		postbackAction(t.unlinkNo, "action=unlink&confirm=0")))
}

// replyLink issues a LINE link token for the user and replies with the button that starts
// linking, after the messages given.
func (b *Bot) replyLink(ctx context.Context, e *event, replyToken string, t chatTexts, before ...messaging_api.MessageInterface) error {
	if e.standby() || replyToken == "" {
		return nil // a token nobody sees would only expire
	}
	token, err := b.line.IssueLinkToken(ctx, e.Source.UserID)
	if err != nil {
		return fmt.Errorf("issue link token: %w", err)
	}
	return b.reply(ctx, e, replyToken, append(before, button(t.linkPrompt, t.linkLabel, b.linker.LinkURL(token)))...)
}

// replySettings replies with a button that opens a settings page of the guardian.
func (b *Bot) replySettings(ctx context.Context, e *event, replyToken string, guardianID int64, page ecardbot.SettingsPage, prompt, label string) error {
	if e.standby() || replyToken == "" {
		return nil // a single-use link nobody sees would only expire
	}
	u, err := b.settings.SettingsURL(ctx, guardianID, page)
	if err != nil {
		return fmt.Errorf("settings link: %w", err)
	}
	return b.reply(ctx, e, replyToken, button(prompt, label, u))
}

// accountLink finishes linking. On ok the nonce is used up and the binding made, then the
// parent is sent to add a child; LINE's event is the only proof that the LINE user and the
// TaipeiPASS login belong together. On failed (no source, no reply token) the nonce is used up
// so it can never bind later.
func (b *Bot) accountLink(ctx context.Context, e *event, ev webhook.AccountLinkEvent) error {
	if ev.Link == nil {
		return nil
	}
	log := b.eventLog(e)
	if ev.Link.Result != webhook.LinkContentRESULT_OK {
		err := b.linker.Discard(ctx, ev.Link.Nonce)
		if err != nil && ecardbot.ErrorCode(err) != ecardbot.EFORBIDDEN {
			return err
		}
		log.Info("account link failed at LINE; nonce discarded", "nonce_known", err == nil)
		return nil
	}
	userID := e.Source.UserID
	if userID == "" {
		return nil
	}
	t := textsFor(b.language(ctx, e))
	res, err := b.linker.Complete(ctx, userID, ev.Link.Nonce)
	if ecardbot.ErrorCode(err) == ecardbot.EFORBIDDEN {
		return b.reply(ctx, e, ev.ReplyToken, text(t.linkExpired))
	} else if err != nil {
		return err
	}
	if res.MovedFrom != "" {
		b.tellMovedAway(ctx, e, res.MovedFrom)
	}
	if e.standby() {
		return nil
	}
	u, err := b.settings.SettingsURL(ctx, res.Guardian.ID, ecardbot.SettingsAddChild)
	if err != nil {
		// The link is made: failing the event now would only replay a used nonce.
		log.Error("settings link unavailable after linking", "guardian_id", res.Guardian.ID, "error", err)
		return b.reply(ctx, e, ev.ReplyToken, text(t.linkedNoButton))
	}
	return b.reply(ctx, e, ev.ReplyToken, button(t.linked, t.addChildLabel, u))
}

// tellMovedAway pushes to the LINE user an account was just linked away from: if it was not
// them, they learn at once that someone else holds their TaipeiPASS login. Best effort: the
// link stands either way.
func (b *Bot) tellMovedAway(ctx context.Context, e *event, lineUserID string) {
	lang := ecardbot.LangZhTW
	if u, err := b.users.FindLineUser(ctx, lineUserID); err == nil {
		lang = u.Language
	}
	if _, err := b.line.Push(ctx, uuid.New(), lineUserID, []messaging_api.MessageInterface{text(textsFor(lang).movedAway)}); err != nil {
		b.eventLog(e).Warn("could not tell the previous LINE user that the link moved", "line_user_id", lineUserID, "error", err)
	}
}
