package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/store"
)

func newDeadLettersCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deadletters",
		Short: "List and replay deliveries that were given up",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newDeadLettersListCommand(getenv), newDeadLettersReplayCommand(getenv))
	return cmd
}

func newDeadLettersListCommand(getenv func(string) string) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--limit N]",
		Short: "List dead deliveries, the most recent first",
		Long: "deadletters list prints the deliveries the push workers gave up on, the most recent\n" +
			"first: id, channel, attempts, when it was given up, and why (LINE's own message for a\n" +
			"rejected request, \"unreachable\" when the guardian blocked the bot or was unlinked,\n" +
			"or \"retry window (23 h) exceeded\"). No personal data is printed." + envHelp,
		Example: "  ecardbot deadletters list\n  ecardbot deadletters list --limit 1000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: must be at least 1", limit)
			}
			return withDB(cmd, getenv, func(cfg config.Config, db *store.DB) error {
				dead, err := store.NewDeliveryService(db).ListDead(cmd.Context(), limit)
				if err != nil {
					return commandError("deadletters list", err)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tCHANNEL\tATTEMPTS\tDEAD AT\tREASON")
				for _, d := range dead {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", d.ID, d.Channel, d.Attempts, d.UpdatedAt.Format(time.RFC3339), d.DeadReason)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many")
	return cmd
}

func newDeadLettersReplayCommand(getenv func(string) string) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "replay ID... | --all",
		Short: "Send dead deliveries again",
		Long: "deadletters replay moves the given dead deliveries (or, with --all, every dead one)\n" +
			"back to pending; the running workers queue and send them again. Each keeps its id,\n" +
			"which is its LINE retry key, so a message LINE did accept within the last 24 hours\n" +
			"is not delivered twice. IDs that are not dead are skipped." + envHelp,
		Example: "  ecardbot deadletters replay 3f1c…\n  ecardbot deadletters replay --all",
		RunE: func(cmd *cobra.Command, ids []string) error {
			if all == (len(ids) > 0) {
				return fmt.Errorf("give delivery IDs or --all, not both nor neither")
			}
			return withDB(cmd, getenv, func(cfg config.Config, db *store.DB) error {
				svc := store.NewDeliveryService(db)
				total := 0
				if all {
					// Page by what is still dead: each replayed page leaves the list.
					for {
						dead, err := svc.ListDead(cmd.Context(), 1000)
						if err != nil {
							return commandError("deadletters replay", err)
						}
						if len(dead) == 0 {
							break
						}
						page := make([]string, len(dead))
						for i, d := range dead {
							page[i] = d.ID
						}
						n, err := svc.Replay(cmd.Context(), page)
						total += n
						if err != nil {
							return commandError("deadletters replay", err)
						}
						if n == 0 {
							break
						}
					}
				} else {
					n, err := svc.Replay(cmd.Context(), ids)
					total = n
					if err != nil {
						return commandError("deadletters replay", err)
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deadletters: %d replayed\n", total)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead delivery")
	return cmd
}
