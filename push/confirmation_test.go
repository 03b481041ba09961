package push_test

import (
	"strings"
	"testing"

	ecardbot "github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/push"
)

func TestSendConfirmation(t *testing.T) {
	const link = "https://ecard.example/settings/email/confirm?t=abc_DEF-123"
	for _, tt := range []struct {
		lang, subject string
	}{
		{ecardbot.LangZhTW, "請確認您的電子郵件地址（到離校通知）"},
		{ecardbot.LangEn, "Confirm your e-mail address for school arrival notices"},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			mb := MustMailbox(t, linesim.MailboxOptions{})
			if err := MustMailer(t, mb).SendConfirmation(testContext(t), "parent@example.com", tt.lang, link); err != nil {
				t.Fatal(err)
			}
			mails, err := mb.WaitMessages(testContext(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			m := mails[0]
			if len(m.To) != 1 || m.To[0] != "parent@example.com" || !m.TLS {
				t.Errorf("to %v over TLS %v", m.To, m.TLS)
			}
			if m.Subject != tt.subject {
				t.Errorf("subject %q, want %q", m.Subject, tt.subject)
			}
			if !strings.Contains(m.Text, link) || !strings.Contains(m.HTML, `href="`+link+`"`) {
				t.Errorf("link missing:\ntext: %s\nhtml: %s", m.Text, m.HTML)
			}
			if m.Header.Get("Auto-Submitted") != "auto-generated" || m.Header.Get("Message-Id") == "" {
				t.Errorf("headers: %v", m.Header)
			}
		})
	}
}

func TestSendConfirmationRefusedAddress(t *testing.T) {
	mb := MustMailbox(t, linesim.MailboxOptions{})
	mb.Reject(1, 550)
	err := MustMailer(t, mb).SendConfirmation(testContext(t), "parent@example.com", ecardbot.LangZhTW, "https://x/y?t=secret")
	if !push.IsPermanentMailError(err) {
		t.Fatalf("err %v, want a permanent mail error", err)
	}
	if strings.Contains(err.Error(), "parent@example.com") || strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the address or the link: %v", err)
	}
}
