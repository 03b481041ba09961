package push

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	ecardbot "github.com/taipei-doit/ecardbot"
)

// ErrEmailOff is returned by NewMailer when no SMTP URL is configured: the e-mail channel is
// switched off, which is a valid setup rather than a mistake (design.md §3.2).
var ErrEmailOff = errors.New("e-mail channel off: ECARDBOT_SMTP_URL is empty")

// MailerConfig is how the Mailer reaches its SMTP relay.
type MailerConfig struct {
	// URL is ECARDBOT_SMTP_URL: smtp://user:pass@host:port (STARTTLS required; port defaults to
	// 587) or smtps://user:pass@host:port (TLS from the first byte; port defaults to 465).
	// Without user information no AUTH is attempted. Empty means the channel is off.
	URL string
	// From is ECARDBOT_MAIL_FROM, an RFC 5322 address such as
	// "臺北市學生到離校通知 <noreply@ecard.taipei>". Required when URL is set. Its domain names
	// the Message-IDs.
	From string
	// TLSConfig overrides the TLS settings; nil verifies the server against the system roots.
	// Tests pass linesim.Mailbox.ClientTLSConfig.
	TLSConfig *tls.Config
	// Timeout bounds dialling and every SMTP command. Zero means 30 s.
	Timeout time.Duration
	// Logger receives one Debug line per message sent, without addresses or names. Nil discards.
	Logger *slog.Logger
	// Now stamps the Date header. Nil means time.Now.
	Now func() time.Time
}

// Mailer sends notices by e-mail through one SMTP relay. It dials per message: notices are
// sparse outside the morning rush, and a connection held open across them would be dropped by
// the relay anyway. It is safe for concurrent use; the e-mail workers own the rate limit.
type Mailer struct {
	client   *mail.Client
	fromName string
	fromAddr string
	domain   string
	log      *slog.Logger
	now      func() time.Time
}

// NewMailer checks the configuration and prepares the SMTP client without connecting. It returns
// ErrEmailOff when cfg.URL is empty, and an error naming the problem for a malformed URL or From.
func NewMailer(cfg MailerConfig) (*Mailer, error) {
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, ErrEmailOff
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, errors.New("ECARDBOT_SMTP_URL is not a URL")
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("ECARDBOT_MAIL_FROM: %w", err)
	}
	at := strings.LastIndexByte(from.Address, '@')
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("ECARDBOT_SMTP_URL has no host")
	}
	opts := []mail.Option{mail.WithTimeout(timeout)}
	port := 587
	switch u.Scheme {
	case "smtp":
		// Mandatory: a relay that stops offering STARTTLS (or a network that strips it) must
		// not make us send children's whereabouts and the password in clear text.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "smtps":
		port = 465
		opts = append(opts, mail.WithSSL())
	default:
		return nil, fmt.Errorf("ECARDBOT_SMTP_URL scheme %q: want smtp or smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("ECARDBOT_SMTP_URL port %q", p)
		}
	}
	opts = append(opts, mail.WithPort(port))
	tlsConf := cfg.TLSConfig
	if tlsConf == nil {
		tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	opts = append(opts, mail.WithTLSConfig(tlsConf))
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		// Discovery picks the strongest mechanism the relay offers; relays differ (PLAIN, LOGIN,
		// SCRAM) and the URL has no place to say which.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.User.Username()), mail.WithPassword(pass))
	}
	client, err := mail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Mailer{
		client:   client,
		fromName: from.Name,
		fromAddr: from.Address,
		domain:   from.Address[at+1:],
		log:      log.With("component", "mailer"),
		now:      now,
	}, nil
}

// MessageID is the Message-ID of a delivery's e-mail, without angle brackets. It is derived from
// the delivery's UUID, like the LINE retry key, so every retry of one delivery carries the same
// ID: mail systems and people can recognise a duplicate when a retry follows a send whose
// acknowledgement was lost.
func (m *Mailer) MessageID(deliveryID string) string {
	return "delivery-" + deliveryID + "@" + m.domain
}

