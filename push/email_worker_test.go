package push

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/kv"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/store"
)

// The tests in this file run the whole pipeline on the real things: PostgreSQL (the store,
// with its fan-out and guarded transitions), the test Redis, the LINE emulator and an SMTP
// mailbox reached through a real SMTP exchange.

// MustRealKV opens the test Redis under a key prefix of this test. asynq's keys are not under
// the prefix, only named by the prefixed queues, so the test's queues are deleted at its end.
func MustRealKV(tb testing.TB) *kv.Client {
	tb.Helper()
	url, prefix := testenv.RedisURL(tb)
	kvc, err := kv.Open(context.Background(), kv.Config{URL: url, Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = kvc.Close() })
	tb.Cleanup(func() {
		insp := asynq.NewInspectorFromRedisClient(kvc.Redis())
		for _, q := range []string{QueueLINE, QueueEmail} {
			_ = insp.DeleteQueue(Queue(prefix, q), true)
		}
	})
	return kvc
}

const testSchoolCode = "313601"

// pipeline is the worker role on PostgreSQL and the test Redis: relay, LINE and e-mail workers,
// with the e-mail fallback wired as cmd wires it.
type pipeline struct {
	t         *testing.T
	db        *store.DB
	dels      *store.DeliveryService
	guardians *store.GuardianService
	school    *ecardbot.School
	kv        *kv.Client
	sim       *linesim.Server
	mb        *linesim.Mailbox
	mailer    *Mailer
	relay     *Relay
	line      *Worker
	email     *EmailWorker
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DatabaseURL: testenv.PostgresURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	schools := store.NewSchoolService(db)
	if _, _, err := schools.ImportSchools(ctx, []ecardbot.School{{Code: testSchoolCode, Name: "臺北市立大安國民小學",
		District: "大安區", Level: ecardbot.LevelElementary, Cutoff: ecardbot.DefaultCutoff, EarliestLeave: ecardbot.DefaultEarliestLeave}}); err != nil {
		t.Fatal(err)
	}
	sc, err := schools.FindSchool(ctx, testSchoolCode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.NewRosterService(db).ImportRoster(ctx, testSchoolCode, []ecardbot.RosterEntry{
		{Line: 2, StudentNo: "1001", Name: "王小明", BirthDate: "2017-03-04", NationalIDHash: "h1", CardUID: "CARD1", Grade: "1", Class: "101"},
	}); err != nil {
		t.Fatal(err)
	}
	sim, client := startLINE(t, linesim.Options{})
	mb, err := linesim.StartMailbox("127.0.0.1:0", linesim.MailboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mb.Close() })
	mailer, err := NewMailer(MailerConfig{URL: mb.URL("ecardbot", "pw"), From: "臺北市學生到離校通知 <noreply@ecard.taipei>",
		TLSConfig: mb.ClientTLSConfig(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	kvc := MustRealKV(t)
	dels := store.NewDeliveryService(db)
	reg := prometheus.NewRegistry()
	p := &pipeline{t: t, db: db, dels: dels, guardians: store.NewGuardianService(db), school: sc, kv: kvc, sim: sim, mb: mb, mailer: mailer}
	p.relay = testRelay(dels, kvc)
	cfg := testWorkerConfig(dels, client, kvc, reg)
	cfg.OnPaused = EmailFallback(dels, testLog)
	p.line = NewWorker(cfg)
	p.email = NewEmailWorker(EmailWorkerConfig{
		Deliveries: dels, Mailer: mailer, Redis: kvc.Redis(), Prefix: kvc.Prefix(), Rate: 100, Concurrency: 2,
		Logger: testLog, Registerer: reg, Backoff: testBackoff, PollInterval: 10 * time.Millisecond,
	})
	return p
}

func (p *pipeline) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.relay.Run(ctx); close(done) }()
	if err := p.line.Start(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.email.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() {
		cancel()
		<-done
		p.line.Shutdown()
		p.email.Shutdown()
	})
}

// guardian subscribes a new guardian, a LINE friend, to 1001's arrivals on LINE, and on e-mail
// too when mailSub; email, when set, is their address, confirmed or not.
func (p *pipeline) guardian(tp, email string, mailSub, confirmed bool) (int64, string) {
	p.t.Helper()
	ctx := context.Background()
	u, err := p.sim.AddUser(linesim.User{Friend: true})
	if err != nil {
		p.t.Fatal(err)
	}
	e := ecardbot.SubscriberEntry{Line: 2, LineUserID: u.ID, TaipeiPassID: tp, SchoolCode: testSchoolCode, StudentNo: "1001",
		Kinds: []ecardbot.NoticeKind{ecardbot.KindArrived}}
	if mailSub {
		e.Email = email
	}
	if _, err := p.guardians.ImportSubscribers(ctx, []ecardbot.SubscriberEntry{e}, ecardbot.SubscriberImportOptions{EmailConfirmed: true}); err != nil {
		p.t.Fatal(err)
	}
	g, err := p.guardians.FindGuardianByLineUser(ctx, u.ID)
	if err != nil {
		p.t.Fatal(err)
	}
	if email != "" && (!mailSub || !confirmed) {
		if err := p.guardians.SetEmail(ctx, g.ID, email, confirmed); err != nil {
			p.t.Fatal(err)
		}
	}
	return g.ID, u.ID
}

// arrive taps 1001's card a minute ago and returns the deliveries the notice fanned out to, by
// guardian and channel.
func (p *pipeline) arrive() map[int64]map[ecardbot.Channel]string {
	p.t.Helper()
	ctx := context.Background()
	gate := store.NewGateService(p.db, store.GateConfig{})
	res, err := gate.Ingest(ctx, p.school, []ecardbot.GateEvent{{ID: "e1", Card: "CARD1", Direction: ecardbot.DirectionIn, At: time.Now().Add(-time.Minute)}})
	if err != nil || res.Accepted != 1 {
		p.t.Fatalf("ingest: %+v, %v", res, err)
	}
	pending, err := p.dels.PendingBatch(ctx, 100)
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[int64]map[ecardbot.Channel]string{}
	for _, pd := range pending {
		d := p.detail(pd.ID)
		if out[d.GuardianID] == nil {
			out[d.GuardianID] = map[ecardbot.Channel]string{}
		}
		out[d.GuardianID][d.Channel] = d.ID
	}
	return out
}

func (p *pipeline) detail(id string) ecardbot.DeliveryDetail {
	p.t.Helper()
	d, err := p.dels.Detail(context.Background(), id)
	if err != nil {
		p.t.Fatal(err)
	}
	return d
}

func (p *pipeline) waitState(id, state string) ecardbot.DeliveryDetail {
	p.t.Helper()
	waitFor(p.t, "delivery "+id+" "+state, func() bool { return p.detail(id).State == state })
	return p.detail(id)
}

// waitQueueDone waits until queue holds no task that is still to run or running.
func (p *pipeline) waitQueueDone(queue string) {
	p.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(p.kv.Redis())
	waitFor(p.t, queue+" tasks to end", func() bool {
		q, err := insp.GetQueueInfo(Queue(p.kv.Prefix(), queue))
		return errors.Is(err, asynq.ErrQueueNotFound) || (err == nil && q.Pending+q.Active+q.Scheduled+q.Retry == 0)
	})
}

// waitTaskGone waits until the queue holds no task for the delivery: its last run has ended.
func (p *pipeline) waitTaskGone(queue, id string) {
	p.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(p.kv.Redis())
	waitFor(p.t, "task "+id+" to end", func() bool {
		_, err := insp.GetTaskInfo(Queue(p.kv.Prefix(), queue), id)
		return errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound)
	})
}

