package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateScratchSchema creates an empty schema named prefix_<16 hex digits> in the PostgreSQL
// database at databaseURL and returns a URL whose connections use only that schema, its name,
// and a function that drops it with everything in it. Benchmarks and trials run there, next to
// the service's own tables but never touching them. The role needs the CREATE privilege on the
// database.
func CreateScratchSchema(ctx context.Context, databaseURL, prefix string) (scratchURL, schema string, drop func(context.Context) error, err error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", nil, fmt.Errorf("create scratch schema: the database URL is not a postgres:// URL")
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", "", nil, fmt.Errorf("create scratch schema: %w", err)
	}
	schema = prefix + "_" + hex.EncodeToString(b)
	exec := func(ctx context.Context, sql string) error {
		cfg, err := pgx.ParseConfig(databaseURL) // its errors redact the password
		if err != nil {
			return err
		}
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = 5 * time.Second
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	ident := pgx.Identifier{schema}.Sanitize()
	if err := exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		return "", "", nil, fmt.Errorf("create scratch schema: %w", err)
	}
	drop = func(ctx context.Context) error {
		if err := exec(ctx, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			return fmt.Errorf("drop scratch schema %s: %w", schema, err)
		}
		return nil
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown URL parameters as runtime parameters
	u.RawQuery = q.Encode()
	return u.String(), schema, drop, nil
}

// GateCounts counts the rows the gate path writes.
type GateCounts struct {
	Events     int64
	Notices    int64
	Deliveries int64
}

// CountGateRows counts gate events, notices and deliveries, for benchmarks and the operator.
func (db *DB) CountGateRows(ctx context.Context) (GateCounts, error) {
	var c GateCounts
	err := db.gorm.WithContext(ctx).Raw(`SELECT (SELECT count(*) FROM gate_events) AS events,
	(SELECT count(*) FROM notices) AS notices, (SELECT count(*) FROM deliveries) AS deliveries`).Scan(&c).Error
	if err != nil {
		return c, fmt.Errorf("count gate rows: %w", mapError(err))
	}
	return c, nil
}

// CountDeliveryStates counts deliveries by state (ecardbot.DeliveryPending, …), for benchmarks
// and fault tests that must show every delivery ended sent.
func (db *DB) CountDeliveryStates(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		State string
		N     int64
	}
	if err := db.gorm.WithContext(ctx).Raw(`SELECT state, count(*) AS n FROM deliveries GROUP BY state`).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count delivery states: %w", mapError(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}

// Analyze refreshes the planner's statistics of the tables of this database's schema (the
// current_schema() of the URL on PostgreSQL; the whole file on SQLite). A benchmark that has just
// filled empty tables calls it, as autovacuum would within a minute in production, so that
// statements are not planned for the empty tables of a moment ago.
func (db *DB) Analyze(ctx context.Context) error {
	g := db.gorm.WithContext(ctx)
	if db.dialect != DialectPostgres {
		if err := g.Exec("ANALYZE").Error; err != nil {
			return fmt.Errorf("analyze: %w", mapError(err))
		}
		return nil
	}
	// A bare ANALYZE would process every table of the database, other schemas included.
	var tables []string
	if err := g.Raw(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`).Scan(&tables).Error; err != nil {
		return fmt.Errorf("analyze: %w", mapError(err))
	}
	if len(tables) == 0 {
		return nil
	}
	idents := make([]string, len(tables))
	for i, t := range tables {
		idents[i] = pgx.Identifier{t}.Sanitize()
	}
	if err := g.Exec("ANALYZE " + strings.Join(idents, ", ")).Error; err != nil {
		return fmt.Errorf("analyze: %w", mapError(err))
	}
	return nil
}
