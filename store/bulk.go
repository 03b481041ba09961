package store

import (
	"context"
	"database/sql"
	"iter"
	"strings"
	"time"

	"gorm.io/gorm"
)

// maxParams bounds the parameters of one statement built with placeholders. SQLite would take
// 32,766, but the driver matches each parameter to its argument by a linear search, so binding
// n parameters costs n²: 30,000 parameters take about a second to bind, while 30 statements of
// 999 (SQLite's historical limit) take milliseconds.
const maxParams = 999

// chunks splits items into consecutive pieces small enough that a statement with cols
// parameters per item stays under maxParams.
func chunks[T any](items []T, cols int) iter.Seq[[]T] {
	size := max(maxParams/cols, 1)
	return func(yield func([]T) bool) {
		for start := 0; start < len(items); start += size {
			if !yield(items[start:min(start+size, len(items))]) {
				return
			}
		}
	}
}

// placeholders returns "(?, ?), (?, ?)" for rows tuples of cols parameters each.
func placeholders(rows, cols int) string {
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(tuple) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	return b.String()
}

// The bulk statements of the gate path have two forms. On PostgreSQL each batch is sent as a few
// array parameters that the statement unnests, so its text is the same for every batch: pgx
// prepares and caches each distinct statement text on every connection, and a VALUES list whose
// length changes with each batch would fill the server's memory with thousands of prepared
// statements of thousands of parameters. SQLite has no such cache and no arrays, so it gets
// VALUES lists (chunks of at most maxParams).
//
// gorm expands a slice argument into a parenthesised list, so array statements bypass its
// builder: query runs them on the transaction's own connection and reports them to gorm's
// logger as gorm would.

// query runs a statement on tx's connection with the arguments passed to the driver unchanged.
// Placeholders are the dialect's own ($1 on PostgreSQL).
func (db *DB) query(ctx context.Context, tx *gorm.DB, sqlText string, args ...any) (*sql.Rows, error) {
	begin := time.Now()
	rows, err := tx.Statement.ConnPool.QueryContext(ctx, sqlText, args...)
	db.gorm.Logger.Trace(ctx, begin, func() (string, int64) { return sqlText, -1 }, err)
	return rows, err
}

// exec is query for statements that return no rows; it returns the number of rows affected.
func (db *DB) exec(ctx context.Context, tx *gorm.DB, sqlText string, args ...any) (int64, error) {
	begin := time.Now()
	res, err := tx.Statement.ConnPool.ExecContext(ctx, sqlText, args...)
	var n int64 = -1
	if err == nil {
		n, _ = res.RowsAffected()
	}
	db.gorm.Logger.Trace(ctx, begin, func() (string, int64) { return sqlText, n }, err)
	return n, err
}

// queryAny runs head, a query ending in a column, with the condition that the column is one
// of vals, and scans every row: "= ANY($1::typ[])" on PostgreSQL, so the statement is one
// whatever the number of values, and "IN (?, …)" in chunks on SQLite.
func queryAny[T any](ctx context.Context, db *DB, tx *gorm.DB, head, typ string, vals []T, scan func(*sql.Rows) error) error {
	if db.dialect == DialectPostgres {
		rows, err := db.query(ctx, tx, head+"= ANY($1::"+typ+"[])", vals)
		if err != nil {
			return err
		}
		return scanAll(rows, scan)
	}
	for chunk := range chunks(vals, 1) {
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = v
		}
		rows, err := db.query(ctx, tx, head+"IN "+placeholders(1, len(chunk)), args...)
		if err != nil {
			return err
		}
		if err := scanAll(rows, scan); err != nil {
			return err
		}
	}
	return nil
}

// scanIDs reads rows of one int64 column, such as RETURNING id, and closes rows.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	var ids []int64
	err := scanAll(rows, func(r *sql.Rows) error {
		var id int64
		if err := r.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// scanAll reads every row with scan and closes rows.
func scanAll(rows *sql.Rows, scan func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
