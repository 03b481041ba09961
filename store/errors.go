package store

import (
	"errors"

	"github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/taipei-doit/ecardbot"
)

// mapError is the one place that turns database errors into the root package's codes, so no
// caller depends on a driver: a missing row is ENOTFOUND and a unique violation is ECONFLICT.
// Other errors are returned unchanged (internal). Callers wrap the result with what they did.
func mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ecardbot.Errorf(ecardbot.ENOTFOUND, "Not found.")
	case isUniqueViolation(err):
		return ecardbot.Errorf(ecardbot.ECONFLICT, "Already exists.")
	}
	return err
}

// isUniqueViolation recognises unique and primary-key violations whether or not gorm's error
// translation ran (it does not for statements on a raw connection).
func isUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
