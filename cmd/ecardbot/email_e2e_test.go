package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/store"
)

// TestEndToEndGateEventToEmail runs the whole service with the e-mail channel on, against the
// SMTP mailbox: a school's reader posts a tap over HTTP for a child whose guardian subscribed
// by e-mail (and LINE), and the guardian gets exactly one e-mail, with the delivery's
// Message-ID, as well as the LINE message.
func TestEndToEndGateEventToEmail(t *testing.T) {
	t.Parallel()
	mb, err := linesim.StartMailbox("127.0.0.1:0", linesim.MailboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mb.Close() })
	m, sim := mustRunMainWith(t, map[string]string{
		"ECARDBOT_SMTP_URL":  mb.URL("ecardbot", "pw"),
		"ECARDBOT_MAIL_FROM": "臺北市學生到離校通知 <noreply@ecard.taipei>",
	}, func(m *Main) { m.MailTLSConfig = mb.ClientTLSConfig() })
	env := map[string]string{"ECARDBOT_DATABASE_URL": m.Config.DatabaseURL, "ECARDBOT_SECRET_KEY": m.Config.SecretKey}
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
	mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "roster.csv", roster1))
	mustRunCommand(t, env, "subscribers", "import", writeFile(t, "subscribers.csv", subscribers1)) // tp-a: 1001 on LINE and a@example.com
	if _, err := sim.AddUser(linesim.User{ID: lineUser1, Friend: true}); err != nil {
		t.Fatal(err)
	}
	out, _ := mustRunCommand(t, env, "school", "key", "create", "--school", "313601")
	key := strings.TrimSpace(out)

	at := time.Now().Add(-time.Minute).Format(time.RFC3339)
	batch := `{"events": [{"id": "north-1:0001", "card": "04A1B2C3", "direction": "in", "at": "` + at + `", "gate": "north-1"}]}`
	if res := mustIngest(t, "http://"+m.Addr+"/api/v1/gate-events", key, batch); res.Accepted != 1 {
		t.Fatalf("ingest: %+v", res)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mails, err := mb.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.WaitInbox(ctx, lineUser1, 1); err != nil {
		t.Fatalf("LINE notice: %v", err)
	}
	got := mails[0]
	if len(got.To) != 1 || got.To[0] != "a@example.com" || !strings.HasPrefix(got.Subject, "【到校通知】王○明") ||
		!strings.HasPrefix(got.Header.Get("Message-Id"), "<delivery-") || !strings.HasSuffix(got.Header.Get("Message-Id"), "@ecard.taipei>") {
		t.Errorf("mail to %v, subject %q, Message-ID %q", got.To, got.Subject, got.Header.Get("Message-Id"))
	}
	// The delivery is recorded as sent, so no later task of it mails again.
	id := strings.TrimSuffix(strings.TrimPrefix(got.Header.Get("Message-Id"), "<delivery-"), "@ecard.taipei>")
	deliveries := store.NewDeliveryService(openForCheck(t, env))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		d, err := deliveries.Detail(ctx, id)
		if err == nil && d.State == ecardbot.DeliverySent && d.Channel == ecardbot.ChannelEmail && d.Attempts == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("e-mail delivery %s: %+v, %v; want sent at the first attempt", id, d, err)
		}
	}
	if n := len(mb.Messages()); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
}
