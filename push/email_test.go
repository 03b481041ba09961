package push_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ecardbot "github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/push"
)

const testFrom = "臺北市學生到離校通知 <noreply@ecard.taipei>"

// MustMailbox starts an SMTP mailbox on loopback and stops it after the test.
func MustMailbox(tb testing.TB, opts linesim.MailboxOptions) *linesim.Mailbox {
	tb.Helper()
	mb, err := linesim.StartMailbox("127.0.0.1:0", opts)
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

// MustMailer is a Mailer for the mailbox, with its production TLS policy and the mailbox's
// certificate trusted.
func MustMailer(tb testing.TB, mb *linesim.Mailbox) *push.Mailer {
	tb.Helper()
	m, err := push.NewMailer(push.MailerConfig{
		URL:       mb.URL("ecardbot", "s3cret"),
		From:      testFrom,
		TLSConfig: mb.ClientTLSConfig(),
		Timeout:   5 * time.Second,
		Now:       func() time.Time { return time.Date(2026, 11, 26, 23, 42, 30, 0, time.UTC) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestMailerSend(t *testing.T) {
	subjects := map[string]string{
		"arrived_zh-TW": "【到校通知】王○明 07:42 到校",
		"left_zh-TW":    "【離校通知】王○明 16:05 離校",
		"absent_zh-TW":  "【未到校通知】王○明 截至 08:30 未到校",
		"arrived_en":    "[Arrived] A○○ Chen arrived at school at 07:42",
		"left_en":       "[Left] A○○ Chen left school at 16:05",
		"absent_en":     "[Not arrived] A○○ Chen had not arrived at school by 08:30",
	}
	for _, implicit := range []bool{false, true} {
		mb := MustMailbox(t, linesim.MailboxOptions{ImplicitTLS: implicit})
		mailer := MustMailer(t, mb)
		for _, sc := range scenarios {
			name := sc.name() + map[bool]string{false: "_starttls", true: "_smtps"}[implicit]
			t.Run(name, func(t *testing.T) {
				mb.Reset()
				d := MustDetail(t, sc.kind, sc.lang)
				d.Channel = ecardbot.ChannelEmail
				if err := mailer.Send(testContext(t), d); err != nil {
					t.Fatal(err)
				}
				mails, err := mb.WaitMessages(testContext(t), 1)
				if err != nil {
					t.Fatal(err)
				}
				got := mails[0]
				if want := subjects[sc.name()]; got.Subject != want {
					t.Errorf("subject %q, want %q", got.Subject, want)
				}
				if want := "<delivery-" + d.ID + "@ecard.taipei>"; got.Header.Get("Message-Id") != want {
					t.Errorf("Message-ID %q, want %q", got.Header.Get("Message-Id"), want)
				}
				if got.From != "noreply@ecard.taipei" || len(got.To) != 1 || got.To[0] != d.Email {
					t.Errorf("envelope %q → %q", got.From, got.To)
				}
				if !got.TLS || got.Username != "ecardbot" {
					t.Errorf("TLS %v, user %q: want an authenticated, encrypted session", got.TLS, got.Username)
				}
				if got.Header.Get("Auto-Submitted") != "auto-generated" {
					t.Error("no Auto-Submitted: auto-generated")
				}
				if got.Header.Get("Date") != "Fri, 27 Nov 2026 07:42:30 +0800" {
					t.Errorf("Date %q", got.Header.Get("Date"))
				}
				for part, body := range map[string]string{"text": got.Text, "html": got.HTML} {
					for _, s := range []string{sc.wantName, sc.wantTime, sc.wantPhrase, "臺北市立大安國民小學"} {
						if !strings.Contains(body, s) {
							t.Errorf("%s body lacks %q:\n%s", part, s, body)
						}
					}
					if strings.Contains(body, d.ChildName) {
						t.Errorf("%s body carries the unmasked name", part)
					}
				}
				if strings.Contains(got.HTML, "ZgotmplZ") {
					t.Error("html/template rejected a value")
				}
				if strings.Contains(string(got.Raw), d.ChildName) {
					t.Error("raw message carries the unmasked name")
				}
			})
		}
	}
}

// TestMailerRetryKeepsMessageID: a retry after a lost acknowledgement must be recognisable.
func TestMailerRetryKeepsMessageID(t *testing.T) {
	mb := MustMailbox(t, linesim.MailboxOptions{})
	mailer := MustMailer(t, mb)
	d := MustDetail(t, ecardbot.KindArrived, ecardbot.LangZhTW)
	for range 2 {
		if err := mailer.Send(testContext(t), d); err != nil {
			t.Fatal(err)
		}
	}
	mails, err := mb.WaitMessages(testContext(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mails[0].Header.Get("Message-Id"), mails[1].Header.Get("Message-Id"); a != b || a == "" {
		t.Errorf("Message-IDs %q and %q, want the same", a, b)
	}
}

func TestMailerErrors(t *testing.T) {
	tests := []struct {
		name      string
		reject    int // SMTP code injected at RCPT TO; 0 for none
		email     string
		down      bool // send to a port nobody listens on
		permanent bool
		code      int
	}{
		{name: "451 greylisted", reject: 451, code: 451},
		{name: "550 unknown mailbox", reject: 550, permanent: true, code: 550},
		{name: "bad address", email: "not an address", permanent: true},
		{name: "empty address", email: " ", permanent: true},
		{name: "network", down: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb := MustMailbox(t, linesim.MailboxOptions{})
			mailer := MustMailer(t, mb)
			if tt.down {
				mailer = mustDeadMailer(t)
			}
			if tt.reject != 0 {
				mb.Reject(1, tt.reject)
			}
			d := MustDetail(t, ecardbot.KindAbsent, ecardbot.LangEn)
			if tt.email != "" {
				d.Email = tt.email
			}
			err := mailer.Send(testContext(t), d)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Logf("error: %v", err)
			if got := push.IsPermanentMailError(err); got != tt.permanent {
				t.Errorf("IsPermanentMailError = %v, want %v (%v)", got, tt.permanent, err)
			}
			var me *push.MailError
			if !errors.As(err, &me) || me.Code != tt.code {
				t.Errorf("error %v, want a MailError with code %d", err, tt.code)
			}
			for _, secret := range []string{d.Email, "parent@", d.ChildName, "s3cret"} {
				if strings.TrimSpace(secret) != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals %q", err, secret)
				}
			}
			if len(mb.Messages()) != 0 {
				t.Error("a refused mail was recorded as delivered")
			}
			// The rejection is used up: the retry goes through.
			if tt.reject != 0 {
				if err := mailer.Send(testContext(t), d); err != nil {
					t.Errorf("retry: %v", err)
				}
			}
		})
	}
}

// mustDeadMailer points a Mailer at a loopback port that was just closed.
func mustDeadMailer(tb testing.TB) *push.Mailer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	m, err := push.NewMailer(push.MailerConfig{URL: "smtp://" + addr, From: testFrom, Timeout: 2 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestNewMailerConfig(t *testing.T) {
	tests := []struct {
		name, url, from string
		wantOff         bool
		wantErr         bool
	}{
		{name: "off", url: "", wantOff: true},
		{name: "starttls", url: "smtp://u:p@mail.example.com", from: testFrom},
		{name: "smtps with port", url: "smtps://u:p@mail.example.com:2465", from: "noreply@ecard.taipei"},
		{name: "no auth", url: "smtp://relay.internal:25", from: testFrom},
		{name: "bad scheme", url: "http://u:s3cret@mail.example.com", from: testFrom, wantErr: true},
		{name: "bad port", url: "smtp://u:s3cret@mail.example.com:99999", from: testFrom, wantErr: true},
		{name: "no host", url: "smtp://", from: testFrom, wantErr: true},
		{name: "bad from", url: "smtp://mail.example.com", from: "nobody", wantErr: true},
		{name: "unparsable", url: "smtp://u:s3cret@%zz", from: testFrom, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := push.NewMailer(push.MailerConfig{URL: tt.url, From: tt.from})
			if got := errors.Is(err, push.ErrEmailOff); got != tt.wantOff {
				t.Errorf("ErrEmailOff = %v, want %v", got, tt.wantOff)
			}
			if got := err != nil && !tt.wantOff; got != tt.wantErr {
				t.Errorf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

// TestEmailGolden keeps the subject and both bodies of every kind and language in
// testdata/email_*.golden.txt, as the mailbox decoded them (go test ./push -run Golden -update).
func TestEmailGolden(t *testing.T) {
	mb := MustMailbox(t, linesim.MailboxOptions{})
	mailer := MustMailer(t, mb)
	for _, sc := range scenarios {
		t.Run(sc.name(), func(t *testing.T) {
			mb.Reset()
			if err := mailer.Send(testContext(t), MustDetail(t, sc.kind, sc.lang)); err != nil {
				t.Fatal(err)
			}
			mails, err := mb.WaitMessages(testContext(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			m := mails[0]
			got := "Subject: " + m.Subject + "\n\n--- text/plain\n" + m.Text + "\n--- text/html\n" + m.HTML
			got = strings.ReplaceAll(got, "\r\n", "\n")
			mustGolden(t, filepath.Join("testdata", "email_"+sc.name()+".golden.txt"), []byte(got))
		})
	}
}
