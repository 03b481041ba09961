package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taipei-doit/ecardbot"
)

// appliedMigrations lists schema_migrations in ID order.
func appliedMigrations(tb testing.TB, db *DB) []string {
	tb.Helper()
	var ids []string
	if err := db.gorm.Table(migrationsTable).Order("id").Pluck("id", &ids).Error; err != nil {
		tb.Fatalf("read %s: %v", migrationsTable, err)
	}
	return ids
}

func allMigrationIDs() []string {
	var ids []string
	for _, m := range migrations() {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestMigrationIDsAreOrdered(t *testing.T) {
	t.Parallel()
	ids := allMigrationIDs()
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Errorf("migration %q is listed after %q: IDs must sort in the order they run", ids[i], ids[i-1])
		}
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()

		t.Run("twice is a no-op", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			s := newService(db)
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t0); err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if diff := cmp.Diff(allMigrationIDs(), appliedMigrations(t, db)); diff != "" {
				t.Errorf("applied migrations (-want +got):\n%s", diff)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: true, Language: ecardbot.LangEn, StateAt: t0,
			})
		})

		// Replicas start together: each opens its own pool and migrates a fresh database.
		t.Run("concurrent on a fresh database", func(t *testing.T) {
			t.Parallel()
			cfg := b.newConfig(t)
			const replicas = 4
			dbs := make([]*DB, replicas)
			for i := range dbs {
				dbs[i] = MustOpen(t, cfg)
			}
			var wg sync.WaitGroup
			errs := make([]error, replicas)
			for i, db := range dbs {
				wg.Go(func() { errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: Migrate: %v", i, err)
				}
			}
			if diff := cmp.Diff(allMigrationIDs(), appliedMigrations(t, dbs[0])); diff != "" {
				t.Errorf("applied migrations (-want +got):\n%s", diff)
			}
		})

		// What `ecardbot migrate` does: open, migrate, close; run it again on the same database.
		t.Run("migrate command is idempotent", func(t *testing.T) {
			t.Parallel()
			cfg := b.newConfig(t)
			migrateCommand := func() {
				t.Helper()
				db, err := Open(ctx, cfg)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer db.Close()
				if err := db.Migrate(ctx); err != nil {
					t.Fatalf("Migrate: %v", err)
				}
			}
			migrateCommand()
			db := MustOpen(t, cfg)
			s := newService(db)
			if err := s.Follow(ctx, userID, ecardbot.LangEn, t0); err != nil {
				t.Fatal(err)
			}
			migrateCommand()
			migrateCommand()
			if diff := cmp.Diff(allMigrationIDs(), appliedMigrations(t, db)); diff != "" {
				t.Errorf("applied migrations (-want +got):\n%s", diff)
			}
			checkUser(t, MustFind(t, s, userID), ecardbot.LineUser{
				ID: userID, Following: true, Language: ecardbot.LangEn, StateAt: t0,
			})
		})

		t.Run("canceled context", func(t *testing.T) {
			t.Parallel()
			db := MustOpen(t, b.newConfig(t))
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := db.Migrate(cctx); err == nil {
				t.Fatal("Migrate with a canceled context succeeded")
			}
			// The lock must not stay behind on a pooled connection.
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("Migrate after a canceled one: %v", err)
			}
		})
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("dialect", func(t *testing.T) {
		t.Parallel()
		forEachBackend(t, func(t *testing.T, b backend) {
			db := MustOpen(t, b.newConfig(t))
			if got := db.Dialect(); got != b.name {
				t.Errorf("Dialect() = %q, want %q", got, b.name)
			}
			if err := db.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	})

	t.Run("unreachable postgres", func(t *testing.T) {
		t.Parallel()
		_, err := Open(ctx, Config{DatabaseURL: "postgres://app:hunter2@127.0.0.1:1/ecard?sslmode=disable"})
		if err == nil {
			t.Fatal("Open succeeded against a closed port")
		}
		if msg := err.Error(); strings.Contains(msg, "hunter2") || strings.Contains(msg, "\n") {
			t.Errorf("error must be one line without the password: %q", msg)
		}
	})

	t.Run("no data dir", func(t *testing.T) {
		t.Parallel()
		if _, err := Open(ctx, Config{}); err == nil {
			t.Fatal("Open without URL and data dir succeeded")
		}
	})

	t.Run("creates data dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir() + "/nested/data"
		db := MustOpen(t, Config{DataDir: dir})
		var mode string
		if err := db.gorm.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Errorf("journal_mode = %q, want wal", mode)
		}
		var fk int
		if err := db.gorm.Raw("PRAGMA foreign_keys").Scan(&fk).Error; err != nil {
			t.Fatal(err)
		}
		if fk != 1 {
			t.Errorf("foreign_keys = %d, want 1", fk)
		}
	})
}

// TestLogsNoParameters checks that personal data passed as parameters never reaches the log,
// even at Debug, while the statements themselves do.
func TestLogsNoParameters(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		var buf bytes.Buffer
		var mu sync.Mutex
		logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{
			Level: slog.LevelDebug,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{} // the record's own time would match the date we look for
				}
				return a
			},
		}))
		cfg := b.newConfig(t)
		cfg.Logger = logger
		db := MustOpen(t, cfg)
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		s := newService(db)
		const secretID = "Uffffffffffffffffffffffffffffff01"
		if err := s.Follow(ctx, secretID, ecardbot.LangEn, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindLineUser(ctx, secretID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindLineUser(ctx, "Unotthere0000000000000000000000002"); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Fatal(err)
		}

		mu.Lock()
		logs := buf.String()
		mu.Unlock()
		if !strings.Contains(logs, "INSERT INTO line_users") {
			t.Errorf("debug log lacks the statement:\n%s", logs)
		}
		if strings.Contains(logs, "$1$") {
			t.Errorf("log shows gorm's placeholder artefact $1$:\n%s", logs)
		}
		for _, secret := range []string{secretID, "Unotthere", "2026-11-2"} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains parameter value %q:\n%s", secret, logs)
			}
		}
	})
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
