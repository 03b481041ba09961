package linesim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFaults(t *testing.T) {
	pushPath := "/v2/bot/message/push"
	tests := []struct {
		name       string
		faults     []Fault
		wantStatus []int    // statuses of successive pushes
		wantMsg    []string // their error messages ("" for none)
	}{
		{"500 twice", []Fault{{PathPrefix: pushPath, Status: 500, Times: 2}},
			[]int{500, 500, 200}, []string{"An error occurred in the API server", "An error occurred in the API server", ""}},
		{"rate limit 429", []Fault{{PathPrefix: pushPath, Status: 429, Times: 1}},
			[]int{429, 200}, []string{MessageRateLimit, ""}},
		{"monthly limit 429", []Fault{{PathPrefix: pushPath, Status: 429, Message: MessageMonthlyLimit, Times: 1}},
			[]int{429, 200}, []string{MessageMonthlyLimit, ""}},
		{"400", []Fault{{PathPrefix: pushPath, Status: 400, Times: 1}}, []int{400, 200}, []string{"Bad Request", ""}},
		{"other method untouched", []Fault{{Method: "GET", PathPrefix: pushPath, Status: 500}}, []int{200}, []string{""}},
		{"other path untouched", []Fault{{PathPrefix: "/v2/bot/message/multicast", Status: 500}}, []int{200}, []string{""}},
		{"until cleared", []Fault{{PathPrefix: "/v2/", Status: 503}}, []int{503, 503, 503}, []string{"An error occurred in the API server", "An error occurred in the API server", "An error occurred in the API server"}},
		{"first match wins", []Fault{{PathPrefix: pushPath, Status: 502, Times: 1}, {PathPrefix: "/v2/", Status: 504, Times: 1}},
			[]int{502, 504, 200}, []string{"An error occurred in the API server", "An error occurred in the API server", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url, _ := MustStart(t, Options{})
			to := MustFriend(t, s)
			for _, f := range tt.faults {
				s.AddFault(f)
			}
			body := []byte(`{"to":"` + to + `","messages":[{"type":"text","text":"x"}]}`)
			var gotStatus []int
			var gotMsg []string
			for range tt.wantStatus {
				status, h, b := do(t, s, url, "POST", pushPath, body, nil)
				if h.Get("X-Line-Request-Id") == "" {
					t.Error("fault answer without x-line-request-id")
				}
				gotStatus = append(gotStatus, status)
				msg := ""
				if status != 200 {
					msg = errorMessage(t, b).Message
				}
				gotMsg = append(gotMsg, msg)
			}
			if diff := cmp.Diff(tt.wantStatus, gotStatus); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMsg, gotMsg); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			recs := s.RequestsTo(RoutePush)
			for i, r := range recs {
				if r.Fault != (tt.wantStatus[i] != 200) || r.Status != tt.wantStatus[i] {
					t.Errorf("record %d: fault %v status %d", i, r.Fault, r.Status)
				}
			}
			var delivered int
			for _, st := range tt.wantStatus {
				if st == 200 {
					delivered++
				}
			}
			if n := len(s.Inbox(to)); n != delivered {
				t.Errorf("inbox has %d, want %d: a fault must not deliver", n, delivered)
			}
		})
	}
}

func TestFaultRemoveClearBodyDelay(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	id := s.AddFault(Fault{Status: 500})
	if status, _, _ := do(t, s, url, "GET", "/v2/bot/message/quota", nil, nil); status != 500 {
		t.Fatalf("status %d, want 500", status)
	}
	s.RemoveFault(id)
	if status, _, _ := do(t, s, url, "GET", "/v2/bot/message/quota", nil, nil); status != 200 {
		t.Fatalf("after RemoveFault: %d, want 200", status)
	}

	s.AddFault(Fault{Status: 502, Body: []byte("<html>Bad Gateway</html>")})
	status, h, b := do(t, s, url, "GET", "/v2/bot/message/quota", nil, nil)
	if status != 502 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || string(b) != "<html>Bad Gateway</html>" {
		t.Errorf("proxy page: %d %q %s", status, h.Get("Content-Type"), b)
	}
	s.ClearFaults()

	matched := make(chan string, 1)
	s.AddFault(Fault{PathPrefix: "/v2/bot/message/quota", Delay: 30 * time.Millisecond, Times: 1, OnMatch: func(r *http.Request) { matched <- r.URL.Path }})
	start := time.Now()
	status, _, b = do(t, s, url, "GET", "/v2/bot/message/quota", nil, nil)
	if status != 200 || string(b) != `{"type":"none"}` || time.Since(start) < 30*time.Millisecond {
		t.Errorf("slow answer: %d %s after %v", status, b, time.Since(start))
	}
	if got := <-matched; got != "/v2/bot/message/quota" {
		t.Errorf("OnMatch got %q", got)
	}
	recs := s.Requests()
	if last := recs[len(recs)-1]; last.Fault || last.Status != 200 {
		t.Errorf("a delay-only fault is answered by the endpoint: %+v", last)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	s, url, _ := MustStart(t, Options{})
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"unknown path", "GET", "/v2/bot/nothing", 404},
		{"wrong method", "PUT", "/v2/bot/message/push", 405},
		{"alias list is not a menu ID", "GET", "/v2/bot/richmenu/alias/list", 200},
		{"menu list is not a menu ID", "GET", "/v2/bot/richmenu/list", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, b := do(t, s, url, tt.method, tt.path, nil, nil)
			if status != tt.want || h.Get("X-Line-Request-Id") == "" {
				t.Errorf("status %d (%s), want %d with a request id", status, b, tt.want)
			}
		})
	}
}
