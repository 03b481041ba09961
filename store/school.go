package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// schoolRow is a row of schools.
type schoolRow struct {
	ID                   int64
	Code                 string
	Name                 string
	District             string
	Level                string
	CutoffMinutes        int
	EarliestLeaveMinutes int
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

func (schoolRow) TableName() string { return "schools" }

func (r *schoolRow) domain() *ecardbot.School {
	return &ecardbot.School{
		ID:            r.ID,
		Code:          r.Code,
		Name:          r.Name,
		District:      r.District,
		Level:         r.Level,
		Cutoff:        ecardbot.Clock(r.CutoffMinutes),
		EarliestLeave: ecardbot.Clock(r.EarliestLeaveMinutes),
	}
}

// SchoolService keeps schools and their gate API keys in the database.
type SchoolService struct {
	db  *DB
	now func() time.Time
}

var _ ecardbot.SchoolService = (*SchoolService)(nil)

// NewSchoolService returns the service over db, which must be migrated.
func NewSchoolService(db *DB) *SchoolService {
	return &SchoolService{db: db, now: time.Now}
}

// upsertSchools is written for one row; ImportSchools repeats the VALUES tuple. A school is
// matched by its code, the one identifier the Ministry of Education, the roster files and the
// 歸戶 page share; the row id never leaves the database.
const upsertSchoolsHead = `INSERT INTO schools (code, name, district, level, cutoff_minutes, earliest_leave_minutes, created_at, updated_at) VALUES `

const upsertSchoolsTail = `
ON CONFLICT (code) DO UPDATE SET name = excluded.name, district = excluded.district,
	level = excluded.level, cutoff_minutes = excluded.cutoff_minutes,
	earliest_leave_minutes = excluded.earliest_leave_minutes, updated_at = excluded.updated_at`

// ImportSchools creates schools whose code is new and overwrites the others, in one transaction:
// an operator's file is applied completely or not at all. A zero Cutoff means
// ecardbot.DefaultCutoff and a zero EarliestLeave ecardbot.DefaultEarliestLeave: the school
// file has no earliest-leave column, and midnight is never a real value for either. Returns
// EINVALID, naming the school, for a missing code or name, a district or level that is not one
// of Taipei's, a time outside the day, or a code that appears twice.
func (s *SchoolService) ImportSchools(ctx context.Context, schools []ecardbot.School) (created, updated int, err error) {
	seen := make(map[string]bool, len(schools))
	for i := range schools {
		sc := &schools[i]
		if err := validateSchool(sc); err != nil {
			return 0, 0, fmt.Errorf("import schools: %w", err)
		}
		if seen[sc.Code] {
			return 0, 0, fmt.Errorf("import schools: %w", ecardbot.Errorf(ecardbot.EINVALID, "School %s appears twice.", sc.Code))
		}
		seen[sc.Code] = true
	}
	if len(schools) == 0 {
		return 0, 0, nil
	}

	now := s.db.timeArg(s.now())
	err = s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		codes := make([]string, 0, len(schools))
		for _, sc := range schools {
			codes = append(codes, sc.Code)
		}
		existing := make(map[string]bool, len(schools))
		for chunk := range chunks(codes, 1) {
			var found []string
			if err := tx.Table("schools").Where("code IN ?", chunk).Pluck("code", &found).Error; err != nil {
				return err
			}
			for _, c := range found {
				existing[c] = true
			}
		}
		created, updated = 0, 0
		for _, sc := range schools {
			if existing[sc.Code] {
				updated++
			} else {
				created++
			}
		}

		const cols = 8
		for chunk := range chunks(schools, cols) {
			args := make([]any, 0, len(chunk)*cols)
			for _, sc := range chunk {
				cutoff, leave := schoolTimes(&sc)
				args = append(args, sc.Code, sc.Name, sc.District, sc.Level, int(cutoff), int(leave), now, now)
			}
			query := upsertSchoolsHead + placeholders(len(chunk), cols) + upsertSchoolsTail
			if err := tx.Exec(query, args...).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("import schools: %w", mapError(err))
	}
	return created, updated, nil
}

func validateSchool(sc *ecardbot.School) error {
	switch {
	case sc.Code == "":
		return ecardbot.Errorf(ecardbot.EINVALID, "A school has no code.")
	case sc.Name == "":
		return ecardbot.Errorf(ecardbot.EINVALID, "School %s has no name.", sc.Code)
	case !ecardbot.ValidDistrict(sc.District):
		return ecardbot.Errorf(ecardbot.EINVALID, "School %s: %q is not a Taipei district.", sc.Code, sc.District)
	case !ecardbot.ValidLevel(sc.Level):
		return ecardbot.Errorf(ecardbot.EINVALID, "School %s: %q is not a school level.", sc.Code, sc.Level)
	case !validClock(sc.Cutoff):
		return ecardbot.Errorf(ecardbot.EINVALID, "School %s: cutoff %s is not a time of day.", sc.Code, sc.Cutoff)
	case !validClock(sc.EarliestLeave):
		return ecardbot.Errorf(ecardbot.EINVALID, "School %s: earliest leave %s is not a time of day.", sc.Code, sc.EarliestLeave)
	}
	return nil
}

func validClock(c ecardbot.Clock) bool { return c >= 0 && c < 24*60 }

// schoolTimes returns the school's cutoff and earliest-leave time with zero replaced by the
// default.
func schoolTimes(sc *ecardbot.School) (cutoff, earliestLeave ecardbot.Clock) {
	cutoff, earliestLeave = sc.Cutoff, sc.EarliestLeave
	if cutoff == 0 {
		cutoff = ecardbot.DefaultCutoff
	}
	if earliestLeave == 0 {
		earliestLeave = ecardbot.DefaultEarliestLeave
	}
	return cutoff, earliestLeave
}

// FindSchool returns the school with the code. Returns ENOTFOUND for an unknown code.
func (s *SchoolService) FindSchool(ctx context.Context, code string) (*ecardbot.School, error) {
	var r schoolRow
	err := s.db.gorm.WithContext(ctx).Where("code = ?", code).Take(&r).Error
	if err != nil {
		err = mapError(err)
		if ecardbot.ErrorCode(err) == ecardbot.ENOTFOUND {
			err = ecardbot.Errorf(ecardbot.ENOTFOUND, "No school has code %q.", code)
		}
		return nil, fmt.Errorf("find school: %w", err)
	}
	return r.domain(), nil
}

// AddAPIKey stores the keyed hash of a new gate API key for the school. A school may hold several
// keys at once, so a key can be rotated without stopping its readers. Returns ENOTFOUND for an
// unknown school and ECONFLICT if the hash is already stored.
func (s *SchoolService) AddAPIKey(ctx context.Context, schoolCode, keyHash string) error {
	if keyHash == "" {
		return fmt.Errorf("add api key: %w", ecardbot.Errorf(ecardbot.EINVALID, "Missing key hash."))
	}
	res := s.db.gorm.WithContext(ctx).Exec(
		`INSERT INTO school_api_keys (school_id, key_hash, created_at) SELECT id, ?, ? FROM schools WHERE code = ?`,
		keyHash, s.db.timeArg(s.now()), schoolCode)
	if res.Error != nil {
		return fmt.Errorf("add api key: %w", mapError(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("add api key: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "No school has code %q.", schoolCode))
	}
	return nil
}
