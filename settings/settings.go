// Package settings serves the pages a linked parent opens from chat (design.md §2.3): their
// children and the notices they get, 歸戶 (proving they are a child's guardian), their e-mail
// address and the history of notices.
//
// The way in is a single-use link that the bot sends (SettingsURL): opening it starts a session
// kept in an HttpOnly cookie. Every form carries a CSRF token derived from the session's own
// secret, so a page of another site, or another parent's token, cannot change anything. The
// pages need no JavaScript: the layout's Content-Security-Policy allows none, and the school
// list is filtered by a plain GET form.
package settings

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/web"
)

// Defaults of Config.
const (
	DefaultLinkTTL       = 15 * time.Minute
	DefaultSessionTTL    = time.Hour
	DefaultMaxAttempts   = 5
	DefaultAttemptWindow = time.Hour
	// ConfirmTTL is how long an e-mail confirmation link works. Fixed, because the
	// confirmation mail tells the parent "24 hours".
	ConfirmTTL = 24 * time.Hour
	// MaxConfirmMails is how many confirmation mails one guardian may have sent within
	// ConfirmMailWindow: each goes to an address the parent typed, so without a limit a
	// session could make the relay mail anyone, any number of times.
	MaxConfirmMails   = 5
	ConfirmMailWindow = time.Hour
	// HistoryDays is how far back the history page goes.
	HistoryDays = 30
	// historyLimit bounds the notices of one history page: three a day for two children over
	// 30 days fits.
	historyLimit = 200
	// maxFormBytes caps a form body; the largest form, 歸戶, is well under 1 KiB.
	maxFormBytes = 16 << 10
	// maxTokenLen refuses absurd tokens before hashing them.
	maxTokenLen = 128
)

// CookieName is the session cookie. It is scoped to /settings.
const CookieName = "ecardbot_settings"

// Config is what the pages need from the program.
type Config struct {
	// PublicURL is ECARDBOT_PUBLIC_URL, the base of the links sent to parents. Over https the
	// session cookie is Secure. Required.
	PublicURL string
	// SecretKey is ECARDBOT_SECRET_KEY: it keys the hashes of national IDs (the roster's),
	// tokens and session IDs, and the CSRF tokens. Required.
	SecretKey []byte
	// LinkTTL is how long a link from chat works. Zero means DefaultLinkTTL (15 minutes).
	LinkTTL time.Duration
	// SessionTTL is how long a session lasts after the link was opened. Zero means
	// DefaultSessionTTL (1 hour).
	SessionTTL time.Duration
	// MaxAttempts is how many failed 歸戶 attempts a guardian may make within AttemptWindow.
	// Zero means DefaultMaxAttempts (5).
	MaxAttempts int
	// AttemptWindow is the window of MaxAttempts. Zero means DefaultAttemptWindow (1 hour).
	AttemptWindow time.Duration
	// Location is the zone of the times the pages show (ECARDBOT_TIMEZONE). Nil means
	// ecardbot.Taipei.
	Location *time.Location
	// Now is the clock of expiries and attempts. Nil means time.Now.
	Now func() time.Time
}

// ConfirmationSender mails the link that confirms an e-mail address; push.Mailer is one.
type ConfirmationSender interface {
	SendConfirmation(ctx context.Context, to, lang, link string) error
}

// Deps are the services the pages use.
type Deps struct {
	Guardians ecardbot.GuardianService
	Settings  ecardbot.SettingsService
	// Mailer sends confirmation mail. Nil (a nil interface, not a nil *push.Mailer) means the
	// e-mail channel is off: the pages hide the e-mail column and say why.
	Mailer ConfirmationSender
	// Logger receives one line per refused or completed change, with IDs only. Nil discards.
	Logger *slog.Logger
}

// Settings serves the settings pages and makes the links to them.
type Settings struct {
	cfg       Config
	base      string
	secure    bool
	guardians ecardbot.GuardianService
	store     ecardbot.SettingsService
	mailer    ConfirmationSender
	pages     *web.Pages
	log       *slog.Logger
}

var _ ecardbot.SettingsLinker = (*Settings)(nil)

