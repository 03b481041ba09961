package linesim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checker collects LINE-style error details ({message, property}) while walking a request.
// Properties use LINE's notation, such as "messages[0].template.actions[4]".
type checker struct {
	details []errorDetail
	// textLen is the length of the JSON text the checked values were decoded from; zero when
	// unknown. It bounds how long any of them re-encodes (see encodedOver).
	textLen int
}

// maxEncodedGrowth bounds how much longer encoding/json re-encodes a decoded value than the
// text it came from: a byte of a string grows at most to six ("<" becomes "\u003c"), a number
// at most to 21 bytes from four ("1e20"), and the rest only shrinks (spaces, duplicate keys,
// escapes of plain characters). FuzzEncodedGrowth checks it.
const maxEncodedGrowth = 6

// encodedOver reports whether v, decoded from the checked text, is longer than limit bytes
// once re-encoded, the measure LINE caps flex containers by. Re-encoding a container costs
// more than the rest of a push's checks, so it is skipped when the whole text is too short
// for any value in it to pass the limit.
func (ck *checker) encodedOver(v any, limit int) bool {
	if ck.textLen > 0 && ck.textLen*maxEncodedGrowth <= limit {
		return false
	}
	return len(mustJSON(v)) > limit
}

func (ck *checker) add(prop, format string, args ...any) {
	ck.details = append(ck.details, errorDetail{Message: fmt.Sprintf(format, args...), Property: prop})
}

func idx(prop string, i int) string { return prop + "[" + strconv.Itoa(i) + "]" }

func field(prop, key string) string {
	if prop == "" {
		return key
	}
	return prop + "." + key
}

// str checks m[key] is a string of min..max characters (max 0: no limit) when required or
// present, and returns it. Like obj and arr, it spells out the property only for a detail.
func (ck *checker) str(m map[string]any, prop, key string, required bool, minLen, maxLen int) string {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			ck.add(field(prop, key), "must be specified")
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		ck.add(field(prop, key), "must be a string")
		return ""
	}
	n := utf8.RuneCountInString(s)
	if n < minLen && minLen == 1 {
		ck.add(field(prop, key), "May not be empty")
	} else if n < minLen || maxLen > 0 && n > maxLen {
		ck.add(field(prop, key), "Length must be between %d and %d", minLen, maxLen)
	}
	return s
}

func (ck *checker) obj(m map[string]any, prop, key string, required bool) map[string]any {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			ck.add(field(prop, key), "must be specified")
		}
		return nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		ck.add(field(prop, key), "must be an object")
	}
	return o
}

func (ck *checker) arr(m map[string]any, prop, key string, minLen, maxLen int) []any {
	v, ok := m[key]
	if !ok || v == nil {
		if minLen > 0 {
			ck.add(field(prop, key), "must be specified")
		}
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		ck.add(field(prop, key), "must be an array")
		return nil
	}
	if len(a) < minLen || len(a) > maxLen {
		ck.add(field(prop, key), "Size must be between %d and %d", minLen, maxLen)
	}
	return a
}

func (ck *checker) num(m map[string]any, prop, key string) {
	if _, ok := m[key].(float64); !ok {
		ck.add(field(prop, key), "must be a number")
	}
}

func (ck *checker) httpsURL(m map[string]any, prop, key string, required bool) {
	u := ck.str(m, prop, key, required, 0, 2000)
	if u != "" && !strings.HasPrefix(u, "https://") {
		ck.add(field(prop, key), "must be an HTTPS URL")
	}
}

// messages validates the "messages" property: 1–5 message objects.
func (ck *checker) messages(body map[string]any) {
	for i, v := range ck.arr(body, "", "messages", 1, 5) {
		p := idx("messages", i)
		m, ok := v.(map[string]any)
		if !ok {
			ck.add(p, "must be an object")
			continue
		}
		ck.message(p, m)
	}
}

