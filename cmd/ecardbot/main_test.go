package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/linesim"
)

// mustRunMain runs the real program on :0 against the real PostgreSQL and Redis, with LINE
// played by the emulator over HTTP, and returns both.
func mustRunMain(tb testing.TB) (*Main, *linesim.Server) {
	tb.Helper()
	return mustRunMainWith(tb, nil, func(*Main) {})
}

// mustRunMainWith is mustRunMain with more environment and a last change to Main before Run.
func mustRunMainWith(tb testing.TB, extra map[string]string, setup func(*Main)) (*Main, *linesim.Server) {
	tb.Helper()
	sim, err := linesim.New(linesim.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sim.Close() })

	redisURL, prefix := testenv.RedisURL(tb)
	env := map[string]string{
		"ECARDBOT_HTTP_ADDR":           "127.0.0.1:0",
		"ECARDBOT_DATABASE_URL":        testenv.PostgresURL(tb),
		"ECARDBOT_REDIS_URL":           redisURL,
		"ECARDBOT_SECRET_KEY":          strings.Repeat("k", config.MinSecretKeyLen),
		"ECARDBOT_LINE_CHANNEL_SECRET": sim.ChannelSecret(),
		"ECARDBOT_LINE_CHANNEL_TOKEN":  sim.ChannelToken(),
		"ECARDBOT_LINE_API_URL":        simURL,
		"ECARDBOT_LINE_DATA_API_URL":   simURL,
		"ECARDBOT_LINE_ACCESS_URL":     simURL,
		// The web role refuses to start without a TaipeiPASS client; tests that link run
		// the emulator and override these.
		"ECARDBOT_TAIPEIPASS_CLIENT_ID":     "ecardbot-test",
		"ECARDBOT_TAIPEIPASS_CLIENT_SECRET": "ecardbot-test-secret",
	}
	maps.Copy(env, extra)
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		tb.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RedisPrefix: prefix}
	setup(m)
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	sim.SetWebhookURL("http://" + m.Addr + "/callback")
	return m, sim
}

func TestEndToEndFollowRepliesOnceAcrossResendsAndRedeliveries(t *testing.T) {
	t.Parallel()
	m, sim := mustRunMain(t)
	ctx := context.Background()
	u, err := sim.AddUser(linesim.User{DisplayName: "陳大文", Language: "zh-TW"})
	if err != nil {
		t.Fatal(err)
	}

	d, err := sim.Follow(ctx, u.ID)
	if err != nil || !d.OK() {
		t.Fatalf("follow: %v %+v", err, d.Attempts)
	}
	inbox, err := sim.WaitInbox(ctx, u.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inbox[0].Text, "歡迎加入臺北市政府 @taipei") {
		t.Errorf("reply = %q, want the Chinese welcome", inbox[0].Text)
	}

	// The same body again, as a duplicate delivery, then as LINE's redelivery.
	if d2, err := sim.SendRawSigned(ctx, d.Attempts[0].Body, d.Attempts[0].Signature); err != nil || !d2.OK() {
		t.Fatalf("resend: %v %+v", err, d2.Attempts)
	}
	if d3, err := sim.Redeliver(ctx, d.Events[0].WebhookEventID); err != nil || !d3.OK() {
		t.Fatalf("redeliver: %v %+v", err, d3.Attempts)
	}
	drainCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.bot.Drain(drainCtx); err != nil {
		t.Fatal(err)
	}
	if got := len(sim.RequestsTo(linesim.RouteReply)); got != 1 {
		t.Errorf("LINE got %d reply requests, want exactly 1", got)
	}
	if got := len(sim.Inbox(u.ID)); got != 1 {
		t.Errorf("user has %d messages, want 1", got)
	}
}

func TestEndToEndOperationsEndpoints(t *testing.T) {
	t.Parallel()
	m, _ := mustRunMain(t)
	// In this order: /metrics shows the requests counted before it.
	for _, tt := range []struct{ path, want string }{
		{"/healthz", `"status":"ok"`},
		{"/readyz", `"database":"ok"`},
		{"/metrics", `ecardbot_http_requests_total{route="/healthz",status="200"} 1`},
	} {
		path, want := tt.path, tt.want
		res, err := http.Get("http://" + m.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET %s = %d %q, want 200 containing %q", path, res.StatusCode, body, want)
		}
	}
}

func TestReadyzFailsWhenTheDatabaseIsAway(t *testing.T) {
	t.Parallel()
	m, _ := mustRunMain(t)
	m.db.Close()
	res, err := http.Get("http://" + m.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"database":"unavailable"`) {
		t.Errorf("GET /readyz = %d %s, want 503 naming the database", res.StatusCode, body)
	}
	m.db = nil // closed above
}

func TestCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantOut string // in stdout
		wantErr string // in the error; "" means success
	}{
		{name: "help lists the commands", args: []string{"--help"}, wantOut: "sandbox"},
		{name: "serve help names the environment", args: []string{"serve", "--help"}, wantOut: "ECARDBOT_LINE_CHANNEL_SECRET"},
		{name: "sandbox help", args: []string{"sandbox", "--help"}, wantOut: "--line-addr"},
		{name: "migrate help", args: []string{"migrate", "--help"}, wantOut: "lock"},
		{name: "config redacts secrets", args: []string{"config"},
			env:     map[string]string{"ECARDBOT_LINE_CHANNEL_TOKEN": "tok-very-secret", "ECARDBOT_DATABASE_URL": "postgres://u:pw-secret@db/x"},
			wantOut: "ECARDBOT_LINE_CHANNEL_TOKEN=<redacted>"},
		{name: "a malformed variable is named", args: []string{"config"},
			env: map[string]string{"ECARDBOT_LINE_PUSH_RATE": "fast"}, wantErr: "ECARDBOT_LINE_PUSH_RATE"},
		{name: "serve without LINE secrets refuses to start", args: []string{"serve"},
			env: map[string]string{"ECARDBOT_SECRET_KEY": strings.Repeat("k", 32)}, wantErr: "ECARDBOT_LINE_CHANNEL_SECRET"},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			cmd := newRootCommand(func(k string) string { return tt.env[k] }, &stdout, &stderr)
			cmd.SetArgs(tt.args)
			err := cmd.ExecuteContext(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr != "" && strings.Contains(err.Error(), "\n"):
				t.Errorf("error %q is not one line", err)
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantOut)
			}
			for _, secret := range []string{"tok-very-secret", "pw-secret"} {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("output shows the secret %q", secret)
				}
			}
		})
	}
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// waitHealthy polls url until it answers 200: the process under test starts asynchronously.
func waitHealthy(tb testing.TB, url string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s did not become healthy", url)
}
