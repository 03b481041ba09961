package linking

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/web"
)

// problem is an error page: what went wrong and what to do, in Chinese and English. Pages never
// show an error's text, only these.
type problem struct {
	Status           int
	Title, TitleEn   string
	Detail, DetailEn string
	reason           string // for the log
}

func (p *problem) Error() string { return "linking: " + p.reason }

var (
	problemBadLink = &problem{http.StatusBadRequest,
		"連結無效", "This link is not valid",
		"請回到 LINE 聊天，再點一次「綁定」。", "Go back to the LINE chat and tap 綁定 (link) again.", "malformed link token"}
	problemExpired = &problem{http.StatusBadRequest,
		"連結已失效", "This link has expired or was already used",
		"為了安全，每個綁定連結只能使用一次，並在 10 分鐘後失效。請回到 LINE 聊天，再點一次「綁定」。",
		"For your safety each link works once and for 10 minutes. Go back to the LINE chat and tap 綁定 (link) again.",
		"state missing, unknown, used or expired"}
	problemCancelled = &problem{http.StatusOK,
		"已取消登入", "You cancelled the TaipeiPASS login",
		"沒有綁定任何帳號。若要綁定，請回到 LINE 聊天，再點一次「綁定」。",
		"Nothing was linked. To link, go back to the LINE chat and tap 綁定 (link) again.", "access denied"}
	problemTaipeiPass = &problem{http.StatusBadGateway,
		"臺北通無法完成登入", "TaipeiPASS could not log you in",
		"請稍後回到 LINE 聊天，再點一次「綁定」。", "Please go back to the LINE chat later and tap 綁定 (link) again.",
		"TaipeiPASS refused or failed"}
	problemUnavailable = &problem{http.StatusServiceUnavailable,
		"系統暫時無法使用", "The service is unavailable",
		"請稍後再試一次。", "Please try again in a few minutes.", "internal"}
)

// wrap renders a handler's error as a page. A *problem is expected (Info); any other error is
// ours, logged at Error and shown as problemUnavailable, never with its text.
func (s *Service) wrap(h func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := h(c)
		if err == nil {
			return
		}
		var p *problem
		if !errors.As(err, &p) {
			s.log.Error("link page failed", "route", c.FullPath(), "error", err)
			p = problemUnavailable
		} else {
			s.log.Info("link refused", "route", c.FullPath(), "reason", p.reason, "status", p.Status)
		}
		s.render(c, p.Status, "problem", p)
	}
}

func (s *Service) render(c *gin.Context, status int, page string, data any) {
	if err := s.pages.Render(c.Writer, status, page, data); err != nil {
		s.log.Error("render page", "page", page, "error", err)
		c.Status(http.StatusInternalServerError)
	}
	c.Abort()
}

// start is GET /link?linkToken=…: remember the link token under a fresh state and send the
// browser to TaipeiPASS with that state and a PKCE challenge.
func (s *Service) start(c *gin.Context) error {
	linkToken := c.Query("linkToken")
	if !validLinkToken(linkToken) {
		return problemBadLink
	}
	state, verifier, now := web.NewToken(), oauth2.GenerateVerifier(), s.now()
	err := s.store.CreateLinkAttempt(c.Request.Context(), s.hash(ecardbot.PurposeLinkState, state), ecardbot.LinkAttempt{
		LinkToken: linkToken, Verifier: verifier, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Life),
	})
	if err != nil {
		return err
	}
	web.SetHeaders(c.Writer.Header()) // the redirect holds the state: no cache, no Referer
	c.Redirect(http.StatusFound, s.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	return nil
}

// callback is GET /link/callback: TaipeiPASS sends the browser back here. The state is taken
// first, whatever else the request says, so that it works once.
func (s *Service) callback(c *gin.Context) error {
	ctx := c.Request.Context()
	state := c.Query("state")
	if state == "" {
		return problemExpired
	}
	attempt, err := s.store.TakeLinkAttempt(ctx, s.hash(ecardbot.PurposeLinkState, state), s.now())
	switch {
	case ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND:
		return problemExpired
	case err != nil:
		return err
	}
	switch e := c.Query("error"); {
	case e == "access_denied":
		return problemCancelled
	case e != "":
		s.log.Warn("TaipeiPASS answered the login with an error", "oauth_error", oauthErrorLabel(e))
		return problemTaipeiPass
	case c.Query("code") == "":
		return problemTaipeiPass
	}
	m, err := s.login(ctx, c.Query("code"), attempt.Verifier)
	if err != nil {
		s.log.Warn("TaipeiPASS login failed", "error", err)
		return problemTaipeiPass
	}
	acct := ecardbot.TaipeiPassAccount{ID: m.ID, VerifyLevel: m.VerifyLevel, LastLoginAt: s.now()}
	if err := s.store.RecordTaipeiPassLogin(ctx, acct); err != nil {
		return err
	}
	if !acct.Gold() {
		s.log.Info("link refused: not a gold member", "taipeipass_id", acct.ID)
		s.render(c, http.StatusForbidden, "not_gold", nil)
		return nil
	}
	nonce := web.NewToken()
	if err := s.store.CreateLinkNonce(ctx, s.hash(ecardbot.PurposeLinkNonce, nonce), acct.ID, s.now().Add(s.cfg.Life)); err != nil {
		return err
	}
	s.log.Info("TaipeiPASS login ok, sent to LINE's account-link dialog", "taipeipass_id", acct.ID)
	web.SetHeaders(c.Writer.Header()) // the redirect holds the link token and the nonce
	c.Redirect(http.StatusFound, s.dialogURL(attempt.LinkToken, nonce))
	return nil
}

// oauthErrorLabel keeps the logged error to RFC 6749's codes: the parameter is the request's.
func oauthErrorLabel(e string) string {
	switch e {
	case "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope",
		"server_error", "temporarily_unavailable":
		return e
	}
	return "other"
}
