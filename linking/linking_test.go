package linking_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for checks in SQL

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/linking/linkingtest"
	"github.com/taipei-doit/ecardbot/web"
)

// Members of linesim.DefaultTaipeiPassMembers.
const (
	goldA   = "yijun.chen"
	goldB   = "zhiming.lin"
	notGold = "yating.chang"
)

func memberID(t *testing.T, h *linkingtest.Harness, account string) string {
	t.Helper()
	for _, m := range h.TaipeiPass.Members() {
		if m.Account == account {
			return m.ID
		}
	}
	t.Fatalf("no member %s", account)
	return ""
}

// linkedTo returns the TaipeiPASS account the LINE user is linked to, "" when none.
func linkedTo(t *testing.T, h *linkingtest.Harness, user string) string {
	t.Helper()
	g, err := h.Guardians.FindGuardianByLineUser(context.Background(), user)
	if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	return g.TaipeiPassID
}

// sqlCount runs a count query on the harness's schema.
func sqlCount(t *testing.T, h *linkingtest.Harness, query string, args ...any) int {
	t.Helper()
	db, err := sql.Open("pgx", h.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// storedAccount reads the TaipeiPASS account the service recorded, as the database holds it.
func storedAccount(t *testing.T, h *linkingtest.Harness, id string) ecardbot.TaipeiPassAccount {
	t.Helper()
	db, err := sql.Open("pgx", h.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := ecardbot.TaipeiPassAccount{ID: id}
	if err := db.QueryRow(`SELECT verify_level, last_login_at FROM taipeipass_accounts WHERE id = $1`, id).Scan(&a.VerifyLevel, &a.LastLoginAt); err != nil {
		t.Fatalf("account %s: %v", id, err)
	}
	return a
}

func sqlExec(t *testing.T, h *linkingtest.Harness, stmt string) {
	t.Helper()
	db, err := sql.Open("pgx", h.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
}

// accountLinkEvents counts the accountLink events LINE's emulator sent the bot.
func accountLinkEvents(h *linkingtest.Harness) int {
	n := 0
	for _, d := range h.Sim.Deliveries() {
		for _, ev := range d.Events {
			if ev.Type == "accountLink" {
				n++
			}
		}
	}
	return n
}

func TestGoldMemberLinks(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	linkURL := h.LinkURL(t, user)
	authorize := h.Authorize(t, linkURL)

	q := linkingtest.Query(t, authorize)
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(q.Get("state")) != 43 ||
		q.Get("client_id") != h.TaipeiPass.ClientID() || q.Get("redirect_uri") != h.URL+"/link/callback" || q.Get("scope") != "uuid verify_level" {
		t.Errorf("authorization request %v: want S256 PKCE, a 256-bit state and the configured client", q)
	}
	dialog := h.Callback(t, h.Login(t, authorize, goldA))
	dq := linkingtest.Query(t, dialog)
	if dq.Get("linkToken") != linkingtest.Query(t, linkURL).Get("linkToken") || len(dq.Get("nonce")) != 43 {
		t.Errorf("dialog query %v: want the link token and a 43-character nonce", dq)
	}
	if linkedTo(t, h, user) != "" {
		t.Fatal("linked before LINE's accountLink event: a browser redirect must never bind")
	}
	if r := h.Dialog(t, dialog, user); r.Status != http.StatusOK || !strings.Contains(r.Body, "Account linked") {
		t.Fatalf("dialog: %d %s", r.Status, r.Body)
	}
	if got := linkedTo(t, h, user); got != memberID(t, h, goldA) {
		t.Errorf("linked to %q, want %s's member UUID", got, goldA)
	}
	if acct := storedAccount(t, h, memberID(t, h, goldA)); acct.VerifyLevel != "3" || acct.LastLoginAt.IsZero() {
		t.Errorf("account = %+v", acct)
	}
	if n := sqlCount(t, h, `SELECT count(*) FROM link_nonces`) + sqlCount(t, h, `SELECT count(*) FROM link_attempts`); n != 0 {
		t.Errorf("%d attempts or nonces left after linking, want none", n)
	}
	// No secret reaches the logs: not the link token, the state, the code, the nonce nor the
	// national ID the member record carries.
	logs := h.Logs.String()
	for name, secret := range map[string]string{
		"link token": dq.Get("linkToken"), "state": q.Get("state"), "nonce": dq.Get("nonce"),
		"code": h.TaipeiPass.Grants()[0].Code, "national ID": h.TaipeiPass.Members()[0].IDNo,
		"access token": h.TaipeiPass.Tokens()[0].AccessToken,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold the %s", name)
		}
	}
}

// Both redirects carry a secret in their URL (the state, then the link token and the nonce), so
// they carry the pages' headers: nothing cached, no Referer.
func TestRedirectsCarryThePageHeaders(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	start := linkingtest.Get(t, h.LinkURL(t, user), "")
	if start.Status != http.StatusFound {
		t.Fatalf("/link answered %d", start.Status)
	}
	callback := linkingtest.Get(t, h.Login(t, start.Location, goldA), "")
	if callback.Status != http.StatusFound {
		t.Fatalf("callback answered %d", callback.Status)
	}
	want := http.Header{}
	web.SetHeaders(want)
	for route, r := range map[string]linkingtest.Response{"/link": start, "/link/callback": callback} {
		for k := range want {
			if got := r.Header.Get(k); got != want.Get(k) {
				t.Errorf("%s redirect: %s = %q, want %q", route, k, got, want.Get(k))
			}
		}
	}
}

func TestNonGoldMemberGetsTheGoldMembershipPage(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	r := linkingtest.Get(t, h.Login(t, h.Authorize(t, h.LinkURL(t, user)), notGold), "")
	if r.Status != http.StatusForbidden || r.Location != "" {
		t.Fatalf("callback for an ordinary member: %d → %q, want the 403 page", r.Status, r.Location)
	}
	for _, want := range []string{"需要臺北通金質會員", "A TaipeiPASS gold membership is needed", "自然人憑證", "市民服務大平台", "手機門號"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(r.Body, "<li>"); n != 3 {
		t.Errorf("page lists %d ways to become gold, want 3", n)
	}
	if n := sqlCount(t, h, `SELECT count(*) FROM link_nonces`); n != 0 {
		t.Errorf("%d nonces for an ordinary member", n)
	}
	if acct := storedAccount(t, h, memberID(t, h, notGold)); acct.VerifyLevel == "" || acct.Gold() {
		t.Errorf("account = %+v: want recorded as not gold", acct)
	}
}

// Each refused callback shows a page with a clear reason, binds nothing and leaks nothing.
func TestRefusedCallbacks(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	expired := "連結已失效"

	check := func(t *testing.T, r linkingtest.Response, status int, want string) {
		t.Helper()
		if r.Status != status || r.Location != "" || !strings.Contains(r.Body, want) {
			t.Errorf("answer %d → %q, want %d with %q: %s", r.Status, r.Location, status, want, r.Body)
		}
		if strings.Contains(r.Body, "error") && strings.Contains(r.Body, "invalid_grant") {
			t.Error("the page shows TaipeiPASS's error text")
		}
	}
	tokensBefore := func() int { return len(h.TaipeiPass.Tokens()) }

	t.Run("forged state", func(t *testing.T) {
		n := tokensBefore()
		check(t, linkingtest.Get(t, h.URL+"/link/callback?code=AbC123&state=forged-by-an-attacker", ""), http.StatusBadRequest, expired)
		if tokensBefore() != n {
			t.Error("a forged state reached the token endpoint")
		}
	})
	t.Run("missing state", func(t *testing.T) {
		callback := h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA)
		u, _ := url.Parse(callback)
		q := u.Query()
		q.Del("state")
		u.RawQuery = q.Encode()
		check(t, linkingtest.Get(t, u.String(), ""), http.StatusBadRequest, expired)
	})
	t.Run("reused state", func(t *testing.T) {
		callback := h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA)
		h.Callback(t, callback)
		n := tokensBefore()
		check(t, linkingtest.Get(t, callback, ""), http.StatusBadRequest, expired)
		if tokensBefore() != n {
			t.Error("a reused state reached the token endpoint")
		}
	})
	t.Run("expired state", func(t *testing.T) {
		authorize := h.Authorize(t, h.LinkURL(t, user))
		h.Clock.Advance(10 * time.Minute)
		check(t, linkingtest.Get(t, h.Login(t, authorize, goldA), ""), http.StatusBadRequest, expired)
	})
	t.Run("malformed link token", func(t *testing.T) {
		check(t, linkingtest.Get(t, h.URL+"/link?linkToken=%3Cscript%3E", ""), http.StatusBadRequest, "連結無效")
		check(t, linkingtest.Get(t, h.URL+"/link", ""), http.StatusBadRequest, "連結無效")
	})
	t.Run("missing PKCE verifier", func(t *testing.T) {
		callback := h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA)
		sqlExec(t, h, `UPDATE link_attempts SET verifier = ''`)
		check(t, linkingtest.Get(t, callback, ""), http.StatusBadGateway, "臺北通無法完成登入")
	})
	t.Run("code of another login", func(t *testing.T) {
		// An attacker's code pasted into a victim's callback: PKCE ties the code to its login.
		victim := linkingtest.Query(t, h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA))
		attacker := linkingtest.Query(t, h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldB))
		forged := h.URL + "/link/callback?" + url.Values{"code": {attacker.Get("code")}, "state": {victim.Get("state")}}.Encode()
		check(t, linkingtest.Get(t, forged, ""), http.StatusBadGateway, "臺北通無法完成登入")
	})
	t.Run("token endpoint refuses the code", func(t *testing.T) {
		q := linkingtest.Query(t, h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA))
		check(t, linkingtest.Get(t, h.URL+"/link/callback?"+url.Values{"code": {"XXXXXX"}, "state": {q.Get("state")}}.Encode(), ""),
			http.StatusBadGateway, "TaipeiPASS could not log you in")
	})
	t.Run("TaipeiPASS error", func(t *testing.T) {
		q := linkingtest.Query(t, h.Authorize(t, h.LinkURL(t, user)))
		check(t, linkingtest.Get(t, h.URL+"/link/callback?"+url.Values{"error": {"server_error"}, "state": {q.Get("state")}}.Encode(), ""),
			http.StatusBadGateway, "臺北通無法完成登入")
	})
	if linkedTo(t, h, user) != "" {
		t.Error("a refused callback linked the user")
	}
}

