package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/store"
)

func newSchoolCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "school",
		Short: "Import the list of schools and issue their gate API keys",
		Long: "school manages the schools whose gate readers post taps: `school import` loads the\n" +
			"list from a CSV file, `school key create` issues a key a school's readers send as\n" +
			"Authorization: Bearer <key> to POST /api/v1/gate-events and /api/v1/leaves.",
		Args: cobra.NoArgs,
		RunE: showHelp,
	}
	key := &cobra.Command{
		Use:   "key",
		Short: "Issue gate API keys",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	key.AddCommand(newSchoolKeyCreateCommand(getenv))
	cmd.AddCommand(newSchoolImportCommand(getenv), key)
	return cmd
}

func newSchoolImportCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Create or update schools from a CSV file",
		Long: "school import reads a UTF-8 CSV file (an Excel byte-order mark is fine) with the header\n\n" +
			"  code,name,district,level,cutoff\n\n" +
			"code is the 6-character school code (e.g. 313601); district one of Taipei's 12 districts\n" +
			"as written in Chinese (e.g. 松山區); level one of 國小, 國中, 高中, 高職; cutoff the time\n" +
			"of the 未到校 notices as HH:MM, empty for 08:30. Schools are matched by code: new ones\n" +
			"are created, known ones updated. A file with any bad line imports nothing; every bad\n" +
			"line is printed with its number. Pending migrations are applied first." + envHelp,
		Example: "  ecardbot school import schools.csv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return importCSV(cmd, getenv, args[0],
				func(_ config.Config, r io.Reader) ([]ecardbot.School, error) { return school.ParseSchools(r) },
				func(ctx context.Context, db *store.DB, schools []ecardbot.School) error {
					created, updated, err := store.NewSchoolService(db).ImportSchools(ctx, schools)
					if err != nil {
						return commandError(args[0], err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "schools: %d created, %d updated\n", created, updated)
					return nil
				})
		},
	}
}

func newSchoolKeyCreateCommand(getenv func(string) string) *cobra.Command {
	var code string
	cmd := &cobra.Command{
		Use:   "create --school CODE",
		Short: "Issue a new gate API key for a school and print it once",
		Long: "school key create issues a new API key for the school's gate readers and office and\n" +
			"prints it once, alone on one line of standard output (everything else goes to\n" +
			"standard error), so it can be captured: KEY=$(ecardbot school key create --school 313601).\n" +
			"Only a hash keyed by ECARDBOT_SECRET_KEY is stored: the key cannot be shown again, and\n" +
			"a lost key is replaced by creating another. A school may hold several keys, one per\n" +
			"reader or system.\n\n" +
			"ECARDBOT_SECRET_KEY must be the service's. Left empty with the embedded SQLite\n" +
			"database, the sandbox's key in ECARDBOT_DATA_DIR/secret.key is used." + envHelp,
		Example: "  ecardbot school key create --school 313601",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			secret, err := commandSecretKey(cfg)
			if err != nil {
				return err
			}
			code = strings.ToUpper(strings.TrimSpace(code))
			db, err := openMigrated(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer db.Close()
			schools := store.NewSchoolService(db)
			s, err := schools.FindSchool(cmd.Context(), code)
			if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
				return fmt.Errorf("school %s not found: import it first with `ecardbot school import`", code)
			} else if err != nil {
				return commandError("find school "+code, err)
			}
			key, hash, err := school.NewKey(secret)
			if err != nil {
				return err
			}
			if err := schools.AddAPIKey(cmd.Context(), s.Code, hash); err != nil {
				return commandError("add API key", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "New gate API key for %s %s (shown once; only its hash is stored):\n", s.Code, s.Name)
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	cmd.Flags().StringVar(&code, "school", "", "code of the school, e.g. 313601 (required)")
	cmd.MarkFlagRequired("school")
	return cmd
}

// showHelp is the RunE of a command that only groups others: with a RunE, cobra refuses an
// unknown subcommand with an error (and a non-zero exit) instead of printing help and exiting 0.
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// openMigrated opens the database the environment names and applies pending migrations, so an
// operator can import schools into a fresh database before the service first started.
func openMigrated(ctx context.Context, cfg config.Config, stderr io.Writer) (*store.DB, error) {
	logger := newLogger(stderr, cfg.LogLevel, false)
	db, err := store.Open(ctx, store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// importCSV is what every CSV import command does: load the configuration, parse the whole file
// (every bad line printed with its number, nothing applied), then apply it on a migrated
// database. parse gets the configuration for what it needs of it, such as the secret key.
func importCSV[T any](cmd *cobra.Command, getenv func(string) string, path string,
	parse func(config.Config, io.Reader) (T, error), apply func(context.Context, *store.DB, T) error) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	var v T
	if err := parseFile(cmd.ErrOrStderr(), path, func(r io.Reader) (err error) {
		v, err = parse(cfg, r)
		return err
	}); err != nil {
		return err
	}
	db, err := openMigrated(cmd.Context(), cfg, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer db.Close()
	return apply(cmd.Context(), db, v)
}

// withDB is what every storage command does around its work: load the configuration, open the
// database with pending migrations applied, run fn, close.
func withDB(cmd *cobra.Command, getenv func(string) string, fn func(config.Config, *store.DB) error) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	db, err := openMigrated(cmd.Context(), cfg, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(cfg, db)
}

// parseFile opens path and runs parse on it. A *school.ParseError has every bad line printed to
// stderr as FILE:LINE: reason, the way compilers report, and becomes a one-line error.
func parseFile(stderr io.Writer, path string, parse func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err // *PathError names the file
	}
	defer f.Close()
	err = parse(f)
	var perr *school.ParseError
	if !errors.As(err, &perr) {
		return err
	}
	for _, l := range perr.Lines {
		fmt.Fprintf(stderr, "%s:%d: %s\n", path, l.Line, l.Message)
	}
	if more := perr.Total - len(perr.Lines); more > 0 {
		fmt.Fprintf(stderr, "%s: and %d more bad lines\n", path, more)
	}
	lines := "lines"
	if perr.Total == 1 {
		lines = "line"
	}
	return fmt.Errorf("%s: %d bad %s, nothing imported", path, perr.Total, lines)
}

// commandError makes err the one line main prints: an *ecardbot.Error by its message, which is
// written for people (its Error() is for logs), and any error with its line breaks folded.
func commandError(what string, err error) error {
	msg := err.Error()
	if code := ecardbot.ErrorCode(err); code != ecardbot.EINTERNAL {
		msg = ecardbot.ErrorMessage(err)
	}
	return fmt.Errorf("%s: %s", what, strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " "))
}
