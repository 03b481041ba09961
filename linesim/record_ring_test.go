package linesim

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRecordLimitRing checks that a full record list keeps the latest requests in order however
// often it wraps, for Requests and PushAnswers alike, and starts afresh after ResetRequests.
func TestRecordLimitRing(t *testing.T) {
	s, url, _ := MustStart(t, Options{RecordLimit: 3})
	to := MustFriend(t, s)
	push := func(text string) {
		body := []byte(`{"to":"` + to + `","messages":[{"type":"text","text":"` + text + `"}]}`)
		if status, _, b := do(t, s, url, "POST", "/v2/bot/message/push", body, nil); status != http.StatusOK {
			t.Fatalf("push: %d %s", status, b)
		}
	}
	bodies := func() []string {
		var out []string
		for _, r := range s.Requests() {
			out = append(out, string(r.Body))
		}
		return out
	}
	want := func(texts ...int) []string {
		var out []string
		for _, n := range texts {
			out = append(out, `{"to":"`+to+`","messages":[{"type":"text","text":"`+fmt.Sprint(n)+`"}]}`)
		}
		return out
	}
	for i := range 8 {
		push(fmt.Sprint(i))
	}
	if diff := cmp.Diff(want(5, 6, 7), bodies()); diff != "" {
		t.Errorf("after 8 pushes (-want +got):\n%s", diff)
	}
	if n := len(s.PushAnswers()); n != 3 {
		t.Errorf("%d push answers, want 3", n)
	}
	s.ResetRequests()
	push("8")
	if diff := cmp.Diff(want(8), bodies()); diff != "" {
		t.Errorf("after a reset (-want +got):\n%s", diff)
	}
	for i := 9; i < 13; i++ {
		push(fmt.Sprint(i))
	}
	if diff := cmp.Diff(want(10, 11, 12), bodies()); diff != "" {
		t.Errorf("after a reset and 5 pushes (-want +got):\n%s", diff)
	}
}
