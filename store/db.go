// Package store keeps the service's state in a SQL database through gorm: PostgreSQL in
// production, an embedded SQLite file for the sandbox and single-machine trials. It is the only
// package that knows gorm; it implements the root package's services and returns root error
// codes (ENOTFOUND, ECONFLICT) so callers never see a driver error type.
//
// Every statement is written once for both dialects: plain SQL both understand (INSERT … ON
// CONFLICT … DO UPDATE … WHERE), gorm's migrator for DDL, and times passed through
// (*DB).timeArg, which gives SQLite a text form that sorts in time order.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Dialects, as (*DB).Dialect reports them.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// SQLiteFile is the name of the embedded database inside Config.DataDir.
const SQLiteFile = "ecardbot.db"

// Config is what Open needs; cmd fills it from config.Config.
type Config struct {
	// DatabaseURL is a postgres:// URL. Empty means the embedded SQLite file DataDir/ecardbot.db.
	DatabaseURL string
	// DataDir holds the SQLite file; created if missing. Ignored with DatabaseURL. Required
	// without it.
	DataDir string
	// Logger receives gorm's slow-query warnings and, at Debug, each SQL statement without its
	// parameter values. Nil discards them.
	Logger *slog.Logger
	// MaxConns caps open PostgreSQL connections of this process. Zero means 10, which keeps
	// several replicas plus operator commands under PostgreSQL's default max_connections (100).
	// SQLite always uses one connection.
	MaxConns int
}

// DB is an open database. It is safe for concurrent use.
type DB struct {
	gorm    *gorm.DB
	sql     *sql.DB
	dialect string

	// migrateMu serialises Migrate calls on this handle; see (*DB).Migrate for why the
	// database-level lock alone is not relied on for SQLite.
	migrateMu sync.Mutex
}

// Open connects to PostgreSQL when DatabaseURL is set, and otherwise opens (creating it if
// needed) the SQLite file in DataDir. It pings the database once so a wrong URL fails at start
// instead of on the first webhook. Open does not migrate: call Migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gcfg := &gorm.Config{
		Logger:                 newGormLogger(logger),
		TranslateError:         true, // driver errors → gorm.ErrDuplicatedKey etc., mapped in mapError
		DisableAutomaticPing:   true, // we ping with the caller's context below
		SkipDefaultTransaction: true, // writes are single statements or explicit transactions; an implicit one is only a round trip
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	var (
		db  *DB
		err error
	)
	if cfg.DatabaseURL != "" {
		db, err = openPostgres(cfg, gcfg)
	} else {
		db, err = openSQLite(cfg, gcfg)
	}
	if err != nil {
		return nil, err
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

func openPostgres(cfg Config, gcfg *gorm.Config) (*DB, error) {
	pgcfg, err := pgx.ParseConfig(cfg.DatabaseURL) // its errors redact the password
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if pgcfg.ConnectTimeout == 0 {
		// Without it a dial to a dead host waits for the kernel (minutes), holding /readyz.
		pgcfg.ConnectTimeout = 5 * time.Second
	}
	sqlDB := stdlib.OpenDB(*pgcfg)
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = 10
	}
	sqlDB.SetMaxOpenConns(maxConns)
	// As many idle as open: under the push workers' load a smaller idle pool closes connections
	// between bursts and opens them again, and each new PostgreSQL connection forks a backend
	// (measured: bench push went from 561 to 1,236 sends/s). ConnMaxIdleTime still closes them
	// when the load is gone.
	sqlDB.SetMaxIdleConns(maxConns)
	// Recycle connections so a failover, a PgBouncer restart or a DNS change is picked up
	// without restarting replicas.
	sqlDB.SetConnMaxLifetime(30 * time.Minute)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)

	g, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), gcfg)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return &DB{gorm: g, sql: sqlDB, dialect: DialectPostgres}, nil
}

func openSQLite(cfg Config, gcfg *gorm.Config) (*DB, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("open database: no database URL and no data directory")
	}
	if strings.ContainsAny(cfg.DataDir, "?#") {
		// The driver reads everything after '?' as its own parameters.
		return nil, fmt.Errorf("open database: data directory %q must not contain '?' or '#'", cfg.DataDir)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// WAL lets readers proceed during a write and survives crashes; busy_timeout makes a second
	// process (ecardbot migrate next to a running sandbox) wait for the write lock instead of
	// failing at once; _txlock=immediate takes that lock at BEGIN, so two transactions never
	// both read and then deadlock trying to upgrade to writing.
	dsn := filepath.Join(cfg.DataDir, SQLiteFile) +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
	g, err := gorm.Open(sqlite.Open(dsn), gcfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// SQLite has one writer anyway; one connection makes this process queue its own writes in
	// Go instead of spinning on SQLITE_BUSY, and keeps the pragmas on the one connection.
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(0)
	return &DB{gorm: g, sql: sqlDB, dialect: DialectSQLite}, nil
}

// Ping reports whether the database answers, for /readyz and for Open.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes every connection. Calls still in flight fail.
func (db *DB) Close() error {
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// Dialect returns DialectPostgres or DialectSQLite, for logs and the operator page.
func (db *DB) Dialect() string { return db.dialect }

// sqliteTimeFormat is fixed-width and always UTC, so SQLite, which stores times as text and
// compares them as strings, orders them in time order. The driver parses it back on read.
const sqliteTimeFormat = "2006-01-02 15:04:05.000000+00:00"

// timeArg prepares t as a statement argument. Both dialects keep microseconds (PostgreSQL's
// precision), so a comparison in SQL gives the same answer on either.
func (db *DB) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if db.dialect == DialectSQLite {
		return t.Format(sqliteTimeFormat)
	}
	return t
}
