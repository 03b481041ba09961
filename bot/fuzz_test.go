package bot_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/taipei-doit/ecardbot/linesim"
)

// FuzzWebhook posts arbitrary bodies, correctly signed and not, through the real handler on
// PostgreSQL and Redis: whatever LINE or an attacker sends, the webhook never panics and never
// answers 5xx (which would make LINE redeliver the batch forever).
func FuzzWebhook(f *testing.F) {
	h := mustHarness(f, harnessOptions{quiet: true})
	id := h.mustFollower(f, "zh-TW")
	follow := h.followEvent(id)
	seeds := [][]byte{
		mustJSON(f, map[string]any{"destination": h.sim.BotUserID(), "events": []any{follow}}),
		[]byte(`{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[]}`),
		[]byte(`{"events":[{"type":"message","mode":"active","timestamp":1,"webhookEventId":"01H","source":{"type":"user","userId":"U1"},"replyToken":"x","message":{"type":"text","id":"1","text":"hi"}}]}`),
		[]byte(`{"events":[{"type":"accountLink","webhookEventId":"01J","link":{"result":"failed","nonce":"n"}}]}`),
		[]byte(`{"events":[{"type":"unfollow","webhookEventId":"01K","source":{"type":"group","groupId":"C1"}}]}`),
		[]byte(`{"events":[null, 1, "x", {}]}`),
		[]byte(`[]`),
		[]byte(``),
	}
	for _, s := range seeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		req := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(body))
		if sign {
			req.Header.Set("X-Line-Signature", linesim.Signature(h.sim.ChannelSecret(), body))
		}
		rec := httptest.NewRecorder()
		h.engine.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d for body %q", rec.Code, body)
		case !sign && rec.Code != http.StatusBadRequest:
			t.Fatalf("unsigned body answered %d, want 400", rec.Code)
		}
	})
}
