package ecardbot

import (
	"context"
	"time"
)

// NoticeKind is what a notice tells a guardian.
type NoticeKind string

// The three notices of the service.
const (
	KindArrived NoticeKind = "arrived" // 到校: the first tap in of the school day
	KindLeft    NoticeKind = "left"    // 離校: the first tap out after arriving or after the earliest-leave time
	KindAbsent  NoticeKind = "absent"  // 未到校: no arrival and no leave record by the school's cutoff
)

// NoticeKinds lists the kinds in the order parents see them.
var NoticeKinds = []NoticeKind{KindArrived, KindLeft, KindAbsent}

// Channel is how a notice reaches a guardian.
type Channel string

// The channels a guardian can subscribe on.
const (
	ChannelLINE  Channel = "line"
	ChannelEmail Channel = "email"
)

// Direction is what a gate reader says a tap was; DirectionUnknown when it cannot tell.
type Direction string

// Tap directions as the gate events API spells them.
const (
	DirectionIn      Direction = "in"
	DirectionOut     Direction = "out"
	DirectionUnknown Direction = ""
)

// Clock is the time of day, in minutes after midnight, in the service's time zone.
type Clock int

// School is a school whose gate readers post taps.
type School struct {
	ID       int64
	Code     string // Ministry of Education code, e.g. "313601"
	Name     string
	District string // one of Districts
	Level    string // one of Levels
	Cutoff   Clock  // 未到校 is decided at this time on school days; default 08:30
	// EarliestLeave is when a tap of unknown direction, or an "out" without an "in" that day,
	// starts to mean 離校. Default 12:00: the earliest a Taipei school day ends.
	EarliestLeave Clock
}

// Student is a pupil on a school's roster.
type Student struct {
	ID        int64
	SchoolID  int64
	StudentNo string
	Name      string
	BirthDate string // YYYY-MM-DD
	CardUID   string // empty when the pupil has no card yet
	Grade     string
	Class     string
	Active    bool // false once missing from the latest roster import
}

// GateEvent is one tap as a reader posted it.
type GateEvent struct {
	ID        string    // the reader's unique id, idempotency key together with the school
	Card      string    // card UID
	Direction Direction // in, out or unknown
	At        time.Time // when the card was tapped (RFC 3339 with any offset)
	Gate      string    // reader name, e.g. "north-1"
}

// Rejection is one event of a batch that was not accepted, with its index in the batch.
type Rejection struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// IngestResult is the answer to a batch of gate events.
type IngestResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
}

// Tap is a stored gate event as classification sees it.
type Tap struct {
	At        time.Time
	Direction Direction
}

// DayRules are what Classify needs to know about one school day of one school.
type DayRules struct {
	// EarliestLeave is the instant on that day from which an "out" without an "in", or a later
	// tap of unknown direction, means 離校.
	EarliestLeave time.Time
	// Debounce drops a tap that follows the previous kept tap of the student within this long.
	Debounce time.Duration
}

// GateService turns gate events into notices and deliveries.
type GateService interface {
	// AuthenticateSchool returns the school whose gate API key has the given keyed hash
	// (KeyedHash with PurposeGateKey). Returns EUNAUTHORIZED for an unknown or revoked key.
	AuthenticateSchool(ctx context.Context, keyHash string) (*School, error)

	// Ingest stores the school's events idempotently on (school, event id), classifies them and
	// creates notices and their deliveries, all in one transaction. Events for unknown cards are
	// rejected as "unknown card". Returns EUNAVAILABLE when storage cannot be reached: nothing
	// is stored and the reader retries.
	Ingest(ctx context.Context, school *School, events []GateEvent) (IngestResult, error)

	// RecordLeave records that a student is on leave on a date (YYYY-MM-DD), so the 未到校
	// sweep skips them. Returns ENOTFOUND for a student number not on the school's roster.
	RecordLeave(ctx context.Context, school *School, studentNo, date, kind string) error
}

// SchoolService keeps the list of schools and their gate API keys.
type SchoolService interface {
	// ImportSchools creates or updates schools by code, all or nothing.
	ImportSchools(ctx context.Context, schools []School) (created, updated int, err error)

	// FindSchool returns the school with the code. Returns ENOTFOUND for an unknown code.
	FindSchool(ctx context.Context, code string) (*School, error)

	// AddAPIKey stores the keyed hash of a new gate API key for the school; the key itself is
	// shown once to the operator and never stored. Returns ENOTFOUND for an unknown school.
	AddAPIKey(ctx context.Context, schoolCode, keyHash string) error
}

// RosterEntry is one pupil of a roster file. The national ID arrives only as its keyed hash.
type RosterEntry struct {
	Line           int // line number in the file, for errors
	StudentNo      string
	Name           string
	BirthDate      string // YYYY-MM-DD
	NationalIDHash string // KeyedHash(PurposeNationalID, normalised ID)
	CardUID        string // may be empty
	Grade          string
	Class          string
}

// RosterResult counts what a roster import changed.
type RosterResult struct {
	Created     int
	Updated     int
	Deactivated int // students missing from the new file
}

// RosterService keeps each school's roster.
type RosterService interface {
	// ImportRoster makes entries the school's active roster, all or nothing: students are
	// matched by student number and updated in place, new ones created, and students missing
	// from entries become inactive. Returns ENOTFOUND for an unknown school, and ECONFLICT
	// naming the line when a card UID belongs to another active student.
	ImportRoster(ctx context.Context, schoolCode string, entries []RosterEntry) (RosterResult, error)
}
