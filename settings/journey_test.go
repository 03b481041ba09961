package settings_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/browsertest"
	"github.com/taipei-doit/ecardbot/store"
)

// TestJourney is a parent's whole way through the pages in Chromium, on PostgreSQL and on
// SQLite: open the link from chat, add a child, choose notices, set the e-mail address and
// confirm it with the button of the page the mail's link opens, and read the history,
// checking the database after each step.
func TestJourney(t *testing.T) {
	for _, backend := range []struct {
		name   string
		sqlite bool
	}{{"postgres", false}, {"sqlite", true}} {
		t.Run(backend.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{sqlite: backend.sqlite})
			b := browsertest.NewTab(t)
			ctx := context.Background()

			// The link from chat opens the 歸戶 page directly.
			b.WantStatus(b.GoTo(h.link(h.g1, ecardbot.SettingsAddChild)), http.StatusOK, "open link")
			if p := b.Path(); p != "/settings/children/new" {
				t.Fatalf("link led to %s", p)
			}
			b.Shot("add-child-start")
			fillChild(t, b, childName, childNo, childBirth, childID)
			b.Shot("add-child-filled")
			b.WantStatus(b.Submit("#submit"), http.StatusOK, "add child")
			if p := b.Path(); p != "/settings?done=added" {
				t.Fatalf("after adding: %s", p)
			}
			b.WantText("#flash", "已加入孩子")
			b.WantText(".child h2", "李○翔")
			b.Shot("home-child-added")

			children := h.children(h.g1)
			if len(children) != 1 || children[0].StudentNo != childNo {
				t.Fatalf("children after 歸戶: %+v", children)
			}
			sid := children[0].StudentID
			sub := func(k ecardbot.NoticeKind, ch ecardbot.Channel) ecardbot.Subscription {
				return ecardbot.Subscription{StudentID: sid, Kind: k, Channel: ch}
			}
			want := []ecardbot.Subscription{sub(ecardbot.KindAbsent, ecardbot.ChannelLINE), sub(ecardbot.KindArrived, ecardbot.ChannelLINE), sub(ecardbot.KindLeft, ecardbot.ChannelLINE)}
			if diff := cmp.Diff(want, h.subscriptions(h.g1)); diff != "" {
				t.Errorf("default subscriptions (-want +got):\n%s", diff)
			}

			// Tick 到校 on e-mail, untick 離校 on LINE, save.
			id := func(ch, kind string) string { return "c" + itoa(sid) + "-" + ch + "-" + kind }
			for _, k := range ecardbot.NoticeKinds {
				if !b.Checked(id("line", string(k))) || b.Checked(id("email", string(k))) {
					t.Errorf("grid for %s does not show the defaults", k)
				}
			}
			b.Do(chromedp.Click(chromedp.ID(id("email", "arrived"))), chromedp.Click(chromedp.ID(id("line", "left"))))
			b.WantStatus(b.Submit("#save-"+itoa(sid)), http.StatusOK, "save notices")
			b.WantText("#flash", "通知設定已儲存")
			if !b.Checked(id("email", "arrived")) || b.Checked(id("line", "left")) {
				t.Error("the saved grid does not show the change")
			}
			b.Shot("home-notices-saved")
			want = []ecardbot.Subscription{sub(ecardbot.KindAbsent, ecardbot.ChannelLINE), sub(ecardbot.KindArrived, ecardbot.ChannelEmail), sub(ecardbot.KindArrived, ecardbot.ChannelLINE)}
			if diff := cmp.Diff(want, h.subscriptions(h.g1)); diff != "" {
				t.Errorf("saved subscriptions (-want +got):\n%s", diff)
			}

			// Set the e-mail address: stored unconfirmed, and only a confirmation is mailed.
			b.Do(chromedp.SetValue(chromedp.ID("email-input"), "parent@example.com"))
			b.WantStatus(b.Submit("#email-save"), http.StatusOK, "set e-mail")
			b.WantText("#flash", "確認信已寄出")
			b.WantText("#email-state", "待確認")
			b.Shot("home-email-unconfirmed")
			g, err := h.store.Guardian(ctx, h.g1)
			if err != nil || g.Email != "parent@example.com" || g.EmailConfirmedAt != nil {
				t.Fatalf("guardian after setting the address: %+v, %v", g, err)
			}
			mails, err := h.mailbox.WaitMessages(testContext(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(mails) != 1 || len(mails[0].To) != 1 || mails[0].To[0] != "parent@example.com" {
				t.Fatalf("mails: %+v", mails)
			}
			link := confirmLink.FindString(mails[0].Text)
			if link == "" || !strings.Contains(mails[0].HTML, link) {
				t.Fatalf("no confirmation link in the mail:\n%s", mails[0].Text)
			}

			// Open the link from the mail: it only shows the address, masked, with a button.
			b.WantStatus(b.GoTo(link), http.StatusOK, "open confirmation link")
			b.WantText("#title", "確認電子郵件地址")
			b.WantText("#address", "p●●●@example.com")
			if strings.Contains(b.Text("main"), "parent@example.com") {
				t.Error("the confirmation page shows the whole address")
			}
			b.Shot("email-confirm-page")
			if g, err := h.store.Guardian(ctx, h.g1); err != nil || g.EmailConfirmedAt != nil {
				t.Fatalf("guardian after opening the link: %+v, %v", g, err)
			}
			b.WantStatus(b.Submit("#confirm-email"), http.StatusOK, "confirm e-mail")
			b.WantText("#title", "電子郵件地址已確認")
			b.Shot("email-confirmed")
			if g, err := h.store.Guardian(ctx, h.g1); err != nil || g.EmailConfirmedAt == nil {
				t.Fatalf("guardian after confirming: %+v, %v", g, err)
			}
			b.WantStatus(b.GoTo(link), http.StatusGone, "confirmation link used twice")
			b.Shot("email-confirm-used-twice")
			b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusOK, "settings after confirming")
			b.WantText("#email-state", "已確認")
			b.Shot("home-email-confirmed")

			// A tap makes a notice with deliveries on LINE and e-mail; LINE sends it.
			if err := store.NewLineUserService(h.db).Follow(ctx, lineUser(1), ecardbot.LangZhTW, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
			tap := ecardbot.GateEvent{ID: "tap-1", Card: childCard, Direction: ecardbot.DirectionIn, At: h.clock.Now().Add(-time.Minute), Gate: "north-1"}
			res, err := store.NewGateService(h.db, store.GateConfig{}).Ingest(ctx, h.school, []ecardbot.GateEvent{tap})
			if err != nil || res.Accepted != 1 {
				t.Fatalf("Ingest = %+v, %v", res, err)
			}
			deliveries := store.NewDeliveryService(h.db)
			pending, err := deliveries.PendingBatch(ctx, 10)
			if err != nil || len(pending) != 2 {
				t.Fatalf("pending deliveries %+v, %v", pending, err)
			}
			for _, d := range pending {
				if d.Channel == ecardbot.ChannelLINE {
					if err := deliveries.MarkSent(ctx, d.ID, "req-1"); err != nil {
						t.Fatal(err)
					}
				}
			}
			b.WantStatus(b.Submit("#history"), http.StatusOK, "history")
			b.WantText("#entries", "到校")
			b.WantText("#entries", "李○翔")
			b.WantText("#entries", "LINE 已送達")
			b.WantText("#entries", "E-mail 傳送中")
			if strings.Contains(b.Text("main"), childName) {
				t.Error("the history page shows the child's full name")
			}
			b.Shot("history")

			// Remove the child, after confirming.
			b.WantStatus(b.GoTo(h.url+"/settings"), http.StatusOK, "settings")
			b.WantStatus(b.Submit("#remove-"+itoa(sid)), http.StatusOK, "remove form")
			b.Shot("remove-child-confirm")
			b.WantStatus(b.Submit("#confirm-remove"), http.StatusOK, "remove child")
			b.WantText("#flash", "已移除孩子")
			b.WantText("#no-children", "還沒有加入孩子")
			b.Shot("home-child-removed")
			if len(h.children(h.g1)) != 0 || len(h.subscriptions(h.g1)) != 0 {
				t.Error("the child or its subscriptions remain after removal")
			}
		})
	}
}

func itoa(n int64) string { return strconvFormat(n) }
