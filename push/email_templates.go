package push

import (
	"bytes"
	htmltemplate "html/template"
	texttemplate "text/template"

	ecardbot "github.com/taipei-doit/ecardbot"
)

// The e-mail bodies live in the binary, like every other template of the service, so a
// deployment is one file. Both bodies say the same as the LINE card: parents who read mail as
// plain text, or whose client blocks HTML, lose nothing. The HTML template escapes the school
// name, which comes from an imported file.

const textBodyZh = `{{.Kind}}

{{.Headline}}

{{.ChildLabel}}：{{.Child}}
{{.SchoolLabel}}：{{.School}}
{{.TimeLabel}}：{{.Date}} {{.Time}}
{{with .Next}}
{{.}}
{{end}}
--
{{.Footer}}
本信件由系統自動發送，請勿直接回覆。
`

const textBodyEn = `{{.Kind}}

{{.Headline}}

{{.ChildLabel}}: {{.Child}}
{{.SchoolLabel}}: {{.School}}
{{.TimeLabel}}: {{.Date}} {{.Time}}
{{with .Next}}
{{.}}
{{end}}
--
{{.Footer}}
This message was sent automatically; please do not reply.
`

const htmlBody = `<!DOCTYPE html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Headline}}</title></head>
<body style="margin:0;padding:16px;background:#f4f4f4;font-family:sans-serif;color:#111">
<table role="presentation" width="100%" style="max-width:480px;margin:0 auto;background:#fff;border-collapse:collapse">
<tr><td style="padding:16px;background:{{.Color}};color:#fff;font-size:22px;font-weight:bold">{{.Kind}}</td></tr>
<tr><td style="padding:16px">
<table role="presentation" style="border-collapse:collapse;font-size:15px">
<tr><td style="padding:4px 16px 4px 0;color:#888">{{.ChildLabel}}</td><td style="padding:4px 0">{{.Child}}</td></tr>
<tr><td style="padding:4px 16px 4px 0;color:#888">{{.SchoolLabel}}</td><td style="padding:4px 0">{{.School}}</td></tr>
<tr><td style="padding:4px 16px 4px 0;color:#888">{{.TimeLabel}}</td><td style="padding:4px 0">{{.Date}} {{.Time}}</td></tr>
</table>
{{with .Next}}<p style="margin:16px 0 0;padding:12px;background:#fdecea;color:#5f2120;font-size:15px">{{.}}</p>{{end}}
</td></tr>
<tr><td style="padding:12px 16px;color:#999;font-size:12px">{{.Footer}}<br>{{.NoReply}}</td></tr>
</table>
</body>
</html>
`

var (
	textTmplZh = texttemplate.Must(texttemplate.New("zh").Parse(textBodyZh))
	textTmplEn = texttemplate.Must(texttemplate.New("en").Parse(textBodyEn))
	htmlTmpl   = htmltemplate.Must(htmltemplate.New("html").Parse(htmlBody))
)

// renderEmail returns the plain-text and HTML bodies of a notice.
func renderEmail(t noticeText, lang string) (text, html string, err error) {
	data := struct {
		noticeText
		Lang, NoReply string
	}{noticeText: t, Lang: "zh-Hant-TW", NoReply: "本信件由系統自動發送，請勿直接回覆。"}
	tt := textTmplZh
	if lang == ecardbot.LangEn {
		tt = textTmplEn
		data.Lang, data.NoReply = "en", "This message was sent automatically; please do not reply."
	}
	var tb, hb bytes.Buffer
	if err := tt.Execute(&tb, data); err != nil {
		return "", "", err
	}
	if err := htmlTmpl.Execute(&hb, data); err != nil {
		return "", "", err
	}
	return tb.String(), hb.String(), nil
}
