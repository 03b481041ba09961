package linesim

// The TaipeiPASS emulator: the city's 臺北通 member service (tpcd) as far as ecardbot uses it, an
// OAuth 2.0 authorization-code server plus the member record (taipei.md §1).
//
// The real service's error text ("Invalid authorization code: YTwPr5") is verbatim that of
// Spring Security OAuth2, whose default codes are also 6 letters and digits: the emulator follows
// that framework where taipei.md is silent (UUID tokens, "bearer", Basic or form client
// authentication, "Bad client credentials", "Redirect URI mismatch."). PKCE and redirect_uri
// checking are stricter than that framework, so that a client which passes here also passes a
// real server that enforces them.

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/taipei-doit/ecardbot"
)

//go:embed taipeipass.html
var taipeiPassFS embed.FS

var taipeiPassPages = template.Must(template.ParseFS(taipeiPassFS, "taipeipass.html"))

// ErrUnknownMember is returned by TaipeiPass.Login for an account or member ID it does not have.
var ErrUnknownMember = errors.New("linesim: unknown TaipeiPASS member")

// taipeiPassAPIVersion is the member API version in the path, as the city's Dashboard calls it.
const taipeiPassAPIVersion = "v1.0.9"

// TaipeiPassOptions configures a TaipeiPass. The zero value is usable.
type TaipeiPassOptions struct {
	// ClientID is the only client the server knows. Empty means a random one, readable with
	// ClientID.
	ClientID string
	// ClientSecret authenticates the client at the token endpoint. Empty means a random one,
	// readable with ClientSecret.
	ClientSecret string
	// RedirectURIs are the client's registered redirect URIs. An authorization request may name
	// one of them or, when exactly one is registered, none. Empty means any absolute http(s) URI
	// without a fragment is accepted and the request must send it: ports in tests and the
	// sandbox are only known at run time.
	RedirectURIs []string
	// Members are the accounts a person can log in as. Nil means DefaultTaipeiPassMembers; an
	// empty, non-nil slice means none until AddMember.
	Members []TaipeiPassMember
	// BasePath is where the service lives, like /tpcd in https://id.taipei/tpcd. Empty means
	// "/tpcd", so that ECARDBOT_TAIPEIPASS_URL is the emulator's origin followed by /tpcd.
	BasePath string
	// CodeLife is how long an authorization code can be exchanged. Zero means 5 minutes.
	CodeLife time.Duration
	// TokenLife is how long an access token works. Zero means 12 hours, Spring's default; the
	// real lifetime is not published.
	TokenLife time.Duration
	// Clock gives the server's time for code and token expiry. Nil means time.Now.
	Clock func() time.Time
	// Logger receives one line per login, token and member request, with member and client IDs
	// but never codes, tokens or personal data. Nil discards.
	Logger *slog.Logger
}

// TaipeiPassAddress is one entry of a member's addresses, as the city's TownPass app shows them.
type TaipeiPassAddress struct {
	Zip3      int    `json:"zip3"`
	City      string `json:"city"`
	Town      string `json:"town"`
	Village   string `json:"village"`
	Street    string `json:"street"`
	UsageType string `json:"usageType"`
	Seq       int    `json:"seq"`
	Priority  bool   `json:"priority"`
}

// TaipeiPassMember is a member account; its JSON is the "data" of user/my (taipei.md §1).
type TaipeiPassMember struct {
	ID       string `json:"id"`      // UUID; empty in AddMember means generate one
	Account  string `json:"account"` // login name, unique regardless of case
	Username string `json:"username"`
	RealName string `json:"realName"`
	// IDNo is the national or resident ID. Gold members must have a valid one; it is stored
	// normalised (ecardbot.ValidateNationalID).
	IDNo    string `json:"idNo"`
	Email   string `json:"email"`
	PhoneNo string `json:"phoneNo"`
	// Birthday is YYYY/MM/DD, or empty.
	Birthday string `json:"birthday"`
	// MemberType is personal, organization, foreigner or employee. Empty in AddMember means
	// personal.
	MemberType string `json:"memberType"`
	// VerifyLevel is "0" for an ordinary member; anything else, such as "3", is a gold
	// (real-name verified) member. Required.
	VerifyLevel     string              `json:"verifyLevel"`
	Addresses       []TaipeiPassAddress `json:"addresses"`
	ResidentAddress string              `json:"residentAddress"`
	Citizen         bool                `json:"citizen"`
	NativePeople    bool                `json:"nativePeople"`
	CityInternetUID string              `json:"cityInternetUid"`
}

