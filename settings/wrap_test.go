package settings

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/taipei-doit/ecardbot"
)

// Stand-ins the handlers under test never call.
type noGuardians struct{ ecardbot.GuardianService }
type noSettings struct{ ecardbot.SettingsService }

// TestWrapMapsEachCode: each error code gets its own page, status and log level; only the
// form-without-token refusal reads as one, and only internal errors are logged at Error.
func TestWrapMapsEachCode(t *testing.T) {
	var logs bytes.Buffer
	s, err := New(Config{PublicURL: "http://ecard.example", SecretKey: []byte("k")},
		Deps{Guardians: noGuardians{}, Settings: noSettings{}, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		err    error
		status int
		title  string
		level  string // "" when nothing is logged
	}{
		{"csrf", fmt.Errorf("wrapped: %w", errCSRF), http.StatusForbidden, msgCSRF.Title, ""},
		{"forbidden", ecardbot.Errorf(ecardbot.EFORBIDDEN, "No."), http.StatusForbidden, msgForbidden.Title, "INFO"},
		{"conflict", fmt.Errorf("store: %w", ecardbot.Errorf(ecardbot.ECONFLICT, "Already exists.")), http.StatusConflict, msgConflict.Title, "INFO"},
		{"rate limited", &ecardbot.TooManyAttemptsError{}, http.StatusTooManyRequests, msgRateLimited.Title, "INFO"},
		{"unauthorized", errNoSession, http.StatusUnauthorized, msgNoSession.Title, ""},
		{"not found", ecardbot.Errorf(ecardbot.ENOTFOUND, "No."), http.StatusNotFound, msgNotFound.Title, ""},
		{"invalid", ecardbot.Errorf(ecardbot.EINVALID, "No."), http.StatusBadRequest, msgInvalid.Title, ""},
		{"too large", ecardbot.Errorf(ecardbot.ETOOLARGE, "No."), http.StatusRequestEntityTooLarge, msgInvalid.Title, ""},
		{"unavailable", ecardbot.Errorf(ecardbot.EUNAVAILABLE, "Down."), http.StatusServiceUnavailable, msgUnavailable.Title, "WARN"},
		{"internal", errors.New("disk on fire"), http.StatusInternalServerError, msgInternal.Title, "ERROR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			r := gin.New()
			r.GET("/x", s.wrap(func(*gin.Context) error { return tt.err }))
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			if !strings.Contains(w.Body.String(), tt.title) {
				t.Errorf("page lacks %q:\n%s", tt.title, w.Body.String())
			}
			if tt.title != msgCSRF.Title && strings.Contains(w.Body.String(), msgCSRF.Title) {
				t.Error("the page speaks of a form's token")
			}
			got := logs.String()
			switch {
			case tt.level == "" && got != "":
				t.Errorf("logged %q", got)
			case tt.level != "" && !strings.Contains(got, "level="+tt.level):
				t.Errorf("log %q, want level %s", got, tt.level)
			}
			if tt.level == "INFO" && strings.Contains(got, "error=") {
				t.Errorf("a refusal logged its error text: %q", got)
			}
		})
	}
}
