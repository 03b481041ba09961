package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/browsertest"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/store"
)

// TestJourneyInChromium is a parent's whole way through the running service, with the pages in
// headless Chromium as on their phone: follow @taipei → 綁定臺北通 → TaipeiPASS login → LINE's
// account-link dialog → the settings link from chat → add a child → tick notices → confirm the
// e-mail address from the mail → the child taps in at the gate, and the notice arrives on LINE
// and by e-mail. It ends with the rows the journey should leave in PostgreSQL.
func TestJourneyInChromium(t *testing.T) {
	t.Parallel()
	mb, err := linesim.StartMailbox("127.0.0.1:0", linesim.MailboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mb.Close() })
	tp, err := linesim.NewTaipeiPass(linesim.TaipeiPassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tpURL, err := tp.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	// The links the bot sends must point at this service, so its address is chosen first.
	addr := "127.0.0.1:" + freePort(t)
	public := "http://" + addr
	m, sim := mustRunMainWith(t, map[string]string{
		"ECARDBOT_HTTP_ADDR":                addr,
		"ECARDBOT_PUBLIC_URL":               public,
		"ECARDBOT_SMTP_URL":                 mb.URL("ecardbot", "pw"),
		"ECARDBOT_MAIL_FROM":                "臺北市學生到離校通知 <noreply@ecard.taipei>",
		"ECARDBOT_TAIPEIPASS_URL":           tpURL,
		"ECARDBOT_TAIPEIPASS_CLIENT_ID":     tp.ClientID(),
		"ECARDBOT_TAIPEIPASS_CLIENT_SECRET": tp.ClientSecret(),
	}, func(m *Main) { m.MailTLSConfig = mb.ClientTLSConfig() })
	env := map[string]string{"ECARDBOT_DATABASE_URL": m.Config.DatabaseURL, "ECARDBOT_SECRET_KEY": m.Config.SecretKey}
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
	mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "roster.csv", roster1))
	out, _ := mustRunCommand(t, env, "school", "key", "create", "--school", "313601")
	key := strings.TrimSpace(out)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// In LINE: follow, then the welcome's 綁定臺北通 button, answered with a button to /link.
	u, err := sim.AddUser(linesim.User{DisplayName: "陳怡君", Language: "zh-TW"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := sim.Follow(ctx, u.ID); err != nil || !d.OK() {
		t.Fatalf("follow: %v", err)
	}
	inbox := waitInbox(t, ctx, sim, u.ID, 1)
	welcome := inbox[0]
	if len(welcome.Actions) != 1 || welcome.Actions[0].Data != "action=link" || !welcome.Actions[0].QuickReply {
		t.Fatalf("the welcome's buttons are %+v, want the 綁定臺北通 quick reply", welcome.Actions)
	}
	if d, err := sim.Tap(ctx, u.ID, welcome.Actions[0], nil); err != nil || !d.OK() {
		t.Fatalf("tap 綁定臺北通: %v", err)
	}
	inbox = waitInbox(t, ctx, sim, u.ID, len(inbox)+1)
	linkURL := buttonURI(t, inbox[len(inbox)-1], public+"/link?linkToken=")

	// On the phone: the link button opens TaipeiPASS's login; a gold member logs in, and LINE's
	// dialog (the emulator's, which knows its user by the chat page's cookie) completes the link.
	b := browsertest.NewTab(t)
	b.Do(chromedp.Navigate(m.Config.LineAPIURL + "/sim/users"))
	b.Eval(`document.cookie = "linesim_user=` + u.ID + `; path=/"`)
	b.WantStatus(b.GoTo(linkURL), http.StatusOK, "TaipeiPASS login")
	b.Shot("taipeipass-login")
	b.WantStatus(b.Submit(`button[data-account="yijun.chen"]`), http.StatusOK, "LINE account-link dialog")
	b.WantText("h1", "Account linked")
	b.Shot("line-dialog")

	// The accountLink event binds the accounts; the bot answers with the next step.
	inbox = waitInbox(t, ctx, sim, u.ID, len(inbox)+1)
	next := inbox[len(inbox)-1]
	if !strings.HasPrefix(next.Text, "綁定完成") {
		t.Errorf("after linking the bot says %q", next.Text)
	}
	settingsURL := buttonURI(t, next, public+"/settings/open?t=")

	// Add the child (歸戶).
	b.WantStatus(b.GoTo(settingsURL), http.StatusOK, "settings link")
	if p := b.Path(); p != "/settings/children/new" {
		t.Fatalf("the settings link led to %s", p)
	}
	b.Do(chromedp.SetValue(chromedp.ID("district"), "松山區"), chromedp.SetValue(chromedp.ID("level"), ecardbot.LevelElementary))
	b.WantStatus(b.Submit("#list-schools"), http.StatusOK, "list schools")
	b.Do(
		chromedp.SendKeys(chromedp.ID("name"), "王小明"),
		chromedp.SendKeys(chromedp.ID("student_no"), "1001"),
		chromedp.SetValue(chromedp.ID("birth_date"), "2017-03-04"),
		chromedp.SendKeys(chromedp.ID("national_id"), "A123456789"),
	)
	b.Shot("add-child")
	b.WantStatus(b.Submit("#submit"), http.StatusOK, "add child")
	b.WantText("#flash", "已加入孩子")

	// Notices: 到校 by e-mail too, 離校 not at all.
	b.Do(chromedp.Click(chromedp.CSS(`input[id$="-email-arrived"]`)), chromedp.Click(chromedp.CSS(`input[id$="-line-left"]`)))
	b.WantStatus(b.Submit(`button[id^="save-"]`), http.StatusOK, "save notices")
	b.WantText("#flash", "通知設定已儲存")

	// The e-mail address, confirmed from the mail it receives.
	b.Do(chromedp.SetValue(chromedp.ID("email-input"), "parent@example.com"))
	b.WantStatus(b.Submit("#email-save"), http.StatusOK, "set e-mail")
	b.Shot("settings")
	mails, err := mb.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	confirm := regexp.MustCompile(regexp.QuoteMeta(public) + `/settings/email/confirm\?t=[A-Za-z0-9_-]+`).FindString(mails[0].Text)
	if confirm == "" {
		t.Fatalf("no confirmation link in the mail:\n%s", mails[0].Text)
	}
	b.WantStatus(b.GoTo(confirm), http.StatusOK, "open confirmation link")
	b.WantStatus(b.Submit("#confirm-email"), http.StatusOK, "confirm e-mail")
	b.Shot("email-confirmed")

	// What PostgreSQL holds now.
	db := openForCheck(t, env)
	g, err := store.NewGuardianService(db).FindGuardianByLineUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.TaipeiPassID != tp.Members()[0].ID || g.Email != "parent@example.com" || g.EmailConfirmedAt == nil {
		t.Errorf("guardian: account %q, e-mail %q confirmed %v", g.TaipeiPassID, g.Email, g.EmailConfirmedAt)
	}
	subs, err := store.NewGuardianService(db).Subscriptions(ctx, g.ID)
	if err != nil || len(subs) == 0 {
		t.Fatalf("subscriptions %v, %v", subs, err)
	}
	sid := subs[0].StudentID
	want := []ecardbot.Subscription{
		{StudentID: sid, Kind: ecardbot.KindAbsent, Channel: ecardbot.ChannelLINE},
		{StudentID: sid, Kind: ecardbot.KindArrived, Channel: ecardbot.ChannelEmail},
		{StudentID: sid, Kind: ecardbot.KindArrived, Channel: ecardbot.ChannelLINE},
	}
	if diff := cmp.Diff(want, subs); diff != "" {
		t.Errorf("subscriptions (-want +got):\n%s", diff)
	}

	// The child taps in: one LINE notice and one e-mail.
	at := time.Now().Add(-time.Minute).Format(time.RFC3339)
	batch := `{"events": [{"id": "north-1:0001", "card": "04A1B2C3", "direction": "in", "at": "` + at + `", "gate": "north-1"}]}`
	if res := mustIngest(t, public+"/api/v1/gate-events", key, batch); res.Accepted != 1 {
		t.Fatalf("ingest: %+v", res)
	}
	inbox = waitInbox(t, ctx, sim, u.ID, len(inbox)+1)
	if got := inbox[len(inbox)-1].Text; !strings.Contains(got, "王○明") || !strings.Contains(got, "到校") {
		t.Errorf("LINE notice reads %q", got)
	}
	if mails, err = mb.WaitMessages(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := mails[1]; len(got.To) != 1 || got.To[0] != "parent@example.com" || !strings.HasPrefix(got.Subject, "【到校通知】王○明") {
		t.Errorf("notice mail to %v, subject %q", got.To, got.Subject)
	}
}

func waitInbox(t *testing.T, ctx context.Context, sim *linesim.Server, userID string, n int) []linesim.Message {
	t.Helper()
	inbox, err := sim.WaitInbox(ctx, userID, n)
	if err != nil {
		t.Fatalf("waiting for message %d: %v", n, err)
	}
	return inbox
}

// buttonURI is the URI of msg's button that starts with prefix.
func buttonURI(t *testing.T, msg linesim.Message, prefix string) string {
	t.Helper()
	for _, a := range msg.Actions {
		if a.Type == "uri" && strings.HasPrefix(a.URI, prefix) {
			return a.URI
		}
	}
	t.Fatalf("message %q has no button to %s…: %+v", msg.Text, prefix, msg.Actions)
	return ""
}
