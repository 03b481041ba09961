// Package schedule runs the service's timed jobs: the 未到校 sweep of each school at its cutoff
// on its school days, and the daily retention job. It is the scheduler role of
// ECARDBOT_ROLES, wired by cmd.
//
// It is a package of its own, not part of package school, because it is a role of its own and
// a loop over time rather than a handler of school requests: school owns what schools send
// (gate events, leaves, CSV files) and runs on web replicas, while the scheduler runs on any
// replica that has the role, talks only to root interfaces (ecardbot.SweepService,
// ecardbot.RetentionService) and owns the clock abstraction its tests need. Retention is not
// a school matter either.
//
// # How it decides when to wake
//
// After each pass the scheduler sleeps until the earliest of: the next cutoff of any school
// (today's if still ahead, else tomorrow's), the next retention time, a retry after a failure,
// and a rescan bound. Each pass re-reads the schools, so a school imported or a cutoff changed
// while it sleeps is noticed at the latest after Config.Rescan, which also bounds the effect
// of a wall-clock jump on a long timer.
//
// A pass sweeps every school whose cutoff today has passed and that this process has not
// swept today: at start, that catches up the sweeps missed while no scheduler ran (late runs,
// whose notices the store records as stale when older than the gate staleness limit). Several
// replicas may run schedulers: the store lets exactly one of them sweep a school and day, and
// the others are told it ran already.
package schedule