// Gold reports whether the member is real-name verified (金質會員), the only kind ecardbot links,
// by ecardbot's own rule (ecardbot.TaipeiPassAccount.Gold): an empty level is not gold either.
func (m TaipeiPassMember) Gold() bool {
	return ecardbot.TaipeiPassAccount{VerifyLevel: m.VerifyLevel}.Gold()
}

// DefaultTaipeiPassMembers returns the sandbox's members: two gold parents and one ordinary
// member. The people are invented; the IDs pass the checksum.
func DefaultTaipeiPassMembers() []TaipeiPassMember {
	return []TaipeiPassMember{
		{
			ID: "6f1c2b7e-3a4d-4c5e-9b8a-1d2e3f405162", Account: "yijun.chen", Username: "怡君媽媽",
			RealName: "陳怡君", IDNo: "A228137405", Email: "yijun.chen@example.com", PhoneNo: "0912345678",
			Birthday: "1985/03/14", MemberType: "personal", VerifyLevel: "3",
			Addresses: []TaipeiPassAddress{{Zip3: 110, City: "臺北市", Town: "信義區", Village: "西村里",
				Street: "松仁路", UsageType: "0", Seq: 1, Priority: true}},
			ResidentAddress: "臺北市信義區松仁路 100 號 5 樓", Citizen: true,
		},
		{
			ID: "a3e5d7c9-1b2f-4a6e-8d0c-2f4b6d8e0a13", Account: "zhiming.lin", Username: "Jimmy",
			RealName: "林志明", IDNo: "F129603581", Email: "zhiming.lin@example.com", PhoneNo: "0987654321",
			Birthday: "1982/11/02", MemberType: "personal", VerifyLevel: "3",
			Addresses: []TaipeiPassAddress{{Zip3: 104, City: "臺北市", Town: "中山區", Village: "正得里",
				Street: "吉林路", UsageType: "0", Seq: 1, Priority: true}},
			ResidentAddress: "臺北市中山區吉林路 69 號 4 樓", Citizen: true,
		},
		{
			ID: "0c9b8a7d-6e5f-4d3c-b2a1-9f8e7d6c5b4a", Account: "yating.chang", Username: "雅婷",
			RealName: "張雅婷", IDNo: "E225704195", Email: "yating.chang@example.com", PhoneNo: "0955123456",
			Birthday: "1990/07/21", MemberType: "personal", VerifyLevel: "0",
			Addresses: []TaipeiPassAddress{},
		},
	}
}

// TaipeiPassGrant is one login: the authorization code it produced and the request it answered.
type TaipeiPassGrant struct {
	Code          string // 6 letters and digits
	ClientID      string
	MemberID      string
	RedirectURI   string // as the authorization request sent it; empty when it sent none
	Scope         string
	State         string // empty when the request had none
	CodeChallenge string // S256 challenge; empty without PKCE
	IssuedAt      time.Time
	ExpiresAt     time.Time
	Used          bool // presented at the token endpoint, successfully or not
}

// TaipeiPassToken is an access token and its refresh token.
type TaipeiPassToken struct {
	AccessToken  string
	RefreshToken string
	Code         string // the authorization code it was exchanged for
	ClientID     string
	MemberID     string
	Scope        string
	IssuedAt     time.Time
	ExpiresAt    time.Time
	Revoked      bool // by logout, or because its code was presented again
}

// TaipeiPass is an emulated TaipeiPASS service. It is independent of the LINE emulator: serve
// it on its own with Start, or mount Handler next to the LINE Server's on one mux. All methods
// are safe for concurrent use.
type TaipeiPass struct {
	clientID  string
	secret    string
	redirects []string
	base      string
	codeLife  time.Duration
	tokenLife time.Duration
	clock     func() time.Time
	log       *slog.Logger

	mu         sync.Mutex
	members    []*TaipeiPassMember
	grants     map[string]*TaipeiPassGrant // by code
	grantOrder []string
	tokens     map[string]*TaipeiPassToken // by access token
	tokenOrder []string

	srvMu sync.Mutex
	srv   *http.Server
}

