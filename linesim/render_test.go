package linesim

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRenderMessage(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		wantText  string
		wantLines []string
		wantActs  []Action
	}{
		{"text", `{"type":"text","text":"到校"}`, "到校", []string{"到校"}, []Action{}},
		{"flex", `{"type":"flex","altText":"通知","contents":{"type":"bubble",
			"body":{"type":"box","layout":"vertical","contents":[{"type":"text","text":"王小明"},{"type":"text","contents":[{"type":"span","text":"07:42 "},{"type":"span","text":"到校"}]}]},
			"footer":{"type":"box","layout":"vertical","contents":[{"type":"button","action":{"type":"uri","label":"紀錄","uri":"https://bot.example/h"}}]}}}`,
			"通知\n[紀錄] https://bot.example/h", []string{"王小明", "07:42 到校"},
			[]Action{{Type: "uri", Label: "紀錄", URI: "https://bot.example/h"}}},
		{"carousel template", `{"type":"template","altText":"孩子","template":{"type":"carousel","columns":[
			{"title":"A","text":"a","actions":[{"type":"postback","label":"選","data":"c=1"}]},
			{"text":"b","actions":[{"type":"message","label":"說","text":"hi"}]}]}}`,
			"孩子\n[選]\n[說]", []string{"A", "a", "b"},
			[]Action{{Type: "postback", Label: "選", Data: "c=1"}, {Type: "message", Label: "說", Text: "hi"}}},
		{"quick reply", `{"type":"text","text":"?","quickReply":{"items":[{"type":"action","action":{"type":"datetimepicker","label":"日期","data":"d","mode":"date"}}]}}`,
			"?", []string{"?"}, []Action{{Type: "datetimepicker", Label: "日期", Data: "d", Mode: "date", QuickReply: true}}},
		{"sticker", `{"type":"sticker","packageId":"1","stickerId":"2"}`, "(sticker)", []string{"(sticker)"}, []Action{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tt.raw), &m); err != nil {
				t.Fatal(err)
			}
			got := renderObject([]byte(tt.raw), m)
			if got.Text != tt.wantText {
				t.Errorf("Text = %q, want %q", got.Text, tt.wantText)
			}
			if diff := cmp.Diff(tt.wantLines, got.Lines); diff != "" {
				t.Errorf("Lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantActs, got.Actions); diff != "" {
				t.Errorf("Actions (-want +got):\n%s", diff)
			}
		})
	}
}
