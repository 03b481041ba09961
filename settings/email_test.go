package settings_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/browsertest"
)

// setEmailInBrowser saves the address on the settings page b shows and returns the link of the
// confirmation mail it makes, the nth mail of the mailbox.
func setEmailInBrowser(t *testing.T, h *harness, b *browsertest.Tab, email string, nth int) string {
	t.Helper()
	b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusOK, "settings")
	b.Do(chromedp.SetValue(chromedp.ID("email-input"), email))
	b.WantStatus(b.Submit("#email-save"), http.StatusOK, "set e-mail")
	b.WantText("#flash", "確認信已寄出")
	mails, err := h.mailbox.WaitMessages(testContext(t), nth)
	if err != nil {
		t.Fatal(err)
	}
	m := mails[nth-1]
	if len(m.To) != 1 || m.To[0] != email {
		t.Fatalf("mail %d went to %v, want %s", nth, m.To, email)
	}
	link := confirmLink.FindString(m.Text)
	if link == "" {
		t.Fatalf("no confirmation link in the mail:\n%s", m.Text)
	}
	return link
}

func (h *harness) guardian(id int64) *ecardbot.Guardian {
	h.t.Helper()
	g, err := h.store.Guardian(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return g
}

// TestConfirmLinkOpenedByScanner: a mail scanner or a link preview that opens the link from
// the mail, however often, confirms nothing and uses nothing up; the parent's press of the
// page's button, in a browser without a settings session, does.
func TestConfirmLinkOpenedByScanner(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	link := setEmailInBrowser(t, h, b, "parent@example.com", 1)

	for i := range 3 {
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "p●●●@example.com") {
			t.Fatalf("scanner's GET %d: %d\n%s", i+1, resp.StatusCode, body)
		}
		if strings.Contains(string(body), "parent@example.com") {
			t.Errorf("the confirmation page shows the whole address")
		}
		if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("the page of a URL with a token has Referrer-Policy %q", got)
		}
		if g := h.guardian(h.g1); g.EmailConfirmedAt != nil {
			t.Fatalf("a GET of the link confirmed the address (after %d)", i+1)
		}
	}

	other := browsertest.NewTab(t) // the mail opened on another device: no session
	other.WantStatus(other.GoTo(link), http.StatusOK, "open confirmation link")
	other.WantStatus(other.Submit("#confirm-email"), http.StatusOK, "confirm e-mail")
	other.WantText("#title", "電子郵件地址已確認")
	if g := h.guardian(h.g1); g.Email != "parent@example.com" || g.EmailConfirmedAt == nil {
		t.Fatalf("guardian after the button: %+v", g)
	}
	other.WantStatus(other.GoTo(link), http.StatusGone, "link after confirming")
	other.WantText("#title", "連結已使用或已過期")
	other.WantText("#text", "24 小時")
	other.Shot("email-confirm-used")

	// A POST of a token never issued, or of none, confirms nothing.
	for _, form := range []url.Values{{"t": {"not-a-token"}}, {}} {
		resp, err := http.PostForm(h.url+"/settings/email/confirm", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %v: status %d, want 400", form, resp.StatusCode)
		}
	}
}

// TestConfirmAfterAddressChanged: the parent opens the confirmation page, then changes the
// address in settings before pressing the button: the button confirms nothing and says so, and
// the new address stays waiting for its own confirmation.
func TestConfirmAfterAddressChanged(t *testing.T) {
	for _, backend := range []struct {
		name   string
		sqlite bool
	}{{"postgres", false}, {"sqlite", true}} {
		t.Run(backend.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{sqlite: backend.sqlite})
			b := browsertest.NewTab(t)
			b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
			first := setEmailInBrowser(t, h, b, "parent@example.com", 1)

			mail := browsertest.NewTab(t)
			mail.WantStatus(mail.GoTo(first), http.StatusOK, "open confirmation link")
			setEmailInBrowser(t, h, b, "other@example.com", 2)
			mail.WantStatus(mail.Submit("#confirm-email"), http.StatusGone, "confirm a changed address")
			mail.WantText("#title", "無法確認這個地址")
			mail.Shot("email-confirm-address-changed")
			if g := h.guardian(h.g1); g.Email != "other@example.com" || g.EmailConfirmedAt != nil {
				t.Fatalf("guardian after a stale confirmation: %+v", g)
			}
		})
	}
}

// TestConfirmMailLimit: five confirmation mails within the hour, then the page refuses the
// sixth with the time to retry, sends nothing and keeps the address; an hour after the first,
// mail goes again.
func TestConfirmMailLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	b := browsertest.NewTab(t)
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	start := h.clock.Now()
	for i := range 5 {
		setEmailInBrowser(t, h, b, fmt.Sprintf("p%d@example.com", i), i+1)
		h.clock.Advance(time.Minute)
	}
	b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusOK, "settings")
	b.Do(chromedp.SetValue(chromedp.ID("email-input"), "p5@example.com"))
	b.WantStatus(b.Submit("#email-save"), http.StatusTooManyRequests, "sixth mail")
	b.Shot("email-too-many-mails")
	b.WantText("#email-error", "確認信寄送次數過多")
	b.WantText("#email-error", start.Add(time.Hour).In(ecardbot.Taipei).Format("01/02 15:04"))
	b.WantText("#email-error", "Taipei time")
	if n := len(h.mailbox.Messages()); n != 5 {
		t.Errorf("%d mails sent, want 5", n)
	}
	if g := h.guardian(h.g1); g.Email != "p4@example.com" {
		t.Errorf("the refused request changed the address to %q", g.Email)
	}

	// The session has ended by then: a new link, and the mail goes.
	h.clock.Advance(start.Add(time.Hour + time.Second).Sub(h.clock.Now()))
	b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsHome)), http.StatusOK, "open link")
	setEmailInBrowser(t, h, b, "p5@example.com", 6)
}
