package lineapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot/lineapi"
)

const channelToken = "test-channel-token-never-in-errors"

// lineResponse is one answer of the fake LINE API, as LINE sends it.
type lineResponse struct {
	status  int
	headers map[string]string // written with exactly these names: LINE sends them lower-case
	body    string
}

// recorded is what the fake saw of one request.
type recorded struct {
	method      string
	path        string
	auth        string
	retryKey    string
	hasRetryKey bool
	body        string
}

// fakeLINE is an httptest server answering like the LINE Messaging API and recording requests.
type fakeLINE struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

// MustFakeLINE starts a fake whose answer to each request is chosen by respond. It is closed
// when the test ends.
func MustFakeLINE(tb testing.TB, respond func(r *http.Request, body string) lineResponse) *fakeLINE {
	tb.Helper()
	f := &fakeLINE{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			tb.Errorf("fake LINE: read body: %v", err)
			return
		}
		key, hasKey := r.Header["X-Line-Retry-Key"]
		rec := recorded{
			method:      r.Method,
			path:        r.URL.Path,
			auth:        r.Header.Get("Authorization"),
			hasRetryKey: hasKey,
			body:        string(b),
		}
		if hasKey {
			rec.retryKey = key[0]
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()

		resp := respond(r, string(b))
		for k, v := range resp.headers {
			w.Header()[k] = []string{v}
		}
		if resp.body != "" && resp.headers["content-type"] == "" {
			w.Header()["content-type"] = []string{"application/json"}
		}
		w.WriteHeader(resp.status)
		_, _ = io.WriteString(w, resp.body)
	}))
	tb.Cleanup(f.Close)
	return f
}

// MustFakeLINEAlways starts a fake that gives every request the same answer.
func MustFakeLINEAlways(tb testing.TB, resp lineResponse) *fakeLINE {
	tb.Helper()
	return MustFakeLINE(tb, func(*http.Request, string) lineResponse { return resp })
}

func (f *fakeLINE) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// MustClient returns a client for the LINE API at url with the test channel token.
func MustClient(tb testing.TB, url string, timeout time.Duration) *lineapi.Client {
	tb.Helper()
	c, err := lineapi.New(lineapi.Config{ChannelToken: channelToken, APIURL: url, Timeout: timeout})
	if err != nil {
		tb.Fatalf("new client: %v", err)
	}
	return c
}

// MustClosedURL returns the URL of a server that is no longer listening.
func MustClosedURL(tb testing.TB) string {
	tb.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}
