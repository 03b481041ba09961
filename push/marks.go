package push

import (
	"context"
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
	done       chan struct{}
}

type markRequest struct {
	mark   ecardbot.SentMark
	result chan error
}

func startSentMarks(d ecardbot.DeliveryService) *sentMarks {
	m := &sentMarks{deliveries: d, in: make(chan markRequest), done: make(chan struct{})}
	go m.run()
	return m
}

// mark stores one sent mark, in the next group commit.
func (m *sentMarks) mark(ctx context.Context, id, lineRequestID string) error {
	r := markRequest{ecardbot.SentMark{ID: id, LineRequestID: lineRequestID}, make(chan error, 1)}
	select {
	case m.in <- r:
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
	for first := range m.in {
		batch := []markRequest{first}
	collect: // whatever queued up meanwhile, without waiting for more
		for len(batch) < maxMarkBatch {
			select {
			case r, ok := <-m.in:
				if !ok {
					break collect
				}
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

// close stops the committer once no worker can mark any more (after asynq's Shutdown).
func (m *sentMarks) close() {
	close(m.in)
	<-m.done
}
