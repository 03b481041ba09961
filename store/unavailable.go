package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/taipei-doit/ecardbot"
)

// errUnavailable is the root error behind every EUNAVAILABLE of this package. Its message is what
// a school's reader or a parent may see.
var errUnavailable = ecardbot.Errorf(ecardbot.EUNAVAILABLE, "Storage is unavailable; try again later.")

// unavailable returns err marked EUNAVAILABLE when it means the database cannot do the work right
// now (unreachable, closed, shutting down, failed over to a read-only standby, out of resources,
// or still deadlocked after retries), so the caller answers 503 and the client retries; the
// cause stays in the chain for the log. Any other error is returned unchanged: a bug must show
// as an internal error, not as an outage that readers retry forever.
//
// An error of an unknown shape is judged by pinging the database, since the question is only
// whether it is reachable.
func (db *DB) unavailable(ctx context.Context, err error) error {
	if err == nil || ecardbot.ErrorCode(err) != ecardbot.EINTERNAL {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller gave up; nothing to tell it
	}
	if isUnavailable(err) || !db.reachable(ctx) {
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return err
}

// reachable pings the database, with a deadline of its own so an outage is reported quickly
// even when ctx has none.
func (db *DB) reachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	return db.sql.PingContext(ctx) == nil
}

func isUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	// database/sql does not export the error of a closed *sql.DB.
	if strings.Contains(err.Error(), "sql: database is closed") {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources (disk full, too many connections)
			strings.HasPrefix(pgErr.Code, "57"), // operator intervention: shutdown, statement timeout
			strings.HasPrefix(pgErr.Code, "58"), // system error (I/O)
			strings.HasPrefix(pgErr.Code, "40"), // deadlock or serialization failure left after retries
			pgErr.Code == "25006":               // read-only transaction: connected to a standby after failover
			return true
		}
		return false
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return true
		}
	}
	return false
}

// isRetryableTx reports whether a transaction failed only because it collided with another one,
// so running it again is expected to succeed.
func isRetryableTx(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001" // deadlock_detected, serialization_failure
	}
	return false
}
