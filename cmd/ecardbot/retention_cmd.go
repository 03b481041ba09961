package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/store"
)

func newRetentionCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Delete gate events, notices and leave records past the retention period",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newRetentionRunCommand(getenv))
	return cmd
}

func newRetentionRunCommand(getenv func(string) string) *cobra.Command {
	var days int
	cmd := &cobra.Command{
		Use:   "run [--days N]",
		Short: "Run the retention job once and print what it deleted",
		Long: "retention run deletes, once, what the scheduler's daily job deletes: gate events,\n" +
			"notices with their deliveries, leave records and 未到校 sweep records of days more than\n" +
			"ECARDBOT_RETENTION_DAYS (default 180) days before today in ECARDBOT_TIMEZONE, or --days.\n" +
			"It deletes in batches of 5,000 rows, each its own short transaction, so it is safe while\n" +
			"the service runs, and stopping it keeps what it deleted so far. Use it after lowering\n" +
			"the period, or to check what the job does." + envHelp,
		Example: "  ecardbot retention run\n  ecardbot retention run --days 90",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("days") {
				days = cfg.RetentionDays
			}
			if days < 1 {
				return fmt.Errorf("--days %d: must be at least 1", days)
			}
			before := time.Now().In(cfg.Timezone).AddDate(0, 0, -days).Format(time.DateOnly)
			db, err := openMigrated(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := store.NewRetentionService(db, store.RetentionConfig{}).PurgeBefore(cmd.Context(), before)
			counts := retentionCounts(res)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "retention: stopped after deleting %s\n", counts)
				return commandError("retention", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "retention: deleted what is older than %s (%d days): %s\n", before, days, counts)
			return nil
		},
	}
	cmd.Flags().IntVar(&days, "days", 0, "keep this many days instead of ECARDBOT_RETENTION_DAYS")
	return cmd
}

func retentionCounts(r ecardbot.RetentionResult) string {
	return fmt.Sprintf("%d gate events, %d notices, %d deliveries, %d leave records, %d sweep records, %d expired settings links, sessions and attempts",
		r.GateEvents, r.Notices, r.Deliveries, r.Leaves, r.SweepRuns, r.Expired)
}
