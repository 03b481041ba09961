package web_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/taipei-doit/ecardbot/internal/browsertest"
	"github.com/taipei-doit/ecardbot/web"
)

func pages(t *testing.T) *web.Pages {
	t.Helper()
	p, err := web.Parse(os.DirFS("testdata"), "*.html", nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRenderEscapesAndSetsHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := pages(t).Render(rec, http.StatusTeapot, "hello", map[string]string{"Name": "<script>x</script>"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusTeapot {
		t.Errorf("status %d, want 418", rec.Code)
	}
	body := rec.Body.String()
	if strings.Contains(body, "<script>x") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("page data is not escaped: %s", body)
	}
	for h, want := range map[string]string{
		"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		"Content-Type": "text/html; charset=utf-8",
	} {
		if got := rec.Header().Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

func TestRenderRefusesUnknownPageAndWritesNothing(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := pages(t).Render(rec, http.StatusOK, "missing", nil); err == nil {
		t.Fatal("rendering an unknown page succeeded")
	}
	if rec.Body.Len() != 0 {
		t.Errorf("wrote %q for an unknown page", rec.Body.String())
	}
}

func TestParseRefusesAnEmptySet(t *testing.T) {
	if _, err := web.Parse(os.DirFS("testdata"), "*.nothing", nil); err == nil {
		t.Fatal("Parse of no pages succeeded")
	}
}

// TestPageInChromium loads a page with its stylesheet in a real browser, under the page's own
// Content-Security-Policy, and checks the style applied.
func TestPageInChromium(t *testing.T) {
	ctx := browsertest.New(t)
	p := pages(t)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	web.Register(r)
	r.GET("/", func(c *gin.Context) {
		_ = p.Render(c.Writer, http.StatusOK, "hello", map[string]string{"Name": "王小明"})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#greeting")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "王小明") {
		t.Errorf("heading %q lacks the name", text)
	}
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".button")).backgroundColor`))
	if err != nil {
		t.Fatal(err)
	}
	if bg != "rgb(6, 199, 85)" {
		t.Errorf("button background %q: the stylesheet did not apply", bg)
	}
	browsertest.Screenshot(t, ctx, "hello")
}

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := web.NewToken()
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if len(tok) != 43 || err != nil || len(b) != 32 {
			t.Fatalf("token %q (%d bytes, %v): want 43 base64url characters holding 32 bytes", tok, len(b), err)
		}
		if seen[tok] {
			t.Fatalf("token %q came twice", tok)
		}
		seen[tok] = true
	}
}
