package push

import (
	"strings"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"

	ecardbot "github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/lineapi"
)

// maskRune replaces the hidden characters of a child's name. It is the same "○" in every
// language so that a parent sees the same masked name in LINE, e-mail and history pages.
const maskRune = '○'

// MaskName hides part of a child's name, so that a notice seen over a shoulder, in a lock-screen
// preview or in a forwarded e-mail does not name the child in full, while the guardian can still
// tell which child it is about. The rules:
//
//   - One character: unchanged (nothing can be hidden without hiding everything).
//   - Two characters: the first kept, the second masked: 王明 → 王○.
//   - Three or more characters without spaces: the first and last kept, every one in between
//     masked: 王小明 → 王○明, 歐陽小明 → 歐○○明, Amy → A○y. Middle dots of transliterated or
//     indigenous names count as characters, so they are masked too.
//   - Several words separated by spaces (names written in Latin letters): the last word, usually
//     the family name, is kept; every other word keeps its first letter and masks the rest:
//     Amy Chen → A○○ Chen, Mary Jane Watson → M○○○ J○○○ Watson.
//
// Leading, trailing and repeated spaces are dropped. An empty name stays empty.
func MaskName(name string) string {
	words := strings.Fields(name)
	switch len(words) {
	case 0:
		return ""
	case 1:
		return maskWord(words[0])
	}
	for i, w := range words[:len(words)-1] {
		r := []rune(w)
		words[i] = string(r[0]) + strings.Repeat(string(maskRune), len(r)-1)
	}
	return strings.Join(words, " ")
}

func maskWord(w string) string {
	r := []rune(w)
	switch len(r) {
	case 1:
		return w
	case 2:
		return string(r[0]) + string(maskRune)
	}
	return string(r[0]) + strings.Repeat(string(maskRune), len(r)-2) + string(r[len(r)-1])
}

// noticeText is everything a notice says, in one language, shared by the LINE message and the
// e-mail so that both channels tell a parent the same thing.
type noticeText struct {
	Kind     string // 到校 / Arrived at school
	Tag      string // the subject's bracketed tag: 到校通知 / Arrived
	Child    string // masked name
	School   string
	Time     string // HH:MM in Asia/Taipei
	Date     string // the school day, shown before Time in the card and the e-mail
	Headline string // one sentence: "王○明 07:42 到校"
	Tagged   string // the headline behind its tag: the e-mail subject and the LINE altText
	Next     string // what to do next; only for 未到校
	// Labels of the card's rows.
	ChildLabel, SchoolLabel, TimeLabel string
	Footer                             string
	Color                              string // accent colour of the kind
}

// noticeVars are the parts of a notice that change from one delivery of a kind and language to
// the next. The LINE message is encoded once per shape with placeholders for them
// (message_template.go), so any change to these values, such as a cut to a length limit, must
// happen here, before they reach the layout.
type noticeVars struct {
	Child  string // masked name
	School string
	Date   string // the school day, in the language's format
	Time   string // HH:MM in Asia/Taipei
}

func varsOf(d ecardbot.DeliveryDetail) noticeVars {
	at := d.At.In(ecardbot.Taipei)
	date := "2006/01/02"
	if d.Language == ecardbot.LangEn {
		date = "Mon 2 Jan 2006"
	}
	return noticeVars{
		Child:  MaskName(d.ChildName),
		School: d.SchoolName,
		Date:   at.Format(date),
		Time:   at.Format("15:04"),
	}
}

// texts builds the notice in the guardian's language.
func texts(d ecardbot.DeliveryDetail) noticeText {
	return textsOf(d.Kind, d.Language, varsOf(d))
}

// textsOf builds the notice of a kind in a language around its variable parts. Anything but
// English is Traditional Chinese, the service's own language (ecardbot.LanguageOf does the same
// for LINE profiles). A kind other than the three would be a bug upstream; it reads as 未到校,
// the notice that asks a parent to check, rather than as a reassuring 到校.
func textsOf(kind ecardbot.NoticeKind, lang string, v noticeVars) noticeText {
	t := noticeText{
		Child:  v.Child,
		School: v.School,
		Time:   v.Time,
		Date:   v.Date,
		Color:  kindColor(kind),
	}
	if lang == ecardbot.LangEn {
		t.ChildLabel, t.SchoolLabel, t.TimeLabel = "Child", "School", "Time"
		t.Footer = "Taipei school e-card notice"
		switch kind {
		case ecardbot.KindArrived:
			t.Kind, t.Tag = "Arrived at school", "Arrived"
			t.Headline = t.Child + " arrived at school at " + t.Time
		case ecardbot.KindLeft:
			t.Kind, t.Tag = "Left school", "Left"
			t.Headline = t.Child + " left school at " + t.Time
		default:
			t.Kind, t.Tag = "Not arrived", "Not arrived"
			t.Headline = t.Child + " had not arrived at school by " + t.Time
			t.Next = "If your child is on leave, no action is needed. Otherwise please contact the school as soon as possible to confirm where your child is."
		}
		t.Tagged = "[" + t.Tag + "] " + t.Headline
		return t
	}
	t.ChildLabel, t.SchoolLabel, t.TimeLabel = "學生", "學校", "時間"
	t.Footer = "臺北市學生悠遊卡到離校通知"
	switch kind {
	case ecardbot.KindArrived:
		t.Kind = "到校"
	case ecardbot.KindLeft:
		t.Kind = "離校"
	default:
		t.Kind = "未到校"
		t.Next = "若孩子今日請假，請忽略本通知；否則請儘速與學校聯繫，確認孩子的行蹤。"
	}
	t.Tag = t.Kind + "通知"
	t.Headline = t.Child + " " + t.Time + " " + t.Kind
	if kind == ecardbot.KindAbsent {
		t.Headline = t.Child + " 截至 " + t.Time + " 未到校"
	}
	t.Tagged = "【" + t.Tag + "】" + t.Headline
	return t
}

