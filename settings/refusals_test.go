package settings_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/browsertest"
	"github.com/taipei-doit/ecardbot/settings"
)

// TestWrongBirthDate: one wrong field gets the one generic error, which does not say which
// field it was; the ID is not echoed back and nothing is added.
func TestWrongBirthDate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsAddChild)), http.StatusOK, "open link")
	fillChild(t, b, childName, childNo, "2019-05-05", childID)
	b.WantStatus(b.Submit("#submit"), http.StatusBadRequest, "wrong birth date")
	b.Shot("generic-error")
	msg := b.Text(".error")
	if !strings.Contains(msg, genericNoMatch) {
		t.Errorf("error %q is not the generic one", msg)
	}
	for _, field := range []string{"出生", "birth", "姓名", "學號"} {
		if strings.Contains(strings.SplitN(msg, "。", 2)[0], field) {
			t.Errorf("the error's first sentence names a field (%s): %q", field, msg)
		}
	}
	if v := b.Eval(`document.getElementById("national_id").value`); v != "" {
		t.Errorf("the ID number was echoed back: %q", v)
	}
	if html := b.Eval(`document.documentElement.outerHTML`); strings.Contains(strings.ToUpper(html), strings.ToUpper(childID)) {
		t.Error("the page contains the ID number")
	}
	if n := len(h.children(h.g1)); n != 0 {
		t.Errorf("%d children added", n)
	}

	// A wrong ID, and a wrong name, get the very same message.
	for _, tt := range []struct{ name, id string }{{childName, "A123456789"}, {"李軒", childID}} {
		b.WantStatus(b.GoTo(h.url+"/settings/children/new"), http.StatusOK, "form")
		fillChild(t, b, tt.name, childNo, childBirth, tt.id)
		b.WantStatus(b.Submit("#submit"), http.StatusBadRequest, "mismatch")
		if got := b.Text(".error"); got != msg {
			t.Errorf("mismatch message %q differs from %q", got, msg)
		}
	}

	// A checksum error is reported as such and is not an attempt.
	b.WantStatus(b.GoTo(h.url+"/settings/children/new"), http.StatusOK, "form")
	fillChild(t, b, childName, childNo, childBirth, "A123456788")
	b.WantStatus(b.Submit("#submit"), http.StatusBadRequest, "bad checksum")
	b.WantText(".error", "ID number is not valid")
	b.Shot("checksum-error")
}

// TestSixthAttempt: five failures within the hour, then even the right details are refused
// before matching, with the time to retry; an hour later they work.
func TestSixthAttempt(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsAddChild)), http.StatusOK, "open link")
	start := h.clock.Now()
	for i := range 5 {
		b.WantStatus(b.GoTo(h.url+"/settings/children/new"), http.StatusOK, "form")
		fillChild(t, b, childName, childNo, "2019-05-0"+string(rune('5'+i)), childID)
		b.WantStatus(b.Submit("#submit"), http.StatusBadRequest, "failed attempt")
		h.clock.Advance(time.Minute)
	}
	b.WantStatus(b.GoTo(h.url+"/settings/children/new"), http.StatusOK, "form")
	fillChild(t, b, childName, childNo, childBirth, childID)
	b.WantStatus(b.Submit("#submit"), http.StatusTooManyRequests, "sixth attempt")
	b.Shot("too-many-attempts")
	retry := start.Add(time.Hour).In(ecardbot.Taipei).Format("15:04")
	b.WantText(".error", "嘗試次數過多")
	b.WantText(".error", retry)
	if n := len(h.children(h.g1)); n != 0 {
		t.Fatalf("the sixth attempt added a child")
	}

	// The link's session has ended by now; a new one, after the window, lets the right details in.
	h.clock.Advance(time.Hour)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsAddChild)), http.StatusOK, "open link")
	fillChild(t, b, childName, childNo, childBirth, childID)
	b.WantStatus(b.Submit("#submit"), http.StatusOK, "after the window")
	if n := len(h.children(h.g1)); n != 1 {
		t.Fatalf("%d children after the window, want 1", n)
	}
}

// TestLinkUsedTwice: a link opens once; a second opening, an expired link and an unknown one
// get a page saying what to do, and no session.
func TestLinkUsedTwice(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := browsertest.NewTab(t)
	link := h.link(h.g1, ecardbot.SettingsHistory)
	b.WantStatus(b.GoTo(link), http.StatusOK, "first use")
	if p := b.Path(); p != "/settings/history" {
		t.Errorf("link led to %s", p)
	}
	b.WantText("#no-entries", "沒有通知")
	b.Shot("history-empty")

	b2 := browsertest.NewTab(t) // another browser: no session of its own
	b2.WantStatus(b2.GoTo(link), http.StatusGone, "second use")
	b2.WantText("#title", "連結已使用或已過期")
	b2.Shot("used-twice")
	b2.WantStatus(b2.GoTo(h.url+"/settings"), http.StatusUnauthorized, "no session")

	expired := h.link(h.g1, ecardbot.SettingsHome)
	h.clock.Advance(settings.DefaultLinkTTL)
	b2.WantStatus(b2.GoTo(expired), http.StatusGone, "expired link")
	b2.WantStatus(b2.GoTo(h.url+"/settings/open?t=not-a-token"), http.StatusBadRequest, "unknown link")
	b2.WantText("#title", "連結無效")
	b2.Shot("unknown-link")
}