// New checks cfg and parses the page templates.
func New(cfg Config, deps Deps) (*Settings, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("settings: PublicURL must be an http or https URL")
	}
	if len(cfg.SecretKey) == 0 {
		return nil, errors.New("settings: no secret key")
	}
	if deps.Guardians == nil || deps.Settings == nil {
		return nil, errors.New("settings: Guardians and Settings are required")
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = DefaultLinkTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.AttemptWindow <= 0 {
		cfg.AttemptWindow = DefaultAttemptWindow
	}
	if cfg.Location == nil {
		cfg.Location = ecardbot.Taipei
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Settings{
		cfg: cfg, base: strings.TrimRight(cfg.PublicURL, "/"), secure: u.Scheme == "https",
		guardians: deps.Guardians, store: deps.Settings, mailer: deps.Mailer, pages: pages,
		log: logger.With("component", "settings"),
	}, nil
}

// Register mounts the pages under /settings; web.Register serves their stylesheet.
func (s *Settings) Register(r gin.IRouter) {
	r.GET("/settings/open", s.wrap(s.open))
	r.GET("/settings/email/confirm", s.wrap(s.confirmEmailForm))
	r.POST("/settings/email/confirm", s.wrap(s.confirmEmail))
	r.GET("/settings", s.authed(s.home))
	r.GET("/settings/history", s.authed(s.history))
	r.GET("/settings/children/new", s.authed(s.addChildForm))
	r.POST("/settings/children/new", s.authed(s.addChild))
	r.POST("/settings/children/:id/notices", s.authed(s.saveNotices))
	r.GET("/settings/children/:id/remove", s.authed(s.removeChildForm))
	r.POST("/settings/children/:id/remove", s.authed(s.removeChild))
	r.POST("/settings/email", s.authed(s.setEmail))
}

// pagePath is where each SettingsPage lives.
func pagePath(p ecardbot.SettingsPage) string {
	if p == ecardbot.SettingsHome || !ecardbot.ValidSettingsPage(p) {
		return "/settings"
	}
	return "/settings/" + string(p)
}

// SettingsURL makes a single-use link that opens page for the guardian and starts a session.
// Only its keyed hash is stored. Returns ENOTFOUND for an unknown guardian and EINVALID for a
// page that is not a SettingsPage.
func (s *Settings) SettingsURL(ctx context.Context, guardianID int64, page ecardbot.SettingsPage) (string, error) {
	token, now := web.NewToken(), s.cfg.Now()
	if err := s.store.CreateSettingsLink(ctx, s.hash(ecardbot.PurposeSettingsLink, token), guardianID, page, now, now.Add(s.cfg.LinkTTL)); err != nil {
		return "", fmt.Errorf("settings url: %w", err)
	}
	return s.base + "/settings/open?t=" + url.QueryEscape(token), nil
}

func (s *Settings) hash(purpose, value string) string {
	return ecardbot.KeyedHash(s.cfg.SecretKey, purpose, value)
}

// open consumes a link from chat, starts a session and sends the parent to the link's page.
func (s *Settings) open(c *gin.Context) error {
	token := c.Query("t")
	if token == "" || len(token) > maxTokenLen {
		return s.message(c, http.StatusBadRequest, msgBadLink)
	}
	now := s.cfg.Now()
	guardianID, page, err := s.store.UseSettingsLink(c.Request.Context(), s.hash(ecardbot.PurposeSettingsLink, token), now)
	switch ecardbot.ErrorCode(err) {
	case "":
	case ecardbot.ENOTFOUND:
		s.log.Info("settings link refused", "reason", "unknown")
		return s.message(c, http.StatusBadRequest, msgBadLink)
	case ecardbot.ECONFLICT:
		s.log.Info("settings link refused", "reason", "used or expired")
		return s.message(c, http.StatusGone, s.spentLink())
	default:
		return err
	}
	id, secret := web.NewToken(), web.NewToken()
	sess := ecardbot.SettingsSession{GuardianID: guardianID, CSRFSecret: secret, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateSession(c.Request.Context(), s.hash(ecardbot.PurposeSession, id), sess, now); err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: CookieName, Value: id, Path: "/settings", MaxAge: int(s.cfg.SessionTTL.Seconds()),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	})
	s.log.Info("settings session started", "guardian_id", guardianID)
	web.SetHeaders(c.Writer.Header()) // the request URL holds the token: no Referer, no cache
	c.Redirect(http.StatusSeeOther, pagePath(page))
	return nil
}

// errNoSession is a request without a live session: the parent must open settings from chat.
var errNoSession = ecardbot.Errorf(ecardbot.EUNAUTHORIZED, "Your session has ended: open settings again from the chat.")

