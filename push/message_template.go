package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	ecardbot "github.com/taipei-doit/ecardbot"
)

// LINE messages are encoded from templates because the SDK's model types are slow to encode:
// each level of the flex message has a MarshalJSON that calls json.Marshal again, so the bytes
// of the inner levels are validated and compacted once per level, with reflection and
// allocations at each. Every message of one shape has the same JSON apart from the strings of
// its variables (noticeVars), so a shape is encoded once, through sdkLINEMessage's layout with a
// placeholder for each variable, and every delivery of that shape then only appends the fixed
// JSON and its own JSON-escaped variables.
//
// Filling in gives the SDK's bytes because encoding/json escapes a string rune by rune: a
// variable inside a longer text (the altText holds the name and the time) encodes the same on
// its own as within the text, as long as the fixed text around it, valid UTF-8, does not
// complete a rune the variable leaves unfinished. That would take two variables touching, which
// newLineTemplate refuses. The tests compare the two encodings over generated and fuzzed input.

// placeholders stand for the variables, in the order of noticeVars.field, while a template is
// encoded. They hold NUL, which no fixed text of the card holds and which encoding/json writes
// as \u0000, so they cannot be mistaken for anything else in the template.
var placeholders = [...]string{"\x00child\x00", "\x00school\x00", "\x00date\x00", "\x00time\x00"}

// field returns the variable of slot i.
func (v *noticeVars) field(i int) *string {
	switch i {
	case 0:
		return &v.Child
	case 1:
		return &v.School
	case 2:
		return &v.Date
	}
	return &v.Time
}

// lineShape is what decides the JSON of a LINE message apart from its variables' text: the
// kind, the language and which variables are empty. An empty variable changes the layout's
// output (the card shows "-" for it, and an empty flex text would be left out), so a template
// is made with it empty rather than with a placeholder.
type lineShape struct {
	kind  ecardbot.NoticeKind
	lang  string
	empty [len(placeholders)]bool
}

// lineTemplate is the JSON of one shape: parts[i] comes before the variable slots[i], and the
// last part ends the message.
type lineTemplate struct {
	parts []string
	slots []int
	size  int // the length of all parts together
}

// lineTemplates caches a *lineTemplate per lineShape, built on first use: at most 3 kinds × 2
// languages × 16 combinations of empty variables, and in practice a handful.
var lineTemplates sync.Map

// lineTemplateFor returns the template for a delivery, or false when none covers it: for a kind
// or language that should not occur, and for a name or school of only spaces, which the card
// shows as "-" but the altText as it is (orDash), a difference a placeholder cannot carry.
// These rare deliveries are encoded by the SDK.
func lineTemplateFor(kind ecardbot.NoticeKind, lang string, v noticeVars) (*lineTemplate, bool) {
	switch {
	case kind != ecardbot.KindArrived && kind != ecardbot.KindLeft && kind != ecardbot.KindAbsent:
		return nil, false
	case lang != ecardbot.LangZhTW && lang != ecardbot.LangEn:
		return nil, false
	}
	s := lineShape{kind: kind, lang: lang}
	for i := range placeholders {
		f := *v.field(i)
		if f != "" && strings.TrimSpace(f) == "" {
			return nil, false
		}
		s.empty[i] = f == ""
	}
	if t, ok := lineTemplates.Load(s); ok {
		return t.(*lineTemplate), true
	}
	t, err := newLineTemplate(s)
	if err != nil {
		// Only a change to the layout can get here, and the tests catch it; meanwhile the
		// SDK encodes the message, which is slower but right.
		return nil, false
	}
	got, _ := lineTemplates.LoadOrStore(s, t)
	return got.(*lineTemplate), true
}

// newLineTemplate encodes the message of a shape with placeholders and cuts it at them. It
// fails when the layout altered a placeholder (a cut to a length, say), which would make the
// template wrong for real text, or put two variables side by side.
func newLineTemplate(s lineShape) (*lineTemplate, error) {
	var v noticeVars
	var encoded [len(placeholders)][]byte
	for i, p := range placeholders {
		encoded[i] = appendJSONString(nil, p)
		if !s.empty[i] {
			*v.field(i) = p
		}
	}
	b, err := json.Marshal(flexMessage(textsOf(s.kind, s.lang, v)))
	if err != nil {
		return nil, err
	}
	t := &lineTemplate{}
	nul := []byte(`\u0000`) // how encoding/json writes NUL, which starts every placeholder
	for {
		at := bytes.Index(b, nul)
		if at < 0 {
			break
		}
		slot := -1
		for i, p := range encoded {
			if bytes.HasPrefix(b[at:], p) {
				slot = i
				break
			}
		}
		if slot < 0 {
			return nil, errors.New("template: the layout altered a placeholder")
		}
		if at == 0 { // the JSON starts with "{", so at is 0 only right after a variable
			return nil, errors.New("template: two variables touch")
		}
		t.parts = append(t.parts, string(b[:at]))
		t.slots = append(t.slots, slot)
		t.size += at
		b = b[at+len(encoded[slot]):]
	}
	t.parts = append(t.parts, string(b))
	t.size += len(b)
	return t, nil
}

// fill returns the message JSON for the variables v.
func (t *lineTemplate) fill(v noticeVars) []byte {
	n := t.size
	for _, i := range t.slots {
		n += len(*v.field(i))
	}
	b := make([]byte, 0, n)
	for k, i := range t.slots {
		b = append(b, t.parts[k]...)
		b = appendJSONString(b, *v.field(i))
	}
	return append(b, t.parts[len(t.slots)]...)
}

// appendJSONString appends s as encoding/json writes it between the quotes of a string. Text
// that encoding/json copies unchanged, nearly all names and schools, is copied here too; any
// other goes through encoding/json itself, so its rules (HTML escaping of <, > and &, U+2028
// and U+2029, invalid UTF-8 as U+FFFD, \b and \f since Go 1.22) cannot drift from the SDK's.
func appendJSONString(b []byte, s string) []byte {
	if !needsEscape(s) {
		return append(b, s...)
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q[1:len(q)-1]...)
}

// needsEscape reports whether encoding/json would write s other than as it is.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < ' ' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return true
		}
		i += size
	}
	return false
}
