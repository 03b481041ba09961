package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/push"
	"github.com/taipei-doit/ecardbot/store"
)

// pushBenchConfig is what `bench push` measures.
type pushBenchConfig struct {
	deliveries int           // backlog drained in phase 1
	lineRate   float64       // the emulator's push limit
	rate       int           // the service's limit (ECARDBOT_LINE_PUSH_RATE)
	workers    int           // ECARDBOT_WORKERS of the bench's worker
	offered    int           // notices a second in phase 2, below the limit
	offerFor   time.Duration // how long phase 2 offers them
	replicas   int           // worker-role Mains run in this process
	cpuProfile string        // file for a CPU profile of the whole run; empty means none
}

// Targets of issue 4: what `bench push` checks before exiting 0.
const (
	pushTargetRateShare = 0.95  // of the limit, while draining a backlog
	pushTargetMax429    = 0.001 // of push requests
	pushTargetP99       = 2 * time.Second
)

func newBenchPushCommand(getenv func(string) string) *cobra.Command {
	var bc pushBenchConfig
	cmd := &cobra.Command{
		Use:   "push [--deliveries N] [--rate N] [--line-rate N]",
		Short: "Measure LINE pushes per second through the queue, limiter and workers",
		Long: "bench push measures the push pipeline end to end on a real PostgreSQL and Redis\n" +
			"(ECARDBOT_DATABASE_URL and ECARDBOT_REDIS_URL are required) against the LINE emulator, run in\n" +
			"this process on 127.0.0.1 and enforcing --line-rate push requests a second as LINE does.\n\n" +
			"It works in a scratch schema ecardbot_bench_<random> of the configured database and under a\n" +
			"Redis key prefix (and asynq queues) of the same name, and removes both at the end. There it\n" +
			"creates one school whose pupils each have one guardian following the bot on LINE, then:\n\n" +
			"  1. backlog: --deliveries pupils tap in (one notice and one LINE delivery each) before the\n" +
			"     worker starts; the worker role (outbox relay, asynq workers, the limiter in Redis at\n" +
			"     --rate) then drains them;\n" +
			"  2. under the limit: --offered pupils a second tap in for --offer-for while the worker runs.\n\n" +
			"It prints a progress bar, then per phase: deliveries, duration, sustained rate (sent/s),\n" +
			"the share of push requests LINE answered 429, lost deliveries (not sent), duplicates (a\n" +
			"retry key accepted twice) and p50/p99 from the notice's creation to LINE's acceptance.\n" +
			"It exits non-zero when a target is missed: backlog rate at least 95% of --rate, at most\n" +
			"0.1% 429 answers, nothing lost or doubled, p99 at most 2 s under the limit.\n\n" +
			"It writes about three rows a delivery and pushes at full rate to the emulator only; on a\n" +
			"shared server run it before going live or at a quiet hour." + envHelp,
		Example: "  ECARDBOT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \\\n" +
			"  ECARDBOT_REDIS_URL=redis://127.0.0.1:6379/0 ecardbot bench push\n" +
			"  ecardbot bench push --deliveries 2000 --offer-for 2s   # a quick check",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			if cfg.DatabaseURL == "" || cfg.RedisURL == "" {
				return errors.New("bench push needs a real PostgreSQL and Redis: set ECARDBOT_DATABASE_URL and ECARDBOT_REDIS_URL")
			}
			if bc.deliveries < 1 || bc.rate < 1 || bc.replicas < 1 || bc.offered < 0 || bc.offerFor < 0 {
				return errors.New("--deliveries, --rate and --replicas must be at least 1, --offered and --offer-for not negative")
			}
			if bc.workers == 0 {
				bc.workers = cfg.Workers
			}
			return benchPush(cmd.Context(), cfg, bc, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().IntVar(&bc.deliveries, "deliveries", 60_000, "deliveries of the backlog phase")
	cmd.Flags().IntVar(&bc.rate, "rate", config.DefaultLinePushRate, "the service's push limit a second (ECARDBOT_LINE_PUSH_RATE)")
	cmd.Flags().Float64Var(&bc.lineRate, "line-rate", float64(config.DefaultLinePushRate), "push requests a second the LINE emulator accepts before answering 429")
	cmd.Flags().IntVar(&bc.workers, "workers", 0, "concurrent push workers (default ECARDBOT_WORKERS)")
	cmd.Flags().IntVar(&bc.offered, "offered", 1500, "notices a second created in the under-the-limit phase")
	cmd.Flags().DurationVar(&bc.offerFor, "offer-for", 10*time.Second, "length of the under-the-limit phase; 0 skips it")
	cmd.Flags().IntVar(&bc.replicas, "replicas", 1, "worker-role instances in this process, each with its own queue consumer, as replicas would run")
	cmd.Flags().StringVar(&bc.cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (`go tool pprof`) to this file")
	return cmd
}

// pushPhase is what one phase of the bench measured.
type pushPhase struct {
	name         string
	deliveries   int
	duration     time.Duration // from its start to the last acceptance
	requests     int           // push requests LINE saw
	rateLimited  int           // answered 429
	repeats      int           // answered 409: a retry key LINE had accepted already, not delivered again
	lost         int           // not sent when the phase ended
	duplicates   int           // retry keys accepted more than once
	p50, p99     time.Duration // notice created → LINE accepted
	offeredPerS  float64       // phase 2 only
	limitPerS    float64
	checkRate    bool // phase 1: the sustained rate is a target
	checkLatency bool // phase 2: the p99 is a target
}

func (p pushPhase) rate() float64 { return float64(p.deliveries-p.lost) / p.duration.Seconds() }

func (p pushPhase) share429() float64 {
	if p.requests == 0 {
		return 0
	}
	return float64(p.rateLimited) / float64(p.requests)
}

// misses returns the targets the phase missed.
func (p pushPhase) misses() []string {
	var m []string
	if p.checkRate && p.rate() < pushTargetRateShare*p.limitPerS {
		m = append(m, fmt.Sprintf("%s: %.0f sent/s is below %.0f", p.name, p.rate(), pushTargetRateShare*p.limitPerS))
	}
	if p.share429() > pushTargetMax429 {
		m = append(m, fmt.Sprintf("%s: %.2f%% of requests answered 429", p.name, 100*p.share429()))
	}
	if p.lost > 0 {
		m = append(m, fmt.Sprintf("%s: %d lost", p.name, p.lost))
	}
	if p.duplicates > 0 {
		m = append(m, fmt.Sprintf("%s: %d duplicates", p.name, p.duplicates))
	}
	if p.checkLatency && p.p99 > pushTargetP99 {
		m = append(m, fmt.Sprintf("%s: p99 %s is over %s", p.name, p.p99, pushTargetP99))
	}
	return m
}

func (p pushPhase) print(w io.Writer) {
	fmt.Fprintf(w, "%s: %d deliveries in %s: %.0f sent/s", p.name, p.deliveries, p.duration.Round(time.Millisecond), p.rate())
	if p.offeredPerS > 0 {
		fmt.Fprintf(w, " (offered %.0f/s)", p.offeredPerS)
	}
	fmt.Fprintf(w, "\n  %d push requests, 429 %d (%.3f%%), 409 %d, lost %d, duplicates %d, created→accepted p50 %s p99 %s\n",
		p.requests, p.rateLimited, 100*p.share429(), p.repeats, p.lost, p.duplicates, p.p50.Round(time.Millisecond), p.p99.Round(time.Millisecond))
}

func benchPush(ctx context.Context, cfg config.Config, bc pushBenchConfig, stdout, stderr io.Writer) (err error) {
	if bc.cpuProfile != "" {
		f, err := os.Create(bc.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	scratchURL, schema, drop, err := store.CreateScratchSchema(ctx, cfg.DatabaseURL, "ecardbot_bench")
	if err != nil {
		return err
	}
	defer func() {
		if derr := drop(context.WithoutCancel(ctx)); err == nil {
			err = derr
		}
	}()
	prefix := schema + ":"
	defer func() {
		if cerr := cleanBenchRedis(context.WithoutCancel(ctx), cfg.RedisURL, prefix); err == nil {
			err = cerr
		}
	}()
	db, err := store.Open(ctx, store.Config{DatabaseURL: scratchURL})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	offered := int(float64(bc.offered) * bc.offerFor.Seconds())
	fmt.Fprintf(stdout, "bench push: %d deliveries, limit %d/s, LINE emulator %.0f/s, %d×%d workers; PostgreSQL schema %s and Redis prefix %s (removed at the end)\n",
		bc.deliveries, bc.rate, bc.lineRate, bc.replicas, bc.workers, schema, prefix)

	begin := time.Now()
	fx, err := newPushFixture(ctx, db, bc.deliveries+offered)
	if err != nil {
		return err
	}
	created := make([]time.Time, bc.deliveries+offered) // per pupil: when its notice was created
	if err := fx.tap(ctx, 0, bc.deliveries, created); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "setup: %d pupils and guardians, %d deliveries pending, in %s\n",
		bc.deliveries+offered, bc.deliveries, time.Since(begin).Round(time.Millisecond))

	sim, err := linesim.New(linesim.Options{PushRate: bc.lineRate, AutoFriend: true, ConversationLimit: 1})
	if err != nil {
		return err
	}
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sim.Close()

	wcfg := cfg
	wcfg.DatabaseURL, wcfg.HTTPAddr, wcfg.Roles = scratchURL, "127.0.0.1:0", config.Roles{Worker: true}
	wcfg.LineAPIURL, wcfg.LineChannelToken, wcfg.LineChannelSecret = simURL, sim.ChannelToken(), sim.ChannelSecret()
	wcfg.LinePushRate, wcfg.Workers = bc.rate, bc.workers

	// Phase 1: the backlog.
	start := time.Now()
	mains := make([]*Main, bc.replicas)
	for i := range mains {
		m := &Main{Config: wcfg, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})), RedisPrefix: prefix}
		if err := m.Run(ctx); err != nil {
			return err
		}
		defer m.Close()
		mains[i] = m
	}
	if err := waitSent(ctx, db, 0, bc.deliveries, "backlog", stderr); err != nil {
		return err
	}
	phases := []pushPhase{measurePushPhase(ctx, db, sim, "backlog", start, created[:bc.deliveries], 0, bc.deliveries)}
	phases[0].limitPerS, phases[0].checkRate = float64(bc.rate), true

	// Phase 2: load offered below the limit, in ticks of 100 ms as readers and sweeps spread it.
	if offered > 0 {
		answered := len(sim.PushAnswers())
		start = time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		for from := bc.deliveries; from < bc.deliveries+offered; {
			to := min(from+max(bc.offered/10, 1), bc.deliveries+offered)
			if err := fx.tap(ctx, from, to, created); err != nil {
				tick.Stop()
				return err
			}
			from = to
			<-tick.C
		}
		tick.Stop()
		if err := waitSent(ctx, db, bc.deliveries, offered, "under the limit", stderr); err != nil {
			return err
		}
		p := measurePushPhase(ctx, db, sim, "under the limit", start, created, answered, offered)
		p.offeredPerS, p.checkLatency = float64(bc.offered), true
		phases = append(phases, p)
	}

	printWorkerTimes(stdout, mains)
	var misses []string
	for _, p := range phases {
		p.print(stdout)
		misses = append(misses, p.misses()...)
	}
	if len(misses) > 0 {
		return fmt.Errorf("bench push missed its targets: %s", strings.Join(misses, "; "))
	}
	fmt.Fprintln(stdout, "all targets met")
	return nil
}

// waitSent shows a progress bar until the phase's total deliveries are sent after the before
// of earlier phases, and gives up when none was sent for a minute (the rest then count as lost).
func waitSent(ctx context.Context, db *store.DB, before, total int, what string, stderr io.Writer) error {
	bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("sent"),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetWidth(30))
	defer fmt.Fprintln(stderr)
	last, lastAt := int64(-1), time.Now()
	for {
		states, err := db.CountDeliveryStates(ctx)
		if err != nil {
			return err
		}
		sent := states[ecardbot.DeliverySent] - int64(before)
		_ = bar.Set64(sent)
		if sent >= int64(total) {
			return nil
		}
		if sent != last {
			last, lastAt = sent, time.Now()
		} else if time.Since(lastAt) > time.Minute {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // counting scans the table: often enough for a bar
		}
	}
}

