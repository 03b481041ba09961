package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// SettingsService keeps the settings pages' links, sessions, attempts and confirmations, and
// reads the views the pages show.
type SettingsService struct {
	db *DB
}

var _ ecardbot.SettingsService = (*SettingsService)(nil)

// NewSettingsService returns the service over db, which must be migrated.
func NewSettingsService(db *DB) *SettingsService {
	return &SettingsService{db: db}
}

// noGuardian is what a row for an unknown guardian gets.
var noGuardian = ecardbot.Errorf(ecardbot.ENOTFOUND, "No such guardian.")

// insertForGuardian runs an INSERT … SELECT … FROM guardians WHERE id = ? and reports
// ENOTFOUND when the guardian does not exist. Expired rows of the guardian in table go first,
// so the table holds only what can still be used (or told apart from a token never issued).
func (s *SettingsService) insertForGuardian(ctx context.Context, table string, guardianID int64, now time.Time, insert string, args ...any) error {
	return s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM `+table+` WHERE guardian_id = ? AND expires_at <= ?`, guardianID, s.db.timeArg(now)).Error; err != nil {
			return err
		}
		res := tx.Exec(insert, args...)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return noGuardian
		}
		return nil
	})
}

// CreateSettingsLink stores a link for the guardian to page. Returns ENOTFOUND for an unknown
// guardian and EINVALID for a page that is not a SettingsPage.
func (s *SettingsService) CreateSettingsLink(ctx context.Context, tokenHash string, guardianID int64, page ecardbot.SettingsPage, now, expiresAt time.Time) error {
	if !ecardbot.ValidSettingsPage(page) {
		return fmt.Errorf("create settings link: %w", ecardbot.Errorf(ecardbot.EINVALID, "Unknown settings page."))
	}
	err := s.insertForGuardian(ctx, "settings_links", guardianID, now,
		`INSERT INTO settings_links (token_hash, guardian_id, page, expires_at, created_at) SELECT ?, id, ?, ?, ? FROM guardians WHERE id = ?`,
		tokenHash, string(page), s.db.timeArg(expiresAt), s.db.timeArg(now), guardianID)
	if err != nil {
		return fmt.Errorf("create settings link: %w", mapError(err))
	}
	return nil
}

// UseSettingsLink marks the link used in one conditional UPDATE, so that of two replicas
// opening the same link at once, the row lock lets one win and the other find it used.
func (s *SettingsService) UseSettingsLink(ctx context.Context, tokenHash string, now time.Time) (int64, ecardbot.SettingsPage, error) {
	var rows []struct {
		GuardianID int64
		Page       string
	}
	err := s.db.gorm.WithContext(ctx).Raw(`UPDATE settings_links SET used_at = ?
WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING guardian_id, page`,
		s.db.timeArg(now), tokenHash, s.db.timeArg(now)).Scan(&rows).Error
	if err != nil {
		return 0, "", fmt.Errorf("use settings link: %w", mapError(err))
	}
	if len(rows) == 0 {
		return 0, "", fmt.Errorf("use settings link: %w", s.spent(ctx, "settings_links", tokenHash))
	}
	return rows[0].GuardianID, ecardbot.SettingsPage(rows[0].Page), nil
}

// spent tells an unknown token (ENOTFOUND) from one used or expired (ECONFLICT).
func (s *SettingsService) spent(ctx context.Context, table, tokenHash string) error {
	var n int64
	if err := s.db.gorm.WithContext(ctx).Raw(`SELECT count(*) FROM `+table+` WHERE token_hash = ?`, tokenHash).Scan(&n).Error; err != nil {
		return mapError(err)
	}
	if n == 0 {
		return ecardbot.Errorf(ecardbot.ENOTFOUND, "Unknown link.")
	}
	return ecardbot.Errorf(ecardbot.ECONFLICT, "This link was already used or has expired.")
}

// CreateSession stores a session. Returns ENOTFOUND for an unknown guardian.
func (s *SettingsService) CreateSession(ctx context.Context, idHash string, sess ecardbot.SettingsSession, now time.Time) error {
	err := s.insertForGuardian(ctx, "settings_sessions", sess.GuardianID, now,
		`INSERT INTO settings_sessions (id_hash, guardian_id, csrf_secret, expires_at, created_at) SELECT ?, id, ?, ?, ? FROM guardians WHERE id = ?`,
		idHash, sess.CSRFSecret, s.db.timeArg(sess.ExpiresAt), s.db.timeArg(now), sess.GuardianID)
	if err != nil {
		return fmt.Errorf("create session: %w", mapError(err))
	}
	return nil
}

// FindSession returns the session. Returns ENOTFOUND for an unknown or expired one, and for
// one whose guardian has no LINE binding any more: whatever else unlinking cleans up, a
// session never outlives the binding it was opened through.
func (s *SettingsService) FindSession(ctx context.Context, idHash string, now time.Time) (ecardbot.SettingsSession, error) {
	var rows []struct {
		GuardianID int64
		CSRFSecret string `gorm:"column:csrf_secret"`
		ExpiresAt  time.Time
	}
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT ss.guardian_id, ss.csrf_secret, ss.expires_at FROM settings_sessions ss
JOIN guardians g ON g.id = ss.guardian_id
WHERE ss.id_hash = ? AND ss.expires_at > ? AND g.line_user_id IS NOT NULL`, idHash, s.db.timeArg(now)).Scan(&rows).Error
	if err != nil {
		return ecardbot.SettingsSession{}, fmt.Errorf("find session: %w", mapError(err))
	}
	if len(rows) == 0 {
		return ecardbot.SettingsSession{}, fmt.Errorf("find session: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "No such session."))
	}
	r := rows[0]
	return ecardbot.SettingsSession{GuardianID: r.GuardianID, CSRFSecret: r.CSRFSecret, ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// Guardian returns the guardian. Returns ENOTFOUND for an unknown one.
func (s *SettingsService) Guardian(ctx context.Context, guardianID int64) (*ecardbot.Guardian, error) {
	var rows []guardianRow
	if err := s.db.gorm.WithContext(ctx).Raw(selectGuardian+`WHERE id = ?`, guardianID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("find guardian: %w", mapError(err))
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("find guardian: %w", noGuardian)
	}
	return rows[0].domain(), nil
}

// Schools returns the schools of a district and level, by name.
func (s *SettingsService) Schools(ctx context.Context, district, level string) ([]ecardbot.School, error) {
	var rows []schoolRow
	err := s.db.gorm.WithContext(ctx).Where("district = ? AND level = ?", district, level).Order("name, code").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list schools: %w", mapError(err))
	}
	out := make([]ecardbot.School, len(rows))
	for i := range rows {
		out[i] = *rows[i].domain()
	}
	return out, nil
}

// Children returns the guardian's students in the order they were added.
func (s *SettingsService) Children(ctx context.Context, guardianID int64) ([]ecardbot.Child, error) {
	var rows []struct {
		ID         int64
		Name       string
		StudentNo  string
		Grade      string
		Class      string
		SchoolName string
		Active     bool
	}
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT st.id, st.name, st.student_no, st.grade, st."class", sc.name AS school_name, st.active
FROM guardianships gs JOIN students st ON st.id = gs.student_id JOIN schools sc ON sc.id = st.school_id
WHERE gs.guardian_id = ? ORDER BY gs.created_at, st.id`, guardianID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list children: %w", mapError(err))
	}
	out := make([]ecardbot.Child, len(rows))
	for i, r := range rows {
		out[i] = ecardbot.Child{StudentID: r.ID, Name: r.Name, StudentNo: r.StudentNo, Grade: r.Grade, Class: r.Class,
			SchoolName: r.SchoolName, Active: r.Active}
	}
	return out, nil
}

// History returns the recent notices about the guardian's current students, with the states of
// their deliveries to this guardian, LINE first. A child removed from the guardian takes its
// history along: the guardian has no business seeing it any more.
func (s *SettingsService) History(ctx context.Context, guardianID int64, since time.Time, limit int) ([]ecardbot.HistoryEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []struct {
		ID         int64
		StudentID  int64
		ChildName  string
		SchoolName string
		Kind       string
		At         time.Time
		Channel    *string
		State      *string
	}
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT n.id, n.student_id, st.name AS child_name, sc.name AS school_name, n.kind, n.at,
	d.channel, d.state
FROM notices n
JOIN students st ON st.id = n.student_id
JOIN schools sc ON sc.id = st.school_id
LEFT JOIN deliveries d ON d.notice_id = n.id AND d.guardian_id = ?
WHERE n.id IN (SELECT n2.id FROM notices n2 JOIN guardianships gs ON gs.student_id = n2.student_id
	WHERE gs.guardian_id = ? AND n2.at >= ? ORDER BY n2.at DESC, n2.id DESC LIMIT ?)
ORDER BY n.at DESC, n.id DESC, d.channel DESC`, guardianID, guardianID, s.db.timeArg(since), limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list history: %w", mapError(err))
	}
	var out []ecardbot.HistoryEntry
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].NoticeID != r.ID {
			out = append(out, ecardbot.HistoryEntry{NoticeID: r.ID, StudentID: r.StudentID, ChildName: r.ChildName,
				SchoolName: r.SchoolName, Kind: ecardbot.NoticeKind(r.Kind), At: r.At.UTC()})
		}
		if r.Channel != nil {
			e := &out[len(out)-1]
			e.Deliveries = append(e.Deliveries, ecardbot.HistoryDelivery{Channel: ecardbot.Channel(*r.Channel), State: *r.State})
		}
	}
	return out, nil
}