// errCSRF is a form without its session's token: nothing is changed.
var errCSRF = ecardbot.Errorf(ecardbot.EFORBIDDEN, "This form has expired or did not come from this page.")

// request is what an authenticated handler gets.
type request struct {
	guardianID int64
	csrf       string // the token the page's forms carry
}

// authed runs h with the request's session. A POST must carry the session's CSRF token in its
// form, which is read with the body capped; otherwise h does not run.
func (s *Settings) authed(h func(c *gin.Context, r request) error) gin.HandlerFunc {
	return s.wrap(func(c *gin.Context) error {
		id, err := c.Cookie(CookieName)
		if err != nil || id == "" || len(id) > maxTokenLen {
			return errNoSession
		}
		sess, err := s.store.FindSession(c.Request.Context(), s.hash(ecardbot.PurposeSession, id), s.cfg.Now())
		if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
			return errNoSession
		} else if err != nil {
			return err
		}
		r := request{guardianID: sess.GuardianID, csrf: s.hash(ecardbot.PurposeCSRF, sess.CSRFSecret)}
		if c.Request.Method == http.MethodPost {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
			if err := c.Request.ParseForm(); err != nil {
				var maxErr *http.MaxBytesError
				if errors.As(err, &maxErr) {
					return ecardbot.Errorf(ecardbot.ETOOLARGE, "Form too large.")
				}
				return ecardbot.Errorf(ecardbot.EINVALID, "Could not read the form.")
			}
			if !hmac.Equal([]byte(c.Request.PostForm.Get("csrf")), []byte(r.csrf)) {
				s.log.Info("form refused", "guardian_id", r.guardianID, "reason", "csrf")
				return errCSRF
			}
		}
		return h(c, r)
	})
}

// wrap renders the error a handler returns as a page: the one place that chooses the status
// and logs. Each code has its own page and status; only an internal error, which has no code,
// is logged at Error. The refusals a parent can cause are logged at Info with the code alone,
// an unavailable dependency at Warn.
func (s *Settings) wrap(h func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := h(c)
		if err == nil {
			return
		}
		var (
			m      message
			status int
			level  = slog.LevelInfo
			logIt  bool
		)
		code := ecardbot.ErrorCode(err)
		switch code {
		case ecardbot.EUNAUTHORIZED:
			m, status = msgNoSession, http.StatusUnauthorized
		case ecardbot.EFORBIDDEN:
			m, status = msgForbidden, http.StatusForbidden
			if errors.Is(err, errCSRF) {
				m = msgCSRF // authed has logged it
			} else {
				logIt = true
			}
		case ecardbot.ENOTFOUND:
			m, status = msgNotFound, http.StatusNotFound
		case ecardbot.EINVALID:
			m, status = msgInvalid, http.StatusBadRequest
		case ecardbot.ETOOLARGE:
			m, status = msgInvalid, http.StatusRequestEntityTooLarge
		case ecardbot.ECONFLICT:
			m, status, logIt = msgConflict, http.StatusConflict, true
		case ecardbot.ERATELIMITED:
			m, status, logIt = msgRateLimited, http.StatusTooManyRequests, true
		case ecardbot.EUNAVAILABLE:
			m, status, level, logIt = msgUnavailable, http.StatusServiceUnavailable, slog.LevelWarn, true
		default: // EINTERNAL, or a code this switch does not know yet
			m, status, level, logIt = msgInternal, http.StatusInternalServerError, slog.LevelError, true
		}
		switch {
		case level == slog.LevelInfo && logIt:
			// A refusal's text may come from a lower layer: log its code only.
			s.log.Info("settings request refused", "route", c.FullPath(), "status", status, "code", code)
		case logIt:
			s.log.Log(c.Request.Context(), level, "settings request failed", "route", c.FullPath(), "status", status, "error", err)
		}
		if err := s.message(c, status, m); err != nil {
			s.log.Error("render error page", "route", c.FullPath(), "error", err)
		}
	}
}

// render draws a page; a template error becomes the internal error page.
func (s *Settings) render(c *gin.Context, status int, name string, data any) error {
	return s.pages.Render(c.Writer, status, name, data)
}

// message draws the page that only explains something.
func (s *Settings) message(c *gin.Context, status int, m message) error {
	return s.render(c, status, "message", m)
}
