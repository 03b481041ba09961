package lineapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"

	"github.com/taipei-doit/ecardbot/lineapi"
)

// rawFlex is a flex message as LINE expects it, escaped as encoding/json escapes.
const rawFlex = `{"altText":"\u003cb\u003e \"A○y\"","contents":{"body":{"layout":"vertical","flex":0,"type":"box","contents":[]},"type":"bubble"},"type":"flex"}`

func TestPush_rawMessage(t *testing.T) {
	raw := lineapi.RawMessage{Type: "flex", JSON: []byte(rawFlex)}
	tests := []struct {
		name string
		msg  messaging_api.MessageInterface
	}{
		{"value", raw},
		{"pointer", &raw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := MustFakeLINEAlways(t, lineResponse{status: http.StatusOK, body: `{"sentMessages":[]}`})
			c := MustClient(t, fake.URL, 0)

			if _, err := c.Push(context.Background(), retryKey, userID, []messaging_api.MessageInterface{tt.msg}); err != nil {
				t.Fatalf("push: %v", err)
			}
			reqs := fake.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			want := `{"to":"` + userID + `","notificationDisabled":false,"customAggregationUnits":null,"messages":[` + rawFlex + "]}\n"
			if diff := cmp.Diff(want, reqs[0].body); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPush_rawMessageInvalid checks that broken JSON fails before anything is sent, as our bug
// rather than LINE's: retrying would send the same broken message.
func TestPush_rawMessageInvalid(t *testing.T) {
	fake := MustFakeLINEAlways(t, lineResponse{status: http.StatusOK, body: `{"sentMessages":[]}`})
	c := MustClient(t, fake.URL, 0)

	for _, b := range []string{"", `{"type":"flex"`, `{"type":"flex"} {}`} {
		msgs := []messaging_api.MessageInterface{lineapi.RawMessage{Type: "flex", JSON: []byte(b)}}
		_, err := c.Push(context.Background(), retryKey, userID, msgs)
		if err == nil {
			t.Errorf("push of %q: got no error", b)
			continue
		}
		if lineapi.IsRetryable(err) {
			t.Errorf("push of %q: error %q is retryable", b, err)
		}
	}
	if n := len(fake.requests()); n != 0 {
		t.Errorf("%d requests reached LINE, want 0", n)
	}
}
