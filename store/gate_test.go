package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// gateFixture is a migrated database with one school, its class and a clock.
type gateFixture struct {
	db     *DB
	gate   *GateService
	school *ecardbot.School
	clock  *testClock
}

func newGateFixture(t *testing.T, b backend, entries ...ecardbot.RosterEntry) *gateFixture {
	t.Helper()
	db := MustOpenMigrated(t, b)
	f := &gateFixture{db: db, school: MustImportSchool(t, db, "313601"), clock: &testClock{t: tp(7, 0, 0)}}
	f.gate = NewGateService(db, GateConfig{Location: taipeiZone, Now: f.clock.Now})
	if len(entries) > 0 {
		MustImportRoster(t, db, "313601", entries...)
	}
	return f
}

// ingest posts events at the given time and fails the test on error.
func (f *gateFixture) ingest(t *testing.T, now time.Time, events ...ecardbot.GateEvent) ecardbot.IngestResult {
	t.Helper()
	f.clock.Set(now)
	res, err := f.gate.Ingest(context.Background(), f.school, events)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

func (f *gateFixture) student(t *testing.T, no string) int64 {
	t.Helper()
	return studentID(t, f.db, f.school, no)
}

func tap(id, card string, dir ecardbot.Direction, at time.Time) ecardbot.GateEvent {
	return ecardbot.GateEvent{ID: id, Card: card, Direction: dir, At: at, Gate: "north-1"}
}

func checkResult(t *testing.T, name string, got ecardbot.IngestResult, want ecardbot.IngestResult) {
	t.Helper()
	if want.Rejected == nil {
		want.Rejected = []ecardbot.Rejection{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: result (-want +got):\n%s", name, diff)
	}
}

func notice(no, kind string, at time.Time, stale bool) noticeView {
	return noticeView{StudentNo: no, Day: testDay, Kind: kind, At: at.UTC(), Stale: stale, HasEvent: true}
}

func checkNotices(t *testing.T, db *DB, want ...noticeView) {
	t.Helper()
	if diff := cmp.Diff(want, listNotices(t, db)); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

const (
	in      = ecardbot.DirectionIn
	out     = ecardbot.DirectionOut
	unknown = ecardbot.DirectionUnknown
)

func TestIngestSchoolDay(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		// One class: 1001 comes and goes; 1002 brushes the out reader right after arriving;
		// 1003 is absent; 1004 is on sick leave; 1005's reader was offline in the morning and
		// uploads late and out of order; 1006 uses a gate that cannot tell direction.
		f := newGateFixture(t, b, entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"),
			entry(5, "1004", "C4"), entry(6, "1005", "C5"), entry(7, "1006", "C6"))
		guardians := map[string]string{}
		for _, no := range []string{"1001", "1002", "1003", "1004", "1005", "1006"} {
			st := f.student(t, no)
			tpID := "tp-" + no
			mustGuardian(t, f.db, seedGuardian{
				taipeiPass: tpID, lineUser: "U" + no, lineRow: true, following: true,
				students: []int64{st}, subs: allSubs(st, ecardbot.ChannelLINE),
			})
			guardians[no] = tpID
		}
		if err := f.gate.RecordLeave(ctx, f.school, "1004", testDay, "sick"); err != nil {
			t.Fatal(err)
		}

		// 07:40: 1001 taps three times within the debounce window.
		got := f.ingest(t, tp(7, 40, 0),
			tap("r1-1", "C1", in, tp(7, 30, 0)), tap("r1-2", "C1", in, tp(7, 30, 20)), tap("r1-3", "C1", in, tp(7, 31, 0)))
		checkResult(t, "07:40", got, ecardbot.IngestResult{Accepted: 3})
		checkNotices(t, f.db, notice("1001", "arrived", tp(7, 30, 0), false))

		// 07:50: 1002 arrives and brushes the out reader a minute later: no 離校.
		got = f.ingest(t, tp(7, 50, 0),
			tap("r1-4", "C2", in, tp(7, 45, 0)), tap("r1-5", "C2", out, tp(7, 46, 0)), tap("r2-1", "C6", unknown, tp(7, 48, 0)))
		checkResult(t, "07:50", got, ecardbot.IngestResult{Accepted: 3})
		checkNotices(t, f.db,
			notice("1001", "arrived", tp(7, 30, 0), false),
			notice("1002", "arrived", tp(7, 45, 0), false),
			notice("1006", "arrived", tp(7, 48, 0), false),
		)

		// 16:10: the afternoon, including 1005's first upload of the day: only its departure.
		got = f.ingest(t, tp(16, 10, 0),
			tap("r1-6", "C1", out, tp(16, 0, 0)), tap("r1-7", "C2", out, tp(15, 50, 0)),
			tap("r3-2", "C5", out, tp(16, 5, 0)), tap("r2-2", "C6", unknown, tp(16, 8, 0)))
		checkResult(t, "16:10", got, ecardbot.IngestResult{Accepted: 4})

		// 16:20: 1005's morning tap, uploaded eight hours late: recorded, not sent.
		got = f.ingest(t, tp(16, 20, 0), tap("r3-1", "C5", in, tp(7, 50, 0)))
		checkResult(t, "16:20", got, ecardbot.IngestResult{Accepted: 1})

		checkNotices(t, f.db,
			notice("1001", "arrived", tp(7, 30, 0), false),
			notice("1001", "left", tp(16, 0, 0), false),
			notice("1002", "arrived", tp(7, 45, 0), false),
			notice("1002", "left", tp(15, 50, 0), false),
			notice("1005", "arrived", tp(7, 50, 0), true),
			notice("1005", "left", tp(16, 5, 0), false),
			notice("1006", "arrived", tp(7, 48, 0), false),
			notice("1006", "left", tp(16, 8, 0), false),
		)
		var want []deliveryView
		for _, d := range []struct{ no, kind string }{
			{"1001", "arrived"}, {"1001", "left"}, {"1002", "arrived"}, {"1002", "left"},
			{"1005", "left"}, {"1006", "arrived"}, {"1006", "left"},
		} {
			want = append(want, deliveryView{d.no, d.kind, guardians[d.no], "line", "pending", 0})
		}
		if diff := cmp.Diff(want, listDeliveries(t, f.db)); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}

		var leaves []struct{ StudentNo, Date, Kind string }
		if err := f.db.gorm.Raw(`SELECT s.student_no, l.date, l.kind FROM leaves l JOIN students s ON s.id = l.student_id`).
			Scan(&leaves).Error; err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]struct{ StudentNo, Date, Kind string }{{"1004", testDay, "sick"}}, leaves); diff != "" {
			t.Errorf("leaves (-want +got):\n%s", diff)
		}
		if n := count(t, f.db, "gate_events"); n != 11 {
			t.Errorf("%d gate events stored, want 11", n)
		}
	})
}

