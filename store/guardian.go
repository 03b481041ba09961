package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// guardianRow is a row of guardians.
type guardianRow struct {
	ID               int64
	TaipeipassID     string
	LineUserID       *string
	Email            string
	EmailConfirmedAt *time.Time
	Language         string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

func (guardianRow) TableName() string { return "guardians" }

func (r *guardianRow) domain() *ecardbot.Guardian {
	g := &ecardbot.Guardian{
		ID: r.ID, TaipeiPassID: r.TaipeipassID, Email: r.Email, Language: r.Language,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.LineUserID != nil {
		g.LineUserID = *r.LineUserID
	}
	if r.EmailConfirmedAt != nil {
		t := r.EmailConfirmedAt.UTC()
		g.EmailConfirmedAt = &t
	}
	return g
}

func (r *guardianRow) lineUser() string {
	if r.LineUserID == nil {
		return ""
	}
	return *r.LineUserID
}

// GuardianService keeps guardians, their students and their subscriptions in the database.
//
// The fan-out of GateService.Ingest reads these tables directly: a notice reaches a guardian on
// LINE when the guardian subscribed to its kind for the student on LINE, still holds the
// guardianship, and their LINE user follows the bot; on e-mail when the address is confirmed.
type GuardianService struct {
	db  *DB
	now func() time.Time
}

var _ ecardbot.GuardianService = (*GuardianService)(nil)

// NewGuardianService returns the service over db, which must be migrated.
func NewGuardianService(db *DB) *GuardianService {
	return &GuardianService{db: db, now: time.Now}
}

const selectGuardian = `SELECT id, taipeipass_id, line_user_id, email, email_confirmed_at, language, created_at, updated_at FROM guardians `

// LinkGuardian binds the TaipeiPASS account to the LINE user, creating the guardian when the
// account is new, in the language the LINE user was last seen in; the newest link wins (see
// ecardbot.GuardianService). Returns EINVALID for a malformed LINE user ID or an empty account.
func (s *GuardianService) LinkGuardian(ctx context.Context, taipeiPassID, lineUserID string) (ecardbot.LinkResult, error) {
	if err := checkLink(taipeiPassID, lineUserID); err != nil {
		return ecardbot.LinkResult{}, fmt.Errorf("link guardian: %w", err)
	}
	var res ecardbot.LinkResult
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		res, err = linkTx(tx, s.db.timeArg(s.now()), taipeiPassID, lineUserID)
		return err
	})
	if err != nil {
		return ecardbot.LinkResult{}, fmt.Errorf("link guardian: %w", mapError(err))
	}
	return res, nil
}

func checkLink(taipeiPassID, lineUserID string) error {
	switch {
	case taipeiPassID == "":
		return ecardbot.Errorf(ecardbot.EINVALID, "Missing TaipeiPASS account.")
	case !ecardbot.ValidLineUserID(lineUserID):
		return ecardbot.Errorf(ecardbot.EINVALID, "Malformed LINE user ID.")
	}
	return nil
}

// linkTx is LinkGuardian inside the caller's transaction, which CompleteLink shares so that the
// nonce is used up only when the binding is made. The LINE user's old guardian is unlinked
// before the account's row takes the user, as the unique index on line_user_id requires.
func linkTx(tx *gorm.DB, now any, taipeiPassID, lineUserID string) (ecardbot.LinkResult, error) {
	var res ecardbot.LinkResult
	var rows []guardianRow
	if err := tx.Raw(selectGuardian+`WHERE taipeipass_id = ? OR line_user_id = ? ORDER BY id`, taipeiPassID, lineUserID).Scan(&rows).Error; err != nil {
		return res, err
	}
	var byAccount *guardianRow
	for i := range rows {
		if r := &rows[i]; r.TaipeipassID == taipeiPassID {
			byAccount = r
		} else if r.lineUser() == lineUserID {
			if err := unlinkTx(tx, now, r.ID, "unlinked: LINE user linked to another account"); err != nil {
				return res, err
			}
			res.Unlinked = r.ID
		}
	}
	var id int64
	switch {
	case byAccount != nil && byAccount.lineUser() == lineUserID:
		res.Guardian = byAccount.domain()
		return res, nil
	case byAccount != nil:
		res.MovedFrom = byAccount.lineUser()
		if err := tx.Exec(`UPDATE guardians SET line_user_id = ?, updated_at = ? WHERE id = ?`, lineUserID, now, byAccount.ID).Error; err != nil {
			return res, err
		}
		// The old LINE user's way into the settings pages must not follow the account.
		if err := endSettingsAccess(tx, byAccount.ID); err != nil {
			return res, err
		}
		id = byAccount.ID
	default:
		var langs []string
		if err := tx.Raw(`SELECT language FROM line_users WHERE id = ?`, lineUserID).Scan(&langs).Error; err != nil {
			return res, err
		}
		lang := ecardbot.LangZhTW
		if len(langs) == 1 && langs[0] != "" {
			lang = langs[0]
		}
		if err := tx.Raw(`INSERT INTO guardians (taipeipass_id, line_user_id, email, language, created_at, updated_at)
VALUES (?, ?, '', ?, ?, ?) RETURNING id`, taipeiPassID, lineUserID, lang, now, now).Scan(&id).Error; err != nil {
			return res, err
		}
	}
	var g guardianRow
	if err := tx.Raw(selectGuardian+`WHERE id = ?`, id).Scan(&g).Error; err != nil {
		return res, err
	}
	res.Guardian = g.domain()
	return res, nil
}

