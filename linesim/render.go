package linesim

import (
	"encoding/json"
	"strings"
)

// Action is a LINE action object (the fields the emulator acts on), as found on template and
// flex buttons, quick replies and rich-menu areas. Tap performs one.
type Action struct {
	Type            string `json:"type"`
	Label           string `json:"label,omitempty"`
	Data            string `json:"data,omitempty"`        // postback, datetimepicker, richmenuswitch
	DisplayText     string `json:"displayText,omitempty"` // postback: shown as the user's message
	Text            string `json:"text,omitempty"`        // message action
	URI             string `json:"uri,omitempty"`         // uri action
	Mode            string `json:"mode,omitempty"`        // datetimepicker: date, time or datetime
	Initial         string `json:"initial,omitempty"`
	Max             string `json:"max,omitempty"`
	Min             string `json:"min,omitempty"`
	RichMenuAliasID string `json:"richMenuAliasId,omitempty"` // richmenuswitch
	ClipboardText   string `json:"clipboardText,omitempty"`
	// QuickReply marks a quick-reply button. It is the emulator's note, not a LINE field.
	QuickReply bool `json:"quickReply,omitempty"`
}

// renderObject turns a validated message object, m decoded from raw, into what a chat shows:
// its visible lines, its buttons and a plain-text form for assertions.
func renderObject(raw json.RawMessage, m map[string]any) Message {
	msg := Message{Raw: raw, Lines: []string{}, Actions: []Action{}}
	msg.Type, _ = m["type"].(string)
	altText, _ := m["altText"].(string)
	switch msg.Type {
	case "text", "textV2":
		t, _ := m["text"].(string)
		msg.Lines = append(msg.Lines, t)
	case "template":
		t, _ := m["template"].(map[string]any)
		msg.Lines, msg.Actions = templateParts(t)
	case "flex":
		var r flexWalk
		r.walk(m["contents"])
		msg.Lines, msg.Actions = r.lines, r.actions
	default:
		msg.Lines = append(msg.Lines, "("+msg.Type+")")
	}
	if qr, ok := m["quickReply"].(map[string]any); ok {
		items, _ := qr["items"].([]any)
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				if a, ok := toAction(im["action"]); ok {
					a.QuickReply = true
					msg.Actions = append(msg.Actions, a)
				}
			}
		}
	}
	msg.Text = plainText(msg, altText)
	return msg
}

// plainText is the message's text, or for other types the altText (else the visible lines)
// followed by one "[label] uri" line per button.
func plainText(msg Message, altText string) string {
	if msg.Type == "text" || msg.Type == "textV2" {
		return msg.Lines[0]
	}
	parts := []string{altText}
	if altText == "" {
		parts = []string{strings.Join(msg.Lines, "\n")}
	}
	for _, a := range msg.Actions {
		label := a.Label
		if label == "" {
			label = a.Type
		}
		line := "[" + label + "]"
		if a.URI != "" {
			line += " " + a.URI
		}
		parts = append(parts, line)
	}
	return strings.Join(parts, "\n")
}

func toAction(v any) (Action, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return Action{}, false
	}
	var a Action
	if json.Unmarshal(mustJSON(m), &a) != nil || a.Type == "" {
		return Action{}, false
	}
	return a, true
}

func templateParts(t map[string]any) (lines []string, actions []Action) {
	lines, actions = []string{}, []Action{}
	addText := func(m map[string]any) {
		for _, k := range []string{"title", "text"} {
			if s, _ := m[k].(string); s != "" {
				lines = append(lines, s)
			}
		}
	}
	addActions := func(m map[string]any) {
		list, _ := m["actions"].([]any)
		for _, v := range list {
			if a, ok := toAction(v); ok {
				actions = append(actions, a)
			}
		}
		if a, ok := toAction(m["action"]); ok { // image carousel columns
			actions = append(actions, a)
		}
	}
	addText(t)
	addActions(t)
	cols, _ := t["columns"].([]any)
	for _, c := range cols {
		if cm, ok := c.(map[string]any); ok {
			addText(cm)
			addActions(cm)
		}
	}
	return lines, actions
}

// flexWalk collects, in document order, the texts of a flex container and the actions of its
// buttons and of any other tappable component that has a label.
type flexWalk struct {
	lines   []string
	actions []Action
}

func (w *flexWalk) walk(v any) {
	switch x := v.(type) {
	case []any:
		for _, c := range x {
			w.walk(c)
		}
	case map[string]any:
		switch x["type"] {
		case "text":
			if t, _ := x["text"].(string); t != "" {
				w.lines = append(w.lines, t)
			} else if spans, ok := x["contents"].([]any); ok {
				var b strings.Builder
				for _, sp := range spans {
					if sm, ok := sp.(map[string]any); ok {
						t, _ := sm["text"].(string)
						b.WriteString(t)
					}
				}
				w.lines = append(w.lines, b.String())
			}
		case "button":
			if a, ok := toAction(x["action"]); ok {
				w.actions = append(w.actions, a)
			}
			return
		}
		if a, ok := toAction(x["action"]); ok && a.Label != "" {
			w.actions = append(w.actions, a)
		}
		// Bubble blocks in display order, then a box's or carousel's children.
		for _, k := range []string{"header", "hero", "body", "footer", "contents"} {
			if c, ok := x[k]; ok && !(k == "contents" && x["type"] == "text") {
				w.walk(c)
			}
		}
	}
}
