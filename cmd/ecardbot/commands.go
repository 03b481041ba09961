package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/store"
)

// envHelp is appended to the help of every command that reads the environment.
var envHelp = "\n\nEnvironment (see `ecardbot config` and README.md):\n  " +
	strings.Join(config.Names(), "\n  ")

func newServeCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the service in production: PostgreSQL and Redis from the environment",
		Long: "serve runs the webhook and the web pages with PostgreSQL and Redis taken from the\n" +
			"environment. It applies pending migrations at start under a lock, so several replicas\n" +
			"may start together. SIGTERM stops accepting requests and drains in-flight work." + envHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			logger := newLogger(cmd.ErrOrStderr(), cfg.LogLevel, true)
			return run(cmd.Context(), &Main{Config: cfg, Logger: logger}, nil)
		},
	}
}

func newMigrateCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and exit",
		Long: "migrate applies the pending versioned migrations to ECARDBOT_DATABASE_URL (or the\n" +
			"embedded SQLite database) and exits. It is safe to run while replicas start: a lock\n" +
			"makes concurrent runs wait for each other." + envHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			logger := newLogger(cmd.ErrOrStderr(), cfg.LogLevel, true)
			db, err := store.Open(cmd.Context(), store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: logger})
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.Migrate(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return nil
		},
	}
}

func newConfigCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the effective configuration with secrets redacted",
		Long: "config prints every ECARDBOT_ variable with the value in effect (defaults included)\n" +
			"and secrets shown as <redacted>. It fails, naming the variable, when one is malformed." + envHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), cfg.String())
			return nil
		},
	}
}

// newLogger returns the process logger: JSON for log collectors in production, text for people
// in the sandbox. go-redis has a process-wide logger of its own; it goes through ours too.
func newLogger(w io.Writer, level slog.Level, json bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if json {
		h = slog.NewJSONHandler(w, opts)
	}
	logger := slog.New(h)
	redis.SetLogger(kv.LibraryLogger(logger))
	return logger
}

// run starts m, calls started (if any) once it serves, waits for ctx to end (SIGINT or
// SIGTERM) and shuts down gracefully.
func run(ctx context.Context, m *Main, started func(*Main) error) error {
	if err := m.Run(ctx); err != nil {
		return err
	}
	if started != nil {
		if err := started(m); err != nil {
			m.Close()
			return err
		}
	}
	<-ctx.Done()
	m.Logger.Info("shutting down", "component", "main")
	return m.Close()
}
