package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/school"
)

// gateKeyVariable holds the gate API key for `gate play` when --key is not given, so the key
// need not appear in the process list.
const gateKeyVariable = "ECARDBOT_GATE_KEY"

func newGateCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gate",
		Short: "Emulate a school's gate readers",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newGatePlayCommand(getenv))
	return cmd
}

func newGatePlayCommand(getenv func(string) string) *cobra.Command {
	var (
		baseURL, key, rosterPath, date string
		seed                           uint64
		attempts                       int
	)
	cmd := &cobra.Command{
		Use:   "play --url URL --key KEY --roster FILE.csv [--date YYYY-MM-DD] [--seed N]",
		Short: "Play a school day of gate taps against a running ecardbot",
		Long: "gate play emulates a school's gate readers for one day and posts their taps to\n" +
			"URL/api/v1/gate-events with the school's API key, as the readers would: most pupils of\n" +
			"the roster tap in between 07:10 and 08:20 (some twice within a minute), a few are absent,\n" +
			"late or forget their card, most tap out between 15:50 and 16:40 and a few leave early; a\n" +
			"side gate cannot tell direction; the south gate's reader is offline for part of the\n" +
			"morning and uploads late, resending its last batch; a few cards are not on the roster.\n" +
			"Readers post once a minute, at most 1,000 taps a request, and retry on 503 and network\n" +
			"errors. The roster is the school's roster CSV (the file of `ecardbot roster import`); only\n" +
			"student_no and card_uid are used.\n\n" +
			"The same --seed and --date make the same taps with the same ids, so playing again posts\n" +
			"only duplicates. For today only the taps that have happened by now are posted: play again\n" +
			"later with the same seed to post the rest. --date defaults to today in ECARDBOT_TIMEZONE.\n" +
			"The key comes from --key or from the environment variable " + gateKeyVariable + ".\n" +
			"Taps older than the service's staleness limit (2 hours) make notices that are recorded\n" +
			"but not sent, as with a real reader that uploads late.",
		Example: "  KEY=$(ecardbot school key create --school 313601)\n" +
			"  ecardbot gate play --url http://localhost:8080 --key \"$KEY\" --roster roster-313601.csv --seed 1",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			if key == "" {
				key = getenv(gateKeyVariable)
			}
			if key == "" {
				return fmt.Errorf("no gate API key: pass --key or set %s (`ecardbot school key create` makes one)", gateKeyVariable)
			}
			now := time.Now().In(cfg.Timezone)
			today := now.Format(time.DateOnly)
			if date == "" {
				date = today
			}
			if d, err := time.Parse(time.DateOnly, date); err != nil || d.Format(time.DateOnly) != date {
				return fmt.Errorf("--date %q: must be a date as YYYY-MM-DD", date)
			} else if date > today {
				return fmt.Errorf("--date %s is in the future: a reader cannot post taps that have not happened", date)
			}
			pupils, err := readGatePupils(cmd.ErrOrStderr(), rosterPath)
			if err != nil {
				return err
			}
			day, err := linesim.GenerateDay(pupils, linesim.SchoolDayConfig{Date: date, Location: cfg.Timezone, Seed: seed})
			if err != nil {
				return err
			}
			taps := day.UploadedBy(now)

			if attempts < 1 {
				return errors.New("--attempts must be at least 1")
			}
			reader := linesim.NewGateReader(linesim.GateReaderConfig{URL: baseURL, Key: key, MaxAttempts: attempts})
			res, err := reader.Post(cmd.Context(), taps)
			printPlay(cmd.OutOrStdout(), day, len(taps), seed, res)
			if err != nil {
				return fmt.Errorf("after %d of %d taps: %s", res.Events, len(taps), strings.ReplaceAll(err.Error(), "\n", " "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&baseURL, "url", "http://localhost:8080", "ecardbot's base URL")
	cmd.Flags().StringVar(&key, "key", "", "the school's gate API key (default $"+gateKeyVariable+")")
	cmd.Flags().StringVar(&rosterPath, "roster", "", "the school's roster CSV file (required)")
	cmd.Flags().StringVar(&date, "date", "", "the school day to play, YYYY-MM-DD (default today)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the day: the same seed makes the same taps")
	cmd.Flags().IntVar(&attempts, "attempts", 6, "attempts per batch on 503, 429, 502, 504 and network errors, with doubling waits from 0.5 s")
	cmd.MarkFlagRequired("roster")
	return cmd
}

// readGatePupils reads the pupils and cards of a roster file. The file is checked as `roster
// import` checks it; the national IDs are hashed under a throw-away key and forgotten.
func readGatePupils(stderr io.Writer, path string) ([]linesim.GatePupil, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	entries, err := school.ParseRoster(f, secret)
	var perr *school.ParseError
	if errors.As(err, &perr) {
		return nil, reportBadLines(stderr, path, perr, nil, "nothing played")
	} else if err != nil {
		return nil, err
	}
	pupils := make([]linesim.GatePupil, len(entries))
	for i, e := range entries {
		pupils[i] = linesim.GatePupil{StudentNo: e.StudentNo, Card: e.CardUID}
	}
	return pupils, nil
}

func printPlay(w io.Writer, day *linesim.SchoolDay, posted int, seed uint64, res linesim.GateResult) {
	fmt.Fprintf(w, "school day %s (seed %d): %d pupils with a card, %d absent; %s offline %s–%s\n",
		day.Date, seed, day.Pupils, day.Absent, day.OfflineGate,
		day.OfflineFrom.Format("15:04"), day.OfflineUntil.Format("15:04"))
	fmt.Fprintf(w, "posted %d of %d taps in %d batches (%d retries); %d not happened yet\n",
		res.Events, posted, res.Batches, res.Retries, len(day.Taps)-posted)
	fmt.Fprintf(w, "accepted %d, duplicates %d, rejected %d", res.Accepted, res.Duplicates, res.Rejected)
	if len(res.Reasons) > 0 {
		var parts []string
		for _, reason := range slices.Sorted(maps.Keys(res.Reasons)) {
			parts = append(parts, fmt.Sprintf("%s: %d", reason, res.Reasons[reason]))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}
