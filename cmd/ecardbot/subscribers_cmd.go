package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/store"
)

func newSubscribersCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscribers",
		Short: "Migrate the old portal's subscribers",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newSubscribersImportCommand(getenv))
	return cmd
}

func newSubscribersImportCommand(getenv func(string) string) *cobra.Command {
	var dryRun, emailConfirmed bool
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Create linked guardians and their subscriptions from the old portal's export",
		Long: "subscribers import reads a UTF-8 CSV file (an Excel byte-order mark is fine) with the header\n\n" +
			"  line_user_id,taipeipass_id,school_code,student_no,arrive,leave,absent,email\n\n" +
			"one line per guardian and pupil. Each line makes the TaipeiPASS account a guardian linked to\n" +
			"the LINE user (U and 32 hex digits), a guardian of the pupil (school_code and student_no\n" +
			"must be on the school's active roster: import the roster first), and subscribes them to\n" +
			"到校 (arrive), 離校 (leave) and 未到校 (absent), each 1 or 0, on LINE; when email is set, to\n" +
			"the same notices by e-mail too. LINE users the service has not seen yet count as following\n" +
			"(the old portal synced them) until LINE reports an unfollow; those it knows keep their state.\n\n" +
			"Imported e-mail addresses count as confirmed: the old portal was mailing them, and an\n" +
			"unconfirmed address gets no notices until its owner confirms it on the settings page, so\n" +
			"every migrated parent would silently lose e-mail notices. --email-confirmed=false imports\n" +
			"them unconfirmed instead. An address already stored and confirmed stays confirmed.\n\n" +
			"Importing again is safe: for every guardian and pupil of the file, subscriptions become\n" +
			"what the file says; anything else is left alone. A LINE user or TaipeiPASS account already\n" +
			"linked to another, an unknown pupil or a malformed line fails the whole file: every bad line\n" +
			"is printed with its number and nothing is imported. --dry-run checks the file against the\n" +
			"database and prints what would change. Pending migrations are applied first." + envHelp,
		Example: "  ecardbot subscribers import --dry-run subscribers.csv\n  ecardbot subscribers import subscribers.csv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			path := args[0]
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			entries, perr := school.ParseSubscribers(f)
			f.Close()
			var parseErr *school.ParseError
			if perr != nil && !errors.As(perr, &parseErr) {
				return fmt.Errorf("%s: %w", path, perr)
			}

			db, err := openMigrated(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer db.Close()
			guardians := store.NewGuardianService(db)
			opts := ecardbot.SubscriberImportOptions{EmailConfirmed: emailConfirmed, DryRun: dryRun || parseErr != nil}

			// With bad lines, the good ones are still checked against the database, so one run
			// lists every problem of the file.
			var res ecardbot.SubscriberImportResult
			err = nil
			if len(entries) > 0 {
				res, err = guardians.ImportSubscribers(cmd.Context(), entries, opts)
			}
			var importErr *ecardbot.ImportError
			if err != nil && !errors.As(err, &importErr) {
				return commandError(path+": nothing imported", err)
			}
			if parseErr != nil || importErr != nil {
				return reportBadLines(cmd.ErrOrStderr(), path, parseErr, importErr, "nothing imported")
			}

			prefix := "subscribers"
			if dryRun {
				prefix = "dry run, nothing stored; subscribers"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d guardians created, %d updated; %d LINE users recorded as following; "+
				"%d guardianships created; %d subscriptions added, %d removed\n", prefix,
				res.GuardiansCreated, res.GuardiansUpdated, res.LineUsersCreated, res.GuardianshipsCreated,
				res.SubscriptionsAdded, res.SubscriptionsRemoved)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file against the database and print what would change, storing nothing")
	cmd.Flags().BoolVar(&emailConfirmed, "email-confirmed", true, "count imported e-mail addresses as confirmed, so e-mail notices go out at once")
	return cmd
}

// reportBadLines prints the bad lines of a file, those the parser found and those the store
// refused, merged in line order as FILE:LINE: reason, and returns the one-line error, which ends
// with outcome.
func reportBadLines(stderr io.Writer, path string, parseErr *school.ParseError, importErr *ecardbot.ImportError, outcome string) error {
	type bad struct {
		line int
		msg  string
	}
	var lines []bad
	total := 0
	if parseErr != nil {
		for _, l := range parseErr.Lines {
			lines = append(lines, bad{l.Line, l.Message})
		}
		total += parseErr.Total
	}
	if importErr != nil {
		for _, e := range importErr.Entries {
			lines = append(lines, bad{e.Line, e.Message})
		}
		total += importErr.Total
	}
	slices.SortStableFunc(lines, func(a, b bad) int { return cmp.Compare(a.line, b.line) })
	shown := lines[:min(len(lines), school.MaxLineErrors)]
	for _, l := range shown {
		fmt.Fprintf(stderr, "%s:%d: %s\n", path, l.line, l.msg)
	}
	if more := total - len(shown); more > 0 {
		fmt.Fprintf(stderr, "%s: and %d more bad lines\n", path, more)
	}
	word := "lines"
	if total == 1 {
		word = "line"
	}
	return fmt.Errorf("%s: %d bad %s, %s", path, total, word, outcome)
}
