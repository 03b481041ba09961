package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/linesim"
)

func newSandboxCommand(getenv func(string) string) *cobra.Command {
	var lineAddr string
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the whole service on this machine with embedded storage and a LINE emulator",
		Long: "sandbox runs ecardbot with no servers to install: embedded SQLite in\n" +
			"ECARDBOT_DATA_DIR, an embedded Redis (development only, nothing is kept), and the\n" +
			"project's LINE platform emulator, which signs and delivers webhook events to the bot, and\n" +
			"a TaipeiPASS (臺北通) emulator for linking accounts.\n" +
			"It prints the URL of a chat page where you act as a LINE user. Without\n" +
			"ECARDBOT_SMTP_URL, e-mail notices go to a built-in SMTP mailbox whose mails it lists\n" +
			"as JSON at a printed URL. ECARDBOT_DATABASE_URL and ECARDBOT_REDIS_URL are honoured\n" +
			"when set; the LINE settings are the emulator's." + envHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			if cfg.SecretKey == "" {
				// Kept in the data directory so the hashes `roster import` and `school key
				// create` make match what the sandbox computes, across restarts.
				if cfg.SecretKey, err = dataDirSecretKey(cfg.DataDir); err != nil {
					return err
				}
			}
			logger := newLogger(cmd.ErrOrStderr(), cfg.LogLevel, false)
			sim, err := linesim.New(linesim.Options{
				ChannelSecret: cfg.LineChannelSecret,
				ChannelToken:  cfg.LineChannelToken,
				Logger:        logger.With("component", "linesim"),
				// Subscribers imported from the old portal are LINE friends the emulator has
				// never seen: let them receive their pushes and show up on the chat page.
				AutoFriend: true,
			})
			if err != nil {
				return err
			}
			simURL, err := sim.Start(lineAddr)
			if err != nil {
				return fmt.Errorf("start the LINE emulator on --line-addr: %w", err)
			}
			defer sim.Close()
			cfg.LineChannelSecret, cfg.LineChannelToken = sim.ChannelSecret(), sim.ChannelToken()
			cfg.LineAPIURL, cfg.LineDataAPIURL, cfg.LineAccessURL = simURL, simURL, simURL
			tp, err := linesim.NewTaipeiPass(linesim.TaipeiPassOptions{Logger: logger.With("component", "taipeipass")})
			if err != nil {
				return err
			}
			tpURL, err := tp.Start("127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("start the TaipeiPASS emulator: %w", err)
			}
			defer tp.Close()
			cfg.TaipeiPassURL, cfg.TaipeiPassClientID, cfg.TaipeiPassClientSecret = tpURL, tp.ClientID(), tp.ClientSecret()
			var mailTLS *tls.Config
			mailbox := "  Mail:                 through ECARDBOT_SMTP_URL\n" // never printed: it holds the password
			if cfg.SMTPURL == "" {
				mb, mailURL, stop, err := startSandboxMailbox()
				if err != nil {
					return err
				}
				defer stop()
				cfg.SMTPURL, mailTLS = mb.URL("sandbox", "sandbox"), mb.ClientTLSConfig()
				if cfg.MailFrom == "" {
					cfg.MailFrom = "臺北市學生到離校通知 (sandbox) <noreply@sandbox.ecardbot.invalid>"
				}
				mailbox = "  Mailbox (SMTP):       " + mb.Addr() + "; read the mails: curl " + mailURL + "\n"
			}

			return run(cmd.Context(), &Main{Config: cfg, Logger: logger, MailTLSConfig: mailTLS}, func(m *Main) error {
				_, port, err := net.SplitHostPort(m.Addr)
				if err != nil {
					return err
				}
				sim.SetWebhookURL("http://" + net.JoinHostPort("127.0.0.1", port) + "/callback")
				fmt.Fprintf(cmd.OutOrStdout(), "\necardbot sandbox is running (development only: embedded storage, emulated LINE).\n"+
					"  Chat as a LINE user:  %s/\n"+
					"  ecardbot:             %s (webhook /callback, /healthz, /readyz, /metrics)\n"+
					"  TaipeiPASS (臺北通):   %s (emulated; log in as a gold or an ordinary member)\n"+
					"  Gate API:             %s/api/v1/gate-events (`ecardbot school import`, `roster import`, `school key create`, then curl -H 'Authorization: Bearer <key>')\n"+
					"%s"+
					"Press Ctrl+C to stop.\n\n", simURL, cfg.PublicURL, tpURL, cfg.PublicURL, mailbox)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&lineAddr, "line-addr", "127.0.0.1:8090", "listen address of the LINE emulator and its chat page")
	return cmd
}

// startSandboxMailbox starts the SMTP mailbox that stands in for parents' mail providers, on a
// free loopback port, and a page on another that lists what it received. It returns the page's
// URL and the function that stops both.
func startSandboxMailbox() (*linesim.Mailbox, string, func(), error) {
	mb, err := linesim.StartMailbox("127.0.0.1:0", linesim.MailboxOptions{})
	if err != nil {
		return nil, "", nil, fmt.Errorf("start the sandbox mailbox: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		mb.Close()
		return nil, "", nil, fmt.Errorf("listen for the sandbox mailbox page: %w", err)
	}
	srv := &http.Server{Handler: mb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	stop := func() {
		srv.Close()
		<-done // http.ErrServerClosed
		mb.Close()
	}
	return mb, "http://" + ln.Addr().String() + "/", stop, nil
}
