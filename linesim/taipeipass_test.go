package linesim

import (
	"encoding/json"
	"errors"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/taipei-doit/ecardbot"
)

const tpCallback = "https://bot.example/link/callback"

// MustTaipeiPass starts a TaipeiPASS emulator with a fake clock on 127.0.0.1:0 and stops it
// after the test. It returns the service URL (…/tpcd).
func MustTaipeiPass(tb testing.TB, opts TaipeiPassOptions) (*TaipeiPass, string, *fakeClock) {
	tb.Helper()
	clock := newFakeClock()
	if opts.Clock == nil {
		opts.Clock = clock.Now
	}
	p, err := NewTaipeiPass(opts)
	if err != nil {
		tb.Fatal(err)
	}
	base, err := p.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p, base, clock
}

// browser follows no redirects, so that tests see the 302 to the client.
var browser = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func mustDo(tb testing.TB, req *http.Request) (*http.Response, string) {
	tb.Helper()
	res, err := browser.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func mustGet(tb testing.TB, u string) (*http.Response, string) {
	tb.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return mustDo(tb, req)
}

func mustPostForm(tb testing.TB, u string, f url.Values) (*http.Response, string) {
	tb.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return mustDo(tb, req)
}

// authParams are an authorization request's parameters for p, with PKCE when verifier is set.
func authParams(p *TaipeiPass, state, verifier string) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {p.ClientID()}, "redirect_uri": {tpCallback},
		"scope": {"uuid account verify_level id_no"}}
	if state != "" {
		q.Set("state", state)
	}
	if verifier != "" {
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", "S256")
	}
	return q
}

var (
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]+)" id="members">`)
)

// loginForm opens the login page and returns the form of the members' buttons: where it posts,
// and the fields it carries (its hidden fields, once each).
func loginForm(tb testing.TB, base string, q url.Values) (string, url.Values, string) {
	tb.Helper()
	res, page := mustGet(tb, base+"/oauth/authorize?"+q.Encode())
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("login page: %d %s", res.StatusCode, page)
	}
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		tb.Fatalf("no members form in %s", page)
	}
	members, _, _ := strings.Cut(page[strings.Index(page, m[0]):], "</form>")
	fields := url.Values{}
	for _, h := range hiddenField.FindAllStringSubmatch(members, -1) {
		fields.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	u, _ := url.Parse(base)
	return u.Scheme + "://" + u.Host + html.UnescapeString(m[1]), fields, page
}

