package linesim

import (
	"net/http"
	"testing"
)

// TestInboxKeepsMessageText checks that the inbox holds each message object byte for byte, and
// that bodies naming "messages" more than once give what encoding/json reads, as they always
// have, rendered from the same object as the text.
func TestInboxKeepsMessageText(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	to := MustFriend(t, s)
	const a, b = `{ "type" : "text", "text" : "a\u0026" }`, `{"type":"text","text":"b"}`
	tests := []struct {
		name     string
		body     string
		want     string
		wantText string
	}{
		{"one messages", `{"to":"` + to + `","messages":[` + a + `]}`, a, "a&"},
		{"messages twice", `{"to":"` + to + `","messages":[` + b + `],"messages":[` + a + `]}`, a, "a&"},
		{"messages in another case after it", `{"to":"` + to + `","messages":[` + a + `],"Messages":[` + b + `]}`, b, "b"},
		{"messages in another case before it", `{"to":"` + to + `","Messages":[` + b + `],"messages":[` + a + `]}`, a, "a&"},
		{"messages with a long s after it", `{"to":"` + to + `","messages":[` + a + `],"meſſages":[` + b + `]}`, b, "b"},
		{"escaped name", `{"to":"` + to + `","mess\u0061ges":[` + a + `]}`, a, "a&"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _, resp := do(t, s, url, "POST", "/v2/bot/message/push", []byte(tt.body), nil); status != http.StatusOK {
				t.Fatalf("push: %d %s", status, resp)
			}
			inbox := s.Inbox(to)
			got := inbox[len(inbox)-1]
			if string(got.Raw) != tt.want {
				t.Errorf("inbox holds %s, want %s", got.Raw, tt.want)
			}
			if got.Text != tt.wantText {
				t.Errorf("inbox shows %q, want %q", got.Text, tt.wantText)
			}
		})
	}
}
