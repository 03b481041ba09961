package store

import (
	"context"
	"testing"

	"github.com/taipei-doit/ecardbot/internal/testenv"
)

// backend makes a fresh, empty database of one dialect for each call, so every scenario runs
// against both dialects (ntfy's contract tests) and tests never share state.
type backend struct {
	name      string
	newConfig func(tb testing.TB) Config
}

var backends = []backend{
	{DialectSQLite, func(tb testing.TB) Config {
		tb.Helper()
		return Config{DataDir: tb.TempDir()}
	}},
	{DialectPostgres, func(tb testing.TB) Config {
		tb.Helper()
		return Config{DatabaseURL: testenv.PostgresURL(tb)}
	}},
}

// forEachBackend runs fn once per dialect as parallel subtests.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// MustOpen opens cfg, closing it when the test ends.
func MustOpen(tb testing.TB, cfg Config) *DB {
	tb.Helper()
	db, err := Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

// MustOpenMigrated opens a fresh migrated database of backend b.
func MustOpenMigrated(tb testing.TB, b backend) *DB {
	tb.Helper()
	db := MustOpen(tb, b.newConfig(tb))
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return db
}