// measurePushPhase reads the phase's outcome from the database and from the pushes LINE
// answered since the first `skip`: each delivery's latency runs from its notice's creation
// (created, by pupil) to the first 200 for its retry key.
func measurePushPhase(ctx context.Context, db *store.DB, sim *linesim.Server, name string, start time.Time,
	created []time.Time, skip, deliveries int) pushPhase {
	p := pushPhase{name: name, deliveries: deliveries}
	answers := sim.PushAnswers()[skip:]
	p.requests = len(answers)
	var last time.Time
	for _, a := range answers {
		switch a.Status {
		case http.StatusTooManyRequests:
			p.rateLimited++
		case http.StatusConflict:
			p.repeats++
		}
		if a.Status == http.StatusOK && a.Time.After(last) {
			last = a.Time
		}
	}
	p.duration = last.Sub(start)
	lat := make([]time.Duration, 0, len(answers))
	for _, n := range linesim.AcceptedRetryKeys(answers) {
		if n > 1 {
			p.duplicates++
		}
	}
	seen := map[string]bool{}
	for _, a := range answers {
		if a.Status != http.StatusOK || seen[a.RetryKey] {
			continue
		}
		seen[a.RetryKey] = true
		if i, ok := pushPupil(a.To); ok && i < len(created) && !created[i].IsZero() {
			lat = append(lat, a.Time.Sub(created[i]))
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		p.p50, p.p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if states, err := db.CountDeliveryStates(ctx); err == nil {
		var total int64
		for _, n := range states {
			total += n
		}
		p.lost = int(total - states[ecardbot.DeliverySent])
	}
	return p
}

// cleanBenchRedis removes the bench's limiter keys and its asynq queues.
func cleanBenchRedis(ctx context.Context, url, prefix string) error {
	c, err := kv.Open(ctx, kv.Config{URL: url, Prefix: prefix})
	if err != nil {
		return err
	}
	defer c.Close()
	insp := asynq.NewInspectorFromRedisClient(c.Redis())
	for _, q := range []string{push.QueueLINE, push.QueueEmail} {
		if err := insp.DeleteQueue(push.Queue(prefix, q), true); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			return fmt.Errorf("delete bench queue: %w", err)
		}
	}
	iter := c.Redis().Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Redis().Del(ctx, iter.Val()).Err(); err != nil {
			return fmt.Errorf("delete bench keys: %w", err)
		}
	}
	return iter.Err()
}

