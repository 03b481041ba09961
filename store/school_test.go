package store

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/taipei-doit/ecardbot"
)

func TestSchoolService(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		ignoreID := cmpopts.IgnoreFields(ecardbot.School{}, "ID")

		t.Run("import and update", func(t *testing.T) {
			t.Parallel()
			s := NewSchoolService(MustOpenMigrated(t, b))
			a, c := testSchool("313601"), testSchool("323602")
			c.Cutoff, c.EarliestLeave = 0, 0 // the defaults
			created, updated, err := s.ImportSchools(ctx, []ecardbot.School{a, c})
			if err != nil || created != 2 || updated != 0 {
				t.Fatalf("ImportSchools = %d, %d, %v; want 2, 0, nil", created, updated, err)
			}
			got, err := s.FindSchool(ctx, "323602")
			if err != nil {
				t.Fatal(err)
			}
			want := c
			want.Cutoff, want.EarliestLeave = ecardbot.DefaultCutoff, ecardbot.DefaultEarliestLeave
			if diff := cmp.Diff(&want, got, ignoreID); diff != "" {
				t.Errorf("FindSchool (-want +got):\n%s", diff)
			}
			firstID := got.ID

			// Re-import: updated in place by code, keeping the id; a new one is created.
			c.Name, c.District, c.Level, c.Cutoff, c.EarliestLeave = "新校名", "北投區", ecardbot.LevelJunior, 7*60+50, 11*60+30
			d := testSchool("333603")
			created, updated, err = s.ImportSchools(ctx, []ecardbot.School{c, d})
			if err != nil || created != 1 || updated != 1 {
				t.Fatalf("second ImportSchools = %d, %d, %v; want 1, 1, nil", created, updated, err)
			}
			got, err = s.FindSchool(ctx, "323602")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&c, got, ignoreID); diff != "" {
				t.Errorf("updated school (-want +got):\n%s", diff)
			}
			if got.ID != firstID {
				t.Errorf("update changed the id from %d to %d", firstID, got.ID)
			}
			if n := count(t, s.db, "schools"); n != 3 {
				t.Errorf("%d schools, want 3", n)
			}
		})

		t.Run("invalid import applies nothing", func(t *testing.T) {
			t.Parallel()
			s := NewSchoolService(MustOpenMigrated(t, b))
			bad := func(mod func(*ecardbot.School)) ecardbot.School {
				sc := testSchool("313601")
				mod(&sc)
				return sc
			}
			tests := []struct {
				name    string
				schools []ecardbot.School
			}{
				{"no code", []ecardbot.School{bad(func(s *ecardbot.School) { s.Code = "" })}},
				{"no name", []ecardbot.School{bad(func(s *ecardbot.School) { s.Name = "" })}},
				{"district", []ecardbot.School{bad(func(s *ecardbot.School) { s.District = "大安" })}},
				{"level", []ecardbot.School{bad(func(s *ecardbot.School) { s.Level = "大學" })}},
				{"cutoff", []ecardbot.School{bad(func(s *ecardbot.School) { s.Cutoff = 24 * 60 })}},
				{"earliest leave", []ecardbot.School{bad(func(s *ecardbot.School) { s.EarliestLeave = -1 })}},
				{"code twice", []ecardbot.School{testSchool("323602"), testSchool("313601"), testSchool("313601")}},
			}
			for _, tt := range tests {
				_, _, err := s.ImportSchools(ctx, tt.schools)
				if code := ecardbot.ErrorCode(err); code != ecardbot.EINVALID {
					t.Errorf("%s: err = %v, want code %s", tt.name, err, ecardbot.EINVALID)
				}
			}
			if n := count(t, s.db, "schools"); n != 0 {
				t.Errorf("%d schools stored from invalid imports", n)
			}
		})

		t.Run("find unknown", func(t *testing.T) {
			t.Parallel()
			s := NewSchoolService(MustOpenMigrated(t, b))
			if _, err := s.FindSchool(ctx, "999999"); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("FindSchool(unknown): err = %v, want code %s", err, ecardbot.ENOTFOUND)
			}
		})

		t.Run("api keys", func(t *testing.T) {
			t.Parallel()
			db := MustOpenMigrated(t, b)
			s := NewSchoolService(db)
			gate := NewGateService(db, GateConfig{})
			school := MustImportSchool(t, db, "313601")
			other := MustImportSchool(t, db, "323602")

			for _, tt := range []struct{ school, hash string }{
				{"313601", "hash-a"}, {"313601", "hash-b"}, {"323602", "hash-c"},
			} {
				if err := s.AddAPIKey(ctx, tt.school, tt.hash); err != nil {
					t.Fatalf("AddAPIKey(%s): %v", tt.school, err)
				}
			}
			if err := s.AddAPIKey(ctx, "999999", "hash-d"); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
				t.Errorf("AddAPIKey(unknown school): err = %v, want code %s", err, ecardbot.ENOTFOUND)
			}
			if err := s.AddAPIKey(ctx, "323602", "hash-a"); ecardbot.ErrorCode(err) != ecardbot.ECONFLICT {
				t.Errorf("AddAPIKey(existing hash): err = %v, want code %s", err, ecardbot.ECONFLICT)
			}
			if err := s.AddAPIKey(ctx, "323602", ""); ecardbot.ErrorCode(err) != ecardbot.EINVALID {
				t.Errorf("AddAPIKey(empty hash): err = %v, want code %s", err, ecardbot.EINVALID)
			}

			// Revoking is an operator's SQL for now; revoked_at is what AuthenticateSchool reads.
			if err := db.gorm.Exec(`UPDATE school_api_keys SET revoked_at = ? WHERE key_hash = ?`,
				db.timeArg(time.Now()), "hash-b").Error; err != nil {
				t.Fatal(err)
			}

			for _, tt := range []struct {
				hash string
				want *ecardbot.School
			}{
				{"hash-a", school},
				{"hash-c", other},
				{"hash-b", nil}, // revoked
				{"hash-d", nil}, // its school did not exist
				{"unknown", nil},
				{"", nil},
			} {
				got, err := gate.AuthenticateSchool(ctx, tt.hash)
				if tt.want == nil {
					if code := ecardbot.ErrorCode(err); code != ecardbot.EUNAUTHORIZED {
						t.Errorf("AuthenticateSchool(%q) = %v, %v; want code %s", tt.hash, got, err, ecardbot.EUNAUTHORIZED)
					}
					continue
				}
				if err != nil {
					t.Errorf("AuthenticateSchool(%q): %v", tt.hash, err)
					continue
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("AuthenticateSchool(%q) (-want +got):\n%s", tt.hash, diff)
				}
			}
		})
	})
}
