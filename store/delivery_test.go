package store

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taipei-doit/ecardbot"
)

// seedDelivery creates a school, a student, a guardian g of the student and one pending
// delivery on channel for a new arrival notice, and returns the delivery's id.
func seedDelivery(tb testing.TB, db *DB, g seedGuardian, channel ecardbot.Channel) string {
	tb.Helper()
	school := MustImportSchool(tb, db, "313601")
	MustImportRoster(tb, db, "313601", entry(2, "S1", "CARD1"))
	st := studentID(tb, db, school, "S1")
	g.students = append(g.students, st)
	gid := mustGuardian(tb, db, g)
	now := db.timeArg(seedNow)
	var notice int64
	err := db.gorm.Raw(`INSERT INTO notices (student_id, day, kind, at, stale, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		st, "2026-11-01", string(ecardbot.KindArrived), now, false, now).Scan(&notice).Error
	if err != nil {
		tb.Fatalf("insert notice: %v", err)
	}
	id := uuid.NewString()
	err = db.gorm.Exec(`INSERT INTO deliveries (id, notice_id, guardian_id, channel, state, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)`,
		id, notice, gid, string(channel), ecardbot.DeliveryPending, now, now).Error
	if err != nil {
		tb.Fatalf("insert delivery: %v", err)
	}
	return id
}

// copyDelivery adds a delivery of the notice of delivery from, in the same state, on channel,
// to guardian (0: from's guardian), and returns its id.
func copyDelivery(tb testing.TB, db *DB, from string, channel ecardbot.Channel, guardian int64) string {
	tb.Helper()
	id := uuid.NewString()
	err := db.gorm.Exec(`INSERT INTO deliveries (id, notice_id, guardian_id, channel, state, attempts, created_at, updated_at)
SELECT ?, notice_id, COALESCE(?, guardian_id), ?, state, 0, created_at, updated_at FROM deliveries WHERE id = ?`,
		id, sql.NullInt64{Int64: guardian, Valid: guardian != 0}, string(channel), from).Error
	if err != nil {
		tb.Fatalf("copy delivery: %v", err)
	}
	return id
}

const testLineUser = "U00000000000000000000000000000001"

func TestDeliveryLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		id := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true}, ecardbot.ChannelLINE)

		ids, err := svc.PendingBatch(ctx, 10)
		if err != nil || len(ids) != 1 || ids[0] != (ecardbot.PendingDelivery{ID: id, Channel: ecardbot.ChannelLINE}) {
			t.Fatalf("PendingBatch = %v, %v; want [%s]", ids, err, id)
		}
		d, err := svc.Detail(ctx, id)
		if err != nil {
			t.Fatalf("Detail: %v", err)
		}
		if !d.Reachable || d.State != ecardbot.DeliveryPending || d.ChildName == "" || d.SchoolName == "" ||
			d.LineUserID != testLineUser || d.Kind != ecardbot.KindArrived || !d.CreatedAt.Equal(seedNow) || !d.At.Equal(seedNow) {
			t.Errorf("Detail = %+v", d)
		}
		if err := svc.MarkQueued(ctx, []string{id}); err != nil {
			t.Fatal(err)
		}
		if ids, _ := svc.PendingBatch(ctx, 10); len(ids) != 0 {
			t.Errorf("PendingBatch after MarkQueued = %v", ids)
		}
		if err := svc.MarkRetry(ctx, id, "status 500"); err != nil {
			t.Fatal(err)
		}
		if err := svc.MarkSent(ctx, id, "req-1"); err != nil {
			t.Fatal(err)
		}
		// A sent delivery never goes back, and keeps its first request id.
		for _, f := range []func() error{
			func() error { return svc.MarkQueued(ctx, []string{id}) },
			func() error { return svc.MarkRetry(ctx, id, "x") },
			func() error { return svc.MarkDead(ctx, id, "x") },
			func() error { return svc.MarkSent(ctx, id, "req-2") },
		} {
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := svc.Replay(ctx, []string{id}); err != nil || n != 0 {
			t.Errorf("Replay of a sent delivery = %d, %v", n, err)
		}
		d, _ = svc.Detail(ctx, id)
		if d.State != ecardbot.DeliverySent || d.Attempts != 1 {
			t.Errorf("after sent: %+v", d)
		}
		var reqID string
		db.gorm.Raw(`SELECT line_request_id FROM deliveries WHERE id = ?`, id).Scan(&reqID)
		if reqID != "req-1" {
			t.Errorf("line_request_id = %q, want req-1", reqID)
		}

		if _, err := svc.Detail(ctx, uuid.NewString()); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Errorf("Detail of unknown = %v, want ENOTFOUND", err)
		}
	})
}

func TestDeliveryDeadAndReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		id := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: false}, ecardbot.ChannelLINE)

		d, err := svc.Detail(ctx, id)
		if err != nil || d.Reachable {
			t.Fatalf("Detail of an unfollowed guardian = %+v, %v; want unreachable", d, err)
		}
		if err := svc.MarkRetry(ctx, id, "boom"); err != nil {
			t.Fatal(err)
		}
		if err := svc.MarkDead(ctx, id, "Failed to send messages"); err != nil {
			t.Fatal(err)
		}
		dead, err := svc.ListDead(ctx, 10)
		if err != nil || len(dead) != 1 || dead[0].ID != id || dead[0].DeadReason != "Failed to send messages" || dead[0].Attempts != 1 || dead[0].LastError != "boom" {
			t.Fatalf("ListDead = %+v, %v", dead, err)
		}
		if n, err := svc.Replay(ctx, []string{id}); err != nil || n != 1 {
			t.Fatalf("Replay = %d, %v", n, err)
		}
		if n, _ := svc.Replay(ctx, []string{id}); n != 0 {
			t.Errorf("second Replay moved %d", n)
		}
		d, _ = svc.Detail(ctx, id)
		if d.State != ecardbot.DeliveryPending || d.Attempts != 1 {
			t.Errorf("after replay: %+v", d)
		}
		if dead, _ := svc.ListDead(ctx, 10); len(dead) != 0 {
			t.Errorf("ListDead after replay = %+v", dead)
		}
	})
}

func TestDeliveryEmailReachable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		id := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", email: "a@example.com", confirmed: true}, ecardbot.ChannelEmail)
		d, err := svc.Detail(ctx, id)
		if err != nil || !d.Reachable || d.Email != "a@example.com" {
			t.Fatalf("Detail = %+v, %v", d, err)
		}
		// Ending the guardianship makes it unreachable at once.
		if err := db.gorm.Exec(`DELETE FROM guardianships`).Error; err != nil {
			t.Fatal(err)
		}
		d, err = svc.Detail(ctx, id)
		if err != nil || d.Reachable {
			t.Fatalf("Detail without guardianship = %+v, %v", d, err)
		}
	})
}

func TestDeliveryMarkCancelled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		id := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", email: "a@example.com", confirmed: false}, ecardbot.ChannelEmail)
		if err := svc.MarkCancelled(ctx, id, "e-mail address not confirmed"); err != nil {
			t.Fatal(err)
		}
		// Cancelled is final: neither sent nor replayed afterwards.
		if err := svc.MarkSent(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		if n, err := svc.Replay(ctx, []string{id}); err != nil || n != 0 {
			t.Errorf("Replay of a cancelled delivery = %d, %v", n, err)
		}
		var got struct {
			State      string
			DeadReason string
		}
		db.gorm.Raw(`SELECT state, dead_reason FROM deliveries WHERE id = ?`, id).Scan(&got)
		if got.State != ecardbot.DeliveryCancelled || got.DeadReason != "e-mail address not confirmed" {
			t.Errorf("after MarkCancelled: %+v", got)
		}
	})
}

func TestDeliveryReplaceWithEmail(t *testing.T) {
	withMail := seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true, email: "a@example.com", confirmed: true}
	tests := []struct {
		name         string
		guardian     seedGuardian
		emailState   string // the notice's e-mail delivery to the guardian before the call; "" none
		lineState    string // the LINE delivery's state before the call
		wantReplaced bool
	}{
		{name: "confirmed address", guardian: withMail, lineState: ecardbot.DeliveryQueued, wantReplaced: true},
		{name: "e-mail delivery pending already", guardian: withMail, emailState: ecardbot.DeliveryPending, lineState: ecardbot.DeliveryQueued, wantReplaced: true},
		{name: "e-mail delivery sent already", guardian: withMail, emailState: ecardbot.DeliverySent, lineState: ecardbot.DeliveryPending, wantReplaced: true},
		{name: "e-mail delivery dead", guardian: withMail, emailState: ecardbot.DeliveryDead, lineState: ecardbot.DeliveryQueued},
		{name: "LINE delivery already sent", guardian: withMail, lineState: ecardbot.DeliverySent},
		{name: "no address", guardian: seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true}, lineState: ecardbot.DeliveryQueued},
		{name: "unconfirmed address", guardian: seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true, email: "a@example.com"}, lineState: ecardbot.DeliveryQueued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				ctx := context.Background()
				db := MustOpenMigrated(t, b)
				svc := NewDeliveryService(db)
				lineID := seedDelivery(t, db, tt.guardian, ecardbot.ChannelLINE)
				exec := func(q string, args ...any) {
					t.Helper()
					if err := db.gorm.Exec(q, args...).Error; err != nil {
						t.Fatal(err)
					}
				}
				exec(`UPDATE deliveries SET state = ? WHERE id = ?`, tt.lineState, lineID)
				existing := ""
				if tt.emailState != "" {
					existing = uuid.NewString()
					exec(`INSERT INTO deliveries (id, notice_id, guardian_id, channel, state, attempts, created_at, updated_at)
SELECT ?, notice_id, guardian_id, 'email', ?, 0, created_at, updated_at FROM deliveries WHERE id = ?`, existing, tt.emailState, lineID)
				}

				emailID, replaced, err := svc.ReplaceWithEmail(ctx, lineID)
				if err != nil || replaced != tt.wantReplaced || (emailID != "") != tt.wantReplaced {
					t.Fatalf("ReplaceWithEmail = %q, %v, %v; want replaced %v", emailID, replaced, err, tt.wantReplaced)
				}
				lineAfter, err := svc.Detail(ctx, lineID)
				if err != nil {
					t.Fatal(err)
				}
				var emails []struct{ ID, State string }
				db.gorm.Raw(`SELECT id, state FROM deliveries WHERE channel = 'email'`).Scan(&emails)
				if !tt.wantReplaced {
					if lineAfter.State != tt.lineState {
						t.Errorf("LINE delivery %s, want it left %s", lineAfter.State, tt.lineState)
					}
					if want := map[bool]int{false: 0, true: 1}[existing != ""]; len(emails) != want {
						t.Errorf("e-mail deliveries %+v, want %d", emails, want)
					}
					return
				}
				if lineAfter.State != ecardbot.DeliveryCancelled {
					t.Errorf("LINE delivery %s, want cancelled", lineAfter.State)
				}
				var reason string
				db.gorm.Raw(`SELECT dead_reason FROM deliveries WHERE id = ?`, lineID).Scan(&reason)
				if reason != ReplacedByEmail {
					t.Errorf("LINE dead_reason %q", reason)
				}
				if len(emails) != 1 || emails[0].ID != emailID || (existing != "" && emailID != existing) {
					t.Fatalf("e-mail deliveries %+v, ReplaceWithEmail gave %s (existing %q)", emails, emailID, existing)
				}
				d, err := svc.Detail(ctx, emailID)
				if err != nil || d.Channel != ecardbot.ChannelEmail || !d.Reachable || d.GuardianID != lineAfter.GuardianID ||
					d.StudentID != lineAfter.StudentID || d.Kind != lineAfter.Kind || (existing == "" && d.State != ecardbot.DeliveryPending) {
					t.Errorf("e-mail delivery %+v, %v", d, err)
				}
				// Idempotent: the LINE delivery is cancelled now, so a second call changes nothing.
				if id, replaced, err := svc.ReplaceWithEmail(ctx, lineID); err != nil || replaced || id != "" {
					t.Errorf("second ReplaceWithEmail = %q, %v, %v", id, replaced, err)
				}
				var n int64
				db.gorm.Raw(`SELECT COUNT(*) FROM deliveries WHERE channel = 'email'`).Scan(&n)
				if n != 1 {
					t.Errorf("%d e-mail deliveries after two calls, want 1", n)
				}
			})
		})
	}
	t.Run("errors", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, b backend) {
			ctx := context.Background()
			db := MustOpenMigrated(t, b)
			svc := NewDeliveryService(db)
			emailID := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", email: "a@example.com", confirmed: true}, ecardbot.ChannelEmail)
			if _, _, err := svc.ReplaceWithEmail(ctx, uuid.NewString()); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("unknown delivery: %v, want ENOTFOUND", err)
			}
			if _, _, err := svc.ReplaceWithEmail(ctx, emailID); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("e-mail delivery: %v, want EINVALID", err)
			}
		})
	})
}

// TestDeliveryClaimStaleQueued: a delivery queued and then left alone is claimed once per
// period; pending, sent and freshly touched ones are not.
func TestDeliveryClaimStaleQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		now := seedNow
		svc.now = func() time.Time { return now }
		id := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true}, ecardbot.ChannelLINE)

		claim := func(olderThan time.Time) []ecardbot.PendingDelivery {
			t.Helper()
			got, err := svc.ClaimStaleQueued(ctx, olderThan, 10)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := claim(now.Add(time.Hour)); len(got) != 0 {
			t.Errorf("a pending delivery was claimed as stale queued: %v", got)
		}
		if err := svc.MarkQueued(ctx, []string{id}); err != nil {
			t.Fatal(err)
		}
		if got := claim(now.Add(-time.Minute)); len(got) != 0 {
			t.Errorf("a delivery queued just now was claimed: %v", got)
		}
		now = now.Add(11 * time.Minute)
		want := []ecardbot.PendingDelivery{{ID: id, Channel: ecardbot.ChannelLINE}}
		if got := claim(now.Add(-10 * time.Minute)); !slices.Equal(got, want) {
			t.Fatalf("ClaimStaleQueued = %v, want %v", got, want)
		}
		if got := claim(now.Add(-10 * time.Minute)); len(got) != 0 {
			t.Errorf("claimed twice in one period: %v", got)
		}
		now = now.Add(11 * time.Minute)
		if err := svc.MarkSent(ctx, id, "req-1"); err != nil {
			t.Fatal(err)
		}
		if got := claim(now); len(got) != 0 {
			t.Errorf("a sent delivery was claimed: %v", got)
		}
	})
}

// TestDeliveryMarkSentBatch: each delivery of a batch gets its own request ID; one already sent
// keeps its first, and an unknown ID changes nothing.
func TestDeliveryMarkSentBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		a := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true}, ecardbot.ChannelLINE)
		bID := copyDelivery(t, db, a, ecardbot.ChannelEmail, 0) // the same notice by e-mail
		if err := svc.MarkSent(ctx, bID, "first"); err != nil {
			t.Fatal(err)
		}
		if err := svc.MarkSentBatch(ctx, []ecardbot.SentMark{{ID: a, LineRequestID: "req-a"}, {ID: bID, LineRequestID: "second"}, {ID: uuid.NewString(), LineRequestID: "x"}}); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]string{a: "req-a", bID: "first"} {
			var got struct {
				State         string
				LineRequestID string
			}
			if err := db.gorm.Raw(`SELECT state, line_request_id FROM deliveries WHERE id = ?`, id).Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got.State != ecardbot.DeliverySent || got.LineRequestID != want {
				t.Errorf("delivery %s: %+v, want sent with %q", id, got, want)
			}
		}
	})
}

// TestDeliveryDetails reads several deliveries in one call: each as Detail reads it, an unknown
// one left out; and more than a SQLite chunk of IDs.
func TestDeliveryDetails(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		line := seedDelivery(t, db, seedGuardian{taipeiPass: "tp1", lineUser: testLineUser, lineRow: true, following: true}, ecardbot.ChannelLINE)
		email := copyDelivery(t, db, line, ecardbot.ChannelEmail, 0) // the same notice by e-mail, to an unconfirmed address
		ids := []string{email, uuid.NewString(), line}
		for range maxParams {
			ids = append(ids, uuid.NewString())
		}
		got, err := svc.Details(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("Details returned %d deliveries, want 2: %+v", len(got), got)
		}
		for _, d := range got {
			one, err := svc.Detail(ctx, d.ID)
			if err != nil || one != d {
				t.Errorf("Details gave %+v; Detail gives %+v, %v", d, one, err)
			}
			if want := d.ID == line; d.Reachable != want || (d.Channel == ecardbot.ChannelLINE) != want {
				t.Errorf("delivery %s: channel %s reachable %v", d.ID, d.Channel, d.Reachable)
			}
			if d.ChildName == "" || d.SchoolName == "" || !d.CreatedAt.Equal(seedNow) || d.CreatedAt.Location() != time.UTC {
				t.Errorf("delivery %s: %+v", d.ID, d)
			}
		}
		if got, err := svc.Details(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("Details(nil) = %v, %v", got, err)
		}
	})
}

// TestDeliveryMarksDoNotDeadlock: the relay marks a batch queued, or claims stale deliveries, while
// workers mark the same deliveries sent, in another order. Neither statement may fail: on
// PostgreSQL, two UPDATEs that lock the same rows in opposite orders abort one of them as a
// deadlock, and a sent mark so lost makes the delivery go to LINE once more.
func TestDeliveryMarksDoNotDeadlock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		svc := NewDeliveryService(db)
		first := seedDelivery(t, db, seedGuardian{taipeiPass: "tp0"}, ecardbot.ChannelLINE)
		ids := []string{first}
		for i := range 300 {
			g := mustGuardian(t, db, seedGuardian{taipeiPass: "tp" + strconv.Itoa(i+1)})
			ids = append(ids, copyDelivery(t, db, first, ecardbot.ChannelLINE, g))
		}
		marks := make([]ecardbot.SentMark, len(ids))
		for i, id := range ids {
			marks[len(ids)-1-i] = ecardbot.SentMark{ID: id, LineRequestID: "r"}
		}
		for round := range 20 {
			if err := db.gorm.Exec(`UPDATE deliveries SET state = ?`, ecardbot.DeliveryPending).Error; err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var queueErr, sentErr error
			wg.Go(func() { queueErr = svc.MarkQueued(ctx, ids) })
			wg.Go(func() { sentErr = svc.MarkSentBatch(ctx, marks) })
			wg.Wait()
			if queueErr != nil || sentErr != nil {
				t.Fatalf("round %d: MarkQueued: %v; MarkSentBatch: %v", round, queueErr, sentErr)
			}
			if n := count(t, db, "deliveries WHERE state = 'sent'"); n != int64(len(ids)) {
				t.Fatalf("round %d: %d of %d deliveries sent", round, n, len(ids))
			}
		}
		// The relay's look for stale deliveries meets the workers' sent marks the same way.
		for round := range 20 {
			if err := db.gorm.Exec(`UPDATE deliveries SET state = ?, updated_at = ?`, ecardbot.DeliveryQueued, db.timeArg(seedNow)).Error; err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var claimErr, sentErr error
			wg.Go(func() { _, claimErr = svc.ClaimStaleQueued(ctx, seedNow.Add(time.Hour), len(ids)) })
			wg.Go(func() { sentErr = svc.MarkSentBatch(ctx, marks) })
			wg.Wait()
			if claimErr != nil || sentErr != nil {
				t.Fatalf("round %d: ClaimStaleQueued: %v; MarkSentBatch: %v", round, claimErr, sentErr)
			}
		}
	})
}
