package push

import (
	"context"
	"errors"
	"time"

	"github.com/taipei-doit/ecardbot"
)

// maxMarkBatch bounds one group commit of sent marks.
const maxMarkBatch = 200

// sentMarks group-commits the sent marks of a process's LINE workers. Each worker still waits
// until its own mark is stored, as with MarkSent, so a task is acknowledged only after its
// delivery is recorded sent; but the marks that arrive while one UPDATE runs go together in
// the next. Under a backlog this turns a PostgreSQL commit per push into one per few dozen.
type sentMarks struct {
	deliveries ecardbot.DeliveryService
	in         chan markRequest
	quit       chan struct{} // closed by close; in is never closed, so a late mark cannot panic
	done       chan struct{}
}

// errMarksClosed is a mark after Shutdown, from a task asynq abandoned at its shutdown timeout.
// The task runs again and LINE answers its retry key with 409, which marks it then.
var errMarksClosed = errors.New("push: shutting down; the sent mark is left to the task's next run")

type markRequest struct {
	mark   ecardbot.SentMark
	result chan error
}

func startSentMarks(d ecardbot.DeliveryService) *sentMarks {
	m := &sentMarks{deliveries: d, in: make(chan markRequest), quit: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m
}

// mark stores one sent mark, in the next group commit.
func (m *sentMarks) mark(ctx context.Context, id, lineRequestID string) error {
	r := markRequest{ecardbot.SentMark{ID: id, LineRequestID: lineRequestID}, make(chan error, 1)}
	select {
	case m.in <- r:
	case <-m.quit:
		return errMarksClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
		return ctx.Err() // the mark may still be stored: marking sent is idempotent
	}
}

func (m *sentMarks) run() {
	defer close(m.done)
	for {
		var batch []markRequest
		select {
		case r := <-m.in:
			batch = append(batch, r)
		case <-m.quit:
			return
		}
	collect: // whatever queued up meanwhile, without waiting for more
		for len(batch) < maxMarkBatch {
			select {
			case r := <-m.in:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		marks := make([]ecardbot.SentMark, len(batch))
		for i, r := range batch {
			marks[i] = r.mark
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := m.deliveries.MarkSentBatch(ctx, marks)
		cancel()
		for _, r := range batch {
			r.result <- err
		}
	}
}

// close stops the committer after asynq's Shutdown; a mark still arriving gets errMarksClosed.
func (m *sentMarks) close() {
	close(m.quit)
	<-m.done
}
