package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

func TestRetention(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		f := newSweepFixture(t, b)
		MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"), entry(3, "1002", "C2"))
		for _, no := range []string{"1001", "1002"} {
			st := studentID(t, f.db, f.songshan, no)
			mustGuardian(t, f.db, seedGuardian{taipeiPass: "g-" + no, lineUser: "U" + no, lineRow: true, following: true,
				email: no + "@example.com", confirmed: true,
				students: []int64{st}, subs: append(allSubs(st, ecardbot.ChannelLINE), allSubs(st, ecardbot.ChannelEmail)...)})
		}
		// Three school days: two older than the limit, one on it (kept), and today. On each,
		// 1001 comes and goes and 1002 is absent: 2 events, 3 notices, 6 deliveries a day.
		days := []string{"2026-05-04", "2026-05-29", "2026-06-01", testDay}
		for _, day := range days {
			f.ingest(t, at(t, day, 7, 40, 0), tap(day+"-in", "C1", in, at(t, day, 7, 30, 0)))
			f.sweep(t, at(t, day, 8, 30, 0), f.songshan, day)
			f.ingest(t, at(t, day, 16, 10, 0), tap(day+"-out", "C1", out, at(t, day, 16, 0, 0)))
			if err := f.gate.RecordLeave(ctx, f.songshan, "1002", day, "sick"); err != nil { // after the sweep
				t.Fatal(err)
			}
		}
		if n := count(t, f.db, "deliveries"); n != 6*int64(len(days)) {
			t.Fatalf("%d deliveries seeded, want %d", n, 6*len(days))
		}

		// A batch of one row exercises the loops; a batch smaller than a day's rows proves
		// that no run stops after its first batch.
		small := NewRetentionService(f.db, RetentionConfig{Batch: 1})
		got, err := small.PurgeBefore(ctx, "2026-06-01")
		if err != nil {
			t.Fatal(err)
		}
		want := ecardbot.RetentionResult{Before: "2026-06-01", GateEvents: 4, Notices: 6, Deliveries: 12, Leaves: 2, SweepRuns: 2}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("PurgeBefore (-want +got):\n%s", diff)
		}
		for table, column := range map[string]string{"gate_events": "day", "notices": "day", "leaves": "date", "sweep_runs": "day"} {
			var kept []string
			if err := f.db.gorm.Raw(`SELECT DISTINCT ` + column + ` FROM ` + table + ` ORDER BY 1`).Scan(&kept).Error; err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"2026-06-01", testDay}, kept); diff != "" {
				t.Errorf("%s kept (-want +got):\n%s", table, diff)
			}
		}
		if n := count(t, f.db, "deliveries"); n != 12 {
			t.Errorf("%d deliveries left, want 12", n)
		}
		// Students, guardians and schools are not the job's business.
		if count(t, f.db, "students") != 2 || count(t, f.db, "guardians") != 2 || count(t, f.db, "subscriptions") != 12 {
			t.Error("retention deleted more than events, notices, deliveries, leaves and sweep runs")
		}

		again, err := NewRetentionService(f.db, RetentionConfig{}).PurgeBefore(ctx, "2026-06-01")
		if err != nil || again != (ecardbot.RetentionResult{Before: "2026-06-01"}) {
			t.Errorf("second run: %+v, %v; want nothing deleted", again, err)
		}
		if _, err := small.PurgeBefore(ctx, "June"); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
			t.Errorf("bad date: %v, want EINVALID", err)
		}
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := small.PurgeBefore(canceled, "2026-12-31"); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled: %v", err)
		}
		if n := count(t, f.db, "notices"); n != 6 {
			t.Errorf("a canceled run deleted notices: %d left, want 6", n)
		}
	})
}

// TestRetentionExpiredSettingsRows: links, sessions and confirmations past their expiry and
// failed 歸戶 attempts older than a day go; live ones stay.
func TestRetentionExpiredSettingsRows(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		g := mustGuardian(t, db, seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true})
		settings := NewSettingsService(db)
		now := time.Now()
		long, past := now.Add(-48*time.Hour), now.Add(-time.Minute)
		for i, expires := range []time.Time{past, now.Add(time.Hour)} {
			tok := fmt.Sprint("token-", i)
			if err := settings.CreateSettingsLink(ctx, tok, g, ecardbot.SettingsHome, long, expires); err != nil {
				t.Fatal(err)
			}
			if err := settings.CreateSession(ctx, tok, ecardbot.SettingsSession{GuardianID: g, CSRFSecret: "s", ExpiresAt: expires}, long); err != nil {
				t.Fatal(err)
			}
			if err := settings.CreateEmailConfirmation(ctx, tok, g, "a@example.com", long, expires); err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range []time.Time{long, past} {
			if err := db.gorm.Exec(`INSERT INTO settings_attempts (guardian_id, at) VALUES (?, ?)`, g, db.timeArg(at)).Error; err != nil {
				t.Fatal(err)
			}
		}
		res, err := NewRetentionService(db, RetentionConfig{}).PurgeBefore(ctx, "2020-01-01")
		if err != nil {
			t.Fatal(err)
		}
		if res.Expired != 4 {
			t.Errorf("Expired = %d, want 4 (a link, a session, a confirmation, an attempt)", res.Expired)
		}
		for _, table := range []string{"settings_links", "settings_sessions", "email_confirmations", "settings_attempts"} {
			var n int64
			if err := db.gorm.Raw(`SELECT count(*) FROM ` + table).Scan(&n).Error; err != nil || n != 1 {
				t.Errorf("%s keeps %d rows, %v; want the live one", table, n, err)
			}
		}
	})
}
