package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// postJSON posts body to url with the bearer key and returns the status and the body.
func postJSON(tb testing.TB, url, key, body string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// mustIngest posts a batch that must be answered 200 and returns the answer.
func mustIngest(tb testing.TB, url, key, batch string) ecardbot.IngestResult {
	tb.Helper()
	status, body := postJSON(tb, url, key, batch)
	if status != http.StatusOK {
		tb.Fatalf("status %d %s, want 200", status, body)
	}
	var res ecardbot.IngestResult
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		tb.Fatal(err)
	}
	return res
}

// An operator imports a school and its roster and issues a key with the commands; the school's
// reader then posts taps to the running service over HTTP, and resends them.
func TestEndToEndGateEventsFromCommandsToHTTP(t *testing.T) {
	t.Parallel()
	m, _ := mustRunMain(t)
	env := map[string]string{"ECARDBOT_DATABASE_URL": m.Config.DatabaseURL, "ECARDBOT_SECRET_KEY": m.Config.SecretKey}
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
	mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "roster.csv", roster1))
	out, _ := mustRunCommand(t, env, "school", "key", "create", "--school", "313601")
	key := strings.TrimSpace(out)

	at := time.Now().Add(-2 * time.Minute).Format(time.RFC3339)
	batch := `{"events": [
		{"id": "north-1:0001", "card": "04A1B2C3", "direction": "in", "at": "` + at + `", "gate": "north-1"},
		{"id": "north-1:0002", "card": "04a1b2c4", "direction": "in", "at": "` + at + `", "gate": "north-1"},
		{"id": "north-1:0003", "card": "FFFFFFFF", "direction": "in", "at": "` + at + `", "gate": "north-1"},
		{"id": "north-1:0004", "card": "04A1B2C3", "direction": "in", "at": "yesterday"}
	]}`
	url := "http://" + m.Addr + "/api/v1/gate-events"
	want := ecardbot.IngestResult{Accepted: 2, Rejected: []ecardbot.Rejection{
		{Index: 2, Error: "unknown card"},
		{Index: 3, Error: "at must be an RFC 3339 time, e.g. 2026-11-27T07:42:10+08:00"},
	}}
	if diff := cmp.Diff(want, mustIngest(t, url, key, batch)); diff != "" {
		t.Errorf("first post (-want +got):\n%s", diff)
	}
	want.Accepted, want.Duplicates = 0, 2
	if diff := cmp.Diff(want, mustIngest(t, url, key, batch)); diff != "" {
		t.Errorf("resend (-want +got):\n%s", diff)
	}
	if status, body := postJSON(t, url, "gk_not-a-key", batch); status != http.StatusUnauthorized {
		t.Errorf("wrong key: %d %s, want 401", status, body)
	}
	leave := `{"student_no": "1003", "date": "` + time.Now().In(m.Config.Timezone).Format(time.DateOnly) + `", "kind": "sick"}`
	if status, body := postJSON(t, "http://"+m.Addr+"/api/v1/leaves", key, leave); status != http.StatusCreated {
		t.Errorf("leave: %d %s, want 201", status, body)
	}

	res, err := http.Get("http://" + m.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, line := range []string{`ecardbot_gate_events_total{outcome="accepted"} 2`, `ecardbot_gate_events_total{outcome="duplicate"} 2`,
		`ecardbot_gate_batches_total{outcome="ok"} 2`, `ecardbot_gate_batches_total{outcome="unauthorized"} 1`} {
		if !bytes.Contains(metrics, []byte(line)) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// lockedBuffer collects the output of a command running in another goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// On one machine without ECARDBOT_SECRET_KEY, a key issued and a roster imported by the commands
// work with the sandbox: both use the key kept in the data directory. The banner says how to try.
func TestSandboxSharesTheDataDirKeyWithTheCommands(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	base := "http://127.0.0.1:" + port
	env := map[string]string{
		"ECARDBOT_DATA_DIR":   t.TempDir(),
		"ECARDBOT_HTTP_ADDR":  "127.0.0.1:" + port,
		"ECARDBOT_PUBLIC_URL": base,
	}
	mustRunCommand(t, env, "school", "import", writeFile(t, "schools.csv", schoolsCSV))
	mustRunCommand(t, env, "roster", "import", "--school", "313601", writeFile(t, "roster.csv", roster1))
	out, _ := mustRunCommand(t, env, "school", "key", "create", "--school", "313601")
	key := strings.TrimSpace(out)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &lockedBuffer{}
	sandbox := newRootCommand(func(k string) string { return env[k] }, stdout, io.Discard)
	sandbox.SetArgs([]string{"sandbox", "--line-addr", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- sandbox.ExecuteContext(ctx) }()
	waitHealthy(t, base+"/healthz")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "Press Ctrl+C") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if banner := stdout.String(); !strings.Contains(banner, "Gate API:             "+base+"/api/v1/gate-events (`ecardbot school import`") {
		t.Errorf("banner does not tell how to try the gate API:\n%s", banner)
	}

	batch := `{"events": [{"id": "1", "card": "04A1B2C3", "direction": "in", "at": "` + time.Now().Format(time.RFC3339) + `"}]}`
	want := ecardbot.IngestResult{Accepted: 1, Rejected: []ecardbot.Rejection{}}
	if diff := cmp.Diff(want, mustIngest(t, base+"/api/v1/gate-events", key, batch)); diff != "" {
		t.Errorf("post to the sandbox (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sandbox: %v", err)
	}
}