// pushFixtureSchool is the school of `bench push` and of the push fault tests.
const pushFixtureSchool = "999902"

// pushFixture is a school whose pupils each have one guardian following the bot on LINE and
// subscribed to every notice on LINE only, so one tap in of a pupil makes exactly one LINE
// delivery, through the same gate ingest and fan-out as a reader's tap.
type pushFixture struct {
	school *ecardbot.School
	gate   *store.GateService
}

func newPushFixture(ctx context.Context, db *store.DB, pupils int) (*pushFixture, error) {
	schools := store.NewSchoolService(db)
	if _, _, err := schools.ImportSchools(ctx, []ecardbot.School{{Code: pushFixtureSchool, Name: "推播測試國小",
		District: "大安區", Level: ecardbot.LevelElementary}}); err != nil {
		return nil, err
	}
	roster := make([]ecardbot.RosterEntry, pupils)
	subscribers := make([]ecardbot.SubscriberEntry, pupils)
	for i := range pupils {
		no := fmt.Sprintf("P%07d", i+1)
		roster[i] = ecardbot.RosterEntry{Line: i + 2, StudentNo: no, Name: fmt.Sprintf("學生%d", i+1), BirthDate: "2017-01-01",
			NationalIDHash: fmt.Sprintf("push-%d", i+1), CardUID: pushCard(i), Grade: "1", Class: "101"}
		subscribers[i] = ecardbot.SubscriberEntry{Line: i + 2, LineUserID: pushUser(i),
			TaipeiPassID: fmt.Sprintf("push-%d", i+1), SchoolCode: pushFixtureSchool, StudentNo: no, Kinds: ecardbot.NoticeKinds}
	}
	if _, err := store.NewRosterService(db).ImportRoster(ctx, pushFixtureSchool, roster); err != nil {
		return nil, err
	}
	if _, err := store.NewGuardianService(db).ImportSubscribers(ctx, subscribers, ecardbot.SubscriberImportOptions{}); err != nil {
		return nil, err
	}
	if err := db.Analyze(ctx); err != nil {
		return nil, err
	}
	s, err := schools.FindSchool(ctx, pushFixtureSchool)
	if err != nil {
		return nil, err
	}
	return &pushFixture{school: s, gate: store.NewGateService(db, store.GateConfig{})}, nil
}