// kindColor gives each kind its own accent so a parent can tell the notices apart at a glance;
// 未到校 is red because it is the one that may need action.
func kindColor(k ecardbot.NoticeKind) string {
	switch k {
	case ecardbot.KindArrived:
		return "#1E8E3E"
	case ecardbot.KindLeft:
		return "#1A73E8"
	}
	return "#D93025"
}

// LINEMessage is the LINE message for one delivery: a flex bubble with the kind, the child's
// masked name, the school and the time in Asia/Taipei, plus what to do next for 未到校. The
// altText is what lock screens and the chat list show, so it carries the whole headline.
//
// It is the message of sdkLINEMessage, already encoded as JSON (a lineapi.RawMessage): encoding
// the SDK's model types was a tenth of the CPU of a push, so each shape of message is encoded
// once and then filled in (message_template.go). The bytes sent are the same as the SDK's own
// encoding, which the tests check. A delivery of a shape no template covers gets the SDK's
// message itself.
//
// The message is built anew on every call, and is the same for the same delivery, so a retry
// with the same X-Line-Retry-Key sends an identical body, as LINE requires.
func LINEMessage(d ecardbot.DeliveryDetail) messaging_api.MessageInterface {
	v := varsOf(d)
	tpl, ok := lineTemplateFor(d.Kind, d.Language, v)
	if !ok {
		return sdkLINEMessage(d)
	}
	return lineapi.RawMessage{Type: "flex", JSON: tpl.fill(v)}
}

// sdkLINEMessage is LINEMessage built with the SDK's model types, which encode it: the reference
// that the templates are made of and that the tests compare LINEMessage with.
//
// It returns a pointer: FlexMessage's MarshalJSON, which fills in the nested "type" fields, has a
// pointer receiver, so a value inside []MessageInterface would reach LINE with empty types.
func sdkLINEMessage(d ecardbot.DeliveryDetail) *messaging_api.FlexMessage {
	return flexMessage(texts(d))
}

// flexMessage lays out a notice as a flex message. It is the only place the card's layout is
// written down, for the SDK-built message and for the templates alike.
func flexMessage(t noticeText) *messaging_api.FlexMessage {
	body := []messaging_api.FlexComponentInterface{
		row(t.ChildLabel, t.Child),
		row(t.SchoolLabel, t.School),
		row(t.TimeLabel, t.Date+" "+t.Time),
	}
	if t.Next != "" {
		body = append(body,
			&messaging_api.FlexSeparator{Margin: "lg"},
			&messaging_api.FlexText{Text: t.Next, Wrap: true, Size: "sm", Color: "#555555", Margin: "lg"},
		)
	}
	return &messaging_api.FlexMessage{
		AltText: t.Tagged,
		Contents: &messaging_api.FlexBubble{
			Header: &messaging_api.FlexBox{
				Layout:          messaging_api.FlexBoxLAYOUT_VERTICAL,
				BackgroundColor: t.Color,
				Contents: []messaging_api.FlexComponentInterface{
					&messaging_api.FlexText{Text: t.Kind, Weight: messaging_api.FlexTextWEIGHT_BOLD, Size: "xl", Color: "#FFFFFF"},
				},
			},
			Body: &messaging_api.FlexBox{
				Layout:   messaging_api.FlexBoxLAYOUT_VERTICAL,
				Spacing:  "md",
				Contents: body,
			},
			Footer: &messaging_api.FlexBox{
				Layout: messaging_api.FlexBoxLAYOUT_VERTICAL,
				Contents: []messaging_api.FlexComponentInterface{
					&messaging_api.FlexText{Text: t.Footer, Size: "xs", Color: "#999999", Wrap: true},
				},
			},
		},
	}
}

// row is one "label  value" line of the card. Flex needs a positive flex on both texts for the
// label column to keep its width; the SDK sends flex 0 when unset.
func row(label, value string) *messaging_api.FlexBox {
	return &messaging_api.FlexBox{
		Layout:  messaging_api.FlexBoxLAYOUT_HORIZONTAL,
		Spacing: "md",
		Contents: []messaging_api.FlexComponentInterface{
			&messaging_api.FlexText{Text: label, Size: "sm", Color: "#888888", Flex: 2},
			&messaging_api.FlexText{Text: orDash(value), Size: "sm", Color: "#111111", Flex: 5, Wrap: true},
		},
	}
}

// orDash stands in for an empty value: LINE rejects a flex text without text, and a notice with
// a missing school name is still worth sending.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
