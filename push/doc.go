// Package push delivers notices: an outbox relay moves pending deliveries from the database to a
// Redis queue (asynq), one queue per channel, and workers send each one to LINE or by e-mail
// within the channel's rate limit, shared by every worker of every replica.
//
// The flow of one delivery:
//
//  1. The fan-out creates it pending, with a UUID, in the transaction that created its notice.
//  2. The Relay enqueues its task, then marks it queued. LINE deliveries travel in batch tasks
//     of up to 25, whose task ID is a hash of the batch's UUIDs; an e-mail in a task of its own
//     whose task ID is its UUID. asynq refuses a second task with the same ID, so a relay that
//     crashed between the two steps enqueues the same batches again in vain: nothing is lost.
//     A batch of other deliveries is a new task, so a delivery is never marked queued without a
//     task that holds it; one in two tasks is sent once, as the worker skips it once sent and
//     LINE answers 409 to a retry key it has accepted. While Redis is down deliveries simply
//     stay pending in the database. A delivery left queued and untouched for RequeueAfter is
//     enqueued again, in case Redis lost its task (restarted without persistence): the
//     database, not Redis, is the record of what is still to send. A replayed dead letter is
//     pending again and goes the same way.
//  3. A worker of the delivery's channel loads it (a batch in one read), drops it if it is no
//     longer pending or queued or the guardian is no longer reachable (LINE: dead, replayable
//     once they follow again; e-mail: cancelled, as an address no longer confirmed may be
//     someone else's), waits for its turn in the channel's global limiter (a GCRA in Redis),
//     and pushes it to LINE or mails it through the SMTP relay. The deliveries of a batch whose
//     attempt failed are retried together, in a new batch task.
//  4. The outcome decides the next state: accepted (200, or 409 for a retry key LINE has already
//     seen) → sent; a LINE-side or network failure, or the rate limit → retried with capped
//     exponential backoff for up to 23 hours after the delivery was created; the monthly limit →
//     LINE sending paused for everyone for a while; a request LINE will never accept → dead
//     letter with LINE's reason, which operators can list and replay. For e-mail: the relay
//     took it → sent; a 4xx reply, a network or TLS failure → retried the same way; a 5xx reply
//     → dead letter with the SMTP code.
//
// The monthly limit and e-mail: while LINE sending is paused (checked after the limiter wait, since
// another worker may meet the limit meanwhile), each LINE delivery that comes up is handed to
// OnPaused. Wired to EmailFallback, that replaces it, when the guardian has a confirmed address, by
// an e-mail delivery of the same notice, created once, and cancels the LINE delivery in the same
// transaction: the parent gets the notice once, by e-mail, now, and never a second, late copy on
// LINE when the pause ends. If the notice's e-mail to them exists already (they subscribed to both
// channels) it is the one they get. A guardian without a confirmed address keeps the LINE delivery,
// which waits out the pause and is sent after it, within the 23-hour window like any retry.
//
// Why the retry key never changes: LINE remembers an X-Line-Retry-Key for 24 hours and answers
// 409 to a second push with the same key instead of delivering it again. A push whose answer was
// lost (timeout, dropped connection, crashed worker) may have been delivered; retrying it with
// the same key is the only way to find out without sending it twice. The key is therefore the
// delivery's UUID, fixed at creation and reused on every attempt, by every worker, after a
// replay too — and the 23-hour retry window keeps every attempt inside LINE's 24 hours.
package push
