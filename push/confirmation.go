package push

import (
	"bytes"
	"context"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"

	ecardbot "github.com/taipei-doit/ecardbot"
)

// confirmationText is what the confirmation mail says in one language.
type confirmationText struct {
	Lang     string
	Subject  string
	Body     string // why the mail came and what the link does
	Action   string // the button's label
	Ignore   string // what to do if the parent did not ask for it
	Link     string
	Footer   string
	NoReply  string
	Validity string
}

func confirmationTexts(lang, link string) confirmationText {
	if lang == ecardbot.LangEn {
		return confirmationText{
			Lang: "en", Link: link,
			Subject:  "Confirm your e-mail address for school arrival notices",
			Body:     "You asked to receive Taipei school arrival and departure notices at this address. Open the link below to confirm it; no notice is mailed here until you do.",
			Action:   "Confirm this address",
			Validity: "The link works once, for 24 hours.",
			Ignore:   "If you did not ask for this, ignore this message: nothing will be sent to you.",
			Footer:   "Taipei school e-card notice",
			NoReply:  "This message was sent automatically; please do not reply.",
		}
	}
	return confirmationText{
		Lang: "zh-Hant-TW", Link: link,
		Subject:  "請確認您的電子郵件地址（到離校通知）",
		Body:     "您在臺北市學生到離校通知設定了這個電子郵件地址。請開啟下方連結確認；確認之前，我們不會寄送任何通知到這個地址。",
		Action:   "確認這個地址",
		Validity: "連結僅能使用一次，24 小時內有效。",
		Ignore:   "若您沒有提出申請，請忽略本信，我們不會寄送任何通知給您。",
		Footer:   "臺北市學生悠遊卡到離校通知",
		NoReply:  "本信件由系統自動發送，請勿直接回覆。",
	}
}

const confirmationTextBody = `{{.Subject}}

{{.Body}}

{{.Link}}

{{.Validity}}
{{.Ignore}}

--
{{.Footer}}
{{.NoReply}}
`

const confirmationHTMLBody = `<!DOCTYPE html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Subject}}</title></head>
<body style="margin:0;padding:16px;background:#f4f4f4;font-family:sans-serif;color:#111">
<table role="presentation" width="100%" style="max-width:480px;margin:0 auto;background:#fff;border-collapse:collapse">
<tr><td style="padding:16px;background:#06c755;color:#fff;font-size:20px;font-weight:bold">{{.Subject}}</td></tr>
<tr><td style="padding:16px;font-size:15px">
<p style="margin:0 0 16px">{{.Body}}</p>
<p style="margin:0 0 16px"><a href="{{.Link}}" style="display:inline-block;padding:12px 20px;background:#06c755;color:#fff;text-decoration:none;border-radius:8px;font-weight:bold">{{.Action}}</a></p>
<p style="margin:0 0 8px;color:#555">{{.Validity}}</p>
<p style="margin:0;color:#555">{{.Ignore}}</p>
</td></tr>
<tr><td style="padding:12px 16px;color:#999;font-size:12px">{{.Footer}}<br>{{.NoReply}}</td></tr>
</table>
</body>
</html>
`

var (
	confirmationTextTmpl = texttemplate.Must(texttemplate.New("confirmation").Parse(confirmationTextBody))
	confirmationHTMLTmpl = htmltemplate.Must(htmltemplate.New("confirmation").Parse(confirmationHTMLBody))
)

// SendConfirmation mails the link that confirms to as a guardian's address, in lang. It is the
// only mail ever sent to an unconfirmed address, and it says so, so that a person whose address
// was typed by someone else knows to ignore it. Errors never contain the address or the link
// (which is a secret); classify them with IsPermanentMailError.
func (m *Mailer) SendConfirmation(ctx context.Context, to, lang, link string) error {
	t := confirmationTexts(lang, link)
	var text, html bytes.Buffer
	if err := confirmationTextTmpl.Execute(&text, t); err != nil {
		return fmt.Errorf("render confirmation mail: %w", err)
	}
	if err := confirmationHTMLTmpl.Execute(&html, t); err != nil {
		return fmt.Errorf("render confirmation mail: %w", err)
	}
	msg, err := m.newMsg(to, t.Subject, "", text.String(), html.String())
	if err != nil {
		return err
	}
	if err := m.client.DialAndSendWithContext(ctx, msg); err != nil {
		return classify(ctx, err)
	}
	m.log.DebugContext(ctx, "confirmation mail sent")
	return nil
}