// tap makes pupils [from, to) tap in now, in batches of at most 1,000 as a reader posts them, and
// notes in created (when not nil) when each batch began: no later than its notices were created.
func (f *pushFixture) tap(ctx context.Context, from, to int, created []time.Time) error {
	for lo := from; lo < to; lo += 1000 {
		hi := min(lo+1000, to)
		now := time.Now()
		events := make([]ecardbot.GateEvent, 0, hi-lo)
		for i := lo; i < hi; i++ {
			events = append(events, ecardbot.GateEvent{ID: fmt.Sprintf("push-%d", i), Card: pushCard(i),
				Direction: ecardbot.DirectionIn, At: now.Add(-time.Second), Gate: "north-1"})
			if created != nil {
				created[i] = now
			}
		}
		res, err := f.gate.Ingest(ctx, f.school, events)
		if err != nil {
			return err
		}
		if res.Accepted != len(events) {
			return fmt.Errorf("tap pupils %d–%d: %d of %d taps accepted", lo, hi, res.Accepted, len(events))
		}
	}
	return nil
}

func pushCard(i int) string { return fmt.Sprintf("PB%014X", i+1) }

// pushUser is the LINE user ID of pupil i's guardian.
func pushUser(i int) string { return fmt.Sprintf("U%032x", i+1) }