// Cancelling at TaipeiPASS comes back as access_denied: the attempt is used up.
func TestAccessDenied(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "en")
	authorize := h.Authorize(t, h.LinkURL(t, user))
	form := linkingtest.Query(t, authorize)
	form.Set("cancel", "1")
	u, _ := url.Parse(authorize)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(u.Scheme+"://"+u.Host+u.Path, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	callback := res.Header.Get("Location")
	if linkingtest.Query(t, callback).Get("error") != "access_denied" {
		t.Fatalf("cancel sent the browser to %q", callback)
	}
	if r := linkingtest.Get(t, callback, ""); r.Status != http.StatusOK || !strings.Contains(r.Body, "You cancelled the TaipeiPASS login") {
		t.Errorf("cancelled login: %d %s", r.Status, r.Body)
	}
	if r := linkingtest.Get(t, callback, ""); r.Status != http.StatusBadRequest {
		t.Errorf("the cancelled attempt answered %d again, want 400", r.Status)
	}
}

func TestMemberRecordUnavailable(t *testing.T) {
	t.Parallel()
	// Tokens that expire at once: user/my answers 401.
	h := linkingtest.New(t, linkingtest.Options{TaipeiPass: linesim.TaipeiPassOptions{TokenLife: time.Nanosecond}})
	user := h.Friend(t, "zh-TW")
	r := linkingtest.Get(t, h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA), "")
	if r.Status != http.StatusBadGateway || !strings.Contains(r.Body, "臺北通無法完成登入") {
		t.Errorf("user/my failure: %d %s", r.Status, r.Body)
	}
}

