// Package school is the schools' side of the service: the gate events API their card readers
// post taps to, the leave records their offices send, and the parsers of the school and roster
// CSV files that operators import.
//
// The handlers only check what arrives and say precisely what was wrong; storing, classifying
// taps into notices and matching cards to pupils is the ecardbot.GateService's job, wired by cmd.
//
// A gate batch is never failed as a whole for one bad tap: a reader that got a 4xx for its whole
// batch would either drop a morning's taps or resend them forever. Each bad event is instead
// reported by its index in the batch, and only what is wrong with the request itself (key, body
// size, JSON) fails it, before anything is stored. When storage is down the answer is 503, which
// readers retry; since events are idempotent on (school, id), a retry never doubles a notice.
package school