// lockGuardian locks the guardian's row for the rest of tx (PostgreSQL; SQLite has one writer
// anyway), so that limits counted per guardian hold across replicas. noGuardian when unknown.
func (s *SettingsService) lockGuardian(tx *gorm.DB, guardianID int64) error {
	lock := `SELECT id FROM guardians WHERE id = ?`
	if s.db.dialect == DialectPostgres {
		lock += ` FOR UPDATE`
	}
	var ids []int64
	if err := tx.Raw(lock, guardianID).Scan(&ids).Error; err != nil {
		return err
	}
	if len(ids) == 0 {
		return noGuardian
	}
	return nil
}

// MatchStudent finds the student for 歸戶 under the guardian's attempt limit. The guardian's
// row is locked first (PostgreSQL; SQLite's single writer does the same), so two attempts of
// one guardian on two replicas are counted one after the other and never both slip under the
// limit. A miss is committed as a failed attempt while the caller still gets ENOTFOUND.
func (s *SettingsService) MatchStudent(ctx context.Context, guardianID int64, q ecardbot.StudentQuery, now time.Time, maxFailed int, window time.Duration) (int64, error) {
	var studentID int64
	nowArg, from := s.db.timeArg(now), s.db.timeArg(now.Add(-window))
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockGuardian(tx, guardianID); err != nil {
			return err
		}
		// Failures older than the window count for nothing any more.
		if err := tx.Exec(`DELETE FROM settings_attempts WHERE guardian_id = ? AND at <= ?`, guardianID, from).Error; err != nil {
			return err
		}
		var failed []time.Time
		if err := tx.Raw(`SELECT at FROM settings_attempts WHERE guardian_id = ? ORDER BY at`, guardianID).Scan(&failed).Error; err != nil {
			return err
		}
		if len(failed) >= maxFailed {
			// The guardian may try again once enough failures have left the window.
			return &ecardbot.TooManyAttemptsError{RetryAt: failed[len(failed)-maxFailed].UTC().Add(window)}
		}
		var found []int64
		if err := tx.Raw(`SELECT id FROM students WHERE school_id = ? AND student_no = ? AND name = ? AND birth_date = ?
	AND national_id_hash = ? AND active`, q.SchoolID, q.StudentNo, q.Name, q.BirthDate, q.NationalIDHash).Scan(&found).Error; err != nil {
			return err
		}
		if len(found) == 1 {
			studentID = found[0]
			return nil
		}
		return tx.Exec(`INSERT INTO settings_attempts (guardian_id, at) VALUES (?, ?)`, guardianID, nowArg).Error
	})
	if err != nil {
		return 0, fmt.Errorf("match student: %w", mapError(err))
	}
	if studentID == 0 {
		return 0, fmt.Errorf("match student: %w", ecardbot.Errorf(ecardbot.ENOTFOUND,
			"No pupil matches these details. Please check them against the school's records."))
	}
	return studentID, nil
}