// UnlinkGuardian removes the LINE user's binding and the guardian's subscriptions, settings
// sessions and settings links and cancels their unsent deliveries, in one transaction; the
// guardianships stay (see ecardbot.GuardianService). Returns ENOTFOUND when the user is not
// linked.
func (s *GuardianService) UnlinkGuardian(ctx context.Context, lineUserID string) (*ecardbot.Guardian, error) {
	now := s.db.timeArg(s.now())
	var g guardianRow
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []guardianRow
		if err := tx.Raw(selectGuardian+`WHERE line_user_id = ?`, lineUserID).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return ecardbot.Errorf(ecardbot.ENOTFOUND, "This LINE user is not linked.")
		}
		if err := unlinkTx(tx, now, rows[0].ID, "unlinked"); err != nil {
			return err
		}
		return tx.Raw(selectGuardian+`WHERE id = ?`, rows[0].ID).Scan(&g).Error
	})
	if err != nil {
		return nil, fmt.Errorf("unlink guardian: %w", mapError(err))
	}
	return g.domain(), nil
}

// unlinkTx clears the guardian's LINE binding, ends their access to the settings pages
// (endSettingsAccess), deletes their subscriptions and cancels their deliveries that are pending
// or queued (the worker skips a cancelled one), so an unlinked parent is written to no more, on
// any channel, and no browser or link from the chat still opens their settings.
func unlinkTx(tx *gorm.DB, now any, guardianID int64, reason string) error {
	if err := tx.Exec(`UPDATE guardians SET line_user_id = NULL, updated_at = ? WHERE id = ?`, now, guardianID).Error; err != nil {
		return err
	}
	if err := endSettingsAccess(tx, guardianID); err != nil {
		return err
	}
	if err := tx.Exec(`DELETE FROM subscriptions WHERE guardian_id = ?`, guardianID).Error; err != nil {
		return err
	}
	return tx.Exec(`UPDATE deliveries SET state = ?, dead_reason = ?, updated_at = ? WHERE guardian_id = ? AND state IN (?, ?)`,
		ecardbot.DeliveryCancelled, reason, now, guardianID, ecardbot.DeliveryPending, ecardbot.DeliveryQueued).Error
}

// endSettingsAccess deletes the guardian's settings sessions and settings links (tables of
// migration 0005), so that neither a browser signed in from the chat nor a link sent to it opens
// the guardian's settings once that LINE user no longer holds the account: after an unlink, and
// when the account moves to another LINE user. A link clicked afterwards is then an unknown one.
func endSettingsAccess(tx *gorm.DB, guardianID int64) error {
	if err := tx.Exec(`DELETE FROM settings_sessions WHERE guardian_id = ?`, guardianID).Error; err != nil {
		return err
	}
	return tx.Exec(`DELETE FROM settings_links WHERE guardian_id = ?`, guardianID).Error
}