func (ck *checker) message(p string, m map[string]any) {
	switch typ := ck.str(m, p, "type", true, 0, 0); typ {
	case "text", "textV2":
		ck.str(m, p, "text", true, 1, 5000)
	case "sticker":
		ck.str(m, p, "packageId", true, 1, 0)
		ck.str(m, p, "stickerId", true, 1, 0)
	case "image", "video":
		ck.httpsURL(m, p, "originalContentUrl", true)
		ck.httpsURL(m, p, "previewImageUrl", true)
	case "audio":
		ck.httpsURL(m, p, "originalContentUrl", true)
		ck.num(m, p, "duration")
	case "location":
		ck.str(m, p, "title", true, 1, 100)
		ck.str(m, p, "address", true, 1, 100)
		ck.num(m, p, "latitude")
		ck.num(m, p, "longitude")
	case "imagemap":
		ck.httpsURL(m, p, "baseUrl", true)
		ck.str(m, p, "altText", true, 1, 1500)
		ck.obj(m, p, "baseSize", true)
		ck.arr(m, p, "actions", 1, 50)
	case "coupon":
		ck.str(m, p, "couponId", true, 1, 0)
	case "template":
		ck.str(m, p, "altText", true, 1, 400)
		if t := ck.obj(m, p, "template", true); t != nil {
			ck.template(field(p, "template"), t)
		}
	case "flex":
		ck.str(m, p, "altText", true, 1, 1500)
		if c := ck.obj(m, p, "contents", true); c != nil {
			ck.flex(field(p, "contents"), c)
		}
	case "":
	default:
		ck.add(field(p, "type"), "Invalid message type: %s", typ)
	}
	if qr := ck.obj(m, p, "quickReply", false); qr != nil {
		qp := field(p, "quickReply")
		for i, it := range ck.arr(qr, qp, "items", 1, 13) {
			ip := idx(field(qp, "items"), i)
			item, ok := it.(map[string]any)
			if !ok {
				ck.add(ip, "must be an object")
				continue
			}
			if a := ck.obj(item, ip, "action", true); a != nil {
				ck.action(field(ip, "action"), a, inQuickReply)
			}
		}
	}
	if snd := ck.obj(m, p, "sender", false); snd != nil {
		ck.str(snd, field(p, "sender"), "name", false, 1, 20)
	}
}

func (ck *checker) template(p string, t map[string]any) {
	switch typ := ck.str(t, p, "type", true, 1, 0); typ {
	case "buttons":
		ck.str(t, p, "title", false, 0, 40)
		ck.httpsURL(t, p, "thumbnailImageUrl", false)
		limit := 160
		if t["title"] != nil || t["thumbnailImageUrl"] != nil {
			limit = 60
		}
		ck.str(t, p, "text", true, 1, limit)
		ck.actions(t, p, 1, 4, inTemplate)
		if d := ck.obj(t, p, "defaultAction", false); d != nil {
			ck.action(field(p, "defaultAction"), d, inTemplate)
		}
	case "confirm":
		ck.str(t, p, "text", true, 1, 240)
		ck.actions(t, p, 2, 2, inTemplate)
	case "carousel":
		want := -1
		for i, col := range ck.arr(t, p, "columns", 1, 10) {
			cp := idx(field(p, "columns"), i)
			cm, ok := col.(map[string]any)
			if !ok {
				ck.add(cp, "must be an object")
				continue
			}
			ck.str(cm, cp, "title", false, 0, 40)
			ck.httpsURL(cm, cp, "thumbnailImageUrl", false)
			limit := 120
			if cm["title"] != nil || cm["thumbnailImageUrl"] != nil {
				limit = 60
			}
			ck.str(cm, cp, "text", true, 1, limit)
			n := len(ck.actions(cm, cp, 1, 3, inTemplate))
			if want >= 0 && n != want {
				ck.add(field(cp, "actions"), "All columns must have the same number of actions")
			}
			want = n
		}
	case "image_carousel":
		for i, col := range ck.arr(t, p, "columns", 1, 10) {
			cp := idx(field(p, "columns"), i)
			cm, ok := col.(map[string]any)
			if !ok {
				ck.add(cp, "must be an object")
				continue
			}
			ck.httpsURL(cm, cp, "imageUrl", true)
			if a := ck.obj(cm, cp, "action", true); a != nil {
				ck.action(field(cp, "action"), a, inTemplate)
			}
		}
	case "":
	default:
		ck.add(field(p, "type"), "Invalid template type: %s", typ)
	}
}

func (ck *checker) actions(m map[string]any, p string, minLen, maxLen int, where actionPlace) []any {
	list := ck.arr(m, p, "actions", minLen, maxLen)
	for i, v := range list {
		ap := idx(field(p, "actions"), i)
		a, ok := v.(map[string]any)
		if !ok {
			ck.add(ap, "must be an object")
			continue
		}
		ck.action(ap, a, where)
	}
	return list
}

// Flex containers are capped by JSON size: 30 KB a bubble, 50 KB a carousel.
func (ck *checker) flex(p string, c map[string]any) {
	switch typ := ck.str(c, p, "type", true, 1, 0); typ {
	case "bubble":
		if ck.encodedOver(c, 30*1024) {
			ck.add(p, "The size of a bubble must be 30 KB or less")
		}
		ck.flexActions(p, c)
	case "carousel":
		if ck.encodedOver(c, 50*1024) {
			ck.add(p, "The size of a carousel must be 50 KB or less")
		}
		for i, b := range ck.arr(c, p, "contents", 1, 12) {
			bp := idx(field(p, "contents"), i)
			bm, ok := b.(map[string]any)
			if !ok || bm["type"] != "bubble" {
				ck.add(field(bp, "type"), "must be bubble")
				continue
			}
			ck.flexActions(bp, bm)
		}
	case "":
	default:
		ck.add(field(p, "type"), "Invalid flex container type: %s", typ)
	}
}

