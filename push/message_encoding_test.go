package push_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"

	ecardbot "github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/lineapi"
	"github.com/taipei-doit/ecardbot/push"
)

// trickyRunes are the pieces generated names and schools are made of: what encoding/json
// escapes (quotes, backslashes, HTML characters, control characters, U+2028/U+2029, invalid
// UTF-8, including halves of a rune that could join across a placeholder), what MaskName and
// orDash treat as spaces, emoji with joiners, and the placeholders themselves.
var trickyRunes = []string{
	"王", "小", "明", "歐", "陽", "A", "m", "y", "Z", "0", "·", "○",
	" ", "  ", "\u3000", "\u00a0", "\u0085",
	`"`, `\`, "<", ">", "&", "'", "/", "+", "=",
	"😀", "👨\u200d👩\u200d👧", "\u200d", "\ufeff", "\ufffd", "e\u0301",
	"\u2028", "\u2029", "\x00", "\x01", "\b", "\f", "\n", "\r", "\t", "\x1f", "\x7f",
	"\xff", "\xe7\x8e", "\x8b", "\xf0\x9f", "\xed\xa0\x80",
	"\x00child\x00", "\x00time\x00", `\u0000`,
}

func randomText(r *rand.Rand, runes int) string {
	var b strings.Builder
	for range runes {
		b.WriteString(trickyRunes[r.IntN(len(trickyRunes))])
	}
	return b.String()
}

// edgeTimes are around midnight and the year's end in Taipei, and far from today.
var edgeTimes = []time.Time{
	time.Date(2026, 11, 26, 23, 42, 10, 0, time.UTC),
	time.Date(2026, 1, 1, 0, 0, 0, 0, ecardbot.Taipei),
	time.Date(2026, 12, 31, 23, 59, 59, 999999999, ecardbot.Taipei),
	time.Date(2026, 3, 1, 15, 59, 59, 0, time.UTC), // 23:59 in Taipei
	time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC),   // 00:00 the next day in Taipei
	time.Date(2028, 2, 29, 12, 0, 0, 0, time.FixedZone("UTC-11", -11*3600)),
	time.Unix(0, 0),
	{},
	time.Date(9999, 12, 31, 23, 59, 0, 0, ecardbot.Taipei),
}

var (
	knownKinds = []ecardbot.NoticeKind{ecardbot.KindArrived, ecardbot.KindLeft, ecardbot.KindAbsent}
	allKinds   = slices.Concat(knownKinds, []ecardbot.NoticeKind{"", "bogus"})
	knownLangs = []string{ecardbot.LangZhTW, ecardbot.LangEn}
	allLangs   = slices.Concat(knownLangs, []string{"", "ja"})
)

// mustSameEncoding fails unless the push request carrying LINEMessage(d) is byte for byte the
// one the SDK encodes from its own model of the message. It also compares the message alone,
// which is stricter: the SDK's encoder would escape <, >, &, U+2028 and U+2029 that a template
// left unescaped. It reports whether LINEMessage took the template path.
func mustSameEncoding(tb testing.TB, d ecardbot.DeliveryDetail) (templated bool) {
	tb.Helper()
	msg := push.LINEMessage(d)
	if raw, ok := msg.(lineapi.RawMessage); ok {
		want, err := json.Marshal(push.SDKLINEMessage(d))
		if err != nil {
			tb.Fatal(err)
		}
		if !bytes.Equal(raw.JSON, want) {
			tb.Fatalf("kind %q, language %q, name %q, school %q, at %v: message\ngot  %s\nwant %s",
				d.Kind, d.Language, d.ChildName, d.SchoolName, d.At, raw.JSON, want)
		}
	}
	want := pushBodyTo(tb, d.LineUserID, push.SDKLINEMessage(d))
	got := pushBodyTo(tb, d.LineUserID, msg)
	if !bytes.Equal(got, want) {
		tb.Fatalf("kind %q, language %q, name %q, school %q, at %v: push request\ngot  %s\nwant %s",
			d.Kind, d.Language, d.ChildName, d.SchoolName, d.At, got, want)
	}
	_, templated = msg.(lineapi.RawMessage)
	return templated
}

// templated reports whether LINEMessage should take its fast path for d: every delivery but
// one of a kind or language that should not occur or with a school of only spaces.
func templated(d ecardbot.DeliveryDetail) bool {
	return slices.Contains(knownKinds, d.Kind) && slices.Contains(knownLangs, d.Language) &&
		(d.SchoolName == "" || strings.TrimSpace(d.SchoolName) != "")
}

func TestLINEMessageEncodingMatchesSDK(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"", " ", "王小明", "Amy Chen", "Mary Jane  Watson", "J Chen", "\x00child\x00", `<script>"&"</script>`}
	schools := []string{"", " ", "\t\u3000", "臺北市立大安國民小學", strings.Repeat("臺北市立大安國民小學附設", 60), "-", "A&B <School>"}
	for _, x := range trickyRunes { // each alone, amid text that needs no escaping
		names = append(names, x, "王"+x+"明", "Amy "+x)
		schools = append(schools, x, "大安"+x+"國小")
	}
	for n := 1; n <= 10; n++ {
		for range 8 {
			names = append(names, randomText(r, n))
		}
	}
	for range 20 {
		schools = append(schools, randomText(r, 1+r.IntN(40)))
	}
	schools = append(schools, strings.Repeat(randomText(r, 30), 40))

	fast := 0
	for _, kind := range allKinds {
		for _, lang := range allLangs {
			t.Run(string(kind)+"_"+lang, func(t *testing.T) {
				d := MustDetail(t, ecardbot.KindArrived, ecardbot.LangZhTW)
				d.Kind, d.Language = kind, lang
				n := max(len(names), len(schools), len(edgeTimes))
				if !slices.Contains(knownKinds, kind) || !slices.Contains(knownLangs, lang) {
					n = 20 // the SDK encodes these: a few show that they get there
				}
				for i := range n {
					d.ChildName = names[i%len(names)]
					d.SchoolName = schools[i*7%len(schools)]
					d.At = edgeTimes[i%len(edgeTimes)]
					if got := mustSameEncoding(t, d); got != templated(d) {
						t.Fatalf("name %q, school %q: templated %v, want %v", d.ChildName, d.SchoolName, got, templated(d))
					} else if got {
						fast++
					}
				}
			})
		}
	}
	if fast == 0 {
		t.Error("no message took the template path")
	}
}

// TestLINEMessageConcurrent builds the templates from many goroutines at once; run with -race.
func TestLINEMessageConcurrent(t *testing.T) {
	done := make(chan struct{})
	for _, kind := range knownKinds {
		for _, lang := range knownLangs {
			go func() {
				defer func() { done <- struct{}{} }()
				d := MustDetail(t, kind, lang)
				for _, name := range []string{"", "王小明"} {
					d.ChildName = name
					if got, want := pushBodyTo(t, goldenTo, push.LINEMessage(d)), pushBodyTo(t, goldenTo, push.SDKLINEMessage(d)); !bytes.Equal(got, want) {
						t.Errorf("%s %s %q: encodings differ", kind, lang, name)
					}
				}
			}()
		}
	}
	for range len(knownKinds) * len(knownLangs) {
		<-done
	}
}

func FuzzLINEMessageEncoding(f *testing.F) {
	f.Add(uint8(0), uint8(0), "王小明", "臺北市立大安國民小學", int64(1795736530))
	f.Add(uint8(1), uint8(1), "Amy Chen", "", int64(0))
	f.Add(uint8(2), uint8(1), "\u2028<&>\"\\", " ", int64(-62135596800))
	f.Add(uint8(2), uint8(0), "\xe7\x8e", "\x8b\x00child\x00", int64(253402300799))
	f.Fuzz(func(t *testing.T, kind, lang uint8, name, school string, unix int64) {
		d := MustDetail(t, ecardbot.KindArrived, ecardbot.LangZhTW)
		d.Kind = allKinds[int(kind)%len(allKinds)]
		d.Language = allLangs[int(lang)%len(allLangs)]
		d.ChildName, d.SchoolName = name, school
		d.At = time.Unix(unix, 0)
		mustSameEncoding(t, d)
	})
}

// BenchmarkPushRequestEncoding measures what the SDK does per push besides the HTTP call: build
// the message and encode the whole PushMessageRequest with a json.Encoder.
func BenchmarkPushRequestEncoding(b *testing.B) {
	d := MustDetail(b, ecardbot.KindArrived, ecardbot.LangZhTW)
	for _, bm := range []struct {
		name string
		msg  func(ecardbot.DeliveryDetail) messaging_api.MessageInterface
	}{
		{"sdk", func(d ecardbot.DeliveryDetail) messaging_api.MessageInterface { return push.SDKLINEMessage(d) }},
		{"template", push.LINEMessage},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var buf bytes.Buffer
				req := &messaging_api.PushMessageRequest{To: d.LineUserID, Messages: []messaging_api.MessageInterface{bm.msg(d)}}
				if err := json.NewEncoder(&buf).Encode(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
