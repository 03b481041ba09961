package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/store"
)

func newCalendarCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "calendar",
		Short: "Keep the school calendars that decide when the 未到校 sweep runs",
		Long: "calendar keeps which dates are school days. By default Monday to Friday are school days\n" +
			"and weekends are not; operators load holidays and make-up school days (補課) from a file\n" +
			"with `calendar import`, and close schools for a day, e.g. a typhoon day announced the\n" +
			"evening before, with `calendar close`. The 未到校 sweep runs at each school's cutoff on its\n" +
			"school days only; gate taps notify on any day.",
		Args: cobra.NoArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(newCalendarImportCommand(getenv), newCalendarCloseCommand(getenv),
		newCalendarReopenCommand(getenv), newCalendarListCommand(getenv))
	return cmd
}

func newCalendarImportCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Load holidays, closures and make-up school days from a CSV file",
		Long: "calendar import reads a UTF-8 CSV file (an Excel byte-order mark is fine) with the header\n\n" +
			"  date,school_code,kind,note\n\n" +
			"date is YYYY-MM-DD; school_code a school's code, or empty for every school of the city;\n" +
			"kind one of\n" +
			"  holiday    no school that day (national holidays, 補假, vacations)\n" +
			"  closure    schools closed (停課), e.g. a typhoon day; beats every other entry\n" +
			"  schoolday  a school day on a date that would have none: a Saturday make-up day (補課)\n" +
			"note is free text shown by `calendar list`. A school's own entry beats the city's.\n\n" +
			"An entry replaces the stored one of the same date, school and kind group (holiday and\n" +
			"schoolday replace each other; a closure stands beside them), so importing a file again\n" +
			"changes nothing, and a corrected file can be imported over an old one. Dates missing\n" +
			"from a file are left as they are. A file with any bad line imports nothing; every bad\n" +
			"line is printed with its number. Pending migrations are applied first." + envHelp,
		Example: "  ecardbot calendar import calendar-2026.csv",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return importCSV(cmd, getenv, args[0],
				func(_ config.Config, r io.Reader) ([]ecardbot.CalendarEntry, error) { return school.ParseCalendar(r) },
				func(ctx context.Context, db *store.DB, entries []ecardbot.CalendarEntry) error {
					changed, err := store.NewCalendarService(db).ImportCalendar(ctx, entries)
					if err != nil {
						return commandError(args[0]+": nothing imported", err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "calendar: %d entries, %d new or changed\n", len(entries), changed)
					return nil
				})
		},
	}
}

// scopeFlags are the --date, --school and --district flags of close and reopen.
type scopeFlags struct {
	date, school, district string
}

func (f *scopeFlags) register(cmd *cobra.Command, verb string) {
	cmd.Flags().StringVar(&f.date, "date", "", "the day to "+verb+", YYYY-MM-DD (required)")
	cmd.Flags().StringVar(&f.school, "school", "", "only this school, by code, e.g. 313601")
	cmd.Flags().StringVar(&f.district, "district", "", "only the schools of this district, e.g. 松山區")
	cmd.MarkFlagRequired("date")
	cmd.MarkFlagsMutuallyExclusive("school", "district")
}

// entry checks the flags and returns the entry they describe, with the school checked to exist
// so that a typo is reported as such.
func (f *scopeFlags) entry(cmd *cobra.Command, db *store.DB) (ecardbot.CalendarEntry, error) {
	e := ecardbot.CalendarEntry{
		Date:       strings.TrimSpace(f.date),
		SchoolCode: strings.ToUpper(strings.TrimSpace(f.school)),
		District:   strings.TrimSpace(f.district),
		Kind:       ecardbot.CalendarClosure,
	}
	if d, err := time.Parse(time.DateOnly, e.Date); err != nil || d.Format(time.DateOnly) != e.Date {
		return e, fmt.Errorf("--date %q: must be a date as YYYY-MM-DD", f.date)
	}
	if e.District != "" && !ecardbot.ValidDistrict(e.District) {
		return e, fmt.Errorf("--district %q: must be one of Taipei's 12 districts as written in Chinese, e.g. 松山區", f.district)
	}
	if e.SchoolCode != "" {
		_, err := store.NewSchoolService(db).FindSchool(cmd.Context(), e.SchoolCode)
		if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
			return e, fmt.Errorf("school %s not found: import it first with `ecardbot school import`", e.SchoolCode)
		} else if err != nil {
			return e, commandError("find school "+e.SchoolCode, err)
		}
	}
	return e, nil
}

// scopeText says who an entry concerns, for the operator.
func scopeText(e ecardbot.CalendarEntry) string {
	switch {
	case e.SchoolCode != "":
		return "school " + e.SchoolCode
	case e.District != "":
		return "the schools of " + e.District
	}
	return "every school of the city"
}

