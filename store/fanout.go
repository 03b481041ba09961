package store

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/taipei-doit/ecardbot"
)

// The fan-out turns new notices into deliveries: the outbox rows the push relay reads. Gate
// ingest and the 未到校 sweep both call fanOut inside the transaction that inserted the notices,
// so who gets a notice is decided by one query for every kind of notice, and a notice and its
// deliveries are committed together or not at all.

// target is one delivery to create: a notice, a guardian and a channel.
type target struct {
	NoticeID   int64
	GuardianID int64
	Channel    string
}

// fanOut creates the deliveries of notices, which the caller's transaction tx has just
// inserted and which are not stale, and returns how many it created. Only the transaction that
// inserted a notice may call it: that is what makes each delivery exist once.
func (db *DB) fanOut(ctx context.Context, tx *gorm.DB, notices []int64, now time.Time) (int, error) {
	if len(notices) == 0 {
		return 0, nil
	}
	targets, err := db.deliveryTargets(ctx, tx, notices)
	if err != nil {
		return 0, err
	}
	if err := db.insertDeliveries(ctx, tx, targets, now); err != nil {
		return 0, err
	}
	return len(targets), nil
}

// targetsFrom selects, for the notices n, every guardian and channel to deliver to: subscribed
// to the student and kind on the channel, still a guardian of the student, and reachable on the
// channel. A LINE push to a user who blocked the bot fails and counts against the quota; an
// unconfirmed address may be someone else's. Requiring the guardianship, not only the
// subscription, is what makes removing a guardianship stop new deliveries at once, even if
// its subscription rows were left behind.
const targetsFrom = `SELECT n.id, s.guardian_id, s.channel
FROM notices n
JOIN subscriptions s ON s.student_id = n.student_id AND s.kind = n.kind
JOIN guardianships gs ON gs.guardian_id = s.guardian_id AND gs.student_id = s.student_id
JOIN guardians g ON g.id = s.guardian_id
LEFT JOIN line_users lu ON lu.id = g.line_user_id
WHERE ((s.channel = 'line' AND lu.following) OR (s.channel = 'email' AND g.email_confirmed_at IS NOT NULL AND g.email <> ''))
	AND n.id `

// deliveryTargets returns the deliveries the notices need.
//
// Selecting them and then inserting with ids made in Go takes two statements where one
// INSERT … SELECT would do; but the id is the X-Line-Retry-Key and is made by uuid.New, which
// both dialects share, rather than by gen_random_uuid, which SQLite lacks.
func (db *DB) deliveryTargets(ctx context.Context, tx *gorm.DB, notices []int64) ([]target, error) {
	var targets []target
	scan := func(r *sql.Rows) error {
		var t target
		if err := r.Scan(&t.NoticeID, &t.GuardianID, &t.Channel); err != nil {
			return err
		}
		targets = append(targets, t)
		return nil
	}
	return targets, queryAny(ctx, db, tx, targetsFrom, "bigint", notices, scan)
}

// insertDeliveries creates one pending delivery per target, each with a new UUID that stays its
// id, and LINE retry key, for life. ON CONFLICT only guards: a notice's deliveries are created
// by the one transaction that inserted the notice.
func (db *DB) insertDeliveries(ctx context.Context, tx *gorm.DB, targets []target, now time.Time) error {
	if len(targets) == 0 {
		return nil
	}
	slices.SortFunc(targets, func(a, b target) int {
		return cmp.Or(cmp.Compare(a.NoticeID, b.NoticeID), cmp.Compare(a.GuardianID, b.GuardianID), cmp.Compare(a.Channel, b.Channel))
	})
	if db.dialect == DialectPostgres {
		n := len(targets)
		ids, channels := make([]string, n), make([]string, n)
		noticeIDs, guardianIDs := make([]int64, n), make([]int64, n)
		for i, t := range targets {
			ids[i], noticeIDs[i], guardianIDs[i], channels[i] = uuid.NewString(), t.NoticeID, t.GuardianID, t.Channel
		}
		_, err := db.exec(ctx, tx, `INSERT INTO deliveries (id, notice_id, guardian_id, channel, state, attempts, created_at, updated_at)
SELECT d.id, d.notice_id, d.guardian_id, d.channel, $6::text, 0, $1::timestamptz, $1::timestamptz
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS d(id, notice_id, guardian_id, channel)
ON CONFLICT (notice_id, guardian_id, channel) DO NOTHING`, now, ids, noticeIDs, guardianIDs, channels, ecardbot.DeliveryPending)
		return err
	}

	const cols = 8
	nowArg := db.timeArg(now)
	for chunk := range chunks(targets, cols) {
		args := make([]any, 0, len(chunk)*cols)
		for _, t := range chunk {
			args = append(args, uuid.NewString(), t.NoticeID, t.GuardianID, t.Channel, ecardbot.DeliveryPending, 0, nowArg, nowArg)
		}
		_, err := db.exec(ctx, tx, `INSERT INTO deliveries (id, notice_id, guardian_id, channel, state, attempts, created_at, updated_at)
VALUES `+placeholders(len(chunk), cols)+`
ON CONFLICT (notice_id, guardian_id, channel) DO NOTHING`, args...)
		if err != nil {
			return err
		}
	}
	return nil
}
