// Package linkingtest runs the whole linking journey in tests, with nothing faked: the bot's
// webhook and the /link pages on one HTTP server over real PostgreSQL and Redis, the LINE
// emulator (with its account-link dialog) and the TaipeiPASS emulator, all on one simulated
// clock. The bot's and the linking package's tests share it.
package linkingtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/bot"
	"github.com/taipei-doit/ecardbot/internal/lineopenapi"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/lineapi"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/linking"
	"github.com/taipei-doit/ecardbot/server"
	"github.com/taipei-doit/ecardbot/store"
	"github.com/taipei-doit/ecardbot/web"
)

// Options change the harness.
type Options struct {
	Bot      bot.Config
	RedisURL string // empty: the shared test Redis
	Sim      linesim.Options
	// TaipeiPass configures the TaipeiPASS emulator; its clock is the harness's.
	TaipeiPass linesim.TaipeiPassOptions
	// Quiet logs at Info to nowhere, as a benchmark should; tests keep Debug logs to inspect.
	Quiet bool
}

// Harness is the running service with its emulators.
type Harness struct {
	Clock       *Clock
	DatabaseURL string // the test's own schema, for checks in SQL
	DB          *store.DB
	KV          *kv.Client
	Sim         *linesim.Server
	SimURL      string
	TaipeiPass  *linesim.TaipeiPass
	Bot         *bot.Bot
	Linking     *linking.Service
	Users       *store.LineUserService
	Guardians   *store.GuardianService
	Links       *store.LinkStore
	Registry    *prometheus.Registry
	Engine      http.Handler
	URL         string // the service's public URL
	Logs        *SyncBuffer
}