// NewTaipeiPass returns a TaipeiPass that is not yet listening: serve Handler yourself or call
// Start. It returns an error when a member, a redirect URI or the base path is invalid.
func NewTaipeiPass(opts TaipeiPassOptions) (*TaipeiPass, error) {
	p := &TaipeiPass{
		clientID:  cmp.Or(opts.ClientID, randomAlnum(16)),
		secret:    cmp.Or(opts.ClientSecret, randomAlnum(32)),
		redirects: append([]string(nil), opts.RedirectURIs...),
		base:      cmp.Or(opts.BasePath, "/tpcd"),
		codeLife:  cmp.Or(opts.CodeLife, 5*time.Minute),
		tokenLife: cmp.Or(opts.TokenLife, 12*time.Hour),
		clock:     opts.Clock,
		log:       opts.Logger,
		grants:    map[string]*TaipeiPassGrant{},
		tokens:    map[string]*TaipeiPassToken{},
	}
	if !strings.HasPrefix(p.base, "/") || strings.HasSuffix(p.base, "/") {
		return nil, fmt.Errorf("taipeipass base path %q must start and must not end with /", p.base)
	}
	for _, r := range p.redirects {
		if err := checkRedirectURI(r); err != nil {
			return nil, fmt.Errorf("taipeipass redirect URI: %w", err)
		}
	}
	if p.clock == nil {
		p.clock = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "taipeipass")
	members := opts.Members
	if members == nil {
		members = DefaultTaipeiPassMembers()
	}
	for _, m := range members {
		if _, err := p.AddMember(m); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ClientID returns the client ID the server accepts (ECARDBOT_TAIPEIPASS_CLIENT_ID).
func (p *TaipeiPass) ClientID() string { return p.clientID }

// ClientSecret returns the client secret the server accepts (ECARDBOT_TAIPEIPASS_CLIENT_SECRET).
func (p *TaipeiPass) ClientSecret() string { return p.secret }

// BasePath returns the path the service lives under, such as "/tpcd".
func (p *TaipeiPass) BasePath() string { return p.base }

// AddMember adds an account and returns it as stored (ID generated when empty, ID number
// normalised). It returns an error for a duplicate ID or account, a missing account or
// VerifyLevel, an invalid ID number, a gold member without one, or a malformed birthday.
func (p *TaipeiPass) AddMember(m TaipeiPassMember) (TaipeiPassMember, error) {
	m.Addresses = append([]TaipeiPassAddress{}, m.Addresses...) // never null in JSON, never shared
	m.ID = cmp.Or(m.ID, uuid.NewString())
	m.MemberType = cmp.Or(m.MemberType, "personal")
	if err := uuid.Validate(m.ID); err != nil {
		return TaipeiPassMember{}, fmt.Errorf("taipeipass member ID %q is not a UUID", m.ID)
	}
	if strings.TrimSpace(m.Account) == "" || m.VerifyLevel == "" {
		return TaipeiPassMember{}, fmt.Errorf("taipeipass member %s: account and verifyLevel are required", m.ID)
	}
	if m.IDNo != "" {
		id, err := ecardbot.ValidateNationalID(m.IDNo)
		if err != nil {
			return TaipeiPassMember{}, fmt.Errorf("taipeipass member %s: %w", m.ID, err)
		}
		m.IDNo = id
	} else if m.Gold() {
		return TaipeiPassMember{}, fmt.Errorf("taipeipass member %s: a gold member needs an ID number", m.ID)
	}
	if _, err := time.Parse("2006/01/02", m.Birthday); m.Birthday != "" && err != nil {
		return TaipeiPassMember{}, fmt.Errorf("taipeipass member %s: birthday must be YYYY/MM/DD", m.ID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.members {
		if o.ID == m.ID || strings.EqualFold(o.Account, m.Account) {
			return TaipeiPassMember{}, fmt.Errorf("taipeipass member %s: ID or account already taken", m.ID)
		}
	}
	p.members = append(p.members, &m)
	return m, nil
}

// Members returns the accounts in the order they were added.
func (p *TaipeiPass) Members() []TaipeiPassMember {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TaipeiPassMember, len(p.members))
	for i, m := range p.members {
		out[i] = *m
	}
	return out
}

// memberLocked finds a member by ID or, ignoring case and surrounding spaces, by account.
func (p *TaipeiPass) memberLocked(who string) *TaipeiPassMember {
	who = strings.TrimSpace(who)
	if who == "" {
		return nil
	}
	for _, m := range p.members {
		if m.ID == who || strings.EqualFold(m.Account, who) {
			return m
		}
	}
	return nil
}

// Grants returns every login so far, oldest first.
func (p *TaipeiPass) Grants() []TaipeiPassGrant {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TaipeiPassGrant, len(p.grantOrder))
	for i, c := range p.grantOrder {
		out[i] = *p.grants[c]
	}
	return out
}

// Tokens returns every token issued so far, oldest first.
func (p *TaipeiPass) Tokens() []TaipeiPassToken {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TaipeiPassToken, len(p.tokenOrder))
	for i, t := range p.tokenOrder {
		out[i] = *p.tokens[t]
	}
	return out
}

// Handler serves the service under BasePath: /oauth/authorize (GET shows the login page, POST
// logs in), /oauth/token, /oauth/logout and /api/v1.0.9/user/my. Because every route carries the
// base path, it can share one origin with the LINE emulator:
//
//	mux.Handle(tp.BasePath()+"/", tp.Handler())
//	mux.Handle("/", line.Handler())
func (p *TaipeiPass) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p.base+"/oauth/authorize", p.serveAuthorize)
	mux.HandleFunc("POST "+p.base+"/oauth/authorize", p.serveLogin)
	mux.HandleFunc("POST "+p.base+"/oauth/token", p.serveToken)
	mux.HandleFunc("POST "+p.base+"/oauth/logout", p.serveLogout)
	mux.HandleFunc("GET "+p.base+"/api/"+taipeiPassAPIVersion+"/user/my", p.serveUserMy)
	return mux
}