// pressMember presses the button of the member with this account on the login page of q and
// returns where the browser is sent.
func pressMember(tb testing.TB, p *TaipeiPass, base string, q url.Values, account string) *url.URL {
	tb.Helper()
	action, fields, page := loginForm(tb, base, q)
	button := regexp.MustCompile(`name="member" value="([^"]+)" data-account="` + regexp.QuoteMeta(account) + `"`).FindStringSubmatch(page)
	if button == nil {
		tb.Fatalf("no button for %s on the login page", account)
	}
	fields.Set("member", button[1])
	res, body := mustPostForm(tb, action, fields)
	if res.StatusCode != http.StatusFound {
		tb.Fatalf("login: %d %s", res.StatusCode, body)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func memberByAccount(tb testing.TB, p *TaipeiPass, account string) TaipeiPassMember {
	tb.Helper()
	for _, m := range p.Members() {
		if m.Account == account {
			return m
		}
	}
	tb.Fatalf("no member %s", account)
	return TaipeiPassMember{}
}

// tokenCall posts a token request; basic sends the client credentials by HTTP Basic instead of
// the form. It returns the status, headers and decoded JSON body.
func tokenCall(tb testing.TB, base string, f url.Values, basic []string) (int, http.Header, map[string]any) {
	tb.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	res, body := mustDo(tb, req)
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		tb.Fatalf("token body %q: %v", body, err)
	}
	return res.StatusCode, res.Header, v
}

func tokenForm(p *TaipeiPass, code, verifier string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {p.ClientID()},
		"client_secret": {p.ClientSecret()}, "redirect_uri": {tpCallback}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return f
}

// userMy calls user/my with an Authorization header and returns the status and decoded body.
func userMy(tb testing.TB, base, authorization string) (int, http.Header, map[string]any) {
	tb.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1.0.9/user/my", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, body := mustDo(tb, req)
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		tb.Fatalf("user/my body %q: %v", body, err)
	}
	return res.StatusCode, res.Header, v
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestTaipeiPassCodeFlow(t *testing.T) {
	p, base, clock := MustTaipeiPass(t, TaipeiPassOptions{})
	tests := []struct {
		name     string
		state    string
		verifier string
		account  string
	}{
		{"state and PKCE", "c3RhdGUtMDEyMzQ1Njc4OWFiY2RlZg", oauth2.GenerateVerifier(), "yijun.chen"},
		{"state, no PKCE", "c3RhdGUtb25seQ", "", "zhiming.lin"},
		{"neither", "", "", "yating.chang"},
		{"PKCE, no state", "", oauth2.GenerateVerifier(), "yijun.chen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			member := memberByAccount(t, p, tt.account)
			loc := pressMember(t, p, base, authParams(p, tt.state, tt.verifier), tt.account)
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != tpCallback {
				t.Errorf("redirected to %s, want %s", got, tpCallback)
			}
			q := loc.Query()
			code := q.Get("code")
			if len(code) != 6 {
				t.Errorf("code %q has %d characters, want 6", code, len(code))
			}
			if got, ok := q["state"]; tt.state == "" && ok || tt.state != "" && (len(got) != 1 || got[0] != tt.state) {
				t.Errorf("state = %v, want %q", got, tt.state)
			}
			grants := p.Grants()
			g := grants[len(grants)-1]
			if g.Code != code || g.MemberID != member.ID || g.Used || (g.CodeChallenge != "") != (tt.verifier != "") ||
				!g.ExpiresAt.Equal(clock.Now().Add(5*time.Minute)) {
				t.Errorf("grant = %+v", g)
			}

			status, hdr, tok := tokenCall(t, base, tokenForm(p, code, tt.verifier), nil)
			if status != http.StatusOK {
				t.Fatalf("token: %d %v", status, tok)
			}
			if diff := cmp.Diff([]string{"access_token", "expires_in", "refresh_token", "scope", "token_type"}, keys(tok)); diff != "" {
				t.Errorf("token fields (-want +got):\n%s", diff)
			}
			if tok["token_type"] != "bearer" || tok["expires_in"] != float64(12*60*60) || tok["scope"] != "uuid account verify_level id_no" {
				t.Errorf("token = %v", tok)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", hdr.Get("Cache-Control"))
			}
			access := tok["access_token"].(string)
			status, _, my := userMy(t, base, "Bearer "+access)
			if data, _ := my["data"].(map[string]any); status != http.StatusOK || data["id"] != member.ID || data["verifyLevel"] != member.VerifyLevel {
				t.Fatalf("user/my: %d %v", status, my)
			}

			req, _ := http.NewRequest("POST", base+"/oauth/logout", nil)
			req.Header.Set("Authorization", "Bearer "+access)
			if res, body := mustDo(t, req); res.StatusCode != http.StatusOK {
				t.Errorf("logout: %d %s", res.StatusCode, body)
			}
			if status, _, _ := userMy(t, base, "Bearer "+access); status != http.StatusUnauthorized {
				t.Errorf("user/my after logout: %d, want 401", status)
			}
			if res, _ := mustDo(t, req); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("second logout: %d, want 401", res.StatusCode)
			}
		})
	}
}