// LINE refuses an expired link token itself: its dialog shows an error and sends no event.
func TestExpiredLinkToken(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	dialog := h.Callback(t, h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA))
	h.Clock.Advance(10 * time.Minute)
	r := h.Dialog(t, dialog, user)
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "no longer valid") {
		t.Errorf("dialog with an expired token: %d %s", r.Status, r.Body)
	}
	if n := accountLinkEvents(h); n != 0 {
		t.Errorf("%d accountLink events, want none", n)
	}
	if linkedTo(t, h, user) != "" {
		t.Error("linked with an expired link token")
	}
}

// A nonce binds once: an accountLink event replayed with it, by the same user or another, or
// sent after it expired, binds nothing and is answered so.
func TestReplayedAndExpiredNonces(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	ctx := context.Background()
	alice, mallory := h.Friend(t, "zh-TW"), h.Friend(t, "zh-TW")
	dialog := h.Callback(t, h.Login(t, h.Authorize(t, h.LinkURL(t, alice)), goldA))
	nonce := linkingtest.Query(t, dialog).Get("nonce")
	h.Dialog(t, dialog, alice)
	if linkedTo(t, h, alice) == "" {
		t.Fatal("alice not linked")
	}
	for _, who := range []string{mallory, alice} {
		before := len(h.Sim.Inbox(who))
		linkingtest.Delivered(t)(h.Sim.AccountLink(ctx, who, "ok", nonce))
		h.Drain(t)
		if got := h.Sim.Inbox(who)[before:]; len(got) != 1 || !strings.Contains(got[0].Text, "已失效") {
			t.Errorf("answer to a replayed nonce: %+v", got)
		}
	}
	if linkedTo(t, h, mallory) != "" || linkedTo(t, h, alice) != memberID(t, h, goldA) {
		t.Error("a replayed nonce changed a link")
	}
	if !strings.Contains(h.Logs.String(), "account link refused: nonce unknown, used or expired") {
		t.Error("the refusal was not logged")
	}

	// A nonce that outlived its 10 minutes.
	dialog = h.Callback(t, h.Login(t, h.Authorize(t, h.LinkURL(t, mallory)), goldB))
	h.Clock.Advance(10 * time.Minute)
	linkingtest.Delivered(t)(h.Sim.AccountLink(ctx, mallory, "ok", linkingtest.Query(t, dialog).Get("nonce")))
	h.Drain(t)
	if linkedTo(t, h, mallory) != "" {
		t.Error("an expired nonce linked")
	}
}