// FindGuardianByLineUser returns the guardian linked to the LINE user. Returns ENOTFOUND when the
// user is not linked.
func (s *GuardianService) FindGuardianByLineUser(ctx context.Context, lineUserID string) (*ecardbot.Guardian, error) {
	var rows []guardianRow
	if err := s.db.gorm.WithContext(ctx).Raw(selectGuardian+`WHERE line_user_id = ?`, lineUserID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("find guardian: %w", mapError(err))
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("find guardian: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "This LINE user is not linked."))
	}
	return rows[0].domain(), nil
}

// AddGuardianship records that the guardian is a guardian of the student; adding it again changes
// nothing. Returns ENOTFOUND for an unknown guardian or a student who is not active.
func (s *GuardianService) AddGuardianship(ctx context.Context, guardianID, studentID int64) error {
	db := s.db.gorm.WithContext(ctx)
	// WHERE also ends the SELECT for SQLite's parser, which would otherwise read ON CONFLICT as
	// a join constraint.
	res := db.Exec(`INSERT INTO guardianships (guardian_id, student_id, created_at)
SELECT g.id, st.id, ? FROM guardians g CROSS JOIN students st WHERE g.id = ? AND st.id = ? AND st.active
ON CONFLICT (guardian_id, student_id) DO NOTHING`, s.db.timeArg(s.now()), guardianID, studentID)
	if res.Error != nil {
		return fmt.Errorf("add guardianship: %w", mapError(res.Error))
	}
	if res.RowsAffected > 0 {
		return nil
	}
	var n int64
	if err := db.Raw(`SELECT count(*) FROM guardianships WHERE guardian_id = ? AND student_id = ?`, guardianID, studentID).Scan(&n).Error; err != nil {
		return fmt.Errorf("add guardianship: %w", mapError(err))
	}
	if n == 0 {
		return fmt.Errorf("add guardianship: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "No such guardian or active student."))
	}
	return nil
}

// RemoveGuardianship deletes the guardianship and its subscriptions and cancels the pending
// deliveries of the student's notices to the guardian, in one transaction, so a parent removed
// from a child gets nothing more about them, not even what was already waiting in the outbox.
// Returns ENOTFOUND when the guardian is not a guardian of the student.
func (s *GuardianService) RemoveGuardianship(ctx context.Context, guardianID, studentID int64) error {
	now := s.db.timeArg(s.now())
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`DELETE FROM guardianships WHERE guardian_id = ? AND student_id = ?`, guardianID, studentID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ecardbot.Errorf(ecardbot.ENOTFOUND, "Not a guardian of this student.")
		}
		if err := tx.Exec(`DELETE FROM subscriptions WHERE guardian_id = ? AND student_id = ?`, guardianID, studentID).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE deliveries SET state = ?, dead_reason = ?, updated_at = ?
WHERE guardian_id = ? AND state = ? AND notice_id IN (SELECT id FROM notices WHERE student_id = ?)`,
			ecardbot.DeliveryCancelled, "guardianship removed", now, guardianID, ecardbot.DeliveryPending, studentID).Error
	})
	if err != nil {
		return fmt.Errorf("remove guardianship: %w", mapError(err))
	}
	return nil
}

// SetEmail sets the guardian's e-mail address, confirmed as of now or not; "" removes it.
// Returns EINVALID for a malformed address and ENOTFOUND for an unknown guardian.
func (s *GuardianService) SetEmail(ctx context.Context, guardianID int64, email string, confirmed bool) error {
	var confirmedAt any
	if email != "" {
		var err error
		if email, err = ecardbot.ValidateEmail(email); err != nil {
			return fmt.Errorf("set email: %w", err)
		}
		if confirmed {
			confirmedAt = s.db.timeArg(s.now())
		}
	}
	res := s.db.gorm.WithContext(ctx).Exec(`UPDATE guardians SET email = ?, email_confirmed_at = ?, updated_at = ? WHERE id = ?`,
		email, confirmedAt, s.db.timeArg(s.now()), guardianID)
	if res.Error != nil {
		return fmt.Errorf("set email: %w", mapError(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("set email: %w", ecardbot.Errorf(ecardbot.ENOTFOUND, "No such guardian."))
	}
	return nil
}

// Subscriptions returns the guardian's subscriptions ordered by student, kind and channel.
func (s *GuardianService) Subscriptions(ctx context.Context, guardianID int64) ([]ecardbot.Subscription, error) {
	var rows []subscriptionRow
	err := s.db.gorm.WithContext(ctx).Raw(`SELECT guardian_id, student_id, kind, channel FROM subscriptions
WHERE guardian_id = ? ORDER BY student_id, kind, channel`, guardianID).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", mapError(err))
	}
	subs := make([]ecardbot.Subscription, len(rows))
	for i, r := range rows {
		subs[i] = ecardbot.Subscription{StudentID: r.StudentID, Kind: ecardbot.NoticeKind(r.Kind), Channel: ecardbot.Channel(r.Channel)}
	}
	return subs, nil
}

// SetSubscriptions makes subs the guardian's complete set of subscriptions for the student; a
// repeated element counts once. Returns EINVALID for an element about another student or with an
// unknown kind or channel, and ENOTFOUND when the guardian is not a guardian of the student.
func (s *GuardianService) SetSubscriptions(ctx context.Context, guardianID, studentID int64, subs []ecardbot.Subscription) error {
	want := make(map[subscriptionRow]bool, len(subs))
	for _, sub := range subs {
		switch {
		case sub.StudentID != studentID:
			return fmt.Errorf("set subscriptions: %w", ecardbot.Errorf(ecardbot.EINVALID, "A subscription names another student."))
		case !ecardbot.ValidKind(sub.Kind):
			return fmt.Errorf("set subscriptions: %w", ecardbot.Errorf(ecardbot.EINVALID, "Unknown notice kind %q.", sub.Kind))
		case !ecardbot.ValidChannel(sub.Channel):
			return fmt.Errorf("set subscriptions: %w", ecardbot.Errorf(ecardbot.EINVALID, "Unknown channel %q.", sub.Channel))
		}
		want[subscriptionRow{guardianID, studentID, string(sub.Kind), string(sub.Channel)}] = true
	}
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM guardianships WHERE guardian_id = ? AND student_id = ?`, guardianID, studentID).Scan(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ecardbot.Errorf(ecardbot.ENOTFOUND, "Not a guardian of this student.")
		}
		if err := tx.Exec(`DELETE FROM subscriptions WHERE guardian_id = ? AND student_id = ?`, guardianID, studentID).Error; err != nil {
			return err
		}
		_, err := insertSubscriptions(tx, sortedSubscriptions(want))
		return err
	})
	if err != nil {
		return fmt.Errorf("set subscriptions: %w", mapError(err))
	}
	return nil
}