func TestTaipeiPassTokenRefusals(t *testing.T) {
	p, base, clock := MustTaipeiPass(t, TaipeiPassOptions{})
	tests := []struct {
		name      string
		pkce      bool
		before    func(t *testing.T, f url.Values) // runs after login, before the request under test
		edit      func(f url.Values)
		basic     []string
		wantCode  int
		wantError string
		wantDesc  string // prefix; "CODE" stands for the code
	}{
		{name: "code reused", before: func(t *testing.T, f url.Values) {
			if status, _, tok := tokenCall(t, base, f, nil); status != http.StatusOK {
				t.Fatalf("first exchange: %d %v", status, tok)
			}
		}, wantCode: 400, wantError: "invalid_grant", wantDesc: "Invalid authorization code: CODE"},
		{name: "expired code", before: func(*testing.T, url.Values) { clock.Advance(5 * time.Minute) },
			wantCode: 400, wantError: "invalid_grant", wantDesc: "Invalid authorization code: CODE"},
		{name: "unknown code", edit: func(f url.Values) { f.Set("code", "zzzzzz") },
			wantCode: 400, wantError: "invalid_grant", wantDesc: "Invalid authorization code: zzzzzz"},
		{name: "wrong verifier", pkce: true, edit: func(f url.Values) { f.Set("code_verifier", oauth2.GenerateVerifier()) },
			wantCode: 400, wantError: "invalid_grant", wantDesc: "Invalid code_verifier"},
		{name: "short verifier", pkce: true, edit: func(f url.Values) { f.Set("code_verifier", "abc") },
			wantCode: 400, wantError: "invalid_grant", wantDesc: "Invalid code_verifier"},
		{name: "missing verifier", pkce: true, edit: func(f url.Values) { f.Del("code_verifier") },
			wantCode: 400, wantError: "invalid_grant", wantDesc: "Missing code_verifier"},
		{name: "verifier without challenge", edit: func(f url.Values) { f.Set("code_verifier", oauth2.GenerateVerifier()) },
			wantCode: 400, wantError: "invalid_grant", wantDesc: "code_verifier sent"},
		{name: "redirect URI mismatch", edit: func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") },
			wantCode: 400, wantError: "invalid_grant", wantDesc: "Redirect URI mismatch."},
		{name: "wrong client secret", edit: func(f url.Values) { f.Set("client_secret", "guess") },
			wantCode: 401, wantError: "invalid_client", wantDesc: "Bad client credentials"},
		{name: "wrong secret by Basic", edit: func(f url.Values) { f.Del("client_id"); f.Del("client_secret") },
			basic: []string{p.ClientID(), "guess"}, wantCode: 401, wantError: "invalid_client"},
		{name: "no client authentication", edit: func(f url.Values) { f.Del("client_id"); f.Del("client_secret") },
			wantCode: 401, wantError: "invalid_client"},
		{name: "unknown client", edit: func(f url.Values) { f.Set("client_id", "other") },
			wantCode: 401, wantError: "invalid_client"},
		{name: "refresh grant", edit: func(f url.Values) { f.Set("grant_type", "refresh_token") },
			wantCode: 400, wantError: "unsupported_grant_type"},
		{name: "no grant type", edit: func(f url.Values) { f.Del("grant_type") },
			wantCode: 400, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var verifier string
			if tt.pkce {
				verifier = oauth2.GenerateVerifier()
			}
			loc, err := p.Login(base+"/oauth/authorize?"+authParams(p, "st4te-value", verifier).Encode(), "yijun.chen")
			if err != nil {
				t.Fatal(err)
			}
			code := loc.Query().Get("code")
			f := tokenForm(p, code, verifier)
			if tt.before != nil {
				tt.before(t, f)
			}
			tokensBefore := len(p.Tokens())
			if tt.edit != nil {
				tt.edit(f)
			}
			status, hdr, body := tokenCall(t, base, f, tt.basic)
			if status != tt.wantCode || body["error"] != tt.wantError {
				t.Fatalf("got %d %v, want %d %s", status, body, tt.wantCode, tt.wantError)
			}
			if desc, _ := body["error_description"].(string); !strings.HasPrefix(desc, strings.ReplaceAll(tt.wantDesc, "CODE", code)) {
				t.Errorf("error_description = %q, want %q", desc, tt.wantDesc)
			}
			if tt.basic != nil && hdr.Get("WWW-Authenticate") == "" {
				t.Error("Basic authentication refused without WWW-Authenticate")
			}
			if n := len(p.Tokens()); n != tokensBefore {
				t.Errorf("%d tokens issued by a refused request", n-tokensBefore)
			}
			if tt.wantError == "invalid_grant" && tt.name != "unknown code" {
				// A refused code is burnt: not even the right request works afterwards.
				if status, _, _ := tokenCall(t, base, tokenForm(p, code, verifier), nil); status != http.StatusBadRequest {
					t.Errorf("the right request after a refusal: %d, want 400", status)
				}
			}
		})
	}
	t.Run("reuse revokes the first token", func(t *testing.T) {
		loc, err := p.Login(base+"/oauth/authorize?"+authParams(p, "", "").Encode(), "zhiming.lin")
		if err != nil {
			t.Fatal(err)
		}
		f := tokenForm(p, loc.Query().Get("code"), "")
		_, _, tok := tokenCall(t, base, f, nil)
		access, _ := tok["access_token"].(string)
		if status, _, _ := userMy(t, base, "Bearer "+access); status != http.StatusOK {
			t.Fatalf("user/my before reuse: %d", status)
		}
		if status, _, _ := tokenCall(t, base, f, nil); status != http.StatusBadRequest {
			t.Fatalf("reuse: %d, want 400", status)
		}
		if status, _, _ := userMy(t, base, "Bearer "+access); status != http.StatusUnauthorized {
			t.Errorf("user/my after reuse: %d, want 401", status)
		}
	})
	t.Run("Basic authentication", func(t *testing.T) {
		loc, err := p.Login(base+"/oauth/authorize?"+authParams(p, "", "").Encode(), "zhiming.lin")
		if err != nil {
			t.Fatal(err)
		}
		f := tokenForm(p, loc.Query().Get("code"), "")
		f.Del("client_id")
		f.Del("client_secret")
		if status, _, body := tokenCall(t, base, f, []string{p.ClientID(), p.ClientSecret()}); status != http.StatusOK {
			t.Errorf("token with Basic: %d %v", status, body)
		}
	})
}

