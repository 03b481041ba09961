package linesim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFlexActionProperties pins the properties of flex action details, which the walk spells
// out from its steps only when it meets an action.
func TestFlexActionProperties(t *testing.T) {
	const contents = `{"type":"bubble","body":{"type":"box","layout":"vertical","contents":[
		[{"action":{"type":"bad"}}],
		{"":{"action":{"type":"uri","label":"l","uri":"ftp://x"}}},
		{"x":[[],[{"action":{"type":"message","label":"` + "0123456789012345678901234567890123456789x" + `","text":"t"}}]]},
		{"type":"button","action":{"type":"postback","label":"ok","data":"d"}}]}}`
	var c map[string]any
	if err := json.Unmarshal([]byte(contents), &c); err != nil {
		t.Fatal(err)
	}
	var ck checker
	ck.flex("messages[0].contents", c)
	var got []string
	for _, d := range ck.details {
		got = append(got, d.Property+": "+d.Message)
	}
	sort.Strings(got) // members are walked in map order
	want := []string{
		"messages[0].contents.body.contents[0][0].action.type: Invalid action type: bad",
		"messages[0].contents.body.contents[1]..action.uri: must be an http, https, line or tel URI",
		"messages[0].contents.body.contents[2].x[1][0].action.label: Length must be between 0 and 40",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
}

func TestFlexSizeLimit(t *testing.T) {
	text := func(n int) string {
		return `{"type":"bubble","body":{"type":"text","text":"` + strings.Repeat("<", n) + `"}}`
	}
	tests := []struct {
		name     string
		contents string
		want     int // details
	}{
		{"short body, under the limit", text(100), 0},
		{"long body, under the limit once encoded", text(5000), 0},
		{"long body, over the limit once encoded", text(5200), 1}, // each "<" encodes as 6 bytes
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c map[string]any
			if err := json.Unmarshal([]byte(tt.contents), &c); err != nil {
				t.Fatal(err)
			}
			ck := checker{textLen: len(tt.contents)}
			ck.flex("messages[0].contents", c)
			if len(ck.details) != tt.want {
				t.Errorf("details %+v, want %d", ck.details, tt.want)
			}
		})
	}
}

// FuzzEncodedGrowth checks maxEncodedGrowth: no decoded value re-encodes to more than that many
// bytes per byte of its text, so checker.encodedOver may skip encoding short bodies.
func FuzzEncodedGrowth(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1e20}`, `{"a":1E-2}`, `{"a":9007199254740993}`, `{"a":"\u00e9\n\"\\\/"}`, `{"a":"\ud800"}`,
		"{\"a\":\"\xff\"}", `{"a":"<&>` + "\u2028" + `"}`, `{"a":1,"a":2}`, `"<<<<>>>&&&"`, `1e20`,
		`[1e20,-1e20,1e-7,5e-324]`, `"` + "\u2028\u2029" + `"`, "\"\xff\xfe\"", `"\ud800\udc00"`, `{"<":"&"}`,
	} {
		f.Add([]byte(s))
	}
	golden, _ := filepath.Glob("../push/testdata/*.golden.json")
	for _, path := range golden {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		if n := len(mustJSON(v)); n > maxEncodedGrowth*len(b) {
			t.Fatalf("%q re-encodes to %d bytes, more than %d× its %d", b, n, maxEncodedGrowth, len(b))
		}
	})
}

func TestEncodedOver(t *testing.T) {
	bubble := map[string]any{"type": "bubble", "body": map[string]any{"type": "text", "text": strings.Repeat("<", 6000)}}
	tests := []struct {
		name    string
		textLen int
		want    bool
	}{
		{"unknown text length: encodes", 0, true},
		{"long text: encodes", 6001, true},
		{"text too short to pass the limit: not encoded", 5000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck := checker{textLen: tt.textLen}
			if got := ck.encodedOver(bubble, 30*1024); got != tt.want {
				t.Errorf("encodedOver = %v, want %v", got, tt.want)
			}
		})
	}
}
