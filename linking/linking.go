package linking

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/web"
)

//go:embed pages/*.html
var pagesFS embed.FS

// DefaultLife is how long a login in progress and a nonce stay usable: LINE's link token lives
// 10 minutes, and neither is worth anything once it is gone.
const DefaultLife = 10 * time.Minute

// Config is what linking needs from the environment (design.md §3.2). URLs have no trailing
// slash, as config.Load gives them.
type Config struct {
	// PublicURL is ECARDBOT_PUBLIC_URL: /link and the OAuth2 redirect URI /link/callback live
	// under it. Required.
	PublicURL string
	// LineAccessURL is ECARDBOT_LINE_ACCESS_URL, the base of LINE's account-link dialog.
	// Required.
	LineAccessURL string
	// TaipeiPassURL is ECARDBOT_TAIPEIPASS_URL: /oauth/authorize, /oauth/token and
	// /api/v1.0.9/user/my live under it. Required.
	TaipeiPassURL string
	// ClientID and ClientSecret are ECARDBOT_TAIPEIPASS_CLIENT_ID and _SECRET. Required.
	ClientID     string
	ClientSecret string
	// Scopes is ECARDBOT_TAIPEIPASS_SCOPE. Empty sends no scope: TaipeiPASS applies the
	// client's default.
	Scopes []string
	// SecretKey is ECARDBOT_SECRET_KEY: it keys the hashes of states and nonces. Required.
	SecretKey []byte
	// Life bounds a login in progress and a nonce. Zero means DefaultLife.
	Life time.Duration
	// Timeout bounds each call to TaipeiPASS. Zero means 10 s.
	Timeout time.Duration
}

// Deps are the services linking uses.
type Deps struct {
	Store     ecardbot.LinkStore
	Guardians ecardbot.GuardianService
	Logger    *slog.Logger
	// Now is the clock of expiry. Nil means time.Now.
	Now func() time.Time
}

// Service is the web side of linking (/link, /link/callback) and the ecardbot.AccountLinker
// the bot completes links with.
type Service struct {
	cfg       Config
	oauth     *oauth2.Config
	http      *http.Client
	store     ecardbot.LinkStore
	guardians ecardbot.GuardianService
	log       *slog.Logger
	now       func() time.Time
	pages     *web.Pages
}

var _ ecardbot.AccountLinker = (*Service)(nil)

// New returns the service. It returns an error when a required setting is missing.
func New(cfg Config, d Deps) (*Service, error) {
	switch {
	case cfg.PublicURL == "" || cfg.LineAccessURL == "" || cfg.TaipeiPassURL == "":
		return nil, errors.New("linking: public, LINE access and TaipeiPASS URLs are required")
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("linking: TaipeiPASS client ID and secret are required")
	case len(cfg.SecretKey) == 0:
		return nil, errors.New("linking: secret key is required")
	case d.Store == nil || d.Guardians == nil || d.Logger == nil:
		return nil, errors.New("linking: store, guardians and logger are required")
	}
	if cfg.Life <= 0 {
		cfg.Life = DefaultLife
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	pages, err := web.Parse(pagesFS, "pages/*.html", nil)
	if err != nil {
		return nil, fmt.Errorf("linking: %w", err)
	}
	s := &Service{
		cfg: cfg,
		oauth: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:  cfg.TaipeiPassURL + "/oauth/authorize",
				TokenURL: cfg.TaipeiPassURL + "/oauth/token",
				// taipei.md: the token request carries client_id and client_secret in the form.
				AuthStyle: oauth2.AuthStyleInParams,
			},
			RedirectURL: cfg.PublicURL + callbackPath,
			Scopes:      cfg.Scopes,
		},
		http:      &http.Client{Timeout: cfg.Timeout},
		store:     d.Store,
		guardians: d.Guardians,
		log:       d.Logger.With("component", "linking"),
		now:       d.Now,
		pages:     pages,
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

const (
	linkPath     = "/link"
	callbackPath = "/link/callback"
)

// Register mounts GET /link and GET /link/callback. The pages link web's stylesheet, which
// web.Register serves once for all page packages.
func (s *Service) Register(r gin.IRouter) {
	r.GET(linkPath, s.wrap(s.start))
	r.GET(callbackPath, s.wrap(s.callback))
}

// LinkURL returns PUBLIC_URL/link?linkToken=….
func (s *Service) LinkURL(linkToken string) string {
	return s.cfg.PublicURL + linkPath + "?" + url.Values{"linkToken": {linkToken}}.Encode()
}

// dialogURL is LINE's account-link dialog for the token and nonce, built from configuration only.
func (s *Service) dialogURL(linkToken, nonce string) string {
	return s.cfg.LineAccessURL + "/dialog/bot/accountLink?" + url.Values{"linkToken": {linkToken}, "nonce": {nonce}}.Encode()
}

// Complete uses up the nonce and binds its account to the LINE user.
func (s *Service) Complete(ctx context.Context, lineUserID, nonce string) (ecardbot.LinkResult, error) {
	res, err := s.store.CompleteLink(ctx, s.hash(ecardbot.PurposeLinkNonce, nonce), lineUserID, s.now())
	if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
		s.log.Info("account link refused: nonce unknown, used or expired", "line_user_id", lineUserID)
		return res, fmt.Errorf("complete link: %w", errExpiredNonce)
	}
	if err != nil {
		return res, fmt.Errorf("complete link: %w", err)
	}
	s.log.Info("account linked", "guardian_id", res.Guardian.ID, "line_user_id", lineUserID,
		"moved_from_line_user_id", res.MovedFrom, "unlinked_guardian_id", res.Unlinked)
	return res, nil
}

// Discard uses up the nonce of a failed accountLink event.
func (s *Service) Discard(ctx context.Context, nonce string) error {
	err := s.store.DiscardLinkNonce(ctx, s.hash(ecardbot.PurposeLinkNonce, nonce), s.now())
	if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
		return fmt.Errorf("discard link: %w", errExpiredNonce)
	}
	if err != nil {
		return fmt.Errorf("discard link: %w", err)
	}
	return nil
}

var errExpiredNonce = ecardbot.Errorf(ecardbot.EFORBIDDEN, "This link has expired or was already used.")

// Unlink ends the LINE user's link.
func (s *Service) Unlink(ctx context.Context, lineUserID string) (*ecardbot.Guardian, error) {
	g, err := s.guardians.UnlinkGuardian(ctx, lineUserID)
	if err != nil {
		return nil, fmt.Errorf("unlink: %w", err)
	}
	s.log.Info("account unlinked", "guardian_id", g.ID, "line_user_id", lineUserID)
	return g, nil
}

func (s *Service) hash(purpose, secret string) string {
	return ecardbot.KeyedHash(s.cfg.SecretKey, purpose, secret)
}

// validLinkToken reports whether t looks like a LINE link token: 16 to 128 letters, digits and
// URL-safe marks. It is checked before it is stored or sent back to LINE in a URL.
func validLinkToken(t string) bool {
	if len(t) < 16 || len(t) > 128 {
		return false
	}
	return strings.IndexFunc(t, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.' || r == '~')
	}) < 0
}
