package linesim

import (
	"encoding/json"
	"net/http"
	"time"
)

// mailView is one received mail as the mailbox page lists it.
type mailView struct {
	At        time.Time `json:"at"`
	From      string    `json:"from"`
	To        []string  `json:"to"`
	MessageID string    `json:"message_id"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	HTML      string    `json:"html"`
}

// Handler lists the received mails as JSON, newest first, so that a person trying the sandbox
// can read what parents would get by e-mail (curl it, or open it in a browser).
func (m *Mailbox) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		mails := m.Messages()
		out := make([]mailView, len(mails))
		for i, mm := range mails {
			out[len(mails)-1-i] = mailView{At: mm.At, From: mm.From, To: mm.To, MessageID: mm.Header.Get("Message-Id"),
				Subject: mm.Subject, Text: mm.Text, HTML: mm.HTML}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // readable with curl; served as JSON, never as HTML
		_ = enc.Encode(out)
	})
}
