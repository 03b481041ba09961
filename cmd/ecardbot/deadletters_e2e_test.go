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

// TestEndToEndPushAndDeadLetters runs the whole worker role on PostgreSQL and the test Redis:
// gate events become notices and deliveries, the relay queues them, the workers push them to
// the LINE emulator; one push that LINE rejects becomes a dead letter, which the commands list
// and replay, and which then arrives with its original retry key.
func TestEndToEndPushAndDeadLetters(t *testing.T) {
	t.Parallel()
	m, sim := mustRunMain(t)
	ctx := context.Background()
	env := map[string]string{
		"ECARDBOT_DATABASE_URL": m.Config.DatabaseURL,
		"ECARDBOT_SECRET_KEY":   string(m.Config.SecretKey),
	}
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
	mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "roster.csv", roster1))
	mustRunCommand(t, env, "subscribers", "import", writeFile(t, "subscribers.csv", subscribers1))
	if _, err := sim.AddUser(linesim.User{ID: lineUser1, Friend: true}); err != nil {
		t.Fatal(err)
	}
	// LINE rejects the first push for good.
	sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 1, Status: 400, Message: "Failed to send messages"})

	// tp-a (lineUser1) gets 到校 of 1001 and of 1002 on LINE.
	db := openForCheck(t, env)
	s, err := store.NewSchoolService(db).FindSchool(ctx, "313601")
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.NewGateService(db, store.GateConfig{}).Ingest(ctx, s, []ecardbot.GateEvent{
		{ID: "e1", Card: "04A1B2C3", Direction: ecardbot.DirectionIn, At: time.Now().Add(-time.Minute)},
		{ID: "e2", Card: "04A1B2C4", Direction: ecardbot.DirectionIn, At: time.Now().Add(-time.Minute)},
	})
	if err != nil || res.Accepted != 2 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}

	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := sim.WaitInbox(waitCtx, lineUser1, 1); err != nil {
		t.Fatalf("first notice: %v", err)
	}
	var list string
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, _ = mustRunCommand(t, env, "deadletters", "list")
		if strings.Count(list, "\n") == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // a poll tick
	}
	if !strings.Contains(list, "Failed to send messages") || strings.Count(list, "\n") != 2 {
		t.Fatalf("deadletters list printed\n%s", list)
	}
	if out, _ := mustRunCommand(t, env, "deadletters", "replay", "--all"); out != "deadletters: 1 replayed\n" {
		t.Errorf("replay printed %q", out)
	}
	if _, err := sim.WaitInbox(waitCtx, lineUser1, 2); err != nil {
		t.Fatalf("replayed notice: %v", err)
	}
	// The emulator records a request after answering it, so the record may trail the inbox.
	var accepted map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		accepted = map[string]int{}
		for _, r := range sim.RequestsTo(linesim.RoutePush) {
			if r.Status == 200 {
				accepted[r.RetryKey()]++
			}
		}
		if len(accepted) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(accepted) != 2 {
		t.Errorf("LINE accepted retry keys %v, want 2 distinct, once each", accepted)
	}
	for k, n := range accepted {
		if n != 1 {
			t.Errorf("retry key %s accepted %d times", k, n)
		}
	}
	// The replayed delivery kept its id, and so its retry key.
	deadID := strings.Fields(strings.Split(list, "\n")[1])[0]
	if accepted[deadID] != 1 {
		t.Errorf("dead letter %s was not accepted under its own retry key: %v", deadID, accepted)
	}
	if n := len(sim.Inbox(lineUser1)); n != 2 {
		t.Errorf("inbox has %d messages, want 2", n)
	}
}
