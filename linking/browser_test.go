package linking_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taipei-doit/ecardbot/internal/browsertest"
	"github.com/taipei-doit/ecardbot/linking/linkingtest"
)

// browse starts Chromium as the LINE user's phone: the LINE emulator's account-link dialog knows
// who opened it from the cookie its chat page sets, as the LINE app knows its user.
func browse(t *testing.T, h *linkingtest.Harness, user string) *browsertest.Tab {
	t.Helper()
	b := browsertest.NewTab(t)
	b.Do(chromedp.Navigate(h.SimURL + "/sim/users"))
	b.Eval(`document.cookie = "linesim_user=` + user + `; path=/"`)
	return b
}

// The whole journey in a real browser: the chat's button, TaipeiPASS's login page, a gold member
// picked, LINE's dialog, and the bot's binding.
func TestBrowserGoldMemberLinks(t *testing.T) {
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	b := browse(t, h, user)
	ctx := b.Ctx

	if err := chromedp.Do(ctx, chromedp.Navigate(h.LinkURL(t, user)), chromedp.WaitVisible(chromedp.CSS("#members"))); err != nil {
		t.Fatal(err)
	}
	browsertest.Screenshot(t, ctx, "taipeipass-login")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-account="`+goldA+`"]`)), chromedp.WaitVisible(chromedp.CSS("h1.ok, h1.err"))); err != nil {
		t.Fatal(err)
	}
	if got := b.Text("h1.ok, h1.err"); !strings.Contains(got, "Account linked") {
		t.Fatalf("LINE dialog says %q", got)
	}
	browsertest.Screenshot(t, ctx, "line-dialog")
	h.Drain(t)
	if got := linkedTo(t, h, user); got != memberID(t, h, goldA) {
		t.Errorf("linked to %q", got)
	}
	inbox := h.Sim.Inbox(user)
	if last := inbox[len(inbox)-1]; !strings.HasPrefix(last.Text, "綁定完成") {
		t.Errorf("last chat message %q, want the next step", last.Text)
	}
}

func TestBrowserNonGoldMemberPage(t *testing.T) {
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	b := browse(t, h, user)
	ctx := b.Ctx
	if err := chromedp.Do(ctx, chromedp.Navigate(h.LinkURL(t, user)), chromedp.WaitVisible(chromedp.CSS("#members")),
		chromedp.Click(chromedp.CSS(`button[data-account="`+notGold+`"]`)), chromedp.WaitVisible(chromedp.CSS("#ways"))); err != nil {
		t.Fatal(err)
	}
	if got := b.Text("#title"); !strings.Contains(got, "需要臺北通金質會員") || !strings.Contains(got, "gold membership") {
		t.Errorf("title %q", got)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#ways li").length`))
	if err != nil || n != 3 {
		t.Errorf("%d ways to become gold, %v; want 3", n, err)
	}
	// Phone-sized: nothing wider than the screen, and the stylesheet applied under the CSP.
	over, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil || over > 0 {
		t.Errorf("page is %d px wider than the screen, %v", over, err)
	}
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".bar")).backgroundColor`))
	if err != nil || bg != "rgb(6, 199, 85)" {
		t.Errorf("header background %q, %v: the stylesheet did not apply", bg, err)
	}
	browsertest.Screenshot(t, ctx, "not-gold")
	if linkedTo(t, h, user) != "" {
		t.Error("an ordinary member was linked")
	}
}

func TestBrowserForgedStatePage(t *testing.T) {
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "en")
	b := browse(t, h, user)
	ctx := b.Ctx
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL+"/link/callback?code=AbC123&state=forged"), chromedp.WaitVisible(chromedp.CSS("#title"))); err != nil {
		t.Fatal(err)
	}
	if got := b.Text("#title"); !strings.Contains(got, "連結已失效") || !strings.Contains(got, "expired or was already used") {
		t.Errorf("title %q", got)
	}
	browsertest.Screenshot(t, ctx, "forged-state")
	if len(h.TaipeiPass.Tokens()) != 0 {
		t.Error("a forged state reached the token endpoint")
	}
}

// TestBrowserRefusals shows, in Chromium, the page a parent lands on for each way a link is
// refused, and checks that none of them linked anything.
func TestBrowserRefusals(t *testing.T) {
	h := linkingtest.New(t, linkingtest.Options{})
	user := h.Friend(t, "zh-TW")
	b := browse(t, h, user)
	visit := func(t *testing.T, u string, status int, want string) {
		t.Helper()
		b.WantStatus(b.GoTo(u), status, t.Name())
		b.WantText("main, body", want)
		browsertest.Screenshot(t, b.Ctx, "page") // named after the subtest
	}

	t.Run("missing state", func(t *testing.T) {
		callback, _ := url.Parse(h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA))
		q := callback.Query()
		q.Del("state")
		callback.RawQuery = q.Encode()
		visit(t, callback.String(), http.StatusBadRequest, "連結已失效")
	})
	t.Run("missing PKCE verifier", func(t *testing.T) {
		callback := h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA)
		sqlExec(t, h, `UPDATE link_attempts SET verifier = ''`)
		visit(t, callback, http.StatusBadGateway, "臺北通無法完成登入")
	})
	t.Run("expired link token", func(t *testing.T) {
		dialog := h.Callback(t, h.Login(t, h.Authorize(t, h.LinkURL(t, user)), goldA))
		h.Clock.Advance(10 * time.Minute)
		visit(t, dialog, http.StatusBadRequest, "Link no longer valid")
		if n := accountLinkEvents(h); n != 0 {
			t.Errorf("%d accountLink events, want none", n)
		}
	})
	t.Run("login cancelled", func(t *testing.T) {
		b.WantStatus(b.GoTo(h.LinkURL(t, user)), http.StatusOK, "TaipeiPASS login")
		b.WantStatus(b.Submit("#cancel"), http.StatusOK, "cancel")
		b.WantText("main", "已取消登入")
		browsertest.Screenshot(t, b.Ctx, "page")
	})
	if linkedTo(t, h, user) != "" {
		t.Error("a refused link bound the user")
	}
}
