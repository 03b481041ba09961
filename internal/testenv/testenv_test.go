package testenv_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot/internal/testenv"
)

func TestPostgresURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var schema string
	t.Run("fresh schema", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx,
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("tables in the test schema = %d, want 1 (the one just made)", n)
		}
	})
	if schema == "" {
		t.Skip("subtest skipped")
	}
	// After the subtest's cleanup the schema is gone.
	conn, err := pgx.Connect(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after its test ended", schema)
	}
}

func TestRedisURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rawURL, prefix string
	t.Run("prefix", func(t *testing.T) {
		rawURL, prefix = testenv.RedisURL(t)
		_, other := testenv.RedisURL(t)
		if prefix == other || prefix == "" {
			t.Fatalf("prefixes %q and %q must differ", prefix, other)
		}
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opts)
		defer c.Close()
		for _, k := range []string{"a", "b:c"} {
			if err := c.Set(ctx, prefix+k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if prefix == "" {
		t.Skip("subtest skipped")
	}
	opts, _ := redis.ParseURL(rawURL)
	c := redis.NewClient(opts)
	defer c.Close()
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys %v remain after their test ended", keys)
	}
}
