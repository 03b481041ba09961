package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/linking/linkingtest"
)

const goldMember = "yijun.chen" // of linesim.DefaultTaipeiPassMembers

func TestLinkKeywordRepliesWithALinkButton(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	for _, tt := range []struct{ lang, say, label string }{
		{"zh-TW", "綁定", "綁定臺北通"},
		{"zh-TW", " 綁定臺北通 ", "綁定臺北通"},
		{"en", "Link", "Link TaipeiPASS"},
	} {
		id := h.Friend(t, tt.lang)
		got := h.Say(t, id, tt.say)
		if len(got) != 1 || got[0].Type != "template" || len(got[0].Actions) != 1 || got[0].Actions[0].Label != tt.label {
			t.Fatalf("%s: answer %+v, want one button %q", tt.say, got, tt.label)
		}
		token := linkingtest.Query(t, got[0].Actions[0].URI).Get("linkToken")
		if info, ok := h.sim.LinkTokenInfo(token); !ok || info.UserID != id || info.Used {
			t.Errorf("%s: button carries token %+v, want a fresh one issued for the user", tt.say, info)
		}
		if !strings.HasPrefix(got[0].Actions[0].URI, h.URL+"/link?linkToken=") {
			t.Errorf("%s: button opens %s", tt.say, got[0].Actions[0].URI)
		}
	}
}

func TestLinkPostbackAndAccountLinkOk(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	id := h.Friend(t, "zh-TW")
	got := h.Tap(t, id, linesim.Action{Type: "postback", Data: "action=link", DisplayText: "綁定臺北通"})
	if len(got) != 1 || len(got[0].Actions) != 1 || got[0].Actions[0].Type != "uri" {
		t.Fatalf("postback action=link: %+v", got)
	}
	answer := h.Link(t, id, goldMember)
	g, err := h.Guardians.FindGuardianByLineUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s/settings/children/new?guardian=%d", h.URL, g.ID)
	if len(answer) != 1 || !strings.HasPrefix(answer[0].Text, "綁定完成！下一步：新增您的孩子") ||
		len(answer[0].Actions) != 1 || answer[0].Actions[0].URI != want || answer[0].Actions[0].Label != "新增孩子" {
		t.Errorf("answer to accountLink = %+v, want the next step with a button to %s", answer, want)
	}

	// Linked now: 綁定 and 設定 open the settings, 紀錄 the history.
	for say, page := range map[string]string{"綁定": "", "設定": "", "settings": "", "紀錄": "history"} {
		got := h.Say(t, id, say)
		want := fmt.Sprintf("%s/settings/%s?guardian=%d", h.URL, page, g.ID)
		if len(got) != 1 || len(got[0].Actions) != 1 || got[0].Actions[0].URI != want {
			t.Errorf("%s: %+v, want a button to %s", say, got, want)
		}
	}
}

func TestSettingsAndHistoryNeedALink(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	id := h.Friend(t, "en")
	for _, say := range []string{"settings", "history", "unlink", "解除綁定"} {
		got := h.Say(t, id, say)
		if len(got) != 2 || got[0].Text != "Your TaipeiPASS account is not linked yet." ||
			len(got[1].Actions) != 1 || !strings.HasPrefix(got[1].Actions[0].URI, h.URL+"/link?linkToken=") {
			t.Errorf("%s while unlinked: %+v, want the reason and a link button", say, got)
		}
	}
	if got := h.Say(t, id, "說明"); len(got) != 1 || !strings.HasPrefix(got[0].Text, "This is Taipei City's school arrival notice service") {
		t.Errorf("help: %+v", got)
	}
}

// A failed accountLink (the dialog opened by another LINE user than the token's) uses the nonce
// up: the token's own user can no longer complete with it.
func TestAccountLinkFailedDiscardsTheNonce(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	alice, mallory := h.Friend(t, "zh-TW"), h.Friend(t, "zh-TW")
	dialog := h.Callback(t, h.Login(t, h.Authorize(t, h.LinkURL(t, alice)), goldMember))
	if r := h.Dialog(t, dialog, mallory); !strings.Contains(r.Body, "Account link failed") {
		t.Fatalf("dialog opened by another user: %d %s", r.Status, r.Body)
	}
	if got := h.eventCount(t, "accountLink", "handled"); got != 1 {
		t.Errorf("accountLink handled = %v, want 1", got)
	}
	linkingtest.Delivered(t)(h.sim.AccountLink(ctx, alice, "ok", linkingtest.Query(t, dialog).Get("nonce")))
	h.drain(t)
	for _, u := range []string{alice, mallory} {
		if _, err := h.Guardians.FindGuardianByLineUser(ctx, u); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("user linked after a failed accountLink: %v", err)
		}
	}
	if inbox := h.sim.Inbox(alice); !strings.Contains(inbox[len(inbox)-1].Text, "已失效") {
		t.Errorf("alice was told %q", inbox[len(inbox)-1].Text)
	}
}

func TestUnlinkAsksFirst(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	ctx := context.Background()
	id := h.Friend(t, "zh-TW")
	h.Link(t, id, goldMember)

	ask := h.Say(t, id, "解除綁定")
	if len(ask) != 1 || !strings.HasPrefix(ask[0].Text, "確定要解除綁定嗎") || len(ask[0].Actions) != 2 || !ask[0].Actions[0].QuickReply {
		t.Fatalf("unlink: %+v, want a question with two quick replies", ask)
	}
	if got := h.Tap(t, id, ask[0].Actions[1]); len(got) != 1 || got[0].Text != "好的，綁定維持不變。" {
		t.Errorf("cancel: %+v", got)
	}
	if _, err := h.Guardians.FindGuardianByLineUser(ctx, id); err != nil {
		t.Fatalf("cancelled unlink unlinked: %v", err)
	}
	got := h.Tap(t, id, ask[0].Actions[0])
	if len(got) != 1 || !strings.HasPrefix(got[0].Text, "已解除綁定") {
		t.Errorf("confirm: %+v", got)
	}
	if _, err := h.Guardians.FindGuardianByLineUser(ctx, id); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
		t.Errorf("after unlinking: %v, want ENOTFOUND", err)
	}
	// A second tap of the old confirm button unlinks nothing and asks to link.
	if got := h.Tap(t, id, ask[0].Actions[0]); len(got) != 2 || len(got[1].Actions) != 1 {
		t.Errorf("confirm again: %+v", got)
	}
	// Linking again restores the same guardian.
	h.Link(t, id, goldMember)
	if _, err := h.Guardians.FindGuardianByLineUser(ctx, id); err != nil {
		t.Errorf("relink: %v", err)
	}
}

func TestPostbackWithoutAChatActionIsNotAnswered(t *testing.T) {
	t.Parallel()
	h := mustHarness(t, harnessOptions{})
	id := h.Friend(t, "zh-TW")
	for _, data := range []string{"action=tab&to=linked", "%zz", ""} {
		if got := h.Tap(t, id, linesim.Action{Type: "postback", Data: data}); len(got) != 0 {
			t.Errorf("postback %q answered %+v", data, got)
		}
	}
	if got := h.Tap(t, id, linesim.Action{Type: "postback", Data: "action=help"}); len(got) != 1 {
		t.Errorf("postback action=help answered %+v", got)
	}
}
