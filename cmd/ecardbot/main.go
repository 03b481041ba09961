// Command ecardbot runs the @taipei school arrival and departure notice service and the
// operator commands around it. `ecardbot --help` lists them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Getenv, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ecardbot:", err)
		os.Exit(1)
	}
}

// newRootCommand builds the command tree. getenv and the writers are parameters so that tests
// run commands in parallel without touching the process environment.
func newRootCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ecardbot",
		Short: "Taipei @taipei school arrival and departure notices (到離校訊息通知)",
		Long: "ecardbot is the backend of the @taipei LINE official account's school arrival and\n" +
			"departure notices. It answers LINE's webhook and keeps what it knows about parents in\n" +
			"PostgreSQL and Redis. Configuration comes from ECARDBOT_* environment variables;\n" +
			"`ecardbot config` shows the effective values.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newServeCommand(getenv),
		newSandboxCommand(getenv),
		newMigrateCommand(getenv),
		newConfigCommand(getenv),
		newSchoolCommand(getenv),
		newRosterCommand(getenv),
		newCalendarCommand(getenv), newRetentionCommand(getenv),
		newSubscribersCommand(getenv),
		newGateCommand(getenv),
		newBenchCommand(getenv),
		newDeadLettersCommand(getenv),
	)
	return root
}