// subscriptionRow is a row of subscriptions; comparable, so it keys sets.
type subscriptionRow struct {
	GuardianID int64
	StudentID  int64
	Kind       string
	Channel    string
}

func sortedSubscriptions(set map[subscriptionRow]bool) []subscriptionRow {
	rows := make([]subscriptionRow, 0, len(set))
	for r := range set {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b subscriptionRow) int {
		return cmp.Or(cmp.Compare(a.GuardianID, b.GuardianID), cmp.Compare(a.StudentID, b.StudentID),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Channel, b.Channel))
	})
	return rows
}

// insertSubscriptions inserts rows, skipping those already stored, and returns how many it
// inserted.
func insertSubscriptions(tx *gorm.DB, rows []subscriptionRow) (int, error) {
	const cols = 4
	n := 0
	for chunk := range chunks(rows, cols) {
		args := make([]any, 0, len(chunk)*cols)
		for _, r := range chunk {
			args = append(args, r.GuardianID, r.StudentID, r.Kind, r.Channel)
		}
		res := tx.Exec(`INSERT INTO subscriptions (guardian_id, student_id, kind, channel) VALUES `+placeholders(len(chunk), cols)+`
ON CONFLICT (guardian_id, student_id, kind, channel) DO NOTHING`, args...)
		if res.Error != nil {
			return n, res.Error
		}
		n += int(res.RowsAffected)
	}
	return n, nil
}

// errDryRun rolls back the transaction of a dry run.
var errDryRun = errors.New("dry run")

// ImportSubscribers applies a subscribers file from the old portal (design.md §3.5) in one
// transaction; see ecardbot.GuardianService for what it does and returns.
//
// Details that the interface leaves open:
//   - A LINE user the service has never seen is recorded as following as of the import (the old
//     portal synced its friends), in Traditional Chinese. A LINE user already recorded is left
//     as it is, whatever its state: a follow or unfollow that LINE delivered is better evidence
//     than the old portal's list.
//   - A guardian has one e-mail address. The file's address (all lines of a guardian must agree
//     on it) replaces the stored one; an address that changes is confirmed as of the import when
//     opts.EmailConfirmed is set and unconfirmed otherwise, while an unchanged address keeps its
//     confirmation. A guardian whose lines have no address keeps the stored one, but the file's
//     students get no e-mail subscriptions.
//   - Subscriptions and guardianships not named by the file are left alone: the file is the
//     truth only for the (guardian, student) pairs it lists.
func (s *GuardianService) ImportSubscribers(ctx context.Context, entries []ecardbot.SubscriberEntry, opts ecardbot.SubscriberImportOptions) (ecardbot.SubscriberImportResult, error) {
	im := &subscriberImport{s: s, entries: entries, opts: opts, errs: map[int]*ecardbot.EntryError{}}
	im.check()
	if len(entries) == 0 {
		return ecardbot.SubscriberImportResult{}, fmt.Errorf("import subscribers: %w",
			ecardbot.Errorf(ecardbot.EINVALID, "The file has no subscribers."))
	}
	var result ecardbot.SubscriberImportResult
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		result, err = im.run(tx)
		if err == nil && opts.DryRun {
			return errDryRun
		}
		return err
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		var ierr *ecardbot.ImportError
		if !errors.As(err, &ierr) {
			err = s.db.unavailable(ctx, mapError(err))
		}
		return ecardbot.SubscriberImportResult{}, fmt.Errorf("import subscribers: %w", err)
	}
	return result, nil
}

