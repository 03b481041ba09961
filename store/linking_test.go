package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
)

func TestLinkStore(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := MustOpenMigrated(t, b)
		s := NewLinkStore(db)
		t0 := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
		s.now = func() time.Time { return t0 }
		attempt := func(state string, at time.Time) {
			t.Helper()
			if err := s.CreateLinkAttempt(ctx, state, ecardbot.LinkAttempt{LinkToken: "tok-" + state, Verifier: "ver-" + state,
				CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}

		t.Run("attempts are taken once and expire", func(t *testing.T) {
			attempt("s1", t0)
			attempt("s2", t0)
			got, err := s.TakeLinkAttempt(ctx, "s1", t0.Add(time.Minute))
			if err != nil || got.LinkToken != "tok-s1" || got.Verifier != "ver-s1" || !got.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
				t.Fatalf("take = %+v, %v", got, err)
			}
			if _, err := s.TakeLinkAttempt(ctx, "s1", t0.Add(time.Minute)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("taken twice: %v", err)
			}
			if _, err := s.TakeLinkAttempt(ctx, "nope", t0); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("unknown state: %v", err)
			}
			if _, err := s.TakeLinkAttempt(ctx, "s2", t0.Add(10*time.Minute)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("expired: %v", err)
			}
			// A new attempt later sweeps the expired one away.
			attempt("s3", t0.Add(11*time.Minute))
			if n := count(t, db, "link_attempts"); n != 1 {
				t.Errorf("%d attempts kept, want only the live one", n)
			}
		})

		t.Run("nonces bind once, and a failed binding keeps the nonce", func(t *testing.T) {
			acct := ecardbot.TaipeiPassAccount{ID: "6f1c2b7e-3a4d-4c5e-9b8a-1d2e3f405162", VerifyLevel: "3", LastLoginAt: t0}
			if err := s.CreateLinkNonce(ctx, "n0", acct.ID, t0.Add(10*time.Minute)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("nonce for an account that never logged in: %v", err)
			}
			for range 2 {
				if err := s.RecordTaipeiPassLogin(ctx, acct); err != nil {
					t.Fatal(err)
				}
			}
			if got := storedAccount(t, db, acct.ID); got != acct {
				t.Errorf("account = %+v", got)
			}
			for _, n := range []string{"n1", "n2", "n3"} {
				if err := s.CreateLinkNonce(ctx, n, acct.ID, t0.Add(10*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.CompleteLink(ctx, "n1", "U1", t0); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("malformed user: %v", err)
			}
			res, err := s.CompleteLink(ctx, "n1", lineID(1), t0.Add(time.Minute))
			if err != nil || res.Guardian.TaipeiPassID != acct.ID || res.Guardian.LineUserID != lineID(1) {
				t.Fatalf("complete = %+v, %v", res, err)
			}
			if _, err := s.CompleteLink(ctx, "n1", lineID(1), t0.Add(time.Minute)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("replayed nonce: %v", err)
			}
			if err := s.DiscardLinkNonce(ctx, "n2", t0); err != nil {
				t.Errorf("discard: %v", err)
			}
			if _, err := s.CompleteLink(ctx, "n2", lineID(1), t0); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("discarded nonce: %v", err)
			}
			if _, err := s.CompleteLink(ctx, "n3", lineID(1), t0.Add(10*time.Minute)); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("expired nonce: %v", err)
			}
		})

		t.Run("replicas racing for one state", func(t *testing.T) {
			attempt("race", t0)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := s.TakeLinkAttempt(ctx, "race", t0); err == nil {
						wins.Add(1)
					} else if ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
						t.Errorf("take: %v", err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Errorf("%d takers got the attempt, want 1", wins.Load())
			}
		})
	})
}

// storedAccount reads the row of taipeipass_accounts with the ID.
func storedAccount(tb testing.TB, db *DB, id string) ecardbot.TaipeiPassAccount {
	tb.Helper()
	var rows []struct {
		ID          string
		VerifyLevel string
		LastLoginAt time.Time
	}
	if err := db.gorm.Raw(`SELECT id, verify_level, last_login_at FROM taipeipass_accounts WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		tb.Fatal(err)
	}
	if len(rows) != 1 {
		tb.Fatalf("%d accounts %s, want 1", len(rows), id)
	}
	return ecardbot.TaipeiPassAccount{ID: rows[0].ID, VerifyLevel: rows[0].VerifyLevel, LastLoginAt: rows[0].LastLoginAt.UTC()}
}