// Start listens on addr (for example "127.0.0.1:0") and serves Handler in the background. It
// returns the service URL including the base path, such as "http://127.0.0.1:41234/tpcd":
// the value for ECARDBOT_TAIPEIPASS_URL.
func (p *TaipeiPass) Start(addr string) (string, error) {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.srv != nil {
		return "", errors.New("linesim: taipeipass already started")
	}
	srv, url, err := serveOn(addr, p.Handler(), p.log)
	if err != nil {
		return "", err
	}
	p.srv = srv
	return url + p.base, nil
}

// Close stops the server started by Start, waiting up to 5 s for requests in progress.
func (p *TaipeiPass) Close() error {
	p.srvMu.Lock()
	srv := p.srv
	p.srv = nil
	p.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	return shutdown(srv)
}

// oauthError is an OAuth 2.0 error (RFC 6749 §4.1.2.1 and §5.2).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

// pageError is an authorization request the server must not redirect back: the client or the
// redirect URI is unknown, so the redirect could deliver the answer to an attacker
// (RFC 6749 §4.1.2.1). The browser gets an error page instead.
type pageError struct{ msg string }

func (e *pageError) Error() string { return "taipeipass authorize: " + e.msg }

// authorizeParams are the parameters of an authorization request, in the order the login page
// carries them in hidden fields.
var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state",
	"code_challenge", "code_challenge_method"}

// authRequest is a checked authorization request.
type authRequest struct {
	params   url.Values // only authorizeParams
	redirect *url.URL   // where the answer goes
}

// checkAuthorize checks an authorization request. It returns a *pageError when the answer must
// not be redirected, or the request and an *oauthError to send to the client's redirect URI.
func (p *TaipeiPass) checkAuthorize(q url.Values) (authRequest, error) {
	req := authRequest{params: url.Values{}}
	for _, k := range authorizeParams {
		if v := q.Get(k); v != "" {
			req.params.Set(k, v)
		}
	}
	get := req.params.Get
	if get("client_id") != p.clientID {
		return req, &pageError{"unknown client_id"}
	}
	redirect := get("redirect_uri")
	switch {
	case redirect == "" && len(p.redirects) == 1:
		redirect = p.redirects[0]
	case redirect == "":
		return req, &pageError{"redirect_uri is required"}
	case len(p.redirects) > 0 && !slices.Contains(p.redirects, redirect):
		return req, &pageError{"redirect_uri does not match one of the registered values"}
	case len(p.redirects) == 0:
		if err := checkRedirectURI(redirect); err != nil {
			return req, &pageError{err.Error()}
		}
	}
	req.redirect, _ = url.Parse(redirect) // checked when registered or just above
	switch rt := get("response_type"); {
	case rt == "":
		return req, &oauthError{"invalid_request", "Missing response_type"}
	case rt != "code":
		return req, &oauthError{"unsupported_response_type", "Unsupported response types: " + rt}
	}
	challenge, method := get("code_challenge"), get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return req, &oauthError{"invalid_request", "code_challenge_method without code_challenge"}
	case challenge == "":
	case method != "S256":
		// RFC 7636 makes "plain" the default; it protects nothing, so like many servers this
		// one only takes S256.
		return req, &oauthError{"invalid_request", "code_challenge_method must be S256"}
	case len(challenge) != 43 || !pkceChars(challenge):
		return req, &oauthError{"invalid_request", "code_challenge must be 43 base64url characters"}
	}
	return req, nil
}