// subscriberImport is one call of ImportSubscribers.
type subscriberImport struct {
	s       *GuardianService
	entries []ecardbot.SubscriberEntry
	opts    ecardbot.SubscriberImportOptions
	errs    map[int]*ecardbot.EntryError // by entry index
	// email is each account's address in the file, "" when none of its lines has one.
	email map[string]string
}

// severity orders codes when one line has problems of several kinds: the line keeps the code of
// its most serious one.
func severity(code string) int {
	switch code {
	case ecardbot.ECONFLICT:
		return 3
	case ecardbot.ENOTFOUND:
		return 2
	}
	return 1
}

func (im *subscriberImport) fail(i int, code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if e, ok := im.errs[i]; ok {
		e.Message += "; " + msg
		if severity(code) > severity(e.Code) {
			e.Code = code
		}
		return
	}
	im.errs[i] = &ecardbot.EntryError{Line: im.entries[i].Line, Code: code, Message: msg}
}

func (im *subscriberImport) ok(i int) bool { return im.errs[i] == nil }

// importError returns the collected problems as an *ecardbot.ImportError, or nil.
func (im *subscriberImport) importError() error {
	if len(im.errs) == 0 {
		return nil
	}
	all := make([]ecardbot.EntryError, 0, len(im.errs))
	for _, e := range im.errs {
		all = append(all, *e)
	}
	slices.SortFunc(all, func(a, b ecardbot.EntryError) int { return cmp.Compare(a.Line, b.Line) })
	return &ecardbot.ImportError{Entries: all[:min(len(all), ecardbot.MaxEntryErrors)], Total: len(all)}
}

// check finds what is wrong with entries on their own and against each other, without the
// database.
func (im *subscriberImport) check() {
	type pair struct{ account, school, student string }
	var (
		pairs     = map[pair]int{}   // → line
		accountOf = map[string]int{} // LINE user → index of its first entry
		lineOf    = map[string]int{} // account → index of its first entry
		emailOf   = map[string]int{} // account → index of its first entry with an address
	)
	im.email = map[string]string{}
	for i := range im.entries {
		e := &im.entries[i]
		if !ecardbot.ValidLineUserID(e.LineUserID) {
			im.fail(i, ecardbot.EINVALID, "line_user_id must be U followed by 32 lower-case hexadecimal digits")
		}
		if e.TaipeiPassID == "" {
			im.fail(i, ecardbot.EINVALID, "taipeipass_id is required")
		}
		if e.SchoolCode == "" {
			im.fail(i, ecardbot.EINVALID, "school_code is required")
		}
		if e.StudentNo == "" {
			im.fail(i, ecardbot.EINVALID, "student_no is required")
		}
		seen := map[ecardbot.NoticeKind]bool{}
		for _, k := range e.Kinds {
			if !ecardbot.ValidKind(k) || seen[k] {
				im.fail(i, ecardbot.EINVALID, "notice kind %q is unknown or repeated", k)
			}
			seen[k] = true
		}
		if e.Email != "" {
			if _, err := ecardbot.ValidateEmail(e.Email); err != nil || strings.TrimSpace(e.Email) != e.Email {
				im.fail(i, ecardbot.EINVALID, "email is not a valid address")
			}
		}
		if !im.ok(i) {
			continue
		}

		p := pair{e.TaipeiPassID, e.SchoolCode, e.StudentNo}
		if line, dup := pairs[p]; dup {
			im.fail(i, ecardbot.EINVALID, "taipeipass_id, school_code and student_no repeat line %d", line)
		} else {
			pairs[p] = e.Line
		}
		if j, seen := lineOf[e.TaipeiPassID]; !seen {
			lineOf[e.TaipeiPassID] = i
		} else if other := im.entries[j]; other.LineUserID != e.LineUserID {
			im.fail(i, ecardbot.ECONFLICT, "taipeipass_id is linked to another line_user_id on line %d", other.Line)
		}
		if j, seen := accountOf[e.LineUserID]; !seen {
			accountOf[e.LineUserID] = i
		} else if other := im.entries[j]; other.TaipeiPassID != e.TaipeiPassID {
			im.fail(i, ecardbot.ECONFLICT, "line_user_id is linked to another taipeipass_id on line %d", other.Line)
		}
		if e.Email == "" {
			continue
		}
		if j, seen := emailOf[e.TaipeiPassID]; !seen {
			emailOf[e.TaipeiPassID] = i
			im.email[e.TaipeiPassID] = e.Email
		} else if other := im.entries[j]; other.Email != e.Email {
			im.fail(i, ecardbot.EINVALID, "email differs from line %d for the same taipeipass_id: a guardian has one address", other.Line)
		}
	}
}

