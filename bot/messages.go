package bot

import (
	"strings"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
)

// Every message and action is a pointer: the SDK's MarshalJSON, which writes the "type" fields,
// has a pointer receiver, so a value inside []MessageInterface would reach LINE without them.

// text is a text message, with quick-reply buttons when actions are given.
func text(s string, quick ...messaging_api.ActionInterface) messaging_api.MessageInterface {
	m := &messaging_api.TextMessage{Text: s}
	if len(quick) > 0 {
		m.QuickReply = &messaging_api.QuickReply{}
		for _, a := range quick {
			m.QuickReply.Items = append(m.QuickReply.Items, messaging_api.QuickReplyItem{Type: "action", Action: a})
		}
	}
	return m
}

// button is a buttons template with one button that opens uri. The alt text, shown in
// notifications and the chat list, is the text without the URL: the URL may be a signed link.
func button(s, label, uri string) messaging_api.MessageInterface {
	return &messaging_api.TemplateMessage{
		AltText: s,
		Template: &messaging_api.ButtonsTemplate{
			Text:    s,
			Actions: []messaging_api.ActionInterface{&messaging_api.UriAction{Label: label, Uri: uri}},
		},
	}
}

// postbackAction is a quick-reply button that sends data as a postback and shows label as the
// user's message.
func postbackAction(label, data string) messaging_api.ActionInterface {
	return &messaging_api.PostbackAction{Label: label, Data: data, DisplayText: label}
}

// Actions, as postback data (action=…) and as keywords.
const (
	actionLink     = "link"
	actionSettings = "settings"
	actionHistory  = "history"
	actionHelp     = "help"
	actionUnlink   = "unlink"
)

var keywords = map[string]string{
	"綁定": actionLink, "綁定臺北通": actionLink, "綁定台北通": actionLink, "link": actionLink,
	"設定": actionSettings, "通知設定": actionSettings, "settings": actionSettings,
	"紀錄": actionHistory, "到離校紀錄": actionHistory, "history": actionHistory,
	"說明": actionHelp, "服務說明": actionHelp, "help": actionHelp,
	"解除綁定": actionUnlink, "unlink": actionUnlink,
}

// keywordAction maps a message to its action; any other text gets help.
func keywordAction(msg string) string {
	if a, ok := keywords[strings.ToLower(strings.TrimSpace(msg))]; ok {
		return a
	}
	return actionHelp
}
