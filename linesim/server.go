package linesim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value is usable: secrets and the bot user ID are
// generated, the clock is the real one and limits are LINE's.
type Options struct {
	// ChannelSecret signs webhook bodies. Empty means a random one, readable with ChannelSecret.
	ChannelSecret string
	// ChannelToken is the only bearer token the API accepts. Empty means a random one, readable
	// with ChannelToken.
	ChannelToken string
	// BotUserID is the webhook "destination" ("U" + 32 lowercase hex). Empty means a generated one.
	BotUserID string
	// Clock gives the platform's time: event timestamps, token expiry, retry-key memory, rate
	// buckets and the quota month. Nil means time.Now. Tests pass a settable clock so that expiry
	// and refill need no sleeping.
	Clock func() time.Time
	// Logger receives one line per API request and webhook delivery, without tokens or message
	// text. Nil discards.
	Logger *slog.Logger

	// PushRate is the push bucket in requests per second. Zero means LINE's 2,000; negative means
	// no limit (benchmarks of the bot's own limiter).
	PushRate float64
	// MulticastRate is the multicast bucket in requests per second. Zero means LINE's 200;
	// negative means no limit.
	MulticastRate float64
	// RateLimits overrides the bucket of any route, keyed by its pattern such as
	// "POST /v2/bot/richmenu" (see the Route constants). It wins over PushRate and MulticastRate.
	RateLimits map[string]Rate
	// MonthlyQuota is the number of push/multicast/broadcast recipients a month. Zero means no
	// limit (quota type "none"). Replies are free, as on LINE.
	MonthlyQuota int64

	// Redelivery turns on LINE's webhook redelivery: after a non-2xx answer, a transport error or
	// a timeout the same body is sent again with isRedelivery true. Off by default, as in the
	// LINE Developers Console.
	Redelivery bool
	// RedeliveryAttempts bounds the redeliveries of one webhook. Zero means 3.
	RedeliveryAttempts int
	// RedeliveryDelay is the real time waited before each redelivery. Zero means none; LINE does
	// not publish its spacing.
	RedeliveryDelay time.Duration
	// WebhookTimeout is how long a webhook POST may take. Zero means LINE's 2 s.
	WebhookTimeout time.Duration

	// AutoFriend makes any well-formed user ID the emulator has not seen a friend on first use,
	// for benchmarks and for users imported from the old portal. Off, a push to an unknown user
	// is a 400, as LINE answers for a user ID from another provider.
	AutoFriend bool
	// RecordLimit keeps only the latest N API requests. Zero keeps all of them; benchmarks set it
	// to bound memory.
	RecordLimit int
	// ConversationLimit keeps only the latest N conversation entries (and so inbox messages) per
	// user. Zero keeps all; benchmarks that push millions of messages set it.
	ConversationLimit int
}

// Server is an emulated LINE platform. All methods are safe for concurrent use.
type Server struct {
	secret    string
	token     string
	botUserID string
	clock     func() time.Time
	log       *slog.Logger
	opts      Options
	routes    []*route
	webhook   *http.Client

	mu          sync.Mutex
	webhookURL  string
	users       map[string]*user
	userOrder   []string
	replyTokens map[string]*replyToken
	linkTokens  map[string]*LinkToken
	retryKeys   map[string]*retryEntry
	usage       map[string]int64 // recipients billed, by month ("2006-01" in JST)
	quota       int64
	buckets     map[string]*bucket
	menus       map[string]*richMenu
	menuOrder   []string
	defaultMenu string
	aliases     map[string]string // alias ID → rich menu ID
	aliasOrder  []string
	events      map[string]Event // by webhookEventId, for Redeliver
	deliveries  []Delivery
	records     []Request // with a RecordLimit, a ring whose oldest entry is at recordStart
	recordStart int
	faults      []*faultRule
	nextFault   int
	seq         int64
	changed     chan struct{} // closed and replaced by notifyLocked
	version     int64         // counts notifyLocked calls; the chat page polls with it

	srvMu     sync.Mutex
	srv       *http.Server
	done      chan struct{} // closed by Close; ends long polls
	closeOnce sync.Once
}