// studentKey names a student as the file does.
type studentKey struct{ school, studentNo string }

func (im *subscriberImport) run(tx *gorm.DB) (ecardbot.SubscriberImportResult, error) {
	var result ecardbot.SubscriberImportResult
	now := im.s.now().UTC().Truncate(time.Microsecond)
	nowArg := im.s.db.timeArg(now)

	students, err := im.resolveStudents(tx)
	if err != nil {
		return result, err
	}
	byAccount, byLineUser, err := im.loadGuardians(tx)
	if err != nil {
		return result, err
	}
	for i, e := range im.entries {
		if !im.ok(i) {
			continue
		}
		if g, ok := byAccount[e.TaipeiPassID]; ok && g.LineUserID != nil && *g.LineUserID != e.LineUserID {
			im.fail(i, ecardbot.ECONFLICT, "taipeipass_id is already linked to another LINE user")
		}
		if g, ok := byLineUser[e.LineUserID]; ok && g.TaipeipassID != e.TaipeiPassID {
			im.fail(i, ecardbot.ECONFLICT, "line_user_id is already linked to another TaipeiPASS account")
		}
	}
	if err := im.importError(); err != nil {
		return result, err
	}

	// LINE users never seen are following as of the import; known ones keep their state.
	lineUsers := map[string]bool{}
	var newLineUsers []string
	for _, e := range im.entries {
		if !lineUsers[e.LineUserID] {
			lineUsers[e.LineUserID] = true
			newLineUsers = append(newLineUsers, e.LineUserID)
		}
	}
	languages := map[string]string{}
	for chunk := range chunks(newLineUsers, 1) {
		var rows []struct{ ID, Language string }
		if err := tx.Raw(`SELECT id, language FROM line_users WHERE id IN ?`, chunk).Scan(&rows).Error; err != nil {
			return result, err
		}
		for _, r := range rows {
			languages[r.ID] = r.Language
		}
	}
	const luCols = 6
	for chunk := range chunks(newLineUsers, luCols) {
		args := make([]any, 0, len(chunk)*luCols)
		for _, id := range chunk {
			args = append(args, id, true, ecardbot.LangZhTW, nowArg, nowArg, nowArg)
		}
		res := tx.Exec(`INSERT INTO line_users (id, following, language, state_at, created_at, updated_at) VALUES `+
			placeholders(len(chunk), luCols)+` ON CONFLICT (id) DO NOTHING`, args...)
		if res.Error != nil {
			return result, res.Error
		}
		result.LineUsersCreated += int(res.RowsAffected)
	}

	// Guardians: new accounts are inserted, known ones linked and given the file's address.
	guardianIDs := map[string]int64{}
	var newAccounts []string
	seenAccount := map[string]bool{}
	for _, e := range im.entries {
		if seenAccount[e.TaipeiPassID] {
			continue
		}
		seenAccount[e.TaipeiPassID] = true
		g, ok := byAccount[e.TaipeiPassID]
		if !ok {
			newAccounts = append(newAccounts, e.TaipeiPassID)
			continue
		}
		guardianIDs[e.TaipeiPassID] = g.ID
		email, confirmedAt, changed := g.Email, g.EmailConfirmedAt, g.LineUserID == nil
		if want := im.email[e.TaipeiPassID]; want != "" {
			switch {
			case want != g.Email:
				email, confirmedAt, changed = want, nil, true
				if im.opts.EmailConfirmed {
					confirmedAt = &now
				}
			case g.EmailConfirmedAt == nil && im.opts.EmailConfirmed:
				confirmedAt, changed = &now, true
			}
		}
		if !changed {
			continue
		}
		var confirmedArg any
		if confirmedAt != nil {
			confirmedArg = im.s.db.timeArg(*confirmedAt)
		}
		if err := tx.Exec(`UPDATE guardians SET line_user_id = ?, email = ?, email_confirmed_at = ?, updated_at = ? WHERE id = ?`,
			e.LineUserID, email, confirmedArg, nowArg, g.ID).Error; err != nil {
			return result, err
		}
		result.GuardiansUpdated++
	}
	lineUserOf := map[string]string{}
	for _, e := range im.entries {
		lineUserOf[e.TaipeiPassID] = e.LineUserID
	}
	const gCols = 7
	for chunk := range chunks(newAccounts, gCols) {
		args := make([]any, 0, len(chunk)*gCols)
		for _, account := range chunk {
			email := im.email[account]
			var confirmedArg any
			if email != "" && im.opts.EmailConfirmed {
				confirmedArg = nowArg
			}
			lang := languages[lineUserOf[account]]
			if lang == "" {
				lang = ecardbot.LangZhTW
			}
			args = append(args, account, lineUserOf[account], email, confirmedArg, lang, nowArg, nowArg)
		}
		rows, err := tx.Raw(`INSERT INTO guardians (taipeipass_id, line_user_id, email, email_confirmed_at, language, created_at, updated_at)
VALUES `+placeholders(len(chunk), gCols)+` RETURNING id, taipeipass_id`, args...).Rows()
		if err != nil {
			return result, err
		}
		err = scanAll(rows, func(r *sql.Rows) error {
			var id int64
			var account string
			if err := r.Scan(&id, &account); err != nil {
				return err
			}
			guardianIDs[account] = id
			return nil
		})
		if err != nil {
			return result, err
		}
		result.GuardiansCreated += len(chunk)
	}

	// Guardianships, then the subscriptions of each pair made those of the file.
	type gs struct{ guardian, student int64 }
	var ships []gs
	want := map[subscriptionRow]bool{}
	inFile := map[gs]bool{}
	for _, e := range im.entries {
		p := gs{guardianIDs[e.TaipeiPassID], students[studentKey{e.SchoolCode, e.StudentNo}]}
		if !inFile[p] {
			inFile[p] = true
			ships = append(ships, p)
		}
		for _, k := range e.Kinds {
			want[subscriptionRow{p.guardian, p.student, string(k), string(ecardbot.ChannelLINE)}] = true
			if e.Email != "" {
				want[subscriptionRow{p.guardian, p.student, string(k), string(ecardbot.ChannelEmail)}] = true
			}
		}
	}
	const gsCols = 3
	for chunk := range chunks(ships, gsCols) {
		args := make([]any, 0, len(chunk)*gsCols)
		for _, p := range chunk {
			args = append(args, p.guardian, p.student, nowArg)
		}
		res := tx.Exec(`INSERT INTO guardianships (guardian_id, student_id, created_at) VALUES `+placeholders(len(chunk), gsCols)+`
ON CONFLICT (guardian_id, student_id) DO NOTHING`, args...)
		if res.Error != nil {
			return result, res.Error
		}
		result.GuardianshipsCreated += int(res.RowsAffected)
	}

	// Only guardians that existed before can have subscriptions to compare with.
	var known []int64
	for _, g := range byAccount {
		known = append(known, g.ID)
	}
	slices.Sort(known)
	var remove []subscriptionRow
	for chunk := range chunks(known, 1) {
		var rows []subscriptionRow
		if err := tx.Raw(`SELECT guardian_id, student_id, kind, channel FROM subscriptions WHERE guardian_id IN ?`, chunk).Scan(&rows).Error; err != nil {
			return result, err
		}
		for _, r := range rows {
			switch {
			case want[r]:
				delete(want, r) // stored already
			case inFile[gs{r.GuardianID, r.StudentID}]:
				remove = append(remove, r)
			}
		}
	}
	const delCols = 4
	for chunk := range chunks(remove, delCols) {
		args := make([]any, 0, len(chunk)*delCols)
		for _, r := range chunk {
			args = append(args, r.GuardianID, r.StudentID, r.Kind, r.Channel)
		}
		// Typed, since PostgreSQL reads an untyped parameter of VALUES as text.
		tuples := strings.TrimSuffix(strings.Repeat("(CAST(? AS bigint), CAST(? AS bigint), ?, ?), ", len(chunk)), ", ")
		res := tx.Exec(`DELETE FROM subscriptions WHERE (guardian_id, student_id, kind, channel) IN (VALUES `+tuples+`)`, args...)
		if res.Error != nil {
			return result, res.Error
		}
		result.SubscriptionsRemoved += int(res.RowsAffected)
	}
	added, err := insertSubscriptions(tx, sortedSubscriptions(want))
	if err != nil {
		return result, err
	}
	result.SubscriptionsAdded = added
	return result, nil
}