// New starts everything; it all stops when the test ends.
func New(tb testing.TB, opts Options) *Harness {
	tb.Helper()
	ctx := context.Background()
	h := &Harness{Clock: &Clock{}, Registry: prometheus.NewRegistry(), Logs: &SyncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(h.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Quiet {
		logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}

	var err error
	h.DatabaseURL = testenv.PostgresURL(tb)
	h.DB, err = store.Open(ctx, store.Config{DatabaseURL: h.DatabaseURL, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.DB.Close() })
	if err := h.DB.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	redisURL, prefix := opts.RedisURL, "test:"
	if redisURL == "" {
		redisURL, prefix = testenv.RedisURL(tb)
	}
	h.KV, err = kv.Open(ctx, kv.Config{URL: redisURL, Prefix: prefix, Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.KV.Close() })

	simOpts := opts.Sim
	if simOpts.Clock == nil {
		simOpts.Clock = h.Clock.Now
	}
	h.Sim, err = linesim.New(simOpts)
	if err != nil {
		tb.Fatal(err)
	}
	if h.SimURL, err = h.Sim.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	// Registered before Close so that it runs after it: Close waits for requests in flight.
	tb.Cleanup(func() { lineopenapi.CheckRequests(tb, h.Sim.Requests()) })
	tb.Cleanup(func() { h.Sim.Close() })
	tpOpts := opts.TaipeiPass
	tpOpts.Clock, tpOpts.Logger = h.Clock.Now, logger
	h.TaipeiPass, err = linesim.NewTaipeiPass(tpOpts)
	if err != nil {
		tb.Fatal(err)
	}
	tpURL, err := h.TaipeiPass.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.TaipeiPass.Close() })
	line, err := lineapi.New(lineapi.Config{ChannelToken: h.Sim.ChannelToken(), APIURL: h.SimURL, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}

	engine, err := server.New(server.Config{Logger: logger, Registry: h.Registry})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(engine) // routes are added below, before the first request
	tb.Cleanup(srv.Close)
	h.URL, h.Engine = srv.URL, engine

	h.Users = store.NewLineUserService(h.DB)
	h.Guardians = store.NewGuardianService(h.DB)
	h.Links = store.NewLinkStore(h.DB)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	h.Linking, err = linking.New(linking.Config{
		PublicURL: srv.URL, LineAccessURL: h.SimURL, TaipeiPassURL: tpURL,
		ClientID: h.TaipeiPass.ClientID(), ClientSecret: h.TaipeiPass.ClientSecret(), Scopes: []string{"uuid", "verify_level"},
		SecretKey: key,
	}, linking.Deps{Store: h.Links, Guardians: h.Guardians, Logger: logger, Now: h.Clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := opts.Bot
	cfg.ChannelSecret = h.Sim.ChannelSecret()
	h.Bot, err = bot.New(cfg, bot.Deps{
		Users: h.Users, Claims: kv.NewEventClaims(h.KV, 0), LINE: line, Logger: logger, Registry: h.Registry,
		Guardians: h.Guardians, Linker: h.Linking, Settings: Settings(srv.URL),
	})
	if err != nil {
		tb.Fatal(err)
	}
	h.Bot.Register(engine)
	h.Linking.Register(engine)
	web.Register(engine)
	h.Sim.SetWebhookURL(srv.URL + "/callback")
	return h
}

// Clock is the real time moved forward by Advance: events keep their real order, while a test
// can jump past an expiry.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the real time plus every Advance so far.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Settings is the settings pages' side of ecardbot.SettingsLinker as these tests need it: a
// URL naming the guardian and the page, under base.
type Settings string

// SettingsURL returns base/settings/<page>?guardian=<id>.
func (s Settings) SettingsURL(_ context.Context, guardianID int64, page ecardbot.SettingsPage) (string, error) {
	return fmt.Sprintf("%s/settings/%s?guardian=%d", s, page, guardianID), nil
}

// Friend adds a LINE user who follows the bot, waiting until the bot has welcomed them.
func (h *Harness) Friend(tb testing.TB, language string) string {
	tb.Helper()
	u, err := h.Sim.AddUser(linesim.User{DisplayName: "王小明", Language: language})
	if err != nil {
		tb.Fatal(err)
	}
	Delivered(tb)(h.Sim.Follow(context.Background(), u.ID))
	h.Drain(tb)
	return u.ID
}

// Say sends text as the user and returns the bot's answers to it.
func (h *Harness) Say(tb testing.TB, userID, text string) []linesim.Message {
	tb.Helper()
	before := len(h.Sim.Inbox(userID))
	Delivered(tb)(h.Sim.SendText(context.Background(), userID, text))
	h.Drain(tb)
	return h.Sim.Inbox(userID)[before:]
}

// Tap performs a button or quick reply of a message and returns the bot's answers.
func (h *Harness) Tap(tb testing.TB, userID string, a linesim.Action) []linesim.Message {
	tb.Helper()
	before := len(h.Sim.Inbox(userID))
	Delivered(tb)(h.Sim.Tap(context.Background(), userID, a, nil))
	h.Drain(tb)
	return h.Sim.Inbox(userID)[before:]
}

// Drain waits until the bot has finished every event handed to it.
func (h *Harness) Drain(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Bot.Drain(ctx); err != nil {
		tb.Fatalf("drain: %v", err)
	}
}

// LinkURL says 綁定 as the user and returns the URL of the link button the bot answers with.
func (h *Harness) LinkURL(tb testing.TB, userID string) string {
	tb.Helper()
	msgs := h.Say(tb, userID, "綁定")
	if len(msgs) == 0 {
		tb.Fatal("no answer to 綁定")
	}
	last := msgs[len(msgs)-1]
	if len(last.Actions) != 1 || last.Actions[0].Type != "uri" || !strings.HasPrefix(last.Actions[0].URI, h.URL+"/link?linkToken=") {
		tb.Fatalf("answer to 綁定 = %+v, want a button to /link", last)
	}
	return last.Actions[0].URI
}

// Response is an answer the browser got: a redirect's target, or a page.
type Response struct {
	Status   int
	Location string
	Body     string
	Header   http.Header
}

// Get requests u as a phone's browser would, without following redirects, as user (the
// linesim_user cookie the LINE dialog reads; "" for none).
func Get(tb testing.TB, u, user string) Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if user != "" {
		req.AddCookie(&http.Cookie{Name: "linesim_user", Value: user})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(res.Body); err != nil {
		tb.Fatal(err)
	}
	return Response{Status: res.StatusCode, Location: res.Header.Get("Location"), Body: body.String(), Header: res.Header}
}

// Authorize opens the link URL and returns the TaipeiPASS authorization URL it redirects to.
func (h *Harness) Authorize(tb testing.TB, linkURL string) string {
	tb.Helper()
	r := Get(tb, linkURL, "")
	if r.Status != http.StatusFound || !strings.Contains(r.Location, "/tpcd/oauth/authorize?") {
		tb.Fatalf("/link answered %d → %q, want a redirect to TaipeiPASS", r.Status, r.Location)
	}
	return r.Location
}

// Login logs in at TaipeiPASS as account and returns the callback URL TaipeiPASS sends the
// browser back to.
func (h *Harness) Login(tb testing.TB, authorizeURL, account string) string {
	tb.Helper()
	u, err := h.TaipeiPass.Login(authorizeURL, account)
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.HasPrefix(u.String(), h.URL+"/link/callback?") {
		tb.Fatalf("TaipeiPASS sent the browser to %s, not to our callback", u)
	}
	return u.String()
}

// Callback opens the callback URL and returns the LINE account-link dialog URL it redirects to.
func (h *Harness) Callback(tb testing.TB, callbackURL string) string {
	tb.Helper()
	r := Get(tb, callbackURL, "")
	if r.Status != http.StatusFound || !strings.HasPrefix(r.Location, h.SimURL+"/dialog/bot/accountLink?") {
		tb.Fatalf("callback answered %d → %q: %s", r.Status, r.Location, r.Body)
	}
	return r.Location
}

// Dialog opens LINE's account-link dialog as the user and waits for the bot to handle the
// event it sends, if any.
func (h *Harness) Dialog(tb testing.TB, dialogURL, user string) Response {
	tb.Helper()
	r := Get(tb, dialogURL, user)
	h.Drain(tb)
	return r
}

// Link runs the whole journey for the user with the TaipeiPASS account and returns the bot's
// answers to the accountLink event.
func (h *Harness) Link(tb testing.TB, user, account string) []linesim.Message {
	tb.Helper()
	dialog := h.Callback(tb, h.Login(tb, h.Authorize(tb, h.LinkURL(tb, user)), account))
	before := len(h.Sim.Inbox(user))
	if r := h.Dialog(tb, dialog, user); r.Status != http.StatusOK || !strings.Contains(r.Body, "Account linked") {
		tb.Fatalf("LINE dialog answered %d: %s", r.Status, r.Body)
	}
	return h.Sim.Inbox(user)[before:]
}

// Query returns the parameters of u.
func Query(tb testing.TB, u string) url.Values {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	return p.Query()
}

// Delivered checks that a webhook delivery got a 2xx: Delivered(t)(h.Sim.Follow(ctx, id)).
func Delivered(tb testing.TB) func(linesim.Delivery, error) linesim.Delivery {
	return func(d linesim.Delivery, err error) linesim.Delivery {
		tb.Helper()
		if err != nil {
			tb.Fatalf("deliver webhook: %v", err)
		}
		if !d.OK() {
			tb.Fatalf("webhook not answered 2xx: %+v", d.Attempts[len(d.Attempts)-1])
		}
		return d
	}
}

// SyncBuffer collects log output written from several goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
