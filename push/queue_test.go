package push

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/linesim"
)

// asynqTestDB is the database number of the test Redis that TestPipelineOnRealRedis uses.
// asynq has no key prefix (its keys all start with "asynq:"), so testenv's per-test prefix
// cannot isolate it; a database of its own can. Only this test uses it, and it deletes its keys.
const asynqTestDB = "9"

// TestPipelineOnRealRedis runs the pipeline on a real Redis server, whose Lua is the
// production one (the other tests use embedded miniredis): faults, retries and a dead letter.
func TestPipelineOnRealRedis(t *testing.T) {
	rawURL, prefix := testenv.RedisURL(t)
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + asynqTestDB
	ctx := context.Background()
	kvc, err := kv.Open(ctx, kv.Config{URL: u.String(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pattern := range []string{"asynq:*", prefix + "*"} {
			if err := deleteKeys(context.Background(), kvc.Redis(), pattern); err != nil {
				t.Errorf("delete %s: %v", pattern, err)
			}
		}
		_ = kvc.Close()
	})
	h := newHarnessOn(t, kvc, linesim.Options{})
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 2, Status: 503})
	var ids []string
	for range 10 {
		ids = append(ids, h.dels.add(h.friend(), true, time.Now()))
	}
	h.start()
	for _, id := range ids {
		h.waitState(id, ecardbot.DeliverySent)
	}
	h.waitPushes(len(ids) + 2)
	accepted := h.pushes(200)
	for _, id := range ids {
		if accepted[id] != 1 {
			t.Errorf("retry key %s accepted %d times", id, accepted[id])
		}
	}
	bad := h.dels.add(h.friend(), true, time.Now())
	h.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Times: 1, Status: 403, Message: "Access to this API is not available for your account"})
	if d := h.waitState(bad, ecardbot.DeliveryDead); d.deadReason != "Access to this API is not available for your account" {
		t.Errorf("dead reason = %q", d.deadReason)
	}
	h.dels.Replay(ctx, []string{bad})
	h.waitState(bad, ecardbot.DeliverySent)
}

func deleteKeys(ctx context.Context, rdb *redis.Client, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}