// resolveStudents maps the file's students to the ids of active students, recording a line
// error for each entry whose school or student is not found.
func (im *subscriberImport) resolveStudents(tx *gorm.DB) (map[studentKey]int64, error) {
	bySchool := map[string][]string{}
	seen := map[studentKey]bool{}
	for i, e := range im.entries {
		k := studentKey{e.SchoolCode, e.StudentNo}
		if !im.ok(i) || seen[k] {
			continue
		}
		seen[k] = true
		bySchool[e.SchoolCode] = append(bySchool[e.SchoolCode], e.StudentNo)
	}
	codes := make([]string, 0, len(bySchool))
	for c := range bySchool {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	schoolIDs := map[string]int64{}
	for chunk := range chunks(codes, 1) {
		var rows []struct {
			ID   int64
			Code string
		}
		if err := tx.Raw(`SELECT id, code FROM schools WHERE code IN ?`, chunk).Scan(&rows).Error; err != nil {
			return nil, err
		}
		for _, r := range rows {
			schoolIDs[r.Code] = r.ID
		}
	}
	students := map[studentKey]int64{}
	for _, code := range codes {
		id, ok := schoolIDs[code]
		if !ok {
			continue
		}
		for chunk := range chunks(bySchool[code], 1) {
			var rows []struct {
				ID        int64
				StudentNo string
			}
			if err := tx.Raw(`SELECT id, student_no FROM students WHERE school_id = ? AND active AND student_no IN ?`, id, chunk).Scan(&rows).Error; err != nil {
				return nil, err
			}
			for _, r := range rows {
				students[studentKey{code, r.StudentNo}] = r.ID
			}
		}
	}
	for i, e := range im.entries {
		if !im.ok(i) {
			continue
		}
		if _, ok := schoolIDs[e.SchoolCode]; !ok {
			im.fail(i, ecardbot.ENOTFOUND, "no school has code %s", e.SchoolCode)
		} else if _, ok := students[studentKey{e.SchoolCode, e.StudentNo}]; !ok {
			im.fail(i, ecardbot.ENOTFOUND, "student_no %s is not on the active roster of school %s", e.StudentNo, e.SchoolCode)
		}
	}
	return students, nil
}

// loadGuardians returns the stored guardians that have one of the file's accounts or LINE users.
func (im *subscriberImport) loadGuardians(tx *gorm.DB) (byAccount, byLineUser map[string]*guardianRow, err error) {
	var accounts, lineUsers []string
	seenA, seenL := map[string]bool{}, map[string]bool{}
	for i, e := range im.entries {
		if !im.ok(i) {
			continue
		}
		if !seenA[e.TaipeiPassID] {
			seenA[e.TaipeiPassID] = true
			accounts = append(accounts, e.TaipeiPassID)
		}
		if !seenL[e.LineUserID] {
			seenL[e.LineUserID] = true
			lineUsers = append(lineUsers, e.LineUserID)
		}
	}
	byAccount, byLineUser = map[string]*guardianRow{}, map[string]*guardianRow{}
	load := func(column string, values []string) error {
		for chunk := range chunks(values, 1) {
			var rows []guardianRow
			if err := tx.Raw(selectGuardian+`WHERE `+column+` IN ?`, chunk).Scan(&rows).Error; err != nil {
				return err
			}
			for i := range rows {
				r := &rows[i]
				byAccount[r.TaipeipassID] = r
				if r.LineUserID != nil {
					byLineUser[*r.LineUserID] = r
				}
			}
		}
		return nil
	}
	if err := load("taipeipass_id", accounts); err != nil {
		return nil, nil, err
	}
	if err := load("line_user_id", lineUsers); err != nil {
		return nil, nil, err
	}
	return byAccount, byLineUser, nil
}
