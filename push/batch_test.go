package push

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/linesim"
)

// TestBatchPartlyFailing: the relay puts five deliveries in one task and LINE answers 500 to the
// first two pushes. Those two go on alone, on tasks of their own, and every delivery is
// accepted exactly once.
func TestBatchPartlyFailing(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	u := h.friend()
	var ids []string
	for range 5 {
		ids = append(ids, h.dels.add(u, true, time.Now()))
	}
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 2, Status: http.StatusInternalServerError})
	if n, err := h.relay.Tick(context.Background()); err != nil || n != 5 {
		t.Fatalf("Tick = %d, %v", n, err)
	}
	tasks, err := h.relay.queue.insp.ListPendingTasks(Queue(h.kv.Prefix(), QueueLINE))
	if err != nil || len(tasks) != 1 || tasks[0].Type != TaskLINEBatch {
		t.Fatalf("tasks = %+v, %v; want one batch", tasks, err)
	}
	h.start()
	retried := 0
	for _, id := range ids {
		if d := h.waitState(id, ecardbot.DeliverySent); d.d.Attempts > 0 {
			retried++
		}
	}
	if retried != 2 {
		t.Errorf("%d deliveries retried, want the 2 LINE failed", retried)
	}
	h.waitPushes(7)
	accepted := h.pushes(http.StatusOK)
	for _, id := range ids {
		if accepted[id] != 1 {
			t.Errorf("delivery %s accepted %d times, want once", id, accepted[id])
		}
	}
}

// TestBatchSkipsWhatMustNotBeSent: of a batch, only the delivery that may be sent is pushed; one
// that is gone, one already sent and one whose guardian blocked the bot are not.
func TestBatchSkipsWhatMustNotBeSent(t *testing.T) {
	h := newHarness(t, linesim.Options{})
	u := h.friend()
	ok := h.dels.add(u, true, time.Now())
	sent := h.dels.add(u, true, time.Now())
	blocked := h.dels.add(u, false, time.Now())
	ctx := context.Background()
	if err := h.dels.MarkQueued(ctx, []string{ok, sent, blocked}); err != nil { // the relay has done its part
		t.Fatal(err)
	}
	if err := h.dels.MarkSent(ctx, sent, "earlier"); err != nil {
		t.Fatal(err)
	}
	gone := "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
	err := h.relay.queue.enqueue(ctx, newBatchTask(h.kv.Prefix(), "", []string{gone, sent, blocked, ok}))
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	h.waitState(ok, ecardbot.DeliverySent)
	h.waitState(blocked, ecardbot.DeliveryDead)
	if got := h.pushes(0); len(got) != 1 || got[ok] != 1 {
		t.Errorf("push requests by retry key = %v, want one for %s", got, ok)
	}
	if d := h.dels.get(sent); d.requestID != "earlier" {
		t.Errorf("the sent delivery was marked again: %+v", d)
	}
}

// TestBatchRetriedWhenItsDeliveriesCannotBe: a delivery of a batch failed and cannot be
// re-queued because Redis is gone; the batch fails, so asynq runs it again, instead of dropping
// the delivery. With Redis there, the failed delivery waits for its retry in a batch of its
// own, and the sent one is not in it.
func TestBatchRetriedWhenItsDeliveriesCannotBe(t *testing.T) {
	dels := newMemDeliveries()
	failing := dels.add("U00000000000000000000000000000001", true, time.Now())
	sent := dels.add("U00000000000000000000000000000001", true, time.Now())
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	w := newWorker(workerConfig{channel: ecardbot.ChannelLINE, queue: QueueLINE, deliveries: dels, redis: rdb, prefix: "t:", concurrency: 1})
	send := func(_ context.Context, d ecardbot.DeliveryDetail) error {
		if d.ID == failing {
			return errors.New("LINE answered 500")
		}
		return nil
	}
	batch := newBatchTask("t:", "", []string{failing, sent}).t

	if err := w.handleBatch(context.Background(), batch, send); err != nil {
		t.Fatalf("batch with Redis up = %v, want done", err)
	}
	retries, err := w.queue.insp.ListScheduledTasks(Queue("t:", QueueLINE))
	if err != nil || len(retries) != 1 || retries[0].Type != TaskLINEBatch || string(retries[0].Payload) != failing {
		t.Fatalf("scheduled tasks = %+v, %v; want one batch of the failed delivery", retries, err)
	}

	mr.Close()
	if err := w.handleBatch(context.Background(), batch, send); err == nil {
		t.Fatal("batch with Redis down = nil, want an error so that asynq runs it again")
	}
}

// TestBatchHeldByPauseStaysFresh: deliveries held back by the pause wait in a new batch, and
// are touched, so that the relay's look for lost tasks (ClaimStaleQueued) leaves them alone.
func TestBatchHeldByPauseStaysFresh(t *testing.T) {
	dels := newMemDeliveries()
	id := dels.add("U00000000000000000000000000000001", true, time.Now())
	if err := dels.MarkQueued(context.Background(), []string{id}); err != nil {
		t.Fatal(err)
	}
	dels.mu.Lock()
	dels.recs[id].touched = time.Now().Add(-DefaultRequeueAfter - time.Minute)
	dels.mu.Unlock()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	w := newWorker(workerConfig{channel: ecardbot.ChannelLINE, queue: QueueLINE, deliveries: dels, redis: rdb, prefix: "t:", concurrency: 1})
	held := func(context.Context, ecardbot.DeliveryDetail) error { return errPaused }

	if err := w.handleBatch(context.Background(), newBatchTask("t:", "", []string{id}).t, held); err != nil {
		t.Fatal(err)
	}
	stale, err := dels.ClaimStaleQueued(context.Background(), time.Now().Add(-DefaultRequeueAfter), 10)
	if err != nil || len(stale) != 0 {
		t.Errorf("stale deliveries = %v, %v; want none, the held one was touched", stale, err)
	}
}