// flexActions validates every "action" found in a flex component tree whose property is p.
// A bubble has dozens of boxes and texts, and building the property of each cost more than
// walking them, so the walk keeps the way down as steps and spells a property out only for an
// action.
func (ck *checker) flexActions(p string, v any) {
	steps := make([]flexStep, 0, 8)
	ck.flexActionsUnder(p, &steps, v)
}

// flexStep is one step down a flex tree: into the member key, or to element index when it is
// not negative.
type flexStep struct {
	key   string
	index int
}

func (ck *checker) flexActionsUnder(p string, steps *[]flexStep, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if !isContainer(child) {
				continue // a leaf holds no action
			}
			*steps = append(*steps, flexStep{key: k, index: -1})
			if a, ok := child.(map[string]any); ok && k == "action" {
				ck.action(flexProperty(p, *steps), a, inFlex)
			} else {
				ck.flexActionsUnder(p, steps, child)
			}
			*steps = (*steps)[:len(*steps)-1]
		}
	case []any:
		for i, child := range x {
			if isContainer(child) {
				*steps = append(*steps, flexStep{index: i})
				ck.flexActionsUnder(p, steps, child)
				*steps = (*steps)[:len(*steps)-1]
			}
		}
	}
}

// flexProperty spells out the property steps lead to from p.
func flexProperty(p string, steps []flexStep) string {
	for _, st := range steps {
		if st.index >= 0 {
			p = idx(p, st.index)
		} else {
			p = field(p, st.key)
		}
	}
	return p
}

// isContainer reports whether a decoded JSON value is an object or an array.
func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

type actionPlace int

const (
	inTemplate actionPlace = iota
	inQuickReply
	inFlex
	inRichMenu
)

// action validates one action object for where it appears: labels are required on template
// and quick-reply buttons, camera and location only exist in quick replies, richmenuswitch only
// in rich menus.
func (ck *checker) action(p string, a map[string]any, where actionPlace) {
	labelRequired := where == inTemplate || where == inQuickReply
	labelMax := 20
	if where == inFlex {
		labelMax = 40
	}
	ck.str(a, p, "label", labelRequired, 0, labelMax)
	switch typ := ck.str(a, p, "type", true, 0, 0); typ {
	case "postback":
		ck.str(a, p, "data", true, 0, 300)
		ck.str(a, p, "displayText", false, 0, 300)
		ck.str(a, p, "text", false, 0, 300)
		if a["displayText"] != nil && a["text"] != nil {
			ck.add(field(p, "text"), "displayText and text cannot both be set")
		}
		if opt := ck.str(a, p, "inputOption", false, 0, 0); opt != "" &&
			!slices.Contains([]string{"closeRichMenu", "openRichMenu", "openKeyboard", "openVoice"}, opt) {
			ck.add(field(p, "inputOption"), "Invalid inputOption: %s", opt)
		}
		ck.str(a, p, "fillInText", false, 0, 300)
	case "message":
		ck.str(a, p, "text", true, 1, 300)
	case "uri":
		u := ck.str(a, p, "uri", true, 1, 1000)
		if pu, err := url.Parse(u); u != "" && (err != nil || !slices.Contains([]string{"http", "https", "line", "tel"}, pu.Scheme)) {
			ck.add(field(p, "uri"), "must be an http, https, line or tel URI")
		}
		if alt := ck.obj(a, p, "altUri", false); alt != nil {
			ck.str(alt, field(p, "altUri"), "desktop", false, 0, 1000)
		}
	case "datetimepicker":
		ck.str(a, p, "data", true, 0, 300)
		if mode := ck.str(a, p, "mode", true, 0, 0); mode != "" && !slices.Contains([]string{"date", "time", "datetime"}, mode) {
			ck.add(field(p, "mode"), "Invalid mode: %s", mode)
		}
	case "camera", "cameraRoll", "location":
		if where != inQuickReply {
			ck.add(field(p, "type"), "%s actions can only be used in quick reply buttons", typ)
		}
	case "richmenuswitch":
		if where != inRichMenu {
			ck.add(field(p, "type"), "richmenuswitch actions can only be used in rich menus")
		}
		ck.str(a, p, "richMenuAliasId", true, 1, 32)
		ck.str(a, p, "data", true, 0, 300)
	case "clipboard":
		ck.str(a, p, "clipboardText", true, 1, 1000)
	case "":
	default:
		ck.add(field(p, "type"), "Invalid action type: %s", typ)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