// Send e-mails the notice to d.Email in d.Language. Its errors never contain the address or the
// child's name, so the worker may log and store them. Use IsPermanentMailError to decide between
// dead-lettering and retrying.
func (m *Mailer) Send(ctx context.Context, d ecardbot.DeliveryDetail) error {
	msg, err := m.message(d)
	if err != nil {
		return err
	}
	if err := m.client.DialAndSendWithContext(ctx, msg); err != nil {
		return classify(ctx, err)
	}
	m.log.DebugContext(ctx, "mail sent", "delivery_id", d.ID, "guardian_id", d.GuardianID)
	return nil
}

func (m *Mailer) message(d ecardbot.DeliveryDetail) (*mail.Msg, error) {
	if d.ID == "" {
		return nil, &MailError{Permanent: true, Reason: "delivery has no ID"}
	}
	t := texts(d)
	text, html, err := renderEmail(t, d.Language)
	if err != nil {
		return nil, fmt.Errorf("render mail: %w", err)
	}
	return m.newMsg(d.Email, t.Tagged, m.MessageID(d.ID), text, html) // subject "【到校通知】王○明 07:42 到校"
}

// newMsg builds a mail of the service to one recipient, with the given Message-ID ("" for a
// new one), plain text and its HTML alternative.
func (m *Mailer) newMsg(to, subject, messageID, text, html string) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.FromFormat(m.fromName, m.fromAddr); err != nil {
		return nil, &MailError{Permanent: true, Reason: "bad From address", Err: err}
	}
	if err := msg.To(to); err != nil {
		// go-mail's error quotes the address: keep it out.
		return nil, &MailError{Permanent: true, Reason: "bad recipient address"}
	}
	msg.Subject(subject)
	if messageID == "" {
		msg.SetMessageID()
	} else {
		msg.SetMessageIDWithValue(messageID)
	}
	msg.SetDateWithValue(m.now().In(ecardbot.Taipei)) // the zone parents live in, for clients that show it raw
	// RFC 3834: tells vacation responders and ticket systems not to answer, as nobody at the
	// From address would read it.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, text)
	msg.AddAlternativeString(mail.TypeTextHTML, html)
	return msg, nil
}

// MailError is a failed Send with its classification. Its message names the SMTP stage and
// reply code but never the recipient, because relays echo the address in their replies.
type MailError struct {
	Permanent bool   // true: retrying cannot help (5xx reply, malformed address)
	Code      int    // the SMTP reply code, 0 when there was none (network, TLS, local checks)
	Enhanced  string // the RFC 3463 enhanced status code, such as "5.1.1", when the relay gave one
	Reason    string // what failed, safe to log and show operators
	Err       error  // the cause when it carries no personal data; nil otherwise
}

func (e *MailError) Error() string {
	var b strings.Builder
	b.WriteString("send mail: ")
	b.WriteString(e.Reason)
	if e.Code != 0 {
		fmt.Fprintf(&b, " (SMTP %d", e.Code)
		if e.Enhanced != "" {
			b.WriteString(" " + e.Enhanced)
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *MailError) Unwrap() error { return e.Err }

// IsPermanentMailError reports whether a Send error is final, so the delivery should become a
// dead letter now rather than be retried: a 5xx SMTP reply (the relay or the recipient's
// provider refused for good: unknown mailbox, rejected sender, failed authentication) or an
// address that does not parse. 4xx replies (greylisting, full mailbox, rate limits), network
// and TLS failures and timeouts are retryable, as is any error this package did not classify.
func IsPermanentMailError(err error) bool {
	var me *MailError
	return errors.As(err, &me) && me.Permanent
}

// classify turns go-mail's error into a MailError. go-mail reports failures during the exchange
// as *mail.SendError (whose text lists the recipients) and failures while connecting, in
// STARTTLS or in AUTH as wrapped *textproto.Error or network errors.
func classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &MailError{Reason: "cancelled", Err: ctxErr}
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		me := &MailError{Code: code, Enhanced: se.EnhancedStatusCode(), Reason: se.Reason.String()}
		switch {
		case code >= 500:
			me.Permanent = true
		case code >= 400:
		case se.Reason == mail.ErrGetSender || se.Reason == mail.ErrGetRcpts || se.Reason == mail.ErrNoUnencoded:
			me.Permanent = true
		}
		return me
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		// Before MAIL FROM no recipient is involved, so the reply text is safe to keep.
		return &MailError{Code: te.Code, Permanent: te.Code >= 500, Reason: "connect", Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &MailError{Reason: "network", Err: err}
	}
	return &MailError{Reason: "connect", Err: err}
}
