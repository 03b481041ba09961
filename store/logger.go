package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"
)

// slowQuery is the duration above which a statement is logged at Warn: well above a healthy
// indexed lookup, well below LINE's 2 s webhook budget.
const slowQuery = 200 * time.Millisecond

// explainedPlaceholder matches the "$1$" gorm's PostgreSQL Explain leaves for a parameter it
// was not given.
var explainedPlaceholder = regexp.MustCompile(`\$(\d+)\$`)

// gormLogger sends gorm's output to our slog logger. Statements carry personal data (LINE user
// IDs, names, e-mail addresses) as parameters, so it never logs parameter values: ParamsFilter
// drops them before gorm renders the SQL, and PostgreSQL errors, whose messages may quote a
// value, are reduced to their SQLSTATE and constraint.
//
// Levels: slow statements at Warn; everything else, failed statements included, at Debug. A
// failed statement is returned to the caller, which logs it once where it is handled.
type gormLogger struct {
	log *slog.Logger
}

var (
	_ gormlogger.Interface = gormLogger{}
	_ gorm.ParamsFilter    = gormLogger{}
)

func newGormLogger(l *slog.Logger) gormLogger {
	return gormLogger{log: l.With("component", "store")}
}

// LogMode is ignored: the slog handler's level decides.
func (l gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}

func (l gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}

func (l gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}

// ParamsFilter drops parameter values, so gorm renders SQL with placeholders ($1 or ?) only.
func (l gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

func (l gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	level := slog.LevelDebug
	msg := "sql"
	if elapsed > slowQuery {
		level, msg = slog.LevelWarn, "slow sql"
	}
	if !l.log.Enabled(ctx, level) {
		return
	}
	sql, rows := fc()
	sql = explainedPlaceholder.ReplaceAllString(sql, "$$$1") // gorm's "$1$" back to "$1"
	attrs := []slog.Attr{
		slog.String("sql", sql),
		slog.Duration("elapsed", elapsed),
	}
	if rows >= 0 {
		attrs = append(attrs, slog.Int64("rows", rows))
	}
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		attrs = append(attrs, slog.String("error", safeError(err)))
	}
	l.log.LogAttrs(ctx, level, msg, attrs...)
}

// safeError describes err without values from the statement: PostgreSQL messages such as
// `invalid input syntax for type uuid: "…"` quote them, so only the code and constraint are kept.
func safeError(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		s := "SQLSTATE " + pgErr.Code
		if pgErr.ConstraintName != "" {
			s += " constraint " + pgErr.ConstraintName
		}
		return s
	}
	return err.Error()
}