// CreateEmailConfirmation stores a confirmation of address for the guardian without any limit
// on how many: for tools and tests. The settings pages use CreateEmailConfirmationLimited.
func (s *SettingsService) CreateEmailConfirmation(ctx context.Context, tokenHash string, guardianID int64, email string, now, expiresAt time.Time) error {
	return s.CreateEmailConfirmationLimited(ctx, tokenHash, guardianID, email, now, expiresAt, 0, 0)
}

// CreateEmailConfirmationLimited stores a confirmation of address for the guardian unless the
// guardian already has max confirmations created in the window before now (max <= 0: no
// limit). As MatchStudent does, it locks the guardian's row first (PostgreSQL; SQLite's single
// writer does the same), so two requests of one guardian on two replicas are counted one after
// the other. It counts rows by created_at, used, expired or not. The guardian's expired rows
// created before the window are deleted first; the retention sweep deletes expired rows
// whenever they were created, which loses none of the window's rows as long as a
// confirmation lives longer than the window (the pages' live 24 hours, against one hour).
func (s *SettingsService) CreateEmailConfirmationLimited(ctx context.Context, tokenHash string, guardianID int64, email string, now, expiresAt time.Time, maxMails int, window time.Duration) error {
	nowArg := s.db.timeArg(now)
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockGuardian(tx, guardianID); err != nil {
			return err
		}
		// Expired rows go, except those the limit still counts.
		if err := tx.Exec(`DELETE FROM email_confirmations WHERE guardian_id = ? AND expires_at <= ? AND created_at <= ?`,
			guardianID, nowArg, s.db.timeArg(now.Add(-window))).Error; err != nil {
			return err
		}
		if maxMails > 0 {
			var sent []time.Time
			if err := tx.Raw(`SELECT created_at FROM email_confirmations WHERE guardian_id = ? AND created_at > ? ORDER BY created_at`,
				guardianID, s.db.timeArg(now.Add(-window))).Scan(&sent).Error; err != nil {
				return err
			}
			if len(sent) >= maxMails {
				// Another mail may go once enough of these have left the window.
				return &ecardbot.TooManyMailsError{RetryAt: sent[len(sent)-maxMails].UTC().Add(window)}
			}
		}
		return tx.Exec(`INSERT INTO email_confirmations (token_hash, guardian_id, email, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`,
			tokenHash, guardianID, email, s.db.timeArg(expiresAt), nowArg).Error
	})
	if err != nil {
		return fmt.Errorf("create e-mail confirmation: %w", mapError(err))
	}
	return nil
}