// New returns a Server that is not yet listening: serve Handler yourself or call Start.
// It returns an error when BotUserID is malformed.
func New(opts Options) (*Server, error) {
	opts.RateLimits = maps.Clone(opts.RateLimits) // the caller may reuse its map
	s := &Server{
		opts:        opts,
		secret:      opts.ChannelSecret,
		token:       opts.ChannelToken,
		botUserID:   opts.BotUserID,
		clock:       opts.Clock,
		log:         opts.Logger,
		users:       map[string]*user{},
		replyTokens: map[string]*replyToken{},
		linkTokens:  map[string]*LinkToken{},
		retryKeys:   map[string]*retryEntry{},
		usage:       map[string]int64{},
		quota:       opts.MonthlyQuota,
		buckets:     map[string]*bucket{},
		menus:       map[string]*richMenu{},
		aliases:     map[string]string{},
		events:      map[string]Event{},
		changed:     make(chan struct{}),
		done:        make(chan struct{}),
	}
	if s.secret == "" {
		s.secret = randomHex(16)
	}
	if s.token == "" {
		s.token = randomAlnum(40)
	}
	if s.botUserID == "" {
		s.botUserID = NewUserID()
	} else if !ValidUserID(s.botUserID) {
		return nil, fmt.Errorf("bot user ID %q is not U followed by 32 lowercase hex digits", s.botUserID)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "linesim")
	timeout := opts.WebhookTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	s.webhook = &http.Client{Timeout: timeout}
	s.routes = s.apiRoutes()
	return s, nil
}

// ChannelSecret returns the secret webhooks are signed with; the bot must be configured with it.
func (s *Server) ChannelSecret() string { return s.secret }

// ChannelToken returns the bearer token the API accepts; the bot must be configured with it.
func (s *Server) ChannelToken() string { return s.token }

// BotUserID returns the webhook destination, the bot's own LINE user ID.
func (s *Server) BotUserID() string { return s.botUserID }

// SetWebhookURL sets where events are POSTed. It can change at any time because the bot's port
// is often known only after the emulator has started.
func (s *Server) SetWebhookURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookURL = u
}

// WebhookURL returns the current webhook URL, empty when none is set.
func (s *Server) WebhookURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhookURL
}

// Handler serves everything on one origin: the Messaging API and its data API under /v2 (the
// SDK's WithEndpoint and WithBlobEndpoint may both point at it), the chat page at "/", its JSON
// under /sim/ and the account-link dialog under /dialog/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/", s.serveAPI)
	mux.HandleFunc("/dialog/bot/accountLink", s.serveAccountLinkDialog)
	s.registerSim(mux)
	return mux
}

// Start listens on addr (for example "127.0.0.1:0") and serves Handler in the background.
// It returns the base URL, such as "http://127.0.0.1:41234", to hand to the SDK and the bot.
func (s *Server) Start(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return "", errors.New("linesim: already started")
	}
	srv, url, err := serveOn(addr, s.Handler(), s.log)
	if err != nil {
		return "", err
	}
	s.srv = srv
	return url, nil
}

// serveOn listens on addr and serves h in the background. It returns the server and its URL,
// with a loopback host where addr named every interface.
func serveOn(addr string, h http.Handler, log *slog.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", "err", err)
		}
	}()
	host := ln.Addr().String()
	if strings.HasPrefix(host, "[::]") || strings.HasPrefix(host, "0.0.0.0") {
		_, port, _ := net.SplitHostPort(host)
		host = net.JoinHostPort("127.0.0.1", port)
	}
	return srv, "http://" + host, nil
}

// shutdown stops srv, waiting up to 5 s for requests in progress.
func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}

// Close stops the server started by Start, waiting up to 5 s for requests in progress (a
// long-polling chat page is cut off), and drops idle webhook connections.
func (s *Server) Close() error {
	s.srvMu.Lock()
	srv := s.srv
	s.srv = nil
	s.srvMu.Unlock()
	s.webhook.CloseIdleConnections()
	s.closeOnce.Do(func() { close(s.done) }) // ends long polls, which Shutdown would wait for
	if srv == nil {
		return nil
	}
	return shutdown(srv)
}

// now returns the emulated time.
func (s *Server) now() time.Time { return s.clock() }