// The newest link wins, both ways; the LINE user that lost an account is told at once.
func TestRelink(t *testing.T) {
	t.Parallel()
	h := linkingtest.New(t, linkingtest.Options{})
	oldPhone, newPhone := h.Friend(t, "zh-TW"), h.Friend(t, "en")
	// A second link button, asked for before linking: the bot offers none to a linked user.
	spare := h.LinkURL(t, newPhone)
	h.Link(t, oldPhone, goldA)

	// The same TaipeiPASS account from a new LINE user: it moves.
	before := len(h.Sim.Inbox(oldPhone))
	h.Link(t, newPhone, goldA)
	if linkedTo(t, h, newPhone) != memberID(t, h, goldA) || linkedTo(t, h, oldPhone) != "" {
		t.Errorf("after moving: new %q old %q", linkedTo(t, h, newPhone), linkedTo(t, h, oldPhone))
	}
	told := h.Sim.Inbox(oldPhone)[before:]
	if len(told) != 1 || told[0].Via != "push" || !strings.Contains(told[0].Text, "另一個 LINE 帳號") {
		t.Errorf("old LINE user was told %+v, want one push", told)
	}

	// The same LINE user with another account: the old one is unlinked first.
	dialog := h.Callback(t, h.Login(t, h.Authorize(t, spare), goldB))
	if r := h.Dialog(t, dialog, newPhone); r.Status != http.StatusOK {
		t.Fatalf("dialog: %d %s", r.Status, r.Body)
	}
	if linkedTo(t, h, newPhone) != memberID(t, h, goldB) {
		t.Errorf("linked to %q, want %s", linkedTo(t, h, newPhone), goldB)
	}
	if n := sqlCount(t, h, `SELECT count(*) FROM guardians WHERE line_user_id IS NULL AND taipeipass_id = $1`, memberID(t, h, goldA)); n != 1 {
		t.Errorf("%s's guardian is not unlinked", goldA)
	}
}
