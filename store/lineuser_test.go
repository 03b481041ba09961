package store

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

const userID = "U4af4980629a0b1c2d3e4f5a6b7c8d9e0"

// t0 is a LINE-style timestamp (milliseconds) in Taipei time, to check that offsets compare as
// instants and not as text.
var t0 = time.Date(2026, 11, 27, 7, 42, 10, 123_000_000, time.FixedZone("CST", 8*3600))

// fixedNow makes created_at and updated_at predictable.
var fixedNow = time.Date(2026, 11, 27, 0, 0, 0, 456_789_000, time.UTC)

func newService(db *DB) *LineUserService {
	s := NewLineUserService(db)
	s.now = func() time.Time { return fixedNow }
	return s
}

func MustFind(tb testing.TB, s *LineUserService, id string) *ecardbot.LineUser {
	tb.Helper()
	u, err := s.FindLineUser(context.Background(), id)
	if err != nil {
		tb.Fatalf("FindLineUser: %v", err)
	}
	return u
}

func checkUser(tb testing.TB, got *ecardbot.LineUser, want ecardbot.LineUser) {
	tb.Helper()
	want.StateAt = want.StateAt.UTC()
	want.CreatedAt, want.UpdatedAt = fixedNow, fixedNow
	if diff := cmp.Diff(&want, got); diff != "" {
		tb.Errorf("line user mismatch (-want +got):\n%s", diff)
	}
}

func TestLineUserService(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()

		t.Run("follow creates", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t0); err != nil {
				t.Fatal(err)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: true, Language: ecardbot.LangEn, StateAt: t0,
			})
		})

		t.Run("older unfollow is ignored", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			if err := s.Follow(ctx, userID, ecardbot.LangZhTW, t0); err != nil {
				t.Fatal(err)
			}
			// One millisecond older, written in UTC: as text it would sort after t0.
			if err := s.Unfollow(ctx, userID, t0.Add(-time.Millisecond).UTC()); err != nil {
				t.Fatal(err)
			}
			// Same instant: not newer, so ignored too.
			if err := s.Unfollow(ctx, userID, t0.UTC()); err != nil {
				t.Fatal(err)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: true, Language: ecardbot.LangZhTW, StateAt: t0,
			})
		})

		t.Run("newer unfollow applies and refollow", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t0); err != nil {
				t.Fatal(err)
			}
			t1 := t0.Add(time.Millisecond)
			if err := s.Unfollow(ctx, userID, t1); err != nil {
				t.Fatal(err)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: false, Language: ecardbot.LangEn, StateAt: t1,
			})

			// A follow older than the unfollow, delivered late, must not make them reachable.
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t0.Add(time.Microsecond)); err != nil {
				t.Fatal(err)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: false, Language: ecardbot.LangEn, StateAt: t1,
			})

			t2 := t1.Add(24 * time.Hour)
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t2); err != nil {
				t.Fatal(err)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: true, Language: ecardbot.LangEn, StateAt: t2,
			})
		})

		t.Run("unfollow of unknown user", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			if err := s.Unfollow(ctx, userID, t0); err != nil {
				t.Fatal(err)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: false, Language: ecardbot.LangZhTW, StateAt: t0,
			})
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t0.Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if MustFind(t, s, userID).Following {
				t.Error("an older follow made an unfollowed user reachable")
			}
		})

		t.Run("language update", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			if err := s.Follow(ctx, userID, ecardbot.LangZhTW, t0); err != nil {
				t.Fatal(err)
			}
			t1 := t0.Add(time.Minute)
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t1); err != nil {
				t.Fatal(err)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: true, Language: ecardbot.LangEn, StateAt: t1,
			})
			// Updates move updated_at, never created_at.
			s.now = func() time.Time { return fixedNow.Add(time.Hour) }
			if err := s.Follow(ctx, userID, ecardbot.LangZhTW, t1.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			got := MustFind(t, s, userID)
			if !got.CreatedAt.Equal(fixedNow) || !got.UpdatedAt.Equal(fixedNow.Add(time.Hour)) {
				t.Errorf("CreatedAt, UpdatedAt = %v, %v; want %v, %v", got.CreatedAt, got.UpdatedAt, fixedNow, fixedNow.Add(time.Hour))
			}
			if got.Language != ecardbot.LangZhTW {
				t.Errorf("Language = %q, want %q", got.Language, ecardbot.LangZhTW)
			}
		})

		t.Run("find unknown", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			u, err := s.FindLineUser(ctx, "Unobody")
			if code := ecardbot.ErrorCode(err); code != ecardbot.ENOTFOUND {
				t.Errorf("FindLineUser(unknown) = %v, %v; want code %s", u, err, ecardbot.ENOTFOUND)
			}
		})

		t.Run("invalid arguments", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			for name, err := range map[string]error{
				"follow without id":   s.Follow(ctx, "", ecardbot.LangEn, t0),
				"unfollow without id": s.Unfollow(ctx, "", t0),
				"follow without time": s.Follow(ctx, userID, ecardbot.LangEn, time.Time{}),
			} {
				if code := ecardbot.ErrorCode(err); code != ecardbot.EINVALID {
					t.Errorf("%s: err = %v, want code %s", name, err, ecardbot.EINVALID)
				}
			}
		})

		t.Run("concurrent events end in the newest state", func(t *testing.T) {
			t.Parallel()
			s := newService(MustOpenMigrated(t, b))
			const goroutines, perGoroutine = 16, 20
			type event struct {
				follow bool
				lang   string
				at     time.Time
			}
			// Distinct timestamps, shuffled across goroutines, so arrival order is unrelated to
			// event order.
			events := make([]event, goroutines*perGoroutine)
			for i := range events {
				lang := ecardbot.LangZhTW
				if rand.IntN(2) == 0 {
					lang = ecardbot.LangEn
				}
				events[i] = event{follow: rand.IntN(2) == 0, lang: lang, at: t0.Add(time.Duration(i) * time.Millisecond)}
			}
			newest := events[len(events)-1]
			rand.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })

			var wg sync.WaitGroup
			errs := make(chan error, len(events))
			for g := range goroutines {
				wg.Go(func() {
					for _, ev := range events[g*perGoroutine : (g+1)*perGoroutine] {
						var err error
						if ev.follow {
							err = s.Follow(ctx, userID, ev.lang, ev.at)
						} else {
							err = s.Unfollow(ctx, userID, ev.at)
						}
						if err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			got := MustFind(t, s, userID)
			if got.Following != newest.follow || !got.StateAt.Equal(newest.at) {
				t.Errorf("after concurrent events: following=%v state_at=%v; want following=%v state_at=%v",
					got.Following, got.StateAt, newest.follow, newest.at.UTC())
			}
			// An unfollow keeps the language, and which follow set it then depends on arrival
			// order; a newest follow decides it.
			if newest.follow && got.Language != newest.lang {
				t.Errorf("Language = %q, want %q", got.Language, newest.lang)
			}
		})

		t.Run("unique violation is ECONFLICT", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			insert := func() error {
				now := db.timeArg(fixedNow)
				return mapError(db.gorm.WithContext(ctx).Exec(
					"INSERT INTO line_users (id, following, language, state_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
					userID, true, ecardbot.LangEn, now, now, now).Error)
			}
			if err := insert(); err != nil {
				t.Fatal(err)
			}
			if err := insert(); ecardbot.ErrorCode(err) != ecardbot.ECONFLICT {
				t.Errorf("second insert: err = %v, want code %s", err, ecardbot.ECONFLICT)
			}
		})
	})
}
