package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// LinkStore keeps logins in progress, account-link nonces and TaipeiPASS accounts. Taking an
// attempt or a nonce is one DELETE … RETURNING on its key: of any number of replicas racing for
// it, exactly one gets the row.
type LinkStore struct {
	db  *DB
	now func() time.Time
}

var _ ecardbot.LinkStore = (*LinkStore)(nil)

// NewLinkStore returns the store over db, which must be migrated.
func NewLinkStore(db *DB) *LinkStore {
	return &LinkStore{db: db, now: time.Now}
}

// CreateLinkAttempt stores the attempt under stateHash, deleting expired attempts and nonces
// first so that the tables never grow beyond the logins of the last few minutes. The link token
// and the verifier are kept in plain text, as the callback needs them (see ecardbot.LinkStore).
func (s *LinkStore) CreateLinkAttempt(ctx context.Context, stateHash string, a ecardbot.LinkAttempt) error {
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.purgeExpired(tx, a.CreatedAt); err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO link_attempts (state_hash, link_token, verifier, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			stateHash, a.LinkToken, a.Verifier, s.db.timeArg(a.CreatedAt), s.db.timeArg(a.ExpiresAt)).Error
	})
	if err != nil {
		return fmt.Errorf("create link attempt: %w", mapError(err))
	}
	return nil
}

func (s *LinkStore) purgeExpired(tx *gorm.DB, now time.Time) error {
	t := s.db.timeArg(now)
	if err := tx.Exec(`DELETE FROM link_attempts WHERE expires_at <= ?`, t).Error; err != nil {
		return err
	}
	return tx.Exec(`DELETE FROM link_nonces WHERE expires_at <= ?`, t).Error
}

// TakeLinkAttempt deletes the attempt and returns it. Returns ENOTFOUND when it is unknown,
// taken already or expired at now.
func (s *LinkStore) TakeLinkAttempt(ctx context.Context, stateHash string, now time.Time) (ecardbot.LinkAttempt, error) {
	var rows []struct {
		LinkToken string
		Verifier  string
		CreatedAt time.Time
		ExpiresAt time.Time
	}
	err := s.db.gorm.WithContext(ctx).Raw(`DELETE FROM link_attempts WHERE state_hash = ? AND expires_at > ?
RETURNING link_token, verifier, created_at, expires_at`, stateHash, s.db.timeArg(now)).Scan(&rows).Error
	if err != nil {
		return ecardbot.LinkAttempt{}, fmt.Errorf("take link attempt: %w", mapError(err))
	}
	if len(rows) == 0 {
		return ecardbot.LinkAttempt{}, fmt.Errorf("take link attempt: %w",
			ecardbot.Errorf(ecardbot.ENOTFOUND, "No such login in progress, or it expired or was used."))
	}
	r := rows[0]
	return ecardbot.LinkAttempt{LinkToken: r.LinkToken, Verifier: r.Verifier, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()}, nil
}

// RecordTaipeiPassLogin creates or updates the account.
func (s *LinkStore) RecordTaipeiPassLogin(ctx context.Context, a ecardbot.TaipeiPassAccount) error {
	if a.ID == "" {
		return fmt.Errorf("record TaipeiPASS login: %w", ecardbot.Errorf(ecardbot.EINVALID, "Missing TaipeiPASS account."))
	}
	at, now := s.db.timeArg(a.LastLoginAt), s.db.timeArg(s.now())
	err := s.db.gorm.WithContext(ctx).Exec(`INSERT INTO taipeipass_accounts (id, verify_level, last_login_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET verify_level = excluded.verify_level, last_login_at = excluded.last_login_at, updated_at = excluded.updated_at`,
		a.ID, a.VerifyLevel, at, now, now).Error
	if err != nil {
		return fmt.Errorf("record TaipeiPASS login: %w", mapError(err))
	}
	return nil
}

// CreateLinkNonce stores the nonce's hash bound to the account. Returns ENOTFOUND for an
// account never recorded.
func (s *LinkStore) CreateLinkNonce(ctx context.Context, nonceHash, taipeiPassID string, expiresAt time.Time) error {
	now := s.now()
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`INSERT INTO link_nonces (nonce_hash, taipeipass_id, created_at, expires_at)
SELECT ?, id, ?, ? FROM taipeipass_accounts WHERE id = ?`, nonceHash, s.db.timeArg(now), s.db.timeArg(expiresAt), taipeiPassID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ecardbot.Errorf(ecardbot.ENOTFOUND, "No such TaipeiPASS account.")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create link nonce: %w", mapError(err))
	}
	return nil
}

// CompleteLink deletes the nonce and binds its account to the LINE user in one transaction.
func (s *LinkStore) CompleteLink(ctx context.Context, nonceHash, lineUserID string, now time.Time) (ecardbot.LinkResult, error) {
	if !ecardbot.ValidLineUserID(lineUserID) {
		return ecardbot.LinkResult{}, fmt.Errorf("complete link: %w", ecardbot.Errorf(ecardbot.EINVALID, "Malformed LINE user ID."))
	}
	var res ecardbot.LinkResult
	err := s.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		account, err := s.takeNonce(tx, nonceHash, now)
		if err != nil {
			return err
		}
		res, err = linkTx(tx, s.db.timeArg(now), account, lineUserID)
		return err
	})
	if err != nil {
		return ecardbot.LinkResult{}, fmt.Errorf("complete link: %w", mapError(err))
	}
	return res, nil
}

// DiscardLinkNonce deletes the nonce. Returns ENOTFOUND when it is unknown, used or expired.
func (s *LinkStore) DiscardLinkNonce(ctx context.Context, nonceHash string, now time.Time) error {
	if _, err := s.takeNonce(s.db.gorm.WithContext(ctx), nonceHash, now); err != nil {
		return fmt.Errorf("discard link nonce: %w", mapError(err))
	}
	return nil
}

// takeNonce deletes a live nonce and returns its account.
func (s *LinkStore) takeNonce(tx *gorm.DB, nonceHash string, now time.Time) (string, error) {
	var accounts []string
	if err := tx.Raw(`DELETE FROM link_nonces WHERE nonce_hash = ? AND expires_at > ? RETURNING taipeipass_id`,
		nonceHash, s.db.timeArg(now)).Scan(&accounts).Error; err != nil {
		return "", err
	}
	if len(accounts) == 0 {
		return "", ecardbot.Errorf(ecardbot.ENOTFOUND, "No such link nonce, or it expired or was used.")
	}
	return accounts[0], nil
}