func newCalendarCloseCommand(getenv func(string) string) *cobra.Command {
	var f scopeFlags
	var note string
	cmd := &cobra.Command{
		Use:   "close --date YYYY-MM-DD [--school CODE | --district 區] [--note TEXT]",
		Short: "Close schools for a day (停課), e.g. a typhoon day",
		Long: "calendar close records that schools are closed (停課) on a day, e.g. a typhoon day: every\n" +
			"school of the city, the schools of one district (--district 松山區), or one school\n" +
			"(--school 313601). Run it as soon as the closure is announced, typically the evening\n" +
			"before: the 未到校 sweep of a closed school does not run, so no parent is told that a\n" +
			"child is missing. A closure beats a make-up school day. Closing twice changes nothing;\n" +
			"`calendar reopen` removes a closure entered by mistake. Gate taps still notify on a\n" +
			"closed day." + envHelp,
		Example: "  ecardbot calendar close --date 2026-09-28 --note 颱風停課\n" +
			"  ecardbot calendar close --date 2026-09-28 --district 松山區 --note 颱風停課",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, getenv, func(cfg config.Config, db *store.DB) error {
				e, err := f.entry(cmd, db)
				if err != nil {
					return err
				}
				e.Note = strings.TrimSpace(note)
				changed, err := store.NewCalendarService(db).ImportCalendar(cmd.Context(), []ecardbot.CalendarEntry{e})
				if err != nil {
					return commandError("close "+e.Date, err)
				}
				what := "closed"
				if changed == 0 {
					what = "already closed"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s for %s; the 未到校 sweep will not run there\n", e.Date, what, scopeText(e))
				return nil
			})
		},
	}
	f.register(cmd, "close")
	cmd.Flags().StringVar(&note, "note", "", "why, shown by `calendar list`, e.g. 颱風停課")
	return cmd
}

func newCalendarReopenCommand(getenv func(string) string) *cobra.Command {
	var f scopeFlags
	cmd := &cobra.Command{
		Use:   "reopen --date YYYY-MM-DD [--school CODE | --district 區]",
		Short: "Remove a closure entered by mistake",
		Long: "calendar reopen removes the closure of exactly that day and scope, as `calendar close`\n" +
			"entered it: reopening one school does not lift its district's or the city's closure.\n" +
			"The day is then decided as before the closure (weekday, holiday or make-up day). A sweep\n" +
			"that was skipped because of the closure is not run afterwards." + envHelp,
		Example: "  ecardbot calendar reopen --date 2026-09-28 --district 松山區",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, getenv, func(cfg config.Config, db *store.DB) error {
				e, err := f.entry(cmd, db)
				if err != nil {
					return err
				}
				if err := store.NewCalendarService(db).Reopen(cmd.Context(), e); err != nil {
					return commandError("reopen "+e.Date, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: closure for %s removed\n", e.Date, scopeText(e))
				return nil
			})
		},
	}
	f.register(cmd, "reopen")
	return cmd
}

// defaultListDays is how many days `calendar list` shows without --to: two school weeks.
const defaultListDays = 14

func newCalendarListCommand(getenv func(string) string) *cobra.Command {
	var code, from, to string
	cmd := &cobra.Command{
		Use:   "list --school CODE [--from YYYY-MM-DD] [--to YYYY-MM-DD]",
		Short: "Print a school's school days and days without school",
		Long: "calendar list prints, for each date from --from to --to (inclusive; at most 366 days),\n" +
			"whether it is a school day for the school and why: weekday or weekend by default, or\n" +
			"the holiday, closure or make-up day that decided it, with its scope (city, district or\n" +
			"school) and note. --from defaults to today in ECARDBOT_TIMEZONE, --to to 13 days later." + envHelp,
		Example: "  ecardbot calendar list --school 313601 --from 2026-09-01 --to 2026-09-30",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			code = strings.ToUpper(strings.TrimSpace(code))
			if from == "" {
				from = time.Now().In(cfg.Timezone).Format(time.DateOnly)
			}
			if to == "" {
				start, err := time.Parse(time.DateOnly, from)
				if err != nil {
					return fmt.Errorf("--from %q: must be a date as YYYY-MM-DD", from)
				}
				to = start.AddDate(0, 0, defaultListDays-1).Format(time.DateOnly)
			}
			db, err := openMigrated(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer db.Close()
			sc, err := store.NewSchoolService(db).FindSchool(cmd.Context(), code)
			if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
				return fmt.Errorf("school %s not found: import it first with `ecardbot school import`", code)
			} else if err != nil {
				return commandError("find school "+code, err)
			}
			days, err := store.NewCalendarService(db).SchoolDays(cmd.Context(), code, from, to)
			if err != nil {
				return commandError("list "+code, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s %s (%s), 未到校 at %s\n", sc.Code, sc.Name, sc.District, sc.Cutoff)
			for _, d := range days {
				fmt.Fprintln(w, describeDay(d))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&code, "school", "", "code of the school, e.g. 313601 (required)")
	cmd.Flags().StringVar(&from, "from", "", "first date, YYYY-MM-DD (default today)")
	cmd.Flags().StringVar(&to, "to", "", "last date, YYYY-MM-DD (default 13 days after --from)")
	cmd.MarkFlagRequired("school")
	return cmd
}

// describeDay is one line of `calendar list`: the ASCII columns first, so they stay aligned
// whatever the width of the Chinese note at the end.
func describeDay(d ecardbot.CalendarDay) string {
	status := "school day"
	if !d.SchoolDay {
		status = "no school"
	}
	line := fmt.Sprintf("%s %s  %-10s  %s", d.Date, d.Weekday().String()[:3], status, d.Reason)
	if d.Entry != nil {
		line += " (" + d.Entry.Scope() + ")"
		if d.Entry.Note != "" {
			line += " " + d.Entry.Note
		}
	}
	return line
}