func TestIngest(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()

		t.Run("unknown cards are rejected, the others accepted", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"), entry(3, "1002", "C2"), entry(4, "1003", "C3"))
			MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1"), entry(3, "1002", "C2")) // 1003 leaves
			MustImportSchool(t, f.db, "323602")
			MustImportRoster(t, f.db, "323602", entry(2, "9001", "C9"))

			got := f.ingest(t, tp(7, 40, 0),
				tap("e0", "C1", in, tp(7, 30, 0)),
				tap("e1", "NOPE", in, tp(7, 30, 1)),
				tap("e2", "C2", in, tp(7, 30, 2)),
				tap("e3", "C3", in, tp(7, 30, 3)), // inactive student
				tap("e4", "C9", in, tp(7, 30, 4)), // another school's pupil
			)
			checkResult(t, "batch", got, ecardbot.IngestResult{Accepted: 2, Rejected: []ecardbot.Rejection{
				{Index: 1, Error: "unknown card"}, {Index: 3, Error: "unknown card"}, {Index: 4, Error: "unknown card"},
			}})
			checkNotices(t, f.db, notice("1001", "arrived", tp(7, 30, 0), false), notice("1002", "arrived", tp(7, 30, 2), false))
		})

		t.Run("a resent batch changes nothing", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"), entry(3, "1002", "C2"))
			for _, no := range []string{"1001", "1002"} {
				st := f.student(t, no)
				mustGuardian(t, f.db, seedGuardian{
					taipeiPass: "tp-" + no, lineUser: "U" + no, lineRow: true, following: true,
					email: no + "@example.com", confirmed: true,
					students: []int64{st}, subs: append(allSubs(st, ecardbot.ChannelLINE), allSubs(st, ecardbot.ChannelEmail)...),
				})
			}
			batch := []ecardbot.GateEvent{
				tap("e1", "C1", in, tp(7, 30, 0)), tap("e2", "C2", in, tp(7, 31, 0)),
				tap("e3", "NOPE", in, tp(7, 32, 0)), tap("e4", "C1", out, tp(8, 0, 0)),
				tap("e1", "C1", in, tp(7, 30, 0)), // repeated within the batch
			}
			got := f.ingest(t, tp(8, 5, 0), batch...)
			checkResult(t, "first", got, ecardbot.IngestResult{Accepted: 3, Duplicates: 1,
				Rejected: []ecardbot.Rejection{{Index: 2, Error: "unknown card"}}})
			notices, deliveries := listNotices(t, f.db), listDeliveries(t, f.db)
			if len(notices) != 3 || len(deliveries) != 6 {
				t.Fatalf("%d notices and %d deliveries, want 3 and 6", len(notices), len(deliveries))
			}
			var ids []string
			if err := f.db.gorm.Table("deliveries").Order("id").Pluck("id", &ids).Error; err != nil {
				t.Fatal(err)
			}

			got = f.ingest(t, tp(8, 6, 0), batch...)
			checkResult(t, "resent", got, ecardbot.IngestResult{Duplicates: 4,
				Rejected: []ecardbot.Rejection{{Index: 2, Error: "unknown card"}}})
			if diff := cmp.Diff(notices, listNotices(t, f.db)); diff != "" {
				t.Errorf("notices changed (-before +after):\n%s", diff)
			}
			var after []string
			if err := f.db.gorm.Table("deliveries").Order("id").Pluck("id", &after).Error; err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ids, after); diff != "" {
				t.Errorf("deliveries changed (-before +after):\n%s", diff)
			}
			if n := count(t, f.db, "gate_events"); n != 3 {
				t.Errorf("%d gate events, want 3", n)
			}
		})

		t.Run("fan-out", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"), entry(3, "1002", "C2"))
			st, sibling := f.student(t, "1001"), f.student(t, "1002")
			arrivedOn := func(chs ...ecardbot.Channel) []sub {
				var subs []sub
				for _, ch := range chs {
					subs = append(subs, sub{st, ecardbot.KindArrived, ch})
				}
				return subs
			}
			line, mail := ecardbot.ChannelLINE, ecardbot.ChannelEmail
			seeds := []seedGuardian{
				// Subscribed and reachable on both channels: two deliveries.
				{taipeiPass: "g1-both", lineUser: "U1", lineRow: true, following: true, email: "g1@example.com", confirmed: true,
					students: []int64{st}, subs: arrivedOn(line, mail)},
				// Blocked the bot: no LINE, but e-mail still goes.
				{taipeiPass: "g2-unfollowed", lineUser: "U2", lineRow: true, following: false, email: "g2@example.com", confirmed: true,
					students: []int64{st}, subs: arrivedOn(line, mail)},
				// E-mail address not confirmed yet.
				{taipeiPass: "g3-unconfirmed", email: "g3@example.com", students: []int64{st}, subs: arrivedOn(mail)},
				// Subscribed to 離校 and 未到校 only.
				{taipeiPass: "g4-other-kinds", lineUser: "U4", lineRow: true, following: true, students: []int64{st},
					subs: []sub{{st, ecardbot.KindLeft, line}, {st, ecardbot.KindAbsent, line}}},
				// Guardianship removed; the subscription row remains.
				{taipeiPass: "g5-no-guardianship", lineUser: "U5", lineRow: true, following: true, students: []int64{sibling},
					subs: arrivedOn(line)},
				// Linked to a LINE user we never saw follow.
				{taipeiPass: "g6-no-line-user", lineUser: "U6", email: "g6@example.com", students: []int64{st}, subs: arrivedOn(line, mail)},
				// Not linked to LINE at all, e-mail subscribed but empty.
				{taipeiPass: "g7-unlinked", confirmed: true, students: []int64{st}, subs: arrivedOn(line, mail)},
				// Subscribed to the sibling only.
				{taipeiPass: "g8-sibling", lineUser: "U8", lineRow: true, following: true, students: []int64{st, sibling},
					subs: []sub{{sibling, ecardbot.KindArrived, line}}},
			}
			for _, g := range seeds {
				mustGuardian(t, f.db, g)
			}
			f.ingest(t, tp(7, 40, 0), tap("e1", "C1", in, tp(7, 30, 0)))
			want := []deliveryView{
				{"1001", "arrived", "g1-both", "email", "pending", 0},
				{"1001", "arrived", "g1-both", "line", "pending", 0},
				{"1001", "arrived", "g2-unfollowed", "email", "pending", 0},
			}
			if diff := cmp.Diff(want, listDeliveries(t, f.db)); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}

			// Deleting a guardian deletes what they subscribed to and their deliveries.
			if err := f.db.gorm.Exec(`DELETE FROM guardians WHERE taipeipass_id = ?`, "g1-both").Error; err != nil {
				t.Fatal(err)
			}
			for _, table := range []string{"guardianships", "subscriptions", "deliveries"} {
				var n int64
				if err := f.db.gorm.Raw(`SELECT count(*) FROM ` + table + ` t JOIN guardians g ON true WHERE g.taipeipass_id = 'g1-both'`).
					Scan(&n).Error; err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("%s of a deleted guardian remain", table)
				}
			}
			if n := count(t, f.db, "deliveries"); n != 1 {
				t.Errorf("%d deliveries after deleting a guardian, want 1", n)
			}
		})

		t.Run("stale notice is recorded without deliveries", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"))
			st := f.student(t, "1001")
			mustGuardian(t, f.db, seedGuardian{taipeiPass: "tp", lineUser: "U1", lineRow: true, following: true,
				students: []int64{st}, subs: allSubs(st, ecardbot.ChannelLINE)})
			// Exactly at the limit is still sent; a microsecond older is not.
			f.ingest(t, tp(9, 30, 0), tap("e1", "C1", in, tp(7, 30, 0)))
			f.ingest(t, tp(14, 0, 0).Add(time.Microsecond), tap("e2", "C1", out, tp(12, 0, 0)))
			checkNotices(t, f.db, notice("1001", "arrived", tp(7, 30, 0), false), notice("1001", "left", tp(12, 0, 0), true))
			if diff := cmp.Diff([]deliveryView{{"1001", "arrived", "tp", "line", "pending", 0}}, listDeliveries(t, f.db)); diff != "" {
				t.Errorf("deliveries (-want +got):\n%s", diff)
			}
		})

		t.Run("days are Taipei days", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"))
			// 23:30 UTC on the 26th is 07:30 on the 27th in Taipei; 16:30 UTC on the 27th is
			// already the 28th there.
			f.ingest(t, tp(7, 40, 0),
				tap("e1", "C1", in, time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)))
			f.ingest(t, time.Date(2026, 11, 27, 16, 40, 0, 0, time.UTC),
				tap("e2", "C1", in, time.Date(2026, 11, 27, 16, 30, 0, 0, time.UTC)))
			got := listNotices(t, f.db)
			if len(got) != 2 || got[0].Day != "2026-11-27" || got[1].Day != "2026-11-28" {
				t.Errorf("notices %v, want arrivals on 2026-11-27 and 2026-11-28", got)
			}
		})

		t.Run("invalid events store nothing", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"))
			good := tap("e1", "C1", in, tp(7, 30, 0))
			for _, bad := range []ecardbot.GateEvent{
				tap("e2", "C1", "sideways", tp(7, 31, 0)),
				tap("", "C1", in, tp(7, 31, 0)),
				tap("e2", "", in, tp(7, 31, 0)),
				tap("e2", "C1", in, time.Time{}),
			} {
				_, err := f.gate.Ingest(ctx, f.school, []ecardbot.GateEvent{good, bad})
				if code := ecardbot.ErrorCode(err); code != ecardbot.EINVALID {
					t.Errorf("Ingest(%+v): err = %v, want code %s", bad, err, ecardbot.EINVALID)
				}
			}
			if _, err := f.gate.Ingest(ctx, nil, []ecardbot.GateEvent{good}); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("Ingest(nil school): err = %v, want code %s", err, ecardbot.EINVALID)
			}
			if n := count(t, f.db, "gate_events"); n != 0 {
				t.Errorf("%d events stored from invalid batches", n)
			}
			got := f.ingest(t, tp(7, 40, 0))
			checkResult(t, "empty batch", got, ecardbot.IngestResult{})
		})

		t.Run("record leave", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"), entry(3, "1002", "C2"))
			MustImportRoster(t, f.db, "313601", entry(2, "1001", "C1")) // 1002 leaves
			if err := f.gate.RecordLeave(ctx, f.school, "1001", testDay, "sick"); err != nil {
				t.Fatal(err)
			}
			if err := f.gate.RecordLeave(ctx, f.school, "1001", testDay, "personal"); err != nil {
				t.Fatalf("second RecordLeave for the day: %v", err)
			}
			if err := f.gate.RecordLeave(ctx, f.school, "1001", "2026-11-30", "sick"); err != nil {
				t.Fatal(err)
			}
			var kinds []string
			if err := f.db.gorm.Table("leaves").Order("date").Pluck("kind", &kinds).Error; err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"personal", "sick"}, kinds); diff != "" {
				t.Errorf("leave kinds (-want +got):\n%s", diff)
			}
			for _, tt := range []struct {
				no, date, kind, code string
			}{
				{"9999", testDay, "sick", ecardbot.ENOTFOUND},
				{"1002", testDay, "sick", ecardbot.ENOTFOUND}, // no longer on the roster
				{"1001", "2026-11-31", "sick", ecardbot.EINVALID},
				{"1001", "27/11/2026", "sick", ecardbot.EINVALID},
				{"1001", testDay, "", ecardbot.EINVALID},
			} {
				err := f.gate.RecordLeave(ctx, f.school, tt.no, tt.date, tt.kind)
				if code := ecardbot.ErrorCode(err); code != tt.code {
					t.Errorf("RecordLeave(%s, %s, %q): err = %v, want code %s", tt.no, tt.date, tt.kind, err, tt.code)
				}
			}
			other := MustImportSchool(t, f.db, "323602")
			if err := f.gate.RecordLeave(ctx, other, "1001", testDay, "sick"); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("RecordLeave for another school's pupil: err = %v, want code %s", err, ecardbot.ENOTFOUND)
			}
		})

		t.Run("a failure late in the transaction stores nothing", func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, b, entry(2, "1001", "C1"))
			st := f.student(t, "1001")
			mustGuardian(t, f.db, seedGuardian{taipeiPass: "tp", lineUser: "U1", lineRow: true, following: true,
				students: []int64{st}, subs: allSubs(st, ecardbot.ChannelLINE)})
			// The last statement, inserting the deliveries, fails.
			if err := f.db.gorm.Exec(`DROP TABLE deliveries`).Error; err != nil {
				t.Fatal(err)
			}
			f.clock.Set(tp(7, 40, 0))
			_, err := f.gate.Ingest(ctx, f.school, []ecardbot.GateEvent{tap("e1", "C1", in, tp(7, 30, 0))})
			if err == nil {
				t.Fatal("Ingest succeeded without a deliveries table")
			}
			// The database is up: a broken statement is a bug, not an outage to retry.
			if code := ecardbot.ErrorCode(err); code != ecardbot.EINTERNAL {
				t.Errorf("err = %v, want code %s", err, ecardbot.EINTERNAL)
			}
			for _, table := range []string{"gate_events", "notices"} {
				if n := count(t, f.db, table); n != 0 {
					t.Errorf("%d rows left in %s", n, table)
				}
			}
		})

		t.Run("database closed", func(t *testing.T) {
			t.Parallel()
			db, err := Open(ctx, b.newConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			school := MustImportSchool(t, db, "313601")
			MustImportRoster(t, db, "313601", entry(2, "1001", "C1"))
			gate := NewGateService(db, GateConfig{})
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = gate.Ingest(ctx, school, []ecardbot.GateEvent{tap("e1", "C1", in, tp(7, 30, 0))})
			if code := ecardbot.ErrorCode(err); code != ecardbot.EUNAVAILABLE {
				t.Errorf("Ingest: err = %v, want code %s", err, ecardbot.EUNAVAILABLE)
			}
			if _, err := gate.AuthenticateSchool(ctx, "hash"); ecardbot.ErrorCode(err) != ecardbot.EUNAVAILABLE {
				t.Errorf("AuthenticateSchool: err = %v, want code %s", err, ecardbot.EUNAVAILABLE)
			}
			if err := gate.RecordLeave(ctx, school, "1001", testDay, "sick"); ecardbot.ErrorCode(err) != ecardbot.EUNAVAILABLE {
				t.Errorf("RecordLeave: err = %v, want code %s", err, ecardbot.EUNAVAILABLE)
			}
		})
	})
}