// checkRedirectURI accepts absolute http(s) URIs without a fragment (RFC 6749 §3.1.2).
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(s, "#") {
		return fmt.Errorf("redirect_uri %q must be an absolute http or https URI without a fragment", s)
	}
	return nil
}

// answer returns the redirect URI with the extra parameters and the request's state, keeping
// the URI's own query (RFC 6749 §3.1.2).
func (r authRequest) answer(extra url.Values) *url.URL {
	u := *r.redirect
	q := u.Query()
	for k, v := range extra {
		q[k] = v
	}
	if s := r.params.Get("state"); s != "" {
		q.Set("state", s)
	}
	u.RawQuery = q.Encode()
	return &u
}

func (r authRequest) answerError(e *oauthError) *url.URL {
	return r.answer(url.Values{"error": {e.Code}, "error_description": {e.Description}})
}

// login answers an authorization request for the member who (ID or account), or denies it. It
// returns where the browser goes next, or a *pageError, or ErrUnknownMember.
func (p *TaipeiPass) login(q url.Values, who string, deny bool) (*url.URL, error) {
	req, err := p.checkAuthorize(q)
	var oe *oauthError
	if errors.As(err, &oe) {
		return req.answerError(oe), nil
	}
	if err != nil {
		return nil, err
	}
	if deny {
		return req.answerError(&oauthError{"access_denied", "User denied access"}), nil
	}
	now := p.clock()
	p.mu.Lock()
	m := p.memberLocked(who)
	if m == nil {
		p.mu.Unlock()
		return nil, ErrUnknownMember
	}
	g := &TaipeiPassGrant{
		ClientID: p.clientID, MemberID: m.ID, RedirectURI: req.params.Get("redirect_uri"),
		Scope: req.params.Get("scope"), State: req.params.Get("state"),
		CodeChallenge: req.params.Get("code_challenge"), IssuedAt: now, ExpiresAt: now.Add(p.codeLife),
	}
	for g.Code == "" || p.grants[g.Code] != nil {
		g.Code = randomAlnum(6)
	}
	p.grants[g.Code] = g
	p.grantOrder = append(p.grantOrder, g.Code)
	p.mu.Unlock()
	p.log.Info("login", "member_id", m.ID, "client_id", g.ClientID, "pkce", g.CodeChallenge != "", "gold", m.Gold())
	return req.answer(url.Values{"code": {g.Code}}), nil
}

// Login is a person logging in as account (or member ID) on the page of authorizeURL, the URL
// the client sent the browser to. It returns the URL the browser is redirected to: with a code,
// or with an error the client must handle. It returns an error when the server would show an
// error page instead (unknown client, bad redirect URI), and ErrUnknownMember for an unknown
// account. Tests that do not drive a browser use it.
func (p *TaipeiPass) Login(authorizeURL, account string) (*url.URL, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, fmt.Errorf("taipeipass login: %w", err)
	}
	return p.login(u.Query(), account, false)
}

type taipeiPassLoginView struct {
	Action  string
	Client  string
	Scope   []string
	Hidden  url.Values
	Members []TaipeiPassMember
	Account string
	Error   string
}

type taipeiPassErrorView struct{ Title, Detail string }

func (p *TaipeiPass) render(w http.ResponseWriter, status int, name string, v any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY") // a login page must not be framed (clickjacking)
	w.WriteHeader(status)
	if err := taipeiPassPages.ExecuteTemplate(w, name, v); err != nil {
		p.log.Error("render page", "page", name, "err", err)
	}
}

func (p *TaipeiPass) renderLogin(w http.ResponseWriter, status int, req authRequest, account, msg string) {
	p.render(w, status, "login", taipeiPassLoginView{
		Action:  p.base + "/oauth/authorize",
		Client:  p.clientID,
		Scope:   strings.Fields(req.params.Get("scope")),
		Hidden:  req.params,
		Members: p.Members(),
		Account: account,
		Error:   msg,
	})
}

