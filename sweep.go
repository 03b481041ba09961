package ecardbot

import "context"

// SweepResult is what one 未到校 sweep of one school and day did.
type SweepResult struct {
	SchoolCode string
	Day        string // YYYY-MM-DD
	// Ran is false when the sweep had already run for the school and day, by another replica
	// or an earlier call; the counts below are then zero.
	Ran bool
	// SchoolDay and Reason are the calendar's decision (see CalendarDay). On a day without
	// school the sweep only records that decision.
	SchoolDay bool
	Reason    string
	Students  int // active students of the school
	Arrived   int // of them, with a 到校 notice at the time of the sweep
	OnLeave   int // of them, with a leave record for the day
	Absent    int // 未到校 notices created
	// Deliveries is how many deliveries the new notices got: one per guardian and channel
	// subscribed to 未到校 and reachable, as for gate notices.
	Deliveries int
	// Stale is set when the cutoff was already older than the staleness limit of gate
	// notices when the sweep ran (the scheduler was down): the notices are recorded, for the
	// history page, but get no deliveries, exactly like a tap uploaded that late.
	Stale bool
}

// SweepService runs the 未到校 sweeps: at a school's cutoff on its school days, every active
// student with no 到校 notice and no leave record that day gets a 未到校 notice.
type SweepService interface {
	// SweepSchools returns every school with its cutoff, which the scheduler plans its
	// wake-ups from.
	SweepSchools(ctx context.Context) ([]School, error)

	// Sweep runs the sweep of the school (by its ID) for day (YYYY-MM-DD) at most once,
	// whichever replica calls and however often: the first call records the run and later
	// ones return Ran false. A sweep that runs late still uses the cutoff as the time of its
	// notices. Returns EINVALID for a malformed day or before the day's cutoff, ENOTFOUND for
	// an unknown school, and EUNAVAILABLE when storage cannot be reached (nothing is
	// recorded, so calling again later runs it).
	Sweep(ctx context.Context, school *School, day string) (SweepResult, error)
}

// RetentionResult counts what one retention run deleted.
type RetentionResult struct {
	Before     string // rows of days before this date (YYYY-MM-DD) were deleted
	GateEvents int64
	Notices    int64
	Deliveries int64 // of the deleted notices
	Leaves     int64
	SweepRuns  int64
	// Expired counts settings links, sessions and e-mail confirmations past their expiry, and
	// failed 歸戶 attempts older than a day: secrets and traces nobody can use any more.
	Expired int64
}

// RetentionService deletes what the service no longer needs to keep. Taps, notices and leave
// records say where a child was and why: they are kept for the parents' history page and for
// disputes, and no longer.
type RetentionService interface {
	// PurgeBefore deletes gate events, notices with their deliveries, leave records and sweep
	// records of days before before (YYYY-MM-DD), in batches of short transactions so that
	// ingest is never blocked for long; it stops between batches when ctx ends and returns
	// what it deleted so far with the error. Returns EINVALID for a malformed date and
	// EUNAVAILABLE when storage cannot be reached.
	PurgeBefore(ctx context.Context, before string) (RetentionResult, error)
}