// PeekEmailConfirmation returns the guardian and address of a confirmation that can still be
// used, without using it.
func (s *SettingsService) PeekEmailConfirmation(ctx context.Context, tokenHash string, now time.Time) (int64, string, error) {
	var rows []struct {
		GuardianID int64
		Email      string
	}
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT guardian_id, email FROM email_confirmations
WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`, tokenHash, s.db.timeArg(now)).Scan(&rows).Error
	if err != nil {
		return 0, "", fmt.Errorf("peek e-mail confirmation: %w", mapError(err))
	}
	if len(rows) == 0 {
		return 0, "", fmt.Errorf("peek e-mail confirmation: %w", s.spent(ctx, "email_confirmations", tokenHash))
	}
	return rows[0].GuardianID, rows[0].Email, nil
}

// errUnusable ends UseEmailConfirmation's transaction, which changed nothing, when no row was
// left to use.
var errUnusable = errors.New("confirmation not usable")

// UseEmailConfirmation marks the confirmation used in one conditional UPDATE, as
// UseSettingsLink does, then, in the same transaction, confirms the guardian's address in
// another: UPDATE guardians … WHERE id = ? AND email = <the confirmation's address>. So an
// address the parent changed after reading the guardian, on this replica or another, is never
// marked confirmed. A confirmation that finds the address changed is used up all the same:
// the address it was mailed to is no longer the guardian's.
func (s *SettingsService) UseEmailConfirmation(ctx context.Context, tokenHash string, now time.Time) (int64, string, error) {
	var (
		row struct {
			GuardianID int64
			Email      string
		}
		confirmed bool
	)
	nowArg := s.db.timeArg(now)
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []struct {
			GuardianID int64
			Email      string
		}
		if err := tx.Raw(`UPDATE email_confirmations SET used_at = ?
WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING guardian_id, email`,
			nowArg, tokenHash, nowArg).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return errUnusable
		}
		row = rows[0]
		// The first confirmation of an address keeps its time; a later one of the same
		// address changes nothing but updated_at.
		res := tx.Exec(`UPDATE guardians SET email_confirmed_at = COALESCE(email_confirmed_at, ?), updated_at = ?
WHERE id = ? AND email = ?`, nowArg, nowArg, row.GuardianID, row.Email)
		if res.Error != nil {
			return res.Error
		}
		confirmed = res.RowsAffected > 0
		return nil
	})
	switch {
	case errors.Is(err, errUnusable):
		return 0, "", fmt.Errorf("use e-mail confirmation: %w", s.spent(ctx, "email_confirmations", tokenHash))
	case err != nil:
		return 0, "", fmt.Errorf("use e-mail confirmation: %w", mapError(err))
	case !confirmed:
		return row.GuardianID, row.Email, fmt.Errorf("use e-mail confirmation: %w", ecardbot.ErrEmailChanged)
	}
	return row.GuardianID, row.Email, nil
}