// acceptedPushes counts LINE's 200 answers by retry key.
func (p *pipeline) acceptedPushes() map[string]int {
	keys := map[string]int{}
	for _, r := range p.sim.RequestsTo(linesim.RoutePush) {
		if r.Status == 200 {
			keys[r.RetryKey()]++
		}
	}
	return keys
}

func TestEmailDeliveredOnce(t *testing.T) {
	p := newPipeline(t)
	gid, _ := p.guardian("tp-a", "parent@example.com", true, true)
	ids := p.arrive()[gid]
	if ids[ecardbot.ChannelEmail] == "" || ids[ecardbot.ChannelLINE] == "" {
		t.Fatalf("deliveries of a guardian subscribed to both channels: %v", ids)
	}
	id := ids[ecardbot.ChannelEmail]
	p.start()
	p.waitState(id, ecardbot.DeliverySent)
	p.waitState(ids[ecardbot.ChannelLINE], ecardbot.DeliverySent)
	p.waitTaskGone(QueueEmail, id)

	mails := p.mb.Messages()
	if len(mails) != 1 {
		t.Fatalf("mailbox has %d mails, want 1", len(mails))
	}
	got := mails[0]
	if want := "<delivery-" + id + "@ecard.taipei>"; got.Header.Get("Message-Id") != want {
		t.Errorf("Message-ID %q, want %q", got.Header.Get("Message-Id"), want)
	}
	if len(got.To) != 1 || got.To[0] != "parent@example.com" || got.From != "noreply@ecard.taipei" {
		t.Errorf("envelope %q → %q", got.From, got.To)
	}
	if !got.TLS || got.Header.Get("Auto-Submitted") != "auto-generated" || !strings.HasPrefix(got.Subject, "【到校通知】王○明") {
		t.Errorf("TLS %v, Auto-Submitted %q, subject %q", got.TLS, got.Header.Get("Auto-Submitted"), got.Subject)
	}
	for part, body := range map[string]string{"text": got.Text, "html": got.HTML} {
		if !strings.Contains(body, "王○明") || !strings.Contains(body, "臺北市立大安國民小學") || strings.Contains(body, "王小明") {
			t.Errorf("%s part:\n%s", part, body)
		}
	}
	if got := testutil.ToFloat64(p.email.metrics.sends.WithLabelValues("sent")); got != 1 {
		t.Errorf("e-mail sent metric = %v, want 1", got)
	}
}