func (p *TaipeiPass) renderPageError(w http.ResponseWriter, err error) {
	p.log.Debug("authorize refused", "err", err)
	p.render(w, http.StatusBadRequest, "error", taipeiPassErrorView{
		Title:  "無法登入 Cannot log in",
		Detail: "這個應用程式的登入要求無效。 The application's login request is not valid: " + strings.TrimPrefix(err.Error(), "taipeipass authorize: "),
	})
}

// serveAuthorize shows the login page, or sends the client an error it may receive.
func (p *TaipeiPass) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	req, err := p.checkAuthorize(r.URL.Query())
	var oe *oauthError
	switch {
	case errors.As(err, &oe):
		p.log.Debug("authorize refused", "error", oe.Code)
		http.Redirect(w, r, req.answerError(oe).String(), http.StatusFound)
	case err != nil:
		p.renderPageError(w, err)
	default:
		p.renderLogin(w, http.StatusOK, req, "", "")
	}
}

// serveLogin takes the login form: the request's parameters come back in hidden fields and are
// checked again, as a person could have changed them.
func (p *TaipeiPass) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		p.renderPageError(w, &pageError{"unreadable form"})
		return
	}
	who := cmp.Or(r.PostForm.Get("member"), r.PostForm.Get("account"))
	next, err := p.login(r.PostForm, who, r.PostForm.Has("cancel"))
	switch {
	case errors.Is(err, ErrUnknownMember):
		req, _ := p.checkAuthorize(r.PostForm) // passed inside login
		p.renderLogin(w, http.StatusUnauthorized, req, r.PostForm.Get("account"), "查無此帳號 No such account")
	case err != nil:
		p.renderPageError(w, err)
	default:
		http.Redirect(w, r, next.String(), http.StatusFound)
	}
}

// tokenResponse is the token endpoint's answer, as taipei.md §1 lists it.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
}

// serveToken exchanges an authorization code. Clients authenticate with HTTP Basic (RFC 6749
// §2.3.1, form-encoded ID and secret) or with client_id and client_secret in the body.
// refresh_token grants are not offered: ecardbot reads the member record once, right after login.
func (p *TaipeiPass) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		p.tokenError(w, http.StatusBadRequest, &oauthError{"invalid_request", "Unreadable form body"})
		return
	}
	f := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(p.clientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(p.secret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauth2/client"`)
		}
		p.tokenError(w, http.StatusUnauthorized, &oauthError{"invalid_client", "Bad client credentials"})
		return
	}
	switch gt := f.Get("grant_type"); gt {
	case "authorization_code":
	case "":
		p.tokenError(w, http.StatusBadRequest, &oauthError{"invalid_request", "Missing grant type"})
		return
	default:
		p.tokenError(w, http.StatusBadRequest, &oauthError{"unsupported_grant_type", "Unsupported grant type: " + gt})
		return
	}
	t, err := p.exchange(f.Get("code"), f.Get("redirect_uri"), f.Get("code_verifier"))
	if err != nil {
		p.tokenError(w, http.StatusBadRequest, err)
		return
	}
	p.log.Info("token", "member_id", t.MemberID, "client_id", t.ClientID)
	w.Header().Set("Pragma", "no-cache")
	writeOAuthJSON(w, http.StatusOK, tokenResponse{
		AccessToken: t.AccessToken, TokenType: "bearer", RefreshToken: t.RefreshToken,
		ExpiresIn: int64(t.ExpiresAt.Sub(t.IssuedAt) / time.Second), Scope: t.Scope,
	})
}