// TestIngestConcurrent posts the same batch from eight replicas at once; each notice and each
// delivery must exist exactly once. PostgreSQL only: SQLite runs one transaction at a time.
func TestIngestConcurrent(t *testing.T) {
	t.Parallel()
	b := backends[1]
	if b.name != DialectPostgres {
		t.Fatal("backends[1] is not PostgreSQL")
	}

	t.Run("same batch from eight replicas", func(t *testing.T) {
		t.Parallel()
		const students = 500
		f := newConcurrentFixture(t, b, students)
		var batch []ecardbot.GateEvent
		for i := range students {
			card := fmt.Sprintf("C%04d", i)
			batch = append(batch,
				tap(fmt.Sprintf("in-%d", i), card, in, tp(7, 30, i%60)),
				tap(fmt.Sprintf("out-%d", i), card, out, tp(9, 0, i%60)))
		}
		f.clock.Set(tp(9, 30, 0))

		const replicas = 8
		results := make([]ecardbot.IngestResult, replicas)
		errs := make([]error, replicas)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for r := range replicas {
			wg.Go(func() {
				<-start
				results[r], errs[r] = f.gate.Ingest(context.Background(), f.school, batch)
			})
		}
		close(start)
		wg.Wait()
		var accepted, duplicates int
		for r := range replicas {
			if errs[r] != nil {
				t.Fatalf("replica %d: %v", r, errs[r])
			}
			accepted += results[r].Accepted
			duplicates += results[r].Duplicates
		}
		if accepted != len(batch) || duplicates != (replicas-1)*len(batch) {
			t.Errorf("accepted %d and duplicates %d in total, want %d and %d", accepted, duplicates, len(batch), (replicas-1)*len(batch))
		}
		checkExactlyOnce(t, f.db, 2*students, 2*2*students)
	})

	// Two readers of one gate upload at once, one with the arrivals and one with early
	// departures (before the earliest-leave time, so 離校 only because of the arrival). Each
	// transaction must see the other's taps.
	t.Run("one pupil's taps in concurrent batches", func(t *testing.T) {
		t.Parallel()
		const students = 300
		f := newConcurrentFixture(t, b, students)
		var arrivals, departures []ecardbot.GateEvent
		for i := range students {
			card := fmt.Sprintf("C%04d", i)
			arrivals = append(arrivals, tap(fmt.Sprintf("in-%d", i), card, in, tp(9, 0, 0)))
			departures = append(departures, tap(fmt.Sprintf("out-%d", i), card, out, tp(10, 0, 0)))
		}
		f.clock.Set(tp(10, 30, 0))
		for round := range 3 {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			for i, batch := range [][]ecardbot.GateEvent{arrivals, departures} {
				wg.Go(func() {
					<-start
					_, errs[i] = f.gate.Ingest(context.Background(), f.school, batch)
				})
			}
			close(start)
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if round == 0 {
				checkExactlyOnce(t, f.db, 2*students, 2*2*students)
			}
		}
		checkExactlyOnce(t, f.db, 2*students, 2*2*students)
	})
}

