package linesim

// The mailbox: an SMTP server that stands in for the guardians' mail providers, so the e-mail
// channel can be tested, and tried in the sandbox, through a real SMTP exchange (EHLO, STARTTLS,
// AUTH, MAIL, RCPT, DATA) rather than through a fake of the mail library.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// MailboxOptions configures a Mailbox. The zero value listens for plain SMTP with STARTTLS.
type MailboxOptions struct {
	// ImplicitTLS makes the listener speak TLS from the first byte, as on port 465 (smtps://).
	// False means plain SMTP that offers STARTTLS, as on port 587 (smtp://).
	ImplicitTLS bool
	// Clock stamps received messages. Nil means time.Now.
	Clock func() time.Time
}

// Mail is one message the mailbox accepted.
type Mail struct {
	At       time.Time
	From     string   // MAIL FROM
	To       []string // RCPT TO, in order
	Username string   // the AUTH PLAIN user; empty without AUTH
	TLS      bool     // whether the session was encrypted (STARTTLS or implicit TLS)
	Raw      []byte   // the DATA exactly as received
	Header   mail.Header
	Subject  string // decoded from RFC 2047
	Text     string // the text/plain part, decoded; empty if none
	HTML     string // the text/html part, decoded; empty if none
}

// Mailbox is an in-process SMTP server that accepts any credentials or none and records every
// message. It listens on loopback with a self-signed certificate that ClientTLSConfig trusts, so
// a client can keep its production TLS policy (STARTTLS mandatory, certificate checked) in tests.
// All methods are safe for concurrent use.
type Mailbox struct {
	opts     MailboxOptions
	srv      *smtp.Server
	ln       net.Listener
	addr     string
	roots    *x509.CertPool
	serveErr chan error

	mu      sync.Mutex
	mails   []Mail
	rejects []mailReject
	changed chan struct{}
}

type mailReject struct {
	code int
	left int
}

// StartMailbox listens on addr (use "127.0.0.1:0") and serves until Close.
func StartMailbox(addr string, opts MailboxOptions) (*Mailbox, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	cert, roots, err := selfSignedCert()
	if err != nil {
		return nil, fmt.Errorf("mailbox certificate: %w", err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mailbox listen: %w", err)
	}
	m := &Mailbox{opts: opts, ln: ln, addr: ln.Addr().String(), roots: roots,
		serveErr: make(chan error, 1), changed: make(chan struct{})}
	srv := smtp.NewServer(m)
	srv.Domain = "mailbox.linesim.test"
	srv.AllowInsecureAuth = true // any auth is accepted anyway; let plain-text clients try it
	srv.EnableSMTPUTF8 = true
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = discardLogger{}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, tlsConf)
	} else {
		srv.TLSConfig = tlsConf // advertises STARTTLS
	}
	m.srv = srv
	go func() { m.serveErr <- srv.Serve(ln) }()
	return m, nil
}

// Addr is the host:port the mailbox listens on.
func (m *Mailbox) Addr() string { return m.addr }

// URL is an ECARDBOT_SMTP_URL for this mailbox with the given credentials (any are accepted):
// smtps:// for ImplicitTLS, else smtp://.
func (m *Mailbox) URL(user, password string) string {
	scheme := "smtp"
	if m.opts.ImplicitTLS {
		scheme = "smtps"
	}
	u := scheme + "://"
	if user != "" {
		u += user + ":" + password + "@"
	}
	return u + m.addr
}

// ClientTLSConfig trusts the mailbox's self-signed certificate, for the host 127.0.0.1.
func (m *Mailbox) ClientTLSConfig() *tls.Config {
	host, _, _ := net.SplitHostPort(m.addr)
	return &tls.Config{RootCAs: m.roots, ServerName: host, MinVersion: tls.VersionTLS12}
}

