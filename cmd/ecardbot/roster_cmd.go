package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/store"
)

func newRosterCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "roster",
		Short: "Import a school's roster of pupils",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newRosterImportCommand(getenv))
	return cmd
}

func newRosterImportCommand(getenv func(string) string) *cobra.Command {
	var code string
	cmd := &cobra.Command{
		Use:   "import --school CODE FILE.csv",
		Short: "Make a CSV file the school's roster",
		Long: "roster import makes a UTF-8 CSV file (an Excel byte-order mark is fine) the roster of\n" +
			"the school, with the header\n\n" +
			"  student_no,name,birth_date,national_id,card_uid,grade,class\n\n" +
			"birth_date is YYYY-MM-DD; national_id a national ID (A123456789) or resident ID\n" +
			"(統一證號); card_uid may be empty. Pupils are matched by student_no and updated in\n" +
			"place; pupils missing from the file become inactive. National IDs are checked and\n" +
			"stored only as hashes keyed by ECARDBOT_SECRET_KEY, which must be the service's (left\n" +
			"empty with the embedded SQLite database, the sandbox's ECARDBOT_DATA_DIR/secret.key is\n" +
			"used). A file with any bad line imports nothing; every bad line is printed with its\n" +
			"number, never with the national ID in it." + envHelp,
		Example: "  ecardbot roster import --school 313601 roster-313601.csv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code = strings.ToUpper(strings.TrimSpace(code))
			return importCSV(cmd, getenv, args[0],
				func(cfg config.Config, r io.Reader) ([]ecardbot.RosterEntry, error) {
					secret, err := commandSecretKey(cfg)
					if err != nil {
						return nil, err
					}
					return school.ParseRoster(r, secret)
				},
				func(ctx context.Context, db *store.DB, entries []ecardbot.RosterEntry) error {
					res, err := store.NewRosterService(db).ImportRoster(ctx, code, entries)
					if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
						return fmt.Errorf("school %s not found: import it first with `ecardbot school import`", code)
					} else if err != nil {
						return commandError(args[0]+": nothing imported", err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "roster %s: %d created, %d updated, %d deactivated\n",
						code, res.Created, res.Updated, res.Deactivated)
					return nil
				})
		},
	}
	cmd.Flags().StringVar(&code, "school", "", "code of the school, e.g. 313601 (required)")
	cmd.MarkFlagRequired("school")
	return cmd
}
