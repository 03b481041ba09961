package store

import (
	"context"
	"strings"
	"testing"

	"github.com/taipei-doit/ecardbot/internal/testenv"
)

func TestScratchSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := testenv.PostgresURL(t) // the test's own schema stands for the service's
	url, schema, drop, err := CreateScratchSchema(ctx, base, "ecardbot_test_scratch")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "ecardbot_test_scratch_") || len(schema) != len("ecardbot_test_scratch_")+16 {
		t.Errorf("schema %q", schema)
	}
	db := MustOpen(t, Config{DatabaseURL: url})
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	MustImportSchool(t, db, "313601")
	if err := db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := db.CountGateRows(ctx); err != nil || c != (GateCounts{}) {
		t.Errorf("counts %+v, %v", c, err)
	}
	// The service's schema is untouched, and the scratch one is gone after drop.
	service := MustOpen(t, Config{DatabaseURL: base})
	var n int64
	if err := service.gorm.Raw(`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n).Error; err != nil || n != 0 {
		t.Errorf("%d tables in the service's schema, %v", n, err)
	}
	if err := drop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := service.gorm.Raw(`SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?`, schema).Scan(&n).Error; err != nil || n != 0 {
		t.Errorf("schema %s still exists (%d, %v)", schema, n, err)
	}
	if _, _, _, err := CreateScratchSchema(ctx, "mysql://x", "p"); err == nil {
		t.Error("a non-PostgreSQL URL was accepted")
	}

	sqlite := MustOpenMigrated(t, backends[0])
	if err := sqlite.Analyze(ctx); err != nil {
		t.Errorf("SQLite analyze: %v", err)
	}
}