// Close stops listening and drops open sessions.
func (m *Mailbox) Close() error {
	err := m.srv.Close()
	// The server only knows the listener once Serve has started; closing it ourselves ends a
	// Serve that had not got that far when Close was called.
	_ = m.ln.Close()
	if serr := <-m.serveErr; serr != nil && !errors.Is(serr, smtp.ErrServerClosed) && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, serr)
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Reject makes the mailbox refuse the next n recipients with the SMTP reply code (for example
// 451, a temporary failure such as greylisting, or 550, mailbox unavailable), at RCPT TO where
// real providers refuse most mail. Rules queue up in the order they are added.
func (m *Mailbox) Reject(n, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejects = append(m.rejects, mailReject{code: code, left: n})
}

// Messages returns every accepted message, oldest first.
func (m *Mailbox) Messages() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Mail(nil), m.mails...)
}

// Reset forgets received messages and pending rejections.
func (m *Mailbox) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails, m.rejects = nil, nil
}

// WaitMessages blocks until at least n messages arrived and returns them, or returns ctx's
// error with what arrived so far.
func (m *Mailbox) WaitMessages(ctx context.Context, n int) ([]Mail, error) {
	for {
		m.mu.Lock()
		mails := append([]Mail(nil), m.mails...)
		ch := m.changed
		m.mu.Unlock()
		if len(mails) >= n {
			return mails, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return mails, fmt.Errorf("wait for %d mails, have %d: %w", n, len(mails), ctx.Err())
		}
	}
}

func (m *Mailbox) takeReject() (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.rejects) > 0 {
		r := &m.rejects[0]
		if r.left <= 0 {
			m.rejects = m.rejects[1:]
			continue
		}
		r.left--
		return r.code, true
	}
	return 0, false
}

func (m *Mailbox) deliver(mm Mail) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, mm)
	close(m.changed)
	m.changed = make(chan struct{})
}

// NewSession implements smtp.Backend.
func (m *Mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &mailSession{box: m, conn: c, tls: isTLS}, nil
}

type mailSession struct {
	box      *Mailbox
	conn     *smtp.Conn
	tls      bool
	username string
	from     string
	to       []string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, _ string) error {
		s.username = username
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.to = from, nil
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if code, ok := s.box.takeReject(); ok {
		return rejection(code)
	}
	s.to = append(s.to, to)
	return nil
}

// rejection is the reply for an injected failure, with an enhanced status code like a real
// provider's so that clients parsing it see the usual shape.
func rejection(code int) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Mailbox unavailable (injected by linesim)"}
	switch {
	case code >= 400 && code < 500:
		e.EnhancedCode = smtp.EnhancedCode{4, 7, 1}
		e.Message = "Try again later (injected by linesim)"
	case code < 500 || code > 599:
		e.EnhancedCode = smtp.NoEnhancedCode
	}
	return e
}

func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	mm := parseMail(raw)
	mm.At, mm.From, mm.To, mm.Username, mm.TLS = s.box.opts.Clock(), s.from, s.to, s.username, isTLS || s.tls
	s.box.deliver(mm)
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// parseMail reads the headers and the text and HTML parts, as far as they parse: the mailbox
// records what it got even when it is malformed, so that a test can see why.
func parseMail(raw []byte) Mail {
	mm := Mail{Raw: raw, Header: mail.Header{}}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return mm
	}
	mm.Header = msg.Header
	dec := new(mime.WordDecoder)
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		mm.Subject = subj
	} else {
		mm.Subject = msg.Header.Get("Subject")
	}
	collectParts(&mm, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return mm
}

func collectParts(mm *Mail, contentType, encoding string, body io.Reader) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			collectParts(mm, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // skips the line breaks itself
	}
	b, _ := io.ReadAll(body)
	switch mt {
	case "text/plain":
		if mm.Text == "" {
			mm.Text = string(b)
		}
	case "text/html":
		if mm.HTML == "" {
			mm.HTML = string(b)
		}
	}
}

// selfSignedCert makes a throwaway certificate for loopback that is its own root.
func selfSignedCert() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "linesim mailbox"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots, nil
}

// discardLogger keeps go-smtp's per-connection errors (clients hanging up, TLS probes) out of
// test output.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
