package push

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
)

// slowMarks takes as long as a commit for each MarkSentBatch and counts them.
type slowMarks struct {
	*memDeliveries
	calls atomic.Int32
	err   error
}

func (s *slowMarks) MarkSentBatch(ctx context.Context, marks []ecardbot.SentMark) error {
	s.calls.Add(1)
	time.Sleep(5 * time.Millisecond)
	if s.err != nil {
		return s.err
	}
	return s.memDeliveries.MarkSentBatch(ctx, marks)
}

// markAll marks n new deliveries at once, as n workers would, and returns their IDs and errors.
func markAll(t *testing.T, dels *slowMarks, n int) ([]string, []error) {
	t.Helper()
	m := startSentMarks(dels)
	defer m.close()
	ids, errs := make([]string, n), make([]error, n)
	for i := range ids {
		ids[i] = dels.add("U00000000000000000000000000000001", true, time.Now())
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = m.mark(context.Background(), id, "req-"+id) })
	}
	wg.Wait()
	return ids, errs
}

func TestSentMarksCommitTogether(t *testing.T) {
	dels := &slowMarks{memDeliveries: newMemDeliveries()}
	ids, errs := markAll(t, dels, 100)
	for i, id := range ids {
		if errs[i] != nil {
			t.Fatalf("mark %s: %v", id, errs[i])
		}
		if d := dels.get(id); d.d.State != ecardbot.DeliverySent || d.requestID != "req-"+id {
			t.Errorf("delivery %s: state %s, request ID %q", id, d.d.State, d.requestID)
		}
	}
	if n := dels.calls.Load(); n >= 50 {
		t.Errorf("%d commits for 100 marks that waited together, want a few", n)
	}
}

func TestSentMarksErrorReachesEveryWorker(t *testing.T) {
	dels := &slowMarks{memDeliveries: newMemDeliveries(), err: errors.New("database away")}
	ids, errs := markAll(t, dels, 20)
	for i, id := range ids {
		if errs[i] == nil {
			t.Errorf("mark %s succeeded while the database was away", id)
		}
		if s := dels.get(id).d.State; s == ecardbot.DeliverySent {
			t.Errorf("delivery %s marked sent", id)
		}
	}
}

// TestSentMarksAfterClose: a task asynq abandoned at its shutdown timeout may still mark; it
// gets an error instead of a panic.
func TestSentMarksAfterClose(t *testing.T) {
	m := startSentMarks(newMemDeliveries())
	m.close()
	if err := m.mark(context.Background(), "id", "req"); !errors.Is(err, errMarksClosed) {
		t.Errorf("mark after close = %v, want errMarksClosed", err)
	}
}
