package linesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// flexPushGolden is the push our service sends for an arrival, as push's golden test pins it.
const flexPushGolden = "../push/testdata/line_arrived_zh-TW.golden.json"

// MustPushBench starts an emulator set up as `ecardbot bench push` uses it, except that the
// bucket never empties (the fake clock does not move) and the record list stays bounded, and
// returns it with the golden push as the SDK sends it (the golden file is indented; the SDK's
// json.Encoder writes it compact with a newline), to a recipient who is a friend.
func MustPushBench(b *testing.B) (*Server, string, []byte) {
	b.Helper()
	golden, err := os.ReadFile(flexPushGolden)
	if err != nil {
		b.Fatal(err)
	}
	var wire bytes.Buffer
	if err := json.Compact(&wire, golden); err != nil {
		b.Fatal(err)
	}
	body := append(wire.Bytes(), '\n')
	var req struct {
		To string `json:"to"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		b.Fatal(err)
	}
	s, url, _ := MustStart(b, Options{
		RateLimits:        map[string]Rate{RoutePush: {Count: math.MaxInt32, Per: time.Second}},
		RecordLimit:       1000,
		ConversationLimit: 1,
	})
	if _, err := s.AddUser(User{ID: req.To, Friend: true}); err != nil {
		b.Fatal(err)
	}
	return s, url, body
}

// reportCPU starts measuring the process's CPU time; the function it returns stops and reports
// it as cpu-ns/op, steadier than ns/op on a shared VM where other work takes turns on the cores.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		b.StopTimer()
		if used := processCPU() - start; used > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// retryKeys returns n distinct canonical UUIDs, made before the timer starts.
func retryKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("00000000-0000-4000-8000-%012x", i)
	}
	return keys
}

// startPushBench returns a retry key for each push and the Authorization header, then starts
// the timer.
func startPushBench(b *testing.B, s *Server, body []byte) (keys []string, auth string) {
	keys = retryKeys(b.N)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	return keys, "Bearer " + s.ChannelToken()
}

// setPushHeaders sets what the SDK sends with a push.
func setPushHeaders(req *http.Request, auth, retryKey string) {
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Line-Retry-Key", retryKey)
}

// BenchmarkPushFlex sends the service's Flex push over loopback with a real HTTP client and a
// fresh retry key each time: the emulator's cost as `ecardbot bench push` pays it, HTTP included.
func BenchmarkPushFlex(b *testing.B) {
	s, url, body := MustPushBench(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	b.Cleanup(client.CloseIdleConnections)
	keys, auth := startPushBench(b, s, body)
	defer reportCPU(b)()
	for i := range b.N {
		req, err := http.NewRequest(http.MethodPost, url+"/v2/bot/message/push", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		setPushHeaders(req, auth, keys[i])
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// BenchmarkPushFlexHandler serves the same push in process, without a network, to isolate the
// emulator's own cost.
func BenchmarkPushFlexHandler(b *testing.B) {
	s, _, body := MustPushBench(b)
	h := s.Handler()
	keys, auth := startPushBench(b, s, body)
	defer reportCPU(b)()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v2/bot/message/push", bytes.NewReader(body))
		setPushHeaders(req, auth, keys[i])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