// TestCSRF: a form posted without its token, or with another session's, is refused with 403
// and changes nothing.
func TestCSRF(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	sid := h.addChild(h.g1, childNo, childName, childBirth, childID)
	before := h.subscriptions(h.g1)

	other := browsertest.NewTab(t)
	other.WantStatus(other.GoTo(h.link(h.g2, ecardbot.SettingsHome)), http.StatusOK, "other session")
	otherToken := other.Eval(`document.querySelector("input[name=csrf]").value`)

	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	if tok := b.Eval(`document.querySelector("input[name=csrf]").value`); tok == "" || tok == otherToken {
		t.Fatalf("tokens %q and %q: each session needs its own", tok, otherToken)
	}
	untick := chromedp.Click(chromedp.ID("c" + itoa(sid) + "-line-arrived"))

	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("input[name=csrf]").forEach(e => e.remove())`), untick)
	b.WantStatus(b.Submit("#save-"+itoa(sid)), http.StatusForbidden, "no token")
	b.WantText("#title", "無法處理這個表單")
	b.Shot("csrf-missing")

	b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusOK, "settings")
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("input[name=csrf]").forEach(e => e.value = "`+otherToken+`")`), untick)
	b.WantStatus(b.Submit("#save-"+itoa(sid)), http.StatusForbidden, "another session's token")
	b.Shot("csrf-other-session")

	b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusOK, "settings")
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("input[name=csrf]").forEach(e => e.remove())`),
		chromedp.SetValue(chromedp.ID("email-input"), "x@example.com"))
	b.WantStatus(b.Submit("#email-save"), http.StatusForbidden, "e-mail without token")

	if diff := cmp.Diff(before, h.subscriptions(h.g1)); diff != "" {
		t.Errorf("subscriptions changed (-before +after):\n%s", diff)
	}
	if g, _ := h.store.Guardian(context.Background(), h.g1); g.Email != "" {
		t.Errorf("e-mail set to %q", g.Email)
	}
	if n := len(h.mailbox.Messages()); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}

// TestExpiredSession: once the session has expired, pages and forms send the parent back to
// the chat, and a form changes nothing.
func TestExpiredSession(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	sid := h.addChild(h.g1, childNo, childName, childBirth, childID)
	before := h.subscriptions(h.g1)
	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	h.clock.Advance(settings.DefaultSessionTTL)
	b.Do(chromedp.Click(chromedp.ID("c" + itoa(sid) + "-line-arrived")))
	b.WantStatus(b.Submit("#save-"+itoa(sid)), http.StatusUnauthorized, "form after expiry")
	b.WantText("#title", "請重新開啟設定")
	b.Shot("session-expired")
	b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusUnauthorized, "page after expiry")
	if diff := cmp.Diff(before, h.subscriptions(h.g1)); diff != "" {
		t.Errorf("subscriptions changed (-before +after):\n%s", diff)
	}
}

// TestUnlinkEndsSession: once the guardian is unlinked from LINE, the settings session they
// had open sends them back to the chat, for pages and forms alike, while another guardian's
// session goes on; a link from chat made before the unlink opens no settings either.
func TestUnlinkEndsSession(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	sid := h.addChild(h.g1, childNo, childName, childBirth, childID)
	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	other := browsertest.NewTab(t)
	other.WantStatus(other.GoTo(h.link(h.g2, ecardbot.SettingsHome)), http.StatusOK, "other guardian")
	unused := h.link(h.g1, ecardbot.SettingsHome)

	if _, err := h.guardians.UnlinkGuardian(ctx, lineUser(1)); err != nil {
		t.Fatal(err)
	}
	b.Do(chromedp.Click(chromedp.ID("c" + itoa(sid) + "-line-arrived")))
	b.WantStatus(b.Submit("#save-"+itoa(sid)), http.StatusUnauthorized, "form after unlink")
	b.WantText("#title", "請重新開啟設定")
	b.WantText("#text", "LINE 聊天室")
	b.Shot("session-after-unlink")
	b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusUnauthorized, "page after unlink")
	if subs := h.subscriptions(h.g1); len(subs) != 0 {
		t.Errorf("subscriptions after unlink: %+v", subs)
	}
	other.WantStatus(other.GoTo(h.url+"/settings"), http.StatusOK, "other guardian after the unlink")

	fresh := browsertest.NewTab(t)
	if status := fresh.GoTo(unused); status == http.StatusOK {
		t.Errorf("a link made before the unlink opened %s", fresh.Path())
	}
}

// TestOtherGuardiansChild: a guardian can neither see nor change another guardian's child;
// the child is as unknown as one that does not exist.
func TestOtherGuardiansChild(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mine := h.addChild(h.g1, childNo, childName, childBirth, childID)
	theirs := h.addChild(h.g2, "11002", "曾彤品", "2019-11-13", "A100000029")
	theirSubs := h.subscriptions(h.g2)

	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	if strings.Contains(b.Text("main"), "曾") {
		t.Error("the page shows another guardian's child")
	}
	b.WantStatus(b.GoTo(h.url+"/settings/children/"+itoa(theirs)+"/remove"), http.StatusNotFound, "remove form of another's child")
	b.WantText("#title", "找不到")
	b.Shot("other-child-not-found")

	// Post the guardian's own forms at the other child.
	for _, form := range []string{"notices", "remove"} {
		b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusOK, "settings")
		b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector("form[action='/settings/children/` + itoa(mine) + `/notices']").action = "/settings/children/` + itoa(theirs) + `/` + form + `"`))
		b.WantStatus(b.Submit("#save-"+itoa(mine)), http.StatusNotFound, form+" of another's child")
	}
	if diff := cmp.Diff(theirSubs, h.subscriptions(h.g2)); diff != "" {
		t.Errorf("the other guardian's subscriptions changed (-before +after):\n%s", diff)
	}
	if n := len(h.children(h.g2)); n != 1 {
		t.Errorf("the other guardian has %d children, want 1", n)
	}
}