// exchange turns a code into a token. A code counts as used as soon as it is presented, even
// when the redirect URI or the PKCE verifier is then wrong, so a verifier cannot be guessed by
// retrying. Presenting a used code again also revokes the tokens it gave (RFC 6749 §4.1.2): the
// second presenter may be an attacker who stole it.
func (p *TaipeiPass) exchange(code, redirectURI, verifier string) (TaipeiPassToken, *oauthError) {
	invalid := func(desc string) (TaipeiPassToken, *oauthError) {
		return TaipeiPassToken{}, &oauthError{"invalid_grant", desc}
	}
	now := p.clock()
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.grants[code]
	if g != nil && g.Used {
		for _, t := range p.tokens {
			if t.Code == code {
				t.Revoked = true
			}
		}
	}
	if g == nil || g.Used || !now.Before(g.ExpiresAt) {
		return invalid("Invalid authorization code: " + code)
	}
	g.Used = true
	if g.RedirectURI != "" && redirectURI != g.RedirectURI {
		return invalid("Redirect URI mismatch.")
	}
	switch {
	case g.CodeChallenge == "" && verifier != "":
		// RFC 9700 §2.1.1: refuse a verifier for a code issued without a challenge, or PKCE
		// could be stripped from the authorization request unnoticed.
		return invalid("code_verifier sent but the authorization request had no code_challenge")
	case g.CodeChallenge != "" && verifier == "":
		return invalid("Missing code_verifier")
	case g.CodeChallenge != "" && !pkceMatch(verifier, g.CodeChallenge):
		return invalid("Invalid code_verifier")
	}
	t := &TaipeiPassToken{
		AccessToken: uuid.NewString(), RefreshToken: uuid.NewString(), Code: code,
		ClientID: g.ClientID, MemberID: g.MemberID, Scope: g.Scope,
		IssuedAt: now, ExpiresAt: now.Add(p.tokenLife),
	}
	p.tokens[t.AccessToken] = t
	p.tokenOrder = append(p.tokenOrder, t.AccessToken)
	return *t, nil
}

// pkceMatch reports whether verifier is a well-formed RFC 7636 verifier whose S256 is challenge.
func pkceMatch(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 || !pkceChars(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// pkceChars reports whether s has only RFC 7636's unreserved characters.
func pkceChars(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

func (p *TaipeiPass) tokenError(w http.ResponseWriter, status int, e *oauthError) {
	p.log.Debug("token refused", "error", e.Code, "status", status)
	writeOAuthJSON(w, status, e)
}

func writeOAuthJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// taipeiPassEnvelope wraps every member API answer (taipei.md §1). Name and reasonPhrase look
// like a serialised Java HttpStatus ("OK", "OK"; "UNAUTHORIZED", "Unauthorized"): the emulator
// fills them that way, the real values are not published.
type taipeiPassEnvelope struct {
	Name         string `json:"name"`
	ReasonPhrase string `json:"reasonPhrase"`
	Status       int    `json:"status"`
	Data         any    `json:"data"`
	Timestamp    int64  `json:"timestamp"` // Unix milliseconds
	Extra        any    `json:"extra"`
	Version      string `json:"version"`
	HostNum      int    `json:"hostNum"`
}

func (p *TaipeiPass) writeEnvelope(w http.ResponseWriter, status int, data any) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	reason := http.StatusText(status)
	writeOAuthJSON(w, status, taipeiPassEnvelope{
		Name:         strings.ToUpper(strings.ReplaceAll(reason, " ", "_")),
		ReasonPhrase: reason,
		Status:       status,
		Data:         data,
		Timestamp:    p.clock().UnixMilli(),
		Version:      strings.TrimPrefix(taipeiPassAPIVersion, "v"),
		HostNum:      1,
	})
}

// bearerLocked returns the live token named by the request's Authorization header, or nil.
func (p *TaipeiPass) bearerLocked(r *http.Request) *TaipeiPassToken {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil
	}
	t := p.tokens[strings.TrimSpace(tok)]
	if t == nil || t.Revoked || !p.clock().Before(t.ExpiresAt) {
		return nil
	}
	return t
}

// serveUserMy returns the member record of the token's member.
func (p *TaipeiPass) serveUserMy(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	var m TaipeiPassMember
	t := p.bearerLocked(r)
	if t != nil {
		m = *p.memberLocked(t.MemberID) // members are never removed
	}
	p.mu.Unlock()
	if t == nil {
		p.log.Debug("user/my refused")
		p.writeEnvelope(w, http.StatusUnauthorized, nil)
		return
	}
	p.log.Info("user/my", "member_id", m.ID, "client_id", t.ClientID)
	p.writeEnvelope(w, http.StatusOK, m)
}

// serveLogout revokes the bearer token.
func (p *TaipeiPass) serveLogout(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	t := p.bearerLocked(r)
	if t != nil {
		t.Revoked = true
	}
	p.mu.Unlock()
	if t == nil {
		p.writeEnvelope(w, http.StatusUnauthorized, nil)
		return
	}
	p.log.Info("logout", "member_id", t.MemberID, "client_id", t.ClientID)
	p.writeEnvelope(w, http.StatusOK, nil)
}
