package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"

	ecardbot "github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/lineopenapi"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/push"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// goldenTo is a fixed recipient so that golden files do not change from run to run.
const goldenTo = "U0123456789abcdef0123456789abcdef"

func TestMaskName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"blank", "   ", ""},
		{"one", "明", "明"},
		{"two", "王明", "王○"},
		{"three", "王小明", "王○明"},
		{"four", "歐陽小明", "歐○○明"},
		{"five", "司馬相如明", "司○○○明"},
		{"middle dot", "瓦歷斯·諾幹", "瓦○○○○幹"},
		{"trimmed", " 王小明 ", "王○明"},
		{"latin one word", "Amy", "A○y"},
		{"latin two letters", "Al", "A○"},
		{"latin two words", "Amy Chen", "A○○ Chen"},
		{"latin three words", "Mary Jane  Watson", "M○○○ J○○○ Watson"},
		{"initial", "J Chen", "J Chen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := push.MaskName(tt.in); got != tt.want {
				t.Errorf("MaskName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// MustDetail is a delivery of the given kind and language. The tap is 23:42 UTC, 07:42 the next
// morning in Taipei, so a time left in UTC would show up in every assertion.
func MustDetail(tb testing.TB, kind ecardbot.NoticeKind, lang string) ecardbot.DeliveryDetail {
	tb.Helper()
	at := time.Date(2026, 11, 26, 23, 42, 10, 0, time.UTC)
	switch kind {
	case ecardbot.KindLeft:
		at = time.Date(2026, 11, 27, 8, 5, 0, 0, time.UTC) // 16:05
	case ecardbot.KindAbsent:
		at = time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC) // the 08:30 cutoff
	}
	name := "王小明"
	if lang == ecardbot.LangEn {
		name = "Amy Chen"
	}
	return ecardbot.DeliveryDetail{
		ID:         "0b9c6a4e-5d1f-4f7e-9a53-2f0e3c1d7a11",
		Channel:    ecardbot.ChannelLINE,
		Kind:       kind,
		At:         at,
		ChildName:  name,
		SchoolName: "臺北市立大安國民小學",
		Language:   lang,
		LineUserID: goldenTo,
		Email:      "parent@example.com",
		Reachable:  true,
	}
}

type scenario struct {
	kind       ecardbot.NoticeKind
	lang       string
	wantName   string
	wantTime   string
	wantPhrase string
}

var scenarios = []scenario{
	{ecardbot.KindArrived, ecardbot.LangZhTW, "王○明", "07:42", "到校"},
	{ecardbot.KindLeft, ecardbot.LangZhTW, "王○明", "16:05", "離校"},
	{ecardbot.KindAbsent, ecardbot.LangZhTW, "王○明", "08:30", "請儘速與學校聯繫"},
	{ecardbot.KindArrived, ecardbot.LangEn, "A○○ Chen", "07:42", "Arrived at school"},
	{ecardbot.KindLeft, ecardbot.LangEn, "A○○ Chen", "16:05", "Left school"},
	{ecardbot.KindAbsent, ecardbot.LangEn, "A○○ Chen", "08:30", "contact the school"},
}

func (s scenario) name() string { return string(s.kind) + "_" + s.lang }

// pushBody encodes the request the way the SDK's PushMessage does (json.Encoder), so the golden
// file is exactly what LINE receives, apart from indentation.
func pushBody(tb testing.TB, msg messaging_api.MessageInterface) []byte {
	tb.Helper()
	return pushBodyTo(tb, goldenTo, msg)
}

func pushBodyTo(tb testing.TB, to string, msg messaging_api.MessageInterface) []byte {
	tb.Helper()
	var buf bytes.Buffer
	req := &messaging_api.PushMessageRequest{To: to, Messages: []messaging_api.MessageInterface{msg}}
	if err := json.NewEncoder(&buf).Encode(req); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestLINEMessageGolden(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name(), func(t *testing.T) {
			var got bytes.Buffer
			if err := json.Indent(&got, pushBody(t, push.LINEMessage(MustDetail(t, sc.kind, sc.lang))), "", "  "); err != nil {
				t.Fatal(err)
			}
			mustGolden(t, filepath.Join("testdata", "line_"+sc.name()+".golden.json"), got.Bytes())
			for _, s := range []string{sc.wantName, sc.wantTime, sc.wantPhrase, `"type":"flex"`} {
				if !strings.Contains(strings.ReplaceAll(got.String(), `": "`, `":"`), s) {
					t.Errorf("message lacks %q", s)
				}
			}
			if strings.Contains(got.String(), MustDetail(t, sc.kind, sc.lang).ChildName) {
				t.Error("message carries the unmasked name")
			}
		})
	}
}

// mustGolden compares got with the golden file, or rewrites the file under -update.
func mustGolden(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test ./push -run Golden -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// TestLINEMessageThroughLinesim sends every message with the real SDK client to the emulator,
// which validates flex messages as LINE does, and checks the traffic against LINE's OpenAPI.
func TestLINEMessageThroughLinesim(t *testing.T) {
	sim, err := linesim.New(linesim.Options{AutoFriend: true})
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	api, err := messaging_api.NewMessagingApiAPI(sim.ChannelToken(),
		messaging_api.WithEndpoint(url),
		messaging_api.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, sc := range scenarios {
		t.Run(sc.name(), func(t *testing.T) {
			d := MustDetail(t, sc.kind, sc.lang)
			d.LineUserID = linesim.NewUserID()
			d.ID = uuid.NewString() // each delivery has its own retry key
			msgs := []messaging_api.MessageInterface{push.LINEMessage(d)}

			if _, err := api.ValidatePush(&messaging_api.ValidateMessageRequest{Messages: msgs}); err != nil {
				t.Fatalf("validate: %v", err)
			}
			res, _, err := api.PushMessageWithHttpInfo(&messaging_api.PushMessageRequest{To: d.LineUserID, Messages: msgs}, d.ID)
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("push status %d, want 200", res.StatusCode)
			}
			inbox, err := sim.WaitInbox(ctx, d.LineUserID, 1)
			if err != nil {
				t.Fatal(err)
			}
			got := inbox[0]
			if got.Type != "flex" {
				t.Errorf("type %q, want flex", got.Type)
			}
			shown := strings.Join(got.Lines, "\n")
			for _, s := range []string{sc.wantName, sc.wantTime, sc.wantPhrase} {
				if !strings.Contains(shown, s) {
					t.Errorf("inbox rendering lacks %q:\n%s", s, shown)
				}
			}
			if !strings.Contains(got.Text, sc.wantName) || !strings.Contains(got.Text, sc.wantTime) {
				t.Errorf("altText %q lacks the masked name or the time", got.Text)
			}
			reqs := sim.RequestsTo(linesim.RoutePush)
			last := reqs[len(reqs)-1]
			if want := pushBodyTo(t, d.LineUserID, push.LINEMessage(d)); !bytes.Equal(last.Body, want) {
				t.Errorf("the SDK sent\n%s\nthe golden encoding is\n%s", last.Body, want)
			}
			if last.RetryKey() != d.ID {
				t.Errorf("X-Line-Retry-Key %q, want the delivery ID", last.RetryKey())
			}
		})
	}
	lineopenapi.CheckRequests(t, sim.Requests())
}
