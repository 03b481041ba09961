package linesim

import (
	"encoding/json"
	"net/http"
	"time"
)

// PushAnswer is one push request as the emulator answered it, without headers and body: what a
// benchmark or a fault test needs to count and time tens of thousands of pushes, which
// Requests would copy in full.
type PushAnswer struct {
	Time     time.Time // emulated time of arrival
	Status   int       // 200 accepted, 409 a retry key already accepted, 429 refused, …
	RetryKey string    // X-Line-Retry-Key
	To       string    // the recipient's user ID
}

// PushAnswers returns every recorded push request, oldest first.
func (s *Server) PushAnswers() []PushAnswer {
	type rec struct {
		at     time.Time
		status int
		key    string
		body   []byte
	}
	s.mu.Lock()
	recs := make([]rec, 0, len(s.records))
	for r := range s.recordsLocked() {
		if r.Route == RoutePush {
			// A recorded body is never written again, so it may be read outside the lock.
			recs = append(recs, rec{r.Time, r.Status, r.RetryKey(), r.Body})
		}
	}
	s.mu.Unlock()
	out := make([]PushAnswer, len(recs))
	for i, r := range recs {
		var body struct {
			To string `json:"to"`
		}
		_ = json.Unmarshal(r.body, &body) // a malformed body keeps an empty To
		out[i] = PushAnswer{Time: r.at, Status: r.status, RetryKey: r.key, To: body.To}
	}
	return out
}

// AcceptedRetryKeys counts the 200 answers per retry key. A delivery sent exactly once counts 1;
// a 409 is LINE refusing a repeat of an accepted key and is not counted.
func AcceptedRetryKeys(answers []PushAnswer) map[string]int {
	keys := map[string]int{}
	for _, a := range answers {
		if a.Status == http.StatusOK {
			keys[a.RetryKey]++
		}
	}
	return keys
}