func TestEmailTemporaryFailureRetried(t *testing.T) {
	p := newPipeline(t)
	gid, _ := p.guardian("tp-a", "parent@example.com", true, true)
	id := p.arrive()[gid][ecardbot.ChannelEmail]
	p.mb.Reject(2, 451) // greylisted twice
	p.start()
	d := p.waitState(id, ecardbot.DeliverySent)
	if d.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", d.Attempts)
	}
	p.waitTaskGone(QueueEmail, id)
	mails := p.mb.Messages()
	if len(mails) != 1 || mails[0].Header.Get("Message-Id") != "<"+p.mailer.MessageID(id)+">" {
		t.Fatalf("mailbox has %d mails (%v), want one with the delivery's Message-ID", len(mails), mails)
	}
	if got := testutil.ToFloat64(p.email.metrics.retries); got != 2 {
		t.Errorf("retries metric = %v, want 2", got)
	}
}

func TestEmailPermanentFailureDead(t *testing.T) {
	p := newPipeline(t)
	gid, _ := p.guardian("tp-a", "parent@example.com", true, true)
	id := p.arrive()[gid][ecardbot.ChannelEmail]
	p.mb.Reject(1, 550)
	p.start()
	p.waitState(id, ecardbot.DeliveryDead)
	dead, err := p.dels.ListDead(context.Background(), 10)
	if err != nil || len(dead) != 1 || dead[0].ID != id || dead[0].Channel != ecardbot.ChannelEmail || dead[0].Attempts != 1 {
		t.Fatalf("ListDead = %+v, %v", dead, err)
	}
	if !strings.Contains(dead[0].DeadReason, "SMTP 550") || strings.Contains(dead[0].DeadReason, "parent@example.com") {
		t.Errorf("dead reason %q: want the SMTP code and no address", dead[0].DeadReason)
	}
	if n := len(p.mb.Messages()); n != 0 {
		t.Errorf("%d mails after a permanent refusal", n)
	}
	if got := testutil.ToFloat64(p.email.metrics.deadLetters.WithLabelValues("SMTP 550")); got != 1 {
		t.Errorf("dead letters metric = %v, want 1", got)
	}
}

func TestEmailUnconfirmedNotMailed(t *testing.T) {
	p := newPipeline(t)
	gid, _ := p.guardian("tp-a", "parent@example.com", true, true)
	id := p.arrive()[gid][ecardbot.ChannelEmail]
	// The parent changes the address after the notice: the new one is not confirmed yet.
	if err := p.guardians.SetEmail(context.Background(), gid, "new@example.com", false); err != nil {
		t.Fatal(err)
	}
	p.start()
	p.waitState(id, ecardbot.DeliveryCancelled)
	p.waitTaskGone(QueueEmail, id)
	if n := len(p.mb.Messages()); n != 0 {
		t.Errorf("%d mails to an unconfirmed address", n)
	}
	if dead, _ := p.dels.ListDead(context.Background(), 10); len(dead) != 0 {
		t.Errorf("dead letters %+v: an unconfirmed address is no dead letter to replay", dead)
	}
}

