package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/server"
)

func mustEngine(t *testing.T, ready map[string]server.Check) (*gin.Engine, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := server.New(server.Config{Logger: logger, Registry: prometheus.NewRegistry(), Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]error{
		"/invalid":  ecardbot.Errorf(ecardbot.EINVALID, "Bad date."),
		"/missing":  fmt.Errorf("load: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "No such student.")),
		"/large":    ecardbot.Errorf(ecardbot.ETOOLARGE, "Too many events."),
		"/down":     ecardbot.Errorf(ecardbot.EUNAVAILABLE, "Storage unavailable; retry."),
		"/internal": errors.New("dial tcp 10.0.0.1:5432: secret-host-detail"),
	}
	for path, err := range routes {
		e.GET(path, server.Wrap(logger, func(*gin.Context) error { return err }))
	}
	e.GET("/panic", func(*gin.Context) { panic("boom") })
	e.POST("/capped", server.Wrap(logger, func(c *gin.Context) error {
		_, err := c.GetRawData()
		return err
	}))
	return e, &logs
}

func serve(e http.Handler, method, path string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if path == "/capped" {
		req.Body = http.MaxBytesReader(nil, req.Body, 4)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestWriteErrorMapsCodesAndHidesInternals(t *testing.T) {
	e, logs := mustEngine(t, nil)
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{"GET", "/invalid", 400, `{"error":"Bad date."}`},
		{"GET", "/missing", 404, `{"error":"No such student."}`},
		{"GET", "/large", 413, `{"error":"Too many events."}`},
		{"GET", "/down", 503, `{"error":"Storage unavailable; retry."}`},
		{"GET", "/internal", 500, `{"error":"Internal error."}`},
		{"GET", "/panic", 500, `{"error":"Internal error."}`},
		{"POST", "/capped", 413, `{"error":"Request body too large."}`},
		{"GET", "/nowhere", 404, `{"error":"Not found."}`},
		{"POST", "/healthz", 405, `{"error":"Method not allowed."}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := serve(e, tt.method, tt.path, "a longer body")
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	if !strings.Contains(logs.String(), "secret-host-detail") || !strings.Contains(logs.String(), `"msg":"handler panicked"`) {
		t.Error("internal errors and panics are not logged for operators")
	}
}

func TestReadyzNamesTheFailingDependency(t *testing.T) {
	e, _ := mustEngine(t, map[string]server.Check{
		"database": func(context.Context) error { return nil },
		"redis":    func(context.Context) error { return errors.New("connection refused") },
	})
	rec := serve(e, "GET", "/readyz", "")
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"database":"ok","redis":"unavailable"}` {
		t.Errorf("GET /readyz = %d %s", rec.Code, rec.Body)
	}
	if rec := serve(e, "GET", "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200 while a dependency is down", rec.Code)
	}
}

func TestRequestLogsCarryTheRouteNotTheQuery(t *testing.T) {
	e, logs := mustEngine(t, nil)
	serve(e, "GET", "/missing?linkToken=SECRETTOKEN", "")
	if strings.Contains(logs.String(), "SECRETTOKEN") || !strings.Contains(logs.String(), `"route":"/missing"`) {
		t.Errorf("request log: %s", logs)
	}
}
