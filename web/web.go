// Package web draws the pages parents open from chat (linking, settings) inside one base layout
// and one stylesheet, so every page looks alike and carries the same security headers. Feature
// packages keep their own page templates and parse them here.
package web

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"

	"github.com/gin-gonic/gin"
)

//go:embed layout.html
var layout string

//go:embed style.css
var style []byte

// StylePath is where Register serves the stylesheet; the layout links it.
const StylePath = "/assets/style.css"

// Pages is a set of page templates, each drawn inside the base layout. A page template defines
// "title" and "content"; it may define "head" for extra elements in <head>.
type Pages struct {
	byName map[string]*template.Template
}

// Parse reads every file of fsys matching pattern as one page, named by its file name without
// the extension ("add_child.html" → "add_child"). funcs are added to every page.
func Parse(fsys fs.FS, pattern string, funcs template.FuncMap) (*Pages, error) {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("web: no page matches %q", pattern)
	}
	base, err := template.New("layout").Funcs(funcs).Parse(layout)
	if err != nil {
		return nil, fmt.Errorf("web: layout: %w", err)
	}
	p := &Pages{byName: make(map[string]*template.Template, len(names))}
	for _, name := range names {
		t, err := template.Must(base.Clone()).ParseFS(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("web: page %s: %w", name, err)
		}
		file := path.Base(name)
		p.byName[file[:len(file)-len(path.Ext(file))]] = t
	}
	return p, nil
}

// Render writes page name with the HTTP status. The page is rendered into a buffer first, so a
// template error becomes a clean 500 instead of half a page.
func (p *Pages) Render(w http.ResponseWriter, status int, name string, data any) error {
	t, ok := p.byName[name]
	if !ok {
		return fmt.Errorf("web: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	SetHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// SetHeaders sets the headers every page carries. The URLs of these pages hold link tokens and
// single-use links, so no Referer may leak them and no proxy or browser may keep the page; no
// other site may frame a page with a form (clickjacking); scripts and styles come only from us.
func SetHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// NewToken returns 256 random bits as base64url without padding: 43 characters, unguessable,
// safe in a URL unescaped, and within LINE's 10 to 255 characters for an account-link nonce. It
// makes the secrets these pages hand out: OAuth2 states, link nonces, single-use links and
// session IDs. crypto/rand never fails, so neither does NewToken.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // documented never to return an error
	return base64.RawURLEncoding.EncodeToString(b)
}

// Register serves the stylesheet.
func Register(r gin.IRouter) {
	r.GET(StylePath, func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		c.Data(http.StatusOK, "text/css; charset=utf-8", style)
	})
}
