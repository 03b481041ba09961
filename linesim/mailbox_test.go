package linesim

import (
	"context"
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func mustMailbox(tb testing.TB) *Mailbox {
	tb.Helper()
	mb, err := StartMailbox("127.0.0.1:0", MailboxOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := mb.Close(); err != nil {
			tb.Error(err)
		}
	})
	return mb
}

const rawMail = "From: a@example.com\r\n" +
	"To: b@example.com\r\n" +
	"Subject: =?UTF-8?q?=E3=80=90=E5=88=B0=E6=A0=A1=E9=80=9A=E7=9F=A5=E3=80=91?= test\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"=E7=8E=8B=E2=97=8B=E6=98=8E\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+aGk8L3A+\r\n" +
	"--b1--\r\n"

// sendPlain is one SMTP exchange without STARTTLS (net/smtp.SendMail would upgrade and then
// reject the self-signed certificate).
func sendPlain(addr string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail("a@example.com"); err != nil {
		return err
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(rawMail)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestMailboxPlainSession uses the standard library's client without TLS or AUTH: the mailbox
// must accept the simplest client too.
func TestMailboxPlainSession(t *testing.T) {
	mb := mustMailbox(t)
	if err := sendPlain(mb.Addr()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mails, err := mb.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := mails[0]
	if got.Subject != "【到校通知】 test" {
		t.Errorf("subject %q", got.Subject)
	}
	if strings.TrimSpace(got.Text) != "王○明" || got.HTML != "<p>hi</p>" {
		t.Errorf("text %q, html %q", got.Text, got.HTML)
	}
	if got.From != "a@example.com" || len(got.To) != 1 || got.To[0] != "b@example.com" || got.Username != "" {
		t.Errorf("envelope %+v", got)
	}
}

func TestMailboxReject(t *testing.T) {
	mb := mustMailbox(t)
	mb.Reject(1, 451)
	mb.Reject(2, 550)
	send := func() error { return sendPlain(mb.Addr()) }
	for i, want := range []int{451, 550, 550, 0} {
		err := send()
		var te *textproto.Error
		switch {
		case want == 0 && err != nil:
			t.Fatalf("send %d: %v", i, err)
		case want != 0 && (!errors.As(err, &te) || te.Code != want):
			t.Fatalf("send %d: %v, want SMTP %d", i, err, want)
		}
	}
	if n := len(mb.Messages()); n != 1 {
		t.Errorf("%d messages recorded, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := mb.WaitMessages(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitMessages = %v, want the context's error", err)
	}
	mb.Reset()
	if len(mb.Messages()) != 0 {
		t.Error("Reset kept messages")
	}
}