func TestTaipeiPassAuthorizeErrors(t *testing.T) {
	registered := "https://bot.example/link/callback?from=tp"
	p, base, _ := MustTaipeiPass(t, TaipeiPassOptions{RedirectURIs: []string{registered}})
	tests := []struct {
		name      string
		edit      func(q url.Values)
		wantPage  bool   // an error page, no redirect
		wantError string // OAuth error in the redirect; empty: the login page
	}{
		{"registered redirect", func(q url.Values) { q.Set("redirect_uri", registered) }, false, ""},
		{"no redirect_uri, one registered", func(q url.Values) { q.Del("redirect_uri") }, false, ""},
		{"unknown client", func(q url.Values) { q.Set("client_id", "someone-else") }, true, ""},
		{"no client", func(q url.Values) { q.Del("client_id") }, true, ""},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, true, ""},
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, false, "unsupported_response_type"},
		{"no response type", func(q url.Values) { q.Del("response_type") }, false, "invalid_request"},
		{"plain PKCE", func(q url.Values) {
			q.Set("code_challenge", strings.Repeat("a", 43))
			q.Set("code_challenge_method", "plain")
		}, false, "invalid_request"},
		{"PKCE without method", func(q url.Values) { q.Set("code_challenge", strings.Repeat("a", 43)) }, false, "invalid_request"},
		{"short challenge", func(q url.Values) { q.Set("code_challenge", "abc"); q.Set("code_challenge_method", "S256") }, false, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := authParams(p, "xyz-state", "")
			q.Set("redirect_uri", registered)
			tt.edit(q)
			res, page := mustGet(t, base+"/oauth/authorize?"+q.Encode())
			switch {
			case tt.wantPage:
				if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" || !strings.Contains(page, "Cannot log in") {
					t.Errorf("got %d Location %q, want an error page", res.StatusCode, res.Header.Get("Location"))
				}
			case tt.wantError != "":
				loc, _ := url.Parse(res.Header.Get("Location"))
				got := loc.Query()
				if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), "https://bot.example/link/callback?") ||
					got.Get("error") != tt.wantError || got.Get("state") != "xyz-state" || got.Get("from") != "tp" || got.Has("code") {
					t.Errorf("got %d %s, want a redirect with %s", res.StatusCode, loc, tt.wantError)
				}
			default:
				if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="members"`) {
					t.Fatalf("got %d, want the login page", res.StatusCode)
				}
				loc := pressMember(t, p, base, q, "yijun.chen")
				if loc.Query().Get("from") != "tp" || len(loc.Query().Get("code")) != 6 {
					t.Errorf("redirect %s lost the registered query or the code", loc)
				}
			}
		})
	}

	t.Run("redirect URI is checked when none is registered", func(t *testing.T) {
		open, openBase, _ := MustTaipeiPass(t, TaipeiPassOptions{})
		for _, bad := range []string{"", "/relative", "javascript:alert(1)", "https://bot.example/cb#frag"} {
			q := authParams(open, "", "")
			q.Set("redirect_uri", bad)
			if res, _ := mustGet(t, openBase+"/oauth/authorize?"+q.Encode()); res.StatusCode != http.StatusBadRequest {
				t.Errorf("redirect_uri %q: %d, want 400", bad, res.StatusCode)
			}
		}
	})
	t.Run("no redirect_uri, two registered", func(t *testing.T) {
		two, twoBase, _ := MustTaipeiPass(t, TaipeiPassOptions{RedirectURIs: []string{tpCallback, registered}})
		q := authParams(two, "", "")
		q.Del("redirect_uri")
		if res, _ := mustGet(t, twoBase+"/oauth/authorize?"+q.Encode()); res.StatusCode != http.StatusBadRequest {
			t.Errorf("got %d, want 400", res.StatusCode)
		}
	})
	if _, err := NewTaipeiPass(TaipeiPassOptions{RedirectURIs: []string{"ftp://x"}}); err == nil {
		t.Error("NewTaipeiPass accepted an ftp redirect URI")
	}
	if _, err := NewTaipeiPass(TaipeiPassOptions{BasePath: "tpcd/"}); err == nil {
		t.Error("NewTaipeiPass accepted base path tpcd/")
	}
}

func TestTaipeiPassLoginPage(t *testing.T) {
	p, base, _ := MustTaipeiPass(t, TaipeiPassOptions{})
	state := `"><script>alert(1)</script>&x=1`
	q := authParams(p, state, oauth2.GenerateVerifier())
	action, fields, page := loginForm(t, base, q)
	for _, want := range []string{`<html lang="zh-TW">`, `name="viewport"`, "登入 Log in", "取消 Cancel",
		"陳怡君", "林志明", "張雅婷", "金質會員 Gold", "一般會員 Ordinary", p.ClientID()} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	res, _ := mustGet(t, base+"/oauth/authorize?"+q.Encode())
	if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("login page headers: %v", res.Header)
	}
	if strings.Contains(page, "<script>") {
		t.Error("state is not escaped on the login page")
	}
	for _, m := range p.Members() {
		if strings.Contains(page, m.IDNo) {
			t.Errorf("login page shows %s's ID number", m.Account)
		}
	}
	if diff := cmp.Diff(q, fields); diff != "" {
		t.Errorf("hidden fields (-want +got):\n%s", diff)
	}

	t.Run("typed account", func(t *testing.T) {
		f := maps.Clone(fields)
		f.Set("account", "  ZhiMing.LIN ")
		res, body := mustPostForm(t, action, f)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc.Query().Get("state") != state {
			t.Fatalf("got %d %s %s", res.StatusCode, loc, body)
		}
		grants := p.Grants()
		if g := grants[len(grants)-1]; g.Code != loc.Query().Get("code") || g.MemberID != memberByAccount(t, p, "zhiming.lin").ID {
			t.Errorf("grant %+v", g)
		}
	})
	t.Run("unknown account", func(t *testing.T) {
		before := len(p.Grants())
		for _, account := range []string{"nobody", "  "} {
			f := maps.Clone(fields)
			f.Set("account", account)
			res, body := mustPostForm(t, action, f)
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "No such account") ||
				!strings.Contains(body, `value="`+account+`"`) {
				t.Errorf("%q: got %d %s", account, res.StatusCode, body)
			}
		}
		if len(p.Grants()) != before {
			t.Error("a code was issued for an unknown account")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		f := maps.Clone(fields)
		f.Set("cancel", "1")
		res, _ := mustPostForm(t, action, f)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != state || loc.Query().Has("code") {
			t.Errorf("got %d %s", res.StatusCode, loc)
		}
	})
	t.Run("tampered hidden fields", func(t *testing.T) {
		f := maps.Clone(fields)
		f.Set("member", memberByAccount(t, p, "yijun.chen").ID)
		f.Set("redirect_uri", "javascript:alert(1)")
		if res, _ := mustPostForm(t, action, f); res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Errorf("got %d %q, want an error page", res.StatusCode, res.Header.Get("Location"))
		}
	})
	t.Run("Login method", func(t *testing.T) {
		if _, err := p.Login(base+"/oauth/authorize?"+q.Encode(), "nobody"); !errors.Is(err, ErrUnknownMember) {
			t.Errorf("unknown account: %v", err)
		}
		bad := maps.Clone(q)
		bad.Set("client_id", "x")
		if loc, err := p.Login(base+"/oauth/authorize?"+bad.Encode(), "yijun.chen"); err == nil {
			t.Errorf("unknown client: redirected to %s", loc)
		}
	})
}