// pushPupil is the pupil whose guardian is the LINE user id.
func pushPupil(id string) (int, bool) {
	if len(id) != 33 || id[0] != 'U' {
		return 0, false
	}
	b, err := hex.DecodeString(id[1:])
	if err != nil {
		return 0, false
	}
	var n int
	for _, x := range b {
		n = n<<8 | int(x)
	}
	return n - 1, n > 0
}

// printWorkerTimes prints the mean LINE answer time and limiter wait the workers measured
// (their Prometheus histograms), which tell a slow emulator or Redis from a slow worker.
func printWorkerTimes(w io.Writer, mains []*Main) {
	means := map[string][2]float64{} // metric → sum, count
	for _, m := range mains {
		mfs, err := m.Registry.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			for _, mm := range mf.GetMetric() {
				if h := mm.GetHistogram(); h != nil {
					v := means[mf.GetName()]
					means[mf.GetName()] = [2]float64{v[0] + h.GetSampleSum(), v[1] + float64(h.GetSampleCount())}
				}
			}
		}
	}
	mean := func(name string) string {
		v := means[name]
		if v[1] == 0 {
			return "-"
		}
		return (time.Duration(v[0] / v[1] * float64(time.Second))).Round(10 * time.Microsecond).String()
	}
	fmt.Fprintf(w, "workers: LINE answer mean %s, limiter wait mean %s\n",
		mean("ecardbot_line_api_request_duration_seconds"), mean("ecardbot_push_limiter_wait_seconds"))
}