func TestMonthlyLimitFallsBackToEmail(t *testing.T) {
	p := newPipeline(t)
	ctx := context.Background()
	withMail, _ := p.guardian("tp-a", "a@example.com", false, true) // LINE only, confirmed address
	lineOnly, lineUser := p.guardian("tp-b", "", false, false)      // LINE only, no address
	unconfirmed, _ := p.guardian("tp-c", "c@example.com", false, false)
	ids := p.arrive()
	if len(ids[withMail]) != 1 || len(ids[lineOnly]) != 1 || len(ids[unconfirmed]) != 1 {
		t.Fatalf("deliveries = %v, want one LINE delivery each", ids)
	}
	replaced, kept, keptToo := ids[withMail][ecardbot.ChannelLINE], ids[lineOnly][ecardbot.ChannelLINE], ids[unconfirmed][ecardbot.ChannelLINE]

	// LINE answers the monthly limit until the quota is raised.
	p.sim.AddFault(linesim.Fault{PathPrefix: "/v2/bot/message/push", Status: 429, Message: linesim.MessageMonthlyLimit})
	p.start()

	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	mails, err := p.mb.WaitMessages(waitCtx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != 1 || len(mails[0].To) != 1 || mails[0].To[0] != "a@example.com" {
		t.Fatalf("mails %+v, want one to the guardian with a confirmed address", mails)
	}
	p.waitState(replaced, ecardbot.DeliveryCancelled)
	// The e-mail is a delivery of its own, with its own ID, and recorded as sent.
	emailID := strings.TrimSuffix(strings.TrimPrefix(mails[0].Header.Get("Message-Id"), "<delivery-"), "@ecard.taipei>")
	if d := p.waitState(emailID, ecardbot.DeliverySent); d.Channel != ecardbot.ChannelEmail || d.GuardianID != withMail {
		t.Errorf("e-mail delivery %+v", d)
	}
	if paused, _ := p.line.Limiter().Paused(ctx); !paused {
		t.Fatal("LINE sending not paused")
	}
	for _, id := range []string{kept, keptToo} {
		if s := p.detail(id).State; s != ecardbot.DeliveryQueued {
			t.Errorf("LINE delivery %s of a guardian without a confirmed address is %s while paused, want queued", id, s)
		}
	}

	// The quota is raised: the held deliveries go out on LINE, the replaced one never does.
	p.sim.ClearFaults()
	if err := p.line.Limiter().Resume(ctx); err != nil {
		t.Fatal(err)
	}
	p.waitState(kept, ecardbot.DeliverySent)
	p.waitState(keptToo, ecardbot.DeliverySent)
	p.waitQueueDone(QueueLINE) // the replaced delivery's last task has ended
	if n := len(p.sim.Inbox(lineUser)); n != 1 {
		t.Errorf("guardian without e-mail got %d LINE messages, want 1", n)
	}
	accepted := p.acceptedPushes()
	if accepted[replaced] != 0 || accepted[kept] != 1 || accepted[keptToo] != 1 || len(accepted) != 2 {
		t.Errorf("LINE accepted retry keys %v: want %s and %s once each, and not %s", accepted, kept, keptToo, replaced)
	}
	if n := len(p.mb.Messages()); n != 1 {
		t.Errorf("%d mails in the end, want 1", n)
	}
}

// pauseAfterLimiter is a Redis hook that pauses LINE sending right after a worker's first
// turn in the limiter: between its wait and its push.
type pauseAfterLimiter struct {
	rateKey string
	pause   func(context.Context) error
	once    sync.Once
	fired   chan struct{}
}

func (h *pauseAfterLimiter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *pauseAfterLimiter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *pauseAfterLimiter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && slices.ContainsFunc(cmd.Args(), func(a any) bool {
			s, _ := a.(string)
			return strings.HasSuffix(s, h.rateKey) // redis_rate prefixes its keys with "rate:"
		}) {
			h.once.Do(func() {
				if perr := h.pause(ctx); perr != nil {
					panic(perr)
				}
				close(h.fired)
			})
		}
		return err
	}
}

func TestPauseRecheckedAfterLimiterWait(t *testing.T) {
	kvc := MustRealKV(t)
	h := newHarnessOn(t, kvc, linesim.Options{})
	hook := &pauseAfterLimiter{rateKey: kvc.Prefix() + "push:line:rate", fired: make(chan struct{}),
		pause: func(ctx context.Context) error { return h.worker.Limiter().Pause(ctx, time.Hour) }}
	kvc.Redis().AddHook(hook)
	u := h.friend()
	id := h.dels.add(u, true, time.Now())
	h.start()
	select {
	case got := <-h.paused:
		if got != id {
			t.Errorf("OnPaused got %s, want %s", got, id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("OnPaused not called: the pause set during the limiter wait was not seen")
	}
	<-hook.fired
	if n := len(h.sim.RequestsTo(linesim.RoutePush)); n != 0 {
		t.Errorf("%d pushes after LINE sending was paused", n)
	}
	if s := h.dels.get(id).d.State; s != ecardbot.DeliveryQueued {
		t.Errorf("state = %s, want queued", s)
	}
	if err := h.worker.Limiter().Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.waitState(id, ecardbot.DeliverySent)
	if n := len(h.sim.Inbox(u)); n != 1 {
		t.Errorf("%d LINE messages, want 1", n)
	}
}