func TestTaipeiPassUserMy(t *testing.T) {
	p, base, clock := MustTaipeiPass(t, TaipeiPassOptions{})
	access := func(account string) string {
		t.Helper()
		loc, err := p.Login(base+"/oauth/authorize?"+authParams(p, "", "").Encode(), account)
		if err != nil {
			t.Fatal(err)
		}
		_, _, tok := tokenCall(t, base, tokenForm(p, loc.Query().Get("code"), ""), nil)
		return tok["access_token"].(string)
	}
	envelope := []string{"data", "extra", "hostNum", "name", "reasonPhrase", "status", "timestamp", "version"}
	dataFields := []string{"account", "addresses", "birthday", "citizen", "cityInternetUid", "email", "id", "idNo",
		"memberType", "nativePeople", "phoneNo", "realName", "residentAddress", "username", "verifyLevel"}

	for _, account := range []string{"yijun.chen", "yating.chang"} {
		t.Run(account, func(t *testing.T) {
			want := memberByAccount(t, p, account)
			status, _, body := userMy(t, base, "Bearer "+access(account))
			if status != http.StatusOK {
				t.Fatalf("status %d %v", status, body)
			}
			if diff := cmp.Diff(envelope, keys(body)); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}
			if body["name"] != "OK" || body["reasonPhrase"] != "OK" || body["status"] != float64(200) ||
				body["timestamp"] != float64(clock.Now().UnixMilli()) || body["version"] != "1.0.9" ||
				body["extra"] != nil || body["hostNum"] != float64(1) {
				t.Errorf("envelope = %v", body)
			}
			data, ok := body["data"].(map[string]any)
			if !ok {
				t.Fatalf("data = %#v", body["data"])
			}
			if diff := cmp.Diff(dataFields, keys(data)); diff != "" {
				t.Errorf("data fields (-want +got):\n%s", diff)
			}
			for _, k := range dataFields {
				var ok bool
				switch k {
				case "citizen", "nativePeople":
					_, ok = data[k].(bool)
				case "addresses":
					_, ok = data[k].([]any)
				default:
					_, ok = data[k].(string)
				}
				if !ok {
					t.Errorf("data.%s = %#v has the wrong JSON type", k, data[k])
				}
			}
			if data["id"] != want.ID || data["idNo"] != want.IDNo || data["verifyLevel"] != want.VerifyLevel ||
				data["birthday"] != want.Birthday || data["realName"] != want.RealName {
				t.Errorf("data = %v, want %+v", data, want)
			}
			if gold := data["verifyLevel"] != "0"; gold != (account == "yijun.chen") {
				t.Errorf("verifyLevel %v: gold = %v", data["verifyLevel"], gold)
			}
		})
	}

	valid := access("zhiming.lin")
	tests := []struct {
		name          string
		authorization func() string
	}{
		{"missing", func() string { return "" }},
		{"not bearer", func() string { return "Basic " + valid }},
		{"unknown token", func() string { return "Bearer 00000000-0000-4000-8000-000000000000" }},
		{"expired token", func() string { clock.Advance(12 * time.Hour); return "Bearer " + valid }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := userMy(t, base, tt.authorization())
			if status != http.StatusUnauthorized || body["status"] != float64(401) || body["name"] != "UNAUTHORIZED" ||
				body["reasonPhrase"] != "Unauthorized" || body["data"] != nil {
				t.Errorf("got %d %v", status, body)
			}
			if diff := cmp.Diff(envelope, keys(body)); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestTaipeiPassOAuth2Client drives the emulator with golang.org/x/oauth2, mounted on the LINE
// emulator's origin as the sandbox may do.
func TestTaipeiPassOAuth2Client(t *testing.T) {
	clock := newFakeClock()
	line, err := New(Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewTaipeiPass(TaipeiPassOptions{Clock: clock.Now, RedirectURIs: []string{tpCallback}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(p.BasePath()+"/", p.Handler())
	mux.Handle("/", line.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := srv.URL + "/tpcd"

	if res, _ := mustGet(t, srv.URL+"/"); res.StatusCode != http.StatusOK {
		t.Errorf("LINE chat page next to TaipeiPASS: %d", res.StatusCode)
	}

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		conf := &oauth2.Config{
			ClientID:     p.ClientID(),
			ClientSecret: p.ClientSecret(),
			RedirectURL:  tpCallback,
			Scopes:       []string{"uuid", "account", "verify_level", "id_no"},
			Endpoint:     oauth2.Endpoint{AuthURL: base + "/oauth/authorize", TokenURL: base + "/oauth/token", AuthStyle: style},
		}
		login := func(t *testing.T, verifier string) string {
			t.Helper()
			state := oauth2.GenerateVerifier() // any unguessable value
			loc, err := p.Login(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), "yijun.chen")
			if err != nil {
				t.Fatal(err)
			}
			if loc.Query().Get("state") != state {
				t.Fatalf("state %q came back as %q", state, loc.Query().Get("state"))
			}
			return loc.Query().Get("code")
		}
		t.Run(map[oauth2.AuthStyle]string{0: "auto", 1: "params", 2: "header"}[style], func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			tok, err := conf.Exchange(ctxT(t), login(t, verifier), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Type() != "Bearer" || tok.RefreshToken == "" || tok.Expiry.IsZero() {
				t.Errorf("token = %+v", tok)
			}
			req, _ := http.NewRequestWithContext(ctxT(t), "GET", base+"/api/v1.0.9/user/my", nil)
			res, err := conf.Client(ctxT(t), tok).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var my struct {
				Status int
				Data   TaipeiPassMember
			}
			if err := json.NewDecoder(res.Body).Decode(&my); err != nil || my.Status != 200 {
				t.Fatalf("user/my: %d %v", my.Status, err)
			}
			if my.Data.Account != "yijun.chen" || !my.Data.Gold() {
				t.Errorf("member = %+v", my.Data)
			}
			if _, err := ecardbot.ValidateNationalID(my.Data.IDNo); err != nil {
				t.Errorf("idNo: %v", err)
			}

			_, err = conf.Exchange(ctxT(t), login(t, oauth2.GenerateVerifier()))
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Errorf("exchange without the verifier: %v, want invalid_grant", err)
			}
		})
	}
}

func TestTaipeiPassMembers(t *testing.T) {
	p, err := NewTaipeiPass(TaipeiPassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var gold int
	for _, m := range p.Members() {
		if m.Gold() {
			gold++
		}
		if _, err := ecardbot.ValidateNationalID(m.IDNo); err != nil {
			t.Errorf("%s: idNo: %v", m.Account, err)
		}
		if _, err := time.Parse("2006/01/02", m.Birthday); err != nil {
			t.Errorf("%s: birthday %q", m.Account, m.Birthday)
		}
		if m.RealName == "" || m.Email == "" || len(m.PhoneNo) != 10 || m.MemberType != "personal" {
			t.Errorf("incomplete member %+v", m)
		}
	}
	if gold != 2 || len(p.Members()) != 3 {
		t.Errorf("%d members, %d gold; want 3 and 2", len(p.Members()), gold)
	}

	added, err := p.AddMember(TaipeiPassMember{Account: "new.parent", IDNo: " ａ８００００００１４ ", VerifyLevel: "3"})
	if err != nil {
		t.Fatal(err)
	}
	if added.IDNo != "A800000014" || added.MemberType != "personal" || added.Addresses == nil || len(added.ID) != 36 {
		t.Errorf("added = %+v", added)
	}
	bad := []struct {
		name string
		m    TaipeiPassMember
	}{
		{"duplicate account", TaipeiPassMember{Account: "YIJUN.CHEN", VerifyLevel: "0"}},
		{"duplicate ID", TaipeiPassMember{ID: added.ID, Account: "x", VerifyLevel: "0"}},
		{"ID not a UUID", TaipeiPassMember{ID: "42", Account: "x", VerifyLevel: "0"}},
		{"no account", TaipeiPassMember{VerifyLevel: "0"}},
		{"no verify level", TaipeiPassMember{Account: "x"}},
		{"bad ID number", TaipeiPassMember{Account: "x", IDNo: "A123456788", VerifyLevel: "3"}},
		{"gold without ID number", TaipeiPassMember{Account: "x", VerifyLevel: "3"}},
		{"bad birthday", TaipeiPassMember{Account: "x", VerifyLevel: "0", Birthday: "1990-07-21"}},
	}
	for _, tt := range bad {
		if _, err := p.AddMember(tt.m); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if _, err := p.AddMember(TaipeiPassMember{Account: "ordinary", VerifyLevel: "0"}); err != nil {
		t.Errorf("ordinary member without ID number: %v", err)
	}

	none, err := NewTaipeiPass(TaipeiPassOptions{Members: []TaipeiPassMember{}})
	if err != nil || len(none.Members()) != 0 {
		t.Errorf("empty Members: %v, %d members", err, len(none.Members()))
	}
}

// The emulator tells gold members apart by ecardbot's rule, so the two never disagree.
func TestTaipeiPassMemberGoldFollowsEcardbot(t *testing.T) {
	for _, level := range []string{"", "0", "1", "3"} {
		m := TaipeiPassMember{VerifyLevel: level}
		if got, want := m.Gold(), (ecardbot.TaipeiPassAccount{VerifyLevel: level}).Gold(); got != want {
			t.Errorf("verifyLevel %q: Gold() = %v, ecardbot says %v", level, got, want)
		}
	}
	if (TaipeiPassMember{}).Gold() {
		t.Error("a member without a verifyLevel is gold")
	}
}
