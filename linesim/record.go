package linesim

import (
	"bytes"
	"iter"
	"net/http"
	"strings"
	"time"
)

// Request is one Messaging API request as the emulator saw and answered it. Tests assert on
// these instead of on the bot's internals.
type Request struct {
	ID       string      // the x-line-request-id the emulator answered with
	Time     time.Time   // emulated time of arrival
	Method   string      // HTTP method
	Path     string      // URL path, such as "/v2/bot/message/push"
	Query    string      // raw query, without "?"
	Route    string      // matched pattern, such as RoutePush; empty for an unknown path
	Header   http.Header // request headers (Authorization included: it is the test's own token)
	Body     []byte      // request body, cut after 2 MB + 1 byte
	Status   int         // answer status; 0 when the client left before an injected delay ended
	Response []byte      // answer body
	Fault    bool        // answered by an injected fault rather than by the endpoint
}

// RetryKey returns the request's X-Line-Retry-Key header.
func (r Request) RetryKey() string { return r.Header.Get("X-Line-Retry-Key") }

func (s *Server) record(c *call, at time.Time) {
	req := Request{
		ID:       c.id,
		Time:     at,
		Method:   c.r.Method,
		Path:     c.r.URL.Path,
		Query:    c.r.URL.RawQuery,
		Route:    routePattern(c.rt),
		Header:   c.r.Header.Clone(),
		Body:     c.body,
		Status:   c.status,
		Response: c.resp,
		Fault:    c.fault,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// With a limit, a full list is a ring: the newest record replaces the oldest in place,
	// where copying the other records each time cost a benchmark more than the push itself.
	if lim := s.opts.RecordLimit; lim > 0 && len(s.records) == lim {
		s.records[s.recordStart] = req
		s.recordStart = (s.recordStart + 1) % lim
		return
	}
	s.records = append(s.records, req)
}

// recordsLocked yields the recorded requests, oldest first.
func (s *Server) recordsLocked() iter.Seq[Request] {
	return func(yield func(Request) bool) {
		for _, part := range [][]Request{s.records[s.recordStart:], s.records[:s.recordStart]} {
			for _, r := range part {
				if !yield(r) {
					return
				}
			}
		}
	}
}

func routePattern(rt *route) string {
	if rt == nil {
		return ""
	}
	return rt.pattern
}

// Requests returns a copy of the recorded API requests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.records))
	for r := range s.recordsLocked() {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		r.Response = bytes.Clone(r.Response)
		out = append(out, r)
	}
	return out
}

// RequestsTo returns the recorded requests whose Route is route (for example RoutePush).
func (s *Server) RequestsTo(route string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Route == route {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the recorded API requests, so a test can assert on what follows.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records, s.recordStart = nil, 0
}

// Fault makes API requests fail or slow down on demand, to test the bot's retries, backoff and
// dead letters. Requests answered by a fault are recorded with Fault set.
type Fault struct {
	// Method restricts the fault to one HTTP method. Empty matches any.
	Method string
	// PathPrefix selects requests whose path starts with it, such as "/v2/bot/message/push".
	// Empty matches every API path.
	PathPrefix string
	// Times is how many matching requests the fault applies to. Zero or less means every one
	// until ClearFaults.
	Times int
	// Status is the status to answer with. Zero answers normally after Delay, which makes a slow
	// but successful LINE.
	Status int
	// Message is the JSON error message. Empty means LINE's text for Status: MessageRateLimit for
	// 429 (set MessageMonthlyLimit for the other 429), a generic one otherwise.
	Message string
	// Body, when set, is sent as is with Content-Type text/html instead of a JSON error, like a
	// proxy's error page.
	Body []byte
	// Delay is real time waited before answering. The wait ends early if the client goes away.
	Delay time.Duration
	// OnMatch, when set, is called with the request (outside any lock) before Delay and Status
	// apply. Tests use it to hold a request in flight deterministically.
	OnMatch func(*http.Request)
}

type faultRule struct {
	id   int
	f    Fault
	left int // remaining uses; <0 means unlimited
}

// AddFault installs f and returns its ID for RemoveFault. Faults are tried in the order added;
// the first one matching a request applies.
func (s *Server) AddFault(f Fault) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFault++
	left := f.Times
	if left <= 0 {
		left = -1
	}
	s.faults = append(s.faults, &faultRule{id: s.nextFault, f: f, left: left})
	return s.nextFault
}

// RemoveFault removes the fault with the given ID, if it is still installed.
func (s *Server) RemoveFault(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.faults {
		if r.id == id {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return
		}
	}
}

// ClearFaults removes every installed fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the fault for a request and uses one of its applications.
func (s *Server) takeFault(method, path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.faults {
		if r.f.Method != "" && r.f.Method != method || !strings.HasPrefix(path, r.f.PathPrefix) {
			continue
		}
		if r.left > 0 {
			r.left--
			if r.left == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return r.f, true
	}
	return Fault{}, false
}

// applyFault applies the matching fault, if any, and reports whether it answered the request.
func (s *Server) applyFault(c *call) bool {
	f, ok := s.takeFault(c.r.Method, c.r.URL.Path)
	if !ok {
		return false
	}
	if f.OnMatch != nil {
		f.OnMatch(c.r)
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.r.Context().Done():
			c.fault = true
			return true
		}
	}
	if f.Status == 0 {
		return false
	}
	c.fault = true
	if f.Body != nil {
		c.write(f.Status, "text/html; charset=utf-8", f.Body)
		return true
	}
	msg := f.Message
	if msg == "" {
		msg = defaultFaultMessage(f.Status)
	}
	c.fail(f.Status, msg)
	return true
}

func defaultFaultMessage(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return MessageRateLimit
	case status >= 500:
		return "An error occurred in the API server"
	default:
		return http.StatusText(status)
	}
}
