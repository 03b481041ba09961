package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/config"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/server"
	"github.com/taipei-doit/ecardbot/store"
)

func newBenchCommand(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the service on this machine and database",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newBenchGateCommand(getenv), newBenchPushCommand(getenv))
	return cmd
}

// benchSchoolCode is the school the gate benchmark makes in its scratch database.
const benchSchoolCode = "999901"

// benchConfig is what `bench gate` measures.
type benchConfig struct {
	students, readers int
	date              string
	seed              uint64
	keep              bool
}

func newBenchGateCommand(getenv func(string) string) *cobra.Command {
	var bc benchConfig
	cmd := &cobra.Command{
		Use:   "gate [--students N] [--readers N]",
		Short: "Measure gate events per second through HTTP into the database",
		Long: "bench gate measures the gate events path end to end: real HTTP requests to\n" +
			"POST /api/v1/gate-events, served in this process on 127.0.0.1, stored, classified and fanned\n" +
			"out to deliveries in the configured database (ECARDBOT_DATABASE_URL, or embedded SQLite).\n\n" +
			"It never touches the service's data. On PostgreSQL it works in a schema of its own,\n" +
			"ecardbot_bench_<random>, in the configured database (the role needs CREATE on it), and drops\n" +
			"it at the end; with embedded SQLite it uses a temporary file, not ECARDBOT_DATA_DIR. There it\n" +
			"creates a school, --students pupils with cards, and one guardian per pupil linked on LINE and\n" +
			"subscribed to every notice (every fourth by e-mail too), then plays a school day of the\n" +
			"gate-reader emulator (`ecardbot gate play`) from --readers concurrent readers, each posting\n" +
			"batches of 1,000 taps one after the other. The service's clock is set to the evening of\n" +
			"the day and its staleness limit to 24 hours, so every notice gets its deliveries: the\n" +
			"heaviest work a batch can cause.\n\n" +
			"It prints a progress line, then events/s end to end (from the first request to the last\n" +
			"answer), notices+deliveries/s and the latency of a batch. The default size runs in about a\n" +
			"minute on a 2-core machine with PostgreSQL on it; it writes about a million rows, so on a\n" +
			"shared server run it before going live or at a quiet hour." + envHelp,
		Example: "  ECARDBOT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable ecardbot bench gate\n" +
			"  ecardbot bench gate --students 250000 --readers 8\n" +
			"  ecardbot bench gate --students 5000   # a quick check",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(getenv)
			if err != nil {
				return err
			}
			if bc.students < 1 || bc.readers < 1 {
				return errors.New("--students and --readers must be at least 1")
			}
			if bc.date == "" {
				bc.date = time.Now().In(cfg.Timezone).Format(time.DateOnly)
			}
			return benchGate(cmd.Context(), cfg, bc, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().IntVar(&bc.students, "students", 150_000, "pupils of the benchmark school, each with a card and a guardian")
	cmd.Flags().IntVar(&bc.readers, "readers", 4, "concurrent gate readers posting batches")
	cmd.Flags().StringVar(&bc.date, "date", "", "the school day played, YYYY-MM-DD (default today)")
	cmd.Flags().Uint64Var(&bc.seed, "seed", 1, "seed of the school day")
	cmd.Flags().BoolVar(&bc.keep, "keep", false, "keep the scratch schema or SQLite file and print where it is")
	return cmd
}

func benchGate(ctx context.Context, cfg config.Config, bc benchConfig, stdout, stderr io.Writer) (err error) {
	// The scratch database.
	scfg := store.Config{MaxConns: 2*bc.readers + 2}
	var where string
	if cfg.DatabaseURL != "" {
		scratchURL, schema, drop, err := store.CreateScratchSchema(ctx, cfg.DatabaseURL, "ecardbot_bench")
		if err != nil {
			return err
		}
		scfg.DatabaseURL, where = scratchURL, "PostgreSQL schema "+schema
		if !bc.keep {
			defer func() {
				if derr := drop(context.WithoutCancel(ctx)); err == nil {
					err = derr
				}
			}()
		}
	} else {
		dir, err := os.MkdirTemp("", "ecardbot-bench-")
		if err != nil {
			return err
		}
		scfg.DataDir, where = dir, "SQLite file "+dir+"/"+store.SQLiteFile
		if !bc.keep {
			defer os.RemoveAll(dir)
		}
	}
	db, err := store.Open(ctx, scfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	keepNote := "removed at the end"
	if bc.keep {
		keepNote = "kept"
	}
	fmt.Fprintf(stdout, "bench gate: %d pupils, %d readers, batches of 1,000, %s (%s)\n", bc.students, bc.readers, where, keepNote)

	// A school, its roster and its guardians.
	begin := time.Now()
	schoolSvc := store.NewSchoolService(db)
	if _, _, err := schoolSvc.ImportSchools(ctx, []ecardbot.School{{Code: benchSchoolCode, Name: "壓力測試國小",
		District: "大安區", Level: ecardbot.LevelElementary}}); err != nil {
		return err
	}
	roster := make([]ecardbot.RosterEntry, bc.students)
	subscribers := make([]ecardbot.SubscriberEntry, bc.students)
	pupils := make([]linesim.GatePupil, bc.students)
	for i := range bc.students {
		no, card := fmt.Sprintf("B%07d", i+1), fmt.Sprintf("BE%014X", i+1)
		roster[i] = ecardbot.RosterEntry{Line: i + 2, StudentNo: no, Name: fmt.Sprintf("學生%d", i+1), BirthDate: "2017-01-01",
			NationalIDHash: fmt.Sprintf("bench-%d", i+1), CardUID: card, Grade: "1", Class: "101"}
		subscribers[i] = ecardbot.SubscriberEntry{Line: i + 2, LineUserID: fmt.Sprintf("U%032x", i+1),
			TaipeiPassID: fmt.Sprintf("bench-%d", i+1), SchoolCode: benchSchoolCode, StudentNo: no, Kinds: ecardbot.NoticeKinds}
		if i%4 == 0 {
			subscribers[i].Email = fmt.Sprintf("parent%d@example.com", i+1)
		}
		pupils[i] = linesim.GatePupil{StudentNo: no, Card: card}
	}
	if _, err := store.NewRosterService(db).ImportRoster(ctx, benchSchoolCode, roster); err != nil {
		return err
	}
	rosterTime := time.Since(begin)
	begin = time.Now()
	if _, err := store.NewGuardianService(db).ImportSubscribers(ctx, subscribers,
		ecardbot.SubscriberImportOptions{EmailConfirmed: true}); err != nil {
		return err
	}
	subscribersTime := time.Since(begin)
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	key, hash, err := school.NewKey(secret)
	if err != nil {
		return err
	}
	if err := schoolSvc.AddAPIKey(ctx, benchSchoolCode, hash); err != nil {
		return err
	}
	// As autovacuum would within a minute of the import on a real server.
	if err := db.Analyze(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "setup: roster %s, subscribers %s\n", rosterTime.Round(time.Millisecond), subscribersTime.Round(time.Millisecond))

	day, err := linesim.GenerateDay(pupils, linesim.SchoolDayConfig{Date: bc.date, Location: cfg.Timezone, Seed: bc.seed})
	if err != nil {
		return err
	}
	// The service's clock stands at the evening of the day: every tap is in its past.
	evening, _ := time.ParseInLocation(time.DateOnly, bc.date, cfg.Timezone)
	evening = evening.Add(18 * time.Hour)
	clock := func() time.Time { return evening }

	// The HTTP API, served in this process.
	logger := slog.New(slog.DiscardHandler)
	gate := store.NewGateService(db, store.GateConfig{Location: cfg.Timezone, Now: clock, Staleness: 24 * time.Hour})
	engine, err := server.New(server.Config{Logger: logger, Registry: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	school.NewAPI(school.APIConfig{SecretKey: secret, Location: cfg.Timezone, Now: clock}, gate, logger, nil).Register(engine)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: engine, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	// Each reader takes the taps of its share of the pupils, in upload order.
	queues := make([][]linesim.GateTap, bc.readers)
	for _, t := range day.Taps {
		h := fnv.New32a()
		h.Write([]byte(t.Card))
		r := int(h.Sum32() % uint32(bc.readers))
		queues[r] = append(queues[r], t)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: bc.readers}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}

	var (
		posted    atomic.Int64
		mu        sync.Mutex
		total     linesim.GateResult
		latencies []time.Duration
		wg        sync.WaitGroup
		errOnce   sync.Once
		firstErr  error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	start := time.Now()
	var progress sync.WaitGroup
	progress.Go(func() { benchProgress(stderr, len(day.Taps), &posted, start, done) })
	for _, q := range queues {
		wg.Go(func() {
			reader := linesim.NewGateReader(linesim.GateReaderConfig{URL: "http://" + ln.Addr().String(), Key: key, Client: client})
			for from := 0; from < len(q); from += 1000 {
				batch := q[from:min(from+1000, len(q))]
				t0 := time.Now()
				res, err := reader.PostBatch(ctx, batch)
				d := time.Since(t0)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				posted.Add(int64(len(batch)))
				mu.Lock()
				total.Batches++
				total.Events += res.Events
				total.Accepted += res.Accepted
				total.Duplicates += res.Duplicates
				total.Rejected += res.Rejected
				total.Retries += res.Retries
				latencies = append(latencies, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	progress.Wait()
	if firstErr != nil {
		return firstErr
	}

	counts, err := db.CountGateRows(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	secs := elapsed.Seconds()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Round(time.Millisecond)
	}
	fmt.Fprintf(stdout, "posted %d taps in %d batches in %s: %.0f events/s end to end\n",
		total.Events, total.Batches, elapsed.Round(time.Millisecond), float64(total.Events)/secs)
	fmt.Fprintf(stdout, "  accepted %d, duplicates %d, rejected %d (unknown cards), retries %d\n",
		total.Accepted, total.Duplicates, total.Rejected, total.Retries)
	fmt.Fprintf(stdout, "created %d notices and %d deliveries: %.0f notices+deliveries/s\n",
		counts.Notices, counts.Deliveries, float64(counts.Notices+counts.Deliveries)/secs)
	fmt.Fprintf(stdout, "batch latency: p50 %s, p99 %s, max %s\n", pct(0.50), pct(0.99), pct(1))
	if total.Accepted != int(counts.Events) {
		return fmt.Errorf("the API accepted %d taps but %d are stored", total.Accepted, counts.Events)
	}
	return nil
}

// benchProgress rewrites one line on w every second until done.
func benchProgress(w io.Writer, total int, posted *atomic.Int64, start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintf(w, "\r%d/%d taps posted%-30s\n", posted.Load(), total, "")
			return
		case <-tick.C:
			n := posted.Load()
			fmt.Fprintf(w, "\r%d/%d taps posted, %.0f events/s   ", n, total, float64(n)/time.Since(start).Seconds())
		}
	}
}