// newConcurrentFixture has students pupils with cards C0000…, each with two guardians
// subscribed to everything on LINE.
func newConcurrentFixture(t *testing.T, b backend, students int) *gateFixture {
	t.Helper()
	var entries []ecardbot.RosterEntry
	for i := range students {
		entries = append(entries, entry(i+2, fmt.Sprintf("S%04d", i), fmt.Sprintf("C%04d", i)))
	}
	f := newGateFixture(t, b, entries...)
	seedGuardians(t, f.db, f.school, 2)
	return f
}

// seedGuardians gives every active student of the school perStudent guardians, each following
// on LINE and subscribed to every kind there, in a few statements.
func seedGuardians(tb testing.TB, db *DB, school *ecardbot.School, perStudent int) {
	tb.Helper()
	now := db.timeArg(seedNow)
	for g := range perStudent {
		suffix := fmt.Sprintf("-g%d", g)
		for _, st := range []struct {
			q    string
			args []any
		}{
			{`INSERT INTO line_users (id, following, language, state_at, created_at, updated_at)
SELECT 'U' || id || ?, ?, 'zh-TW', ?, ?, ? FROM students WHERE school_id = ?`,
				[]any{suffix, true, now, now, now, school.ID}},
			{`INSERT INTO guardians (taipeipass_id, line_user_id, email, language, created_at, updated_at)
SELECT 'tp' || id || ?, 'U' || id || ?, '', 'zh-TW', ?, ? FROM students WHERE school_id = ?`,
				[]any{suffix, suffix, now, now, school.ID}},
			{`INSERT INTO guardianships (guardian_id, student_id, created_at)
SELECT g.id, s.id, ? FROM students s JOIN guardians g ON g.taipeipass_id = 'tp' || s.id || ? WHERE s.school_id = ?`,
				[]any{now, suffix, school.ID}},
			{`INSERT INTO subscriptions (guardian_id, student_id, kind, channel)
SELECT g.id, s.id, k.kind, 'line' FROM students s JOIN guardians g ON g.taipeipass_id = 'tp' || s.id || ?
JOIN (SELECT 'arrived' AS kind UNION ALL SELECT 'left' UNION ALL SELECT 'absent') k ON true WHERE s.school_id = ?`,
				[]any{suffix, school.ID}},
		} {
			if err := db.gorm.Exec(st.q, st.args...).Error; err != nil {
				tb.Fatalf("seed guardians: %v", err)
			}
		}
	}
}

// checkExactlyOnce checks the number of notices and deliveries and that none is doubled.
func checkExactlyOnce(t *testing.T, db *DB, notices, deliveries int64) {
	t.Helper()
	if n := count(t, db, "notices"); n != notices {
		t.Errorf("%d notices, want %d", n, notices)
	}
	if n := count(t, db, "deliveries"); n != deliveries {
		t.Errorf("%d deliveries, want %d", n, deliveries)
	}
	var doubled int64
	if err := db.gorm.Raw(`SELECT count(*) FROM (SELECT notice_id, guardian_id, channel FROM deliveries
GROUP BY notice_id, guardian_id, channel HAVING count(*) > 1) d`).Scan(&doubled).Error; err != nil {
		t.Fatal(err)
	}
	if doubled != 0 {
		t.Errorf("%d (notice, guardian, channel) with more than one delivery", doubled)
	}
}
