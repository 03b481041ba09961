package linesim

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

//go:embed chat.html
var chatHTML []byte

// longPollWait bounds one /sim poll, below common proxy idle timeouts.
const longPollWait = 25 * time.Second

// registerSim adds the chat page and its JSON endpoints. They need no token: they stand for
// the user's phone, not for the bot.
func (s *Server) registerSim(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(chatHTML)
	})
	mux.HandleFunc("GET /sim/users", s.simListUsers)
	mux.HandleFunc("POST /sim/users", s.simCreateUser)
	mux.HandleFunc("GET /sim/users/{id}/poll", s.simPoll)
	mux.HandleFunc("POST /sim/users/{id}/follow", s.simEvent(func(ctx context.Context, id string, _ simEventRequest) (Delivery, error) {
		return s.Follow(ctx, id)
	}))
	mux.HandleFunc("POST /sim/users/{id}/unfollow", s.simEvent(func(ctx context.Context, id string, _ simEventRequest) (Delivery, error) {
		return s.Unfollow(ctx, id)
	}))
	mux.HandleFunc("POST /sim/users/{id}/text", s.simEvent(func(ctx context.Context, id string, req simEventRequest) (Delivery, error) {
		return s.SendText(ctx, id, req.Text)
	}))
	mux.HandleFunc("POST /sim/users/{id}/tap", s.simEvent(func(ctx context.Context, id string, req simEventRequest) (Delivery, error) {
		return s.Tap(ctx, id, req.Action, req.Params)
	}))
	mux.HandleFunc("GET /sim/richmenus/{id}/image", func(w http.ResponseWriter, r *http.Request) {
		data, ct, ok := s.RichMenuImage(r.PathValue("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(data)
	})
}

type simUser struct {
	User
	RichMenu *RichMenu `json:"richMenu"` // the menu the phone shows, nil when none
}

func (s *Server) simUserLocked(u *user) simUser {
	su := simUser{User: u.User}
	if m := s.menus[s.effectiveMenuLocked(u.ID)]; m != nil {
		v := m.view()
		su.RichMenu = &v
	}
	return su
}

func writeSimJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func simError(w http.ResponseWriter, status int, msg string) {
	writeSimJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) simListUsers(w http.ResponseWriter, _ *http.Request) {
	writeSimJSON(w, http.StatusOK, s.Users())
}

func (s *Server) simCreateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DisplayName string `json:"displayName"`
		Language    string `json:"language"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		simError(w, http.StatusBadRequest, "body must be JSON {displayName, language}")
		return
	}
	if req.Language != "en" {
		req.Language = "zh-TW"
	}
	u, err := s.AddUser(User{DisplayName: req.DisplayName, Language: req.Language})
	if err != nil {
		simError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeSimJSON(w, http.StatusOK, u)
}

// simPoll answers the page's long poll: once the emulator's version differs from the page's
// "v" (immediately when "v" is absent), it returns the user, the conversation after "after"
// and the new version.
func (s *Server) simPoll(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	seen, err := strconv.ParseInt(r.URL.Query().Get("v"), 10, 64)
	if err != nil {
		seen = -1
	}
	ctx, cancel := context.WithTimeout(r.Context(), longPollWait)
	defer cancel()
	for {
		s.mu.Lock()
		u := s.users[id]
		if u == nil {
			s.mu.Unlock()
			simError(w, http.StatusNotFound, "unknown user")
			return
		}
		version, ch := s.version, s.changed
		if version != seen {
			resp := map[string]any{
				"version": version,
				"user":    s.simUserLocked(u),
				"entries": s.conversationLocked(id, after),
			}
			s.mu.Unlock()
			writeSimJSON(w, http.StatusOK, resp)
			return
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			writeSimJSON(w, http.StatusOK, map[string]any{"version": version})
			return
		case <-s.done:
			writeSimJSON(w, http.StatusOK, map[string]any{"version": version})
			return
		}
	}
}

type simEventRequest struct {
	Text   string            `json:"text"`
	Action Action            `json:"action"`
	Params map[string]string `json:"params"`
}

// simEvent wraps a user action of the page: it runs it (delivering the webhook) and reports
// the delivery, so the page can show when the bot failed to answer.
func (s *Server) simEvent(do func(ctx context.Context, id string, req simEventRequest) (Delivery, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req simEventRequest
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
				simError(w, http.StatusBadRequest, "body must be JSON")
				return
			}
		}
		d, err := do(r.Context(), r.PathValue("id"), req)
		resp := map[string]any{"ok": err == nil, "attempts": len(d.Attempts)}
		if len(d.Attempts) > 0 {
			resp["status"] = d.Attempts[len(d.Attempts)-1].Status
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrDeliveryFailed), errors.Is(err, ErrNoWebhookURL):
			resp["error"] = err.Error() // the user's side happened; the bot did not take it
		case errors.Is(err, ErrUnknownUser):
			simError(w, http.StatusNotFound, err.Error())
			return
		default:
			simError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeSimJSON(w, http.StatusOK, resp)
	}
}