// TestEmailOff: without a mailer the e-mail column is hidden, the page says why, and saving
// the grid keeps e-mail subscriptions made elsewhere (the subscribers import).
func TestEmailOff(t *testing.T) {
	h := newHarness(t, harnessOptions{emailOff: true})
	sid := h.addChild(h.g1, childNo, childName, childBirth, childID)
	email := ecardbot.Subscription{StudentID: sid, Kind: ecardbot.KindAbsent, Channel: ecardbot.ChannelEmail}
	line := ecardbot.Subscription{StudentID: sid, Kind: ecardbot.KindArrived, Channel: ecardbot.ChannelLINE}
	if err := h.guardians.SetSubscriptions(context.Background(), h.g1, sid, []ecardbot.Subscription{line, email}); err != nil {
		t.Fatal(err)
	}
	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	b.WantText("#email-off", "未提供 E-mail 通知")
	if n := b.Eval(`String(document.querySelectorAll("input[name^=email_]").length)`); n != "0" {
		t.Errorf("%s e-mail checkboxes with e-mail off", n)
	}
	b.Shot("email-off")
	b.Do(chromedp.Click(chromedp.ID("c" + itoa(sid) + "-line-left")))
	b.WantStatus(b.Submit("#save-"+itoa(sid)), http.StatusOK, "save")
	want := []ecardbot.Subscription{email, line, {StudentID: sid, Kind: ecardbot.KindLeft, Channel: ecardbot.ChannelLINE}}
	if diff := cmp.Diff(want, h.subscriptions(h.g1)); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}
}

// TestSessionCookie checks the cookie's attributes, over http and over https, and that a link
// can only name a settings page.
func TestSessionCookie(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	resp := noRedirect(t, h.link(h.g1, ecardbot.SettingsAddChild))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/children/new" {
		t.Errorf("open: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("the redirect from the link has Referrer-Policy %q", got)
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{settings.CookieName + "=", "Path=/settings", "HttpOnly", "SameSite=Lax", "Max-Age=3600"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("cookie %q is Secure over http", cookie)
	}
	// Every page, error pages too, carries the layout's headers.
	gone := noRedirect(t, resp.Request.URL.String())
	if gone.StatusCode != http.StatusGone || gone.Header.Get("Set-Cookie") != "" {
		t.Errorf("second use: %d, cookie %q", gone.StatusCode, gone.Header.Get("Set-Cookie"))
	}
	for name, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := gone.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	secure, err := settings.New(settings.Config{PublicURL: "https://ecard.example", SecretKey: secret, Now: h.clock.Now},
		settings.Deps{Guardians: h.guardians, Settings: h.store})
	if err != nil {
		t.Fatal(err)
	}
	u, err := secure.SettingsURL(context.Background(), h.g1, ecardbot.SettingsHome)
	if err != nil || !strings.HasPrefix(u, "https://ecard.example/settings/open?t=") {
		t.Fatalf("SettingsURL = %q, %v", u, err)
	}
	srv := httptest.NewServer(ginWith(secure))
	defer srv.Close()
	resp = noRedirect(t, srv.URL+strings.TrimPrefix(u, "https://ecard.example"))
	if c := resp.Header.Get("Set-Cookie"); !strings.Contains(c, "Secure") {
		t.Errorf("cookie %q is not Secure under an https public URL", c)
	}
	if resp.Header.Get("Location") != "/settings" {
		t.Errorf("home link led to %q", resp.Header.Get("Location"))
	}

	for _, page := range []ecardbot.SettingsPage{"//evil.example", "../admin", "https://evil.example"} {
		if _, err := h.settings.SettingsURL(context.Background(), h.g1, page); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
			t.Errorf("SettingsURL(%q) = %v, want EINVALID", page, err)
		}
	}
}
