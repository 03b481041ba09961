package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrationsTable records which migrations ran, one row per ID.
const migrationsTable = "schema_migrations"

// migrateLockClass is the first key of the PostgreSQL advisory lock that serialises Migrate; the
// second is a hash of the schema, so tests (one schema each) and separate deployments sharing a
// server do not wait for each other.
const migrateLockClass = 0x0ECA2DB0

// migrations is the one ordered list for both dialects. Never edit or reorder an applied
// migration: append a new one. Each declares its own frozen copy of the models it touches, so a
// later change to a model never changes what an old migration does.
func migrations() []*gormigrate.Migration {
	return []*gormigrate.Migration{
		{
			ID: "0001_line_users",
			Migrate: func(tx *gorm.DB) error {
				return tx.Migrator().CreateTable(&lineUser0001{})
			},
			Rollback: func(tx *gorm.DB) error {
				return tx.Migrator().DropTable("line_users")
			},
		},
		{
			ID:       "0002_schools",
			Migrate:  migrate0002,
			Rollback: rollback0002,
		},
		{
			ID:       "0003_calendar",
			Migrate:  migrate0003,
			Rollback: rollback0003,
		},
		{ID: "0004_linking", Migrate: migrate0004, Rollback: rollback0004},
		{ID: "0005_settings", Migrate: migrate0005, Rollback: rollback0005},
	}
}

// Migrate brings the schema up to date; with nothing to do it only reads the migrations table.
// All pending migrations run in one transaction (both dialects have transactional DDL), so a
// failure leaves the schema as it was.
//
// Replicas start together and each runs Migrate, so it must be safe concurrently:
//   - PostgreSQL: a session-level pg_advisory_lock, taken on a dedicated connection that then
//     runs the migrations, makes the second replica wait; once it has the lock it sees the
//     first one's rows in schema_migrations and does nothing. (A transaction alone would not do:
//     two concurrent CREATE TABLEs collide on the catalog.)
//   - SQLite: only processes on one machine can share the file. Within this process migrateMu
//     serialises callers; across processes (ecardbot migrate next to a running sandbox) the
//     migration transaction starts with BEGIN IMMEDIATE (the _txlock DSN option), which takes
//     SQLite's single write lock before reading schema_migrations, so the second process waits
//     (busy_timeout) and then reads the finished state.
func (db *DB) Migrate(ctx context.Context) error {
	db.migrateMu.Lock()
	defer db.migrateMu.Unlock()

	opts := &gormigrate.Options{
		TableName:    migrationsTable,
		IDColumnName: "id",
		IDColumnSize: 255,
		// The transaction is ours (below): gormigrate ignores a failed BEGIN and goes on
		// to panic on a nil row when the context is already canceled.
		UseTransaction: false,
	}
	run := func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			return gormigrate.New(tx, opts, migrations()).Migrate()
		})
	}

	var err error
	if db.dialect == DialectPostgres {
		err = db.withAdvisoryLock(ctx, run)
	} else {
		err = run(db.gorm.WithContext(ctx))
	}
	if err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	return nil
}

// withAdvisoryLock runs fn on one connection that holds the migration advisory lock.
func (db *DB) withAdvisoryLock(ctx context.Context, fn func(tx *gorm.DB) error) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	if _, err := conn.ExecContext(ctx,
		"SELECT pg_advisory_lock($1, hashtext(current_schema()))", migrateLockClass); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// Unlock even when ctx is done. A session lock outlives a returned connection, so if
		// unlocking fails the connection is discarded, which ends the session and the lock.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx,
			"SELECT pg_advisory_unlock($1, hashtext(current_schema()))", migrateLockClass); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()

	tx := db.gorm.WithContext(ctx)
	tx.Statement.ConnPool = conn // as gorm's (*DB).Connection does; Begin uses conn.BeginTx
	return fn(tx)
}

// lineUser0001 is line_users as migration 0001 created it.
type lineUser0001 struct {
	ID        string    `gorm:"primaryKey;type:text"` // LINE user ID
	Following bool      `gorm:"not null"`
	Language  string    `gorm:"type:text;not null"`
	StateAt   time.Time `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

func (lineUser0001) TableName() string { return "line_users" }
