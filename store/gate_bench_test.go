package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
)

// BenchmarkIngest measures Ingest on PostgreSQL (and, for the sandbox, SQLite) with 1,000-event batches over a school of
// 10,000 pupils with two guardians each, both following on LINE and subscribed to every kind.
// Every event makes a notice (the first "in" of a pupil's day, then the first "out") and every
// notice two deliveries, so this is the heaviest batch a reader can send. Run it with e.g.
//
//	go test ./store -run '^$' -bench BenchmarkIngest -benchtime 200x
//
// "sequential" is one reader posting batch after batch; "parallel" is as many concurrent
// posters as GOMAXPROCS×2, as when several schools' readers upload at 07:30.
func BenchmarkIngest(b *testing.B) {
	const (
		students = 10_000
		batch    = 1_000
	)
	for _, bm := range []struct {
		be   backend
		mode string
	}{{backends[1], "sequential"}, {backends[1], "parallel"}, {backends[0], "sequential"}} {
		mode := bm.mode
		b.Run(bm.be.name+"/"+mode, func(b *testing.B) {
			db := MustOpenMigrated(b, bm.be)
			school := MustImportSchool(b, db, "313601")
			entries := make([]ecardbot.RosterEntry, students)
			for i := range entries {
				entries[i] = entry(i+2, fmt.Sprintf("S%05d", i), fmt.Sprintf("C%05d", i))
			}
			MustImportRoster(b, db, "313601", entries...)
			seedGuardians(b, db, school, 2)
			if err := db.gorm.Exec("ANALYZE").Error; err != nil {
				b.Fatal(err)
			}

			// The clock stays at the first tap, so no notice is stale.
			start := time.Date(2026, 9, 1, 7, 0, 0, 0, taipeiZone)
			gate := NewGateService(db, GateConfig{Now: func() time.Time { return start }})

			// Batch n taps 1,000 pupils: block n%10, "in" in the morning for even n/10 and "out"
			// in the afternoon for odd, one school day per 20 batches.
			events := func(n int) []ecardbot.GateEvent {
				block, phase, day := n%10, (n/10)%2, n/20
				at := start.AddDate(0, 0, day)
				dir := ecardbot.DirectionIn
				if phase == 1 {
					at, dir = at.Add(9*time.Hour), ecardbot.DirectionOut
				}
				evs := make([]ecardbot.GateEvent, batch)
				for i := range evs {
					st := block*batch + i
					evs[i] = ecardbot.GateEvent{
						ID: fmt.Sprintf("b%d-%d", n, i), Card: fmt.Sprintf("C%05d", st), Direction: dir,
						At: at.Add(time.Duration(i) * 100 * time.Millisecond), Gate: "north-1",
					}
				}
				return evs
			}
			ctx := context.Background()
			ingest := func(n int) {
				res, err := gate.Ingest(ctx, school, events(n))
				if err != nil {
					b.Error(err)
					return
				}
				if res.Accepted != batch {
					b.Errorf("batch %d: %+v", n, res)
				}
			}

			b.ResetTimer()
			if mode == "sequential" {
				for n := range b.N {
					ingest(n)
				}
			} else {
				b.SetParallelism(2)
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						ingest(int(next.Add(1) - 1))
					}
				})
			}
			b.StopTimer()

			secs := b.Elapsed().Seconds()
			created := count(b, db, "notices") + count(b, db, "deliveries")
			b.ReportMetric(float64(b.N*batch)/secs, "events/s")
			b.ReportMetric(float64(created)/secs, "notices+deliveries/s")
		})
	}
}
