// Package browsertest runs the pages parents use in real headless Chromium, Debian's package at
// /usr/bin/chromium (never a downloaded browser), and keeps a screenshot of each page a test
// visits so a person can look at what parents would see.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecPath is Chromium's path; ECARDBOT_CHROMIUM overrides it.
func ExecPath() string {
	if p := os.Getenv("ECARDBOT_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// New starts a headless Chromium sized like a phone and returns a context for chromedp
// actions; it closes with the test. Without Chromium the test is skipped, except under CI=true,
// where .ci/run installs it and its absence is a failure.
func New(t testing.TB) context.Context {
	t.Helper()
	if _, err := exec.LookPath(ExecPath()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s (apt-get install -y chromium): %v", ExecPath(), err)
		}
		t.Skipf("chromium not found at %s, skipping (apt-get install -y chromium; in CI this fails)", ExecPath())
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ExecPath()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		// The machine's network is closed: without these Chromium keeps dialling Google's hosts.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(390, 844), // a common phone viewport
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser now, so failures name it
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// OutputDir is where screenshots go: ECARDBOT_TEST_OUTPUT, or test-output/screenshots at the
// module root.
func OutputDir() string {
	if d := os.Getenv("ECARDBOT_TEST_OUTPUT"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "test-output", "screenshots")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Screenshot saves the whole current page as <test name>-<name>.png in OutputDir.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 means PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := OutputDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	file := filepath.Join(dir, unsafeName.ReplaceAllString(t.Name()+"-"+name, "_")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
}

// Tab is one Chromium tab with the steps browser tests take, each failing the test on error.
type Tab struct {
	t   testing.TB
	Ctx context.Context // for chromedp actions the methods don't cover
}

// NewTab starts Chromium (see New) and returns its tab.
func NewTab(t testing.TB) *Tab { return &Tab{t: t, Ctx: New(t)} }

// GoTo navigates to url and returns the status of the final response, after redirects.
func (b *Tab) GoTo(url string) int {
	b.t.Helper()
	resp, err := chromedp.Run(b.Ctx, chromedp.NavigateResponse(url))
	if err != nil {
		b.t.Fatalf("navigate: %v", err)
	}
	return int(resp.Status)
}

// Submit clicks the element matching css, which submits a form or follows a link, and returns
// the status of the page it leads to.
func (b *Tab) Submit(css string) int {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.Ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("submit %s: %v", css, err)
	}
	return int(resp.Status)
}

// Do runs actions in order.
func (b *Tab) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// Text is the visible text of the first element matching css.
func (b *Tab) Text(css string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

// Eval evaluates a JavaScript expression that gives a string.
func (b *Tab) Eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// Path is the current page's path and query.
func (b *Tab) Path() string { return b.Eval(`location.pathname + location.search`) }

// Checked reports whether the checkbox with this id is ticked.
func (b *Tab) Checked(id string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.getElementById("`+id+`").checked`))
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// Shot saves a screenshot of the page (see Screenshot).
func (b *Tab) Shot(name string) { Screenshot(b.t, b.Ctx, name) }

// WantStatus fails the test, with a screenshot, when a step's status is not want.
func (b *Tab) WantStatus(got, want int, what string) {
	b.t.Helper()
	if got != want {
		b.Shot("unexpected-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: status %d, want %d (at %s)", what, got, want, b.Path())
	}
}

// WantText reports an error when the text of the element matching css lacks want.
func (b *Tab) WantText(css, want string) {
	b.t.Helper()
	if got := b.Text(css); !strings.Contains(got, want) {
		b.t.Errorf("%s reads %q, want it to contain %q", css, got, want)
	}
}
