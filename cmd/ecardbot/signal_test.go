package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/linesim"
)

// TestMain lets a test start this test binary as the real ecardbot process.
func TestMain(m *testing.M) {
	if os.Getenv("ECARDBOT_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"ecardbot"}, strings.Fields(os.Getenv("ECARDBOT_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// SIGTERM while an event is still being handled (LINE slow to take the reply): the process
// stops taking requests, finishes the event, and exits 0.
func TestServeDrainsInFlightEventsOnSIGTERM(t *testing.T) {
	t.Parallel()
	sim, err := linesim.New(linesim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	redisURL, _ := testenv.RedisURL(t)
	port := freePort(t)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		"ECARDBOT_TEST_RUN_MAIN=1", "ECARDBOT_TEST_ARGS=serve",
		"ECARDBOT_HTTP_ADDR=127.0.0.1:"+port,
		"ECARDBOT_DATABASE_URL="+testenv.PostgresURL(t),
		"ECARDBOT_REDIS_URL="+redisURL,
		"ECARDBOT_SECRET_KEY="+strings.Repeat("k", 32),
		"ECARDBOT_LINE_CHANNEL_SECRET="+sim.ChannelSecret(),
		"ECARDBOT_LINE_CHANNEL_TOKEN="+sim.ChannelToken(),
		"ECARDBOT_LINE_API_URL="+simURL,
		"ECARDBOT_TAIPEIPASS_CLIENT_ID=ecardbot-test",
		"ECARDBOT_TAIPEIPASS_CLIENT_SECRET=ecardbot-test-secret",
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, "http://127.0.0.1:"+port+"/healthz")
	sim.SetWebhookURL("http://127.0.0.1:" + port + "/callback")

	u, err := sim.AddUser(linesim.User{Language: "zh-TW"})
	if err != nil {
		t.Fatal(err)
	}
	sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/reply", Times: 1, Delay: 2500 * time.Millisecond})
	if d, err := sim.Follow(context.Background(), u.ID); err != nil || !d.OK() {
		t.Fatalf("follow: %v %+v", err, d.Attempts)
	}
	if got := len(sim.Inbox(u.ID)); got != 0 {
		t.Fatalf("reply arrived before SIGTERM (%d messages); the test needs it in flight", got)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ecardbot exited with %v; stderr:\n%s", err, stderr.String())
	}
	if got := len(sim.Inbox(u.ID)); got != 1 {
		t.Errorf("after exit the user has %d messages, want the welcome finished during the drain", got)
	}
	if !strings.Contains(stderr.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown log; stderr:\n%s", stderr.String())
	}
}
