package settings_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/browsertest"
	"github.com/taipei-doit/ecardbot/internal/testenv"
	"github.com/taipei-doit/ecardbot/linesim"
	"github.com/taipei-doit/ecardbot/push"
	"github.com/taipei-doit/ecardbot/school"
	"github.com/taipei-doit/ecardbot/settings"
	"github.com/taipei-doit/ecardbot/store"
	"github.com/taipei-doit/ecardbot/web"
)

var secret = []byte("settings-test-secret-key-32-bytes!!")

// The pupil of examples/roster-313601.csv that the tests add.
const (
	childName      = "李軒翔"
	childNo        = "11001"
	childBirth     = "2019-05-04"
	childID        = "a100000010" // lower case: the form normalises it
	childCard      = "04A1B201"
	genericNoMatch = "資料與學校名冊不符"
)

// clock is the settings pages' clock, which tests move forward.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is the settings pages on a real database, behind a real HTTP server, with a real
// SMTP mailbox when e-mail is on.
type harness struct {
	t         *testing.T
	db        *store.DB
	guardians *store.GuardianService
	store     *store.SettingsService
	settings  *settings.Settings
	url       string
	mailbox   *linesim.Mailbox // nil with e-mail off
	clock     *clock
	school    *ecardbot.School // 313601 松山國小
	g1, g2    int64            // two linked guardians without children
}

type harnessOptions struct {
	sqlite   bool
	emailOff bool
	location *time.Location // settings.Config.Location
	linkTTL  time.Duration  // settings.Config.LinkTTL
}

func lineUser(n int) string { return "U" + strings.Repeat("0", 31) + string(rune('0'+n)) }

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	cfg := store.Config{DataDir: t.TempDir()}
	if !opts.sqlite {
		cfg = store.Config{DatabaseURL: testenv.PostgresURL(t)}
	}
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, guardians: store.NewGuardianService(db), store: store.NewSettingsService(db),
		clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}

	schools := mustParse(t, "../examples/schools.csv", func(f *os.File) ([]ecardbot.School, error) { return school.ParseSchools(f) })
	if _, _, err := store.NewSchoolService(db).ImportSchools(ctx, schools); err != nil {
		t.Fatal(err)
	}
	roster := mustParse(t, "../examples/roster-313601.csv", func(f *os.File) ([]ecardbot.RosterEntry, error) { return school.ParseRoster(f, secret) })
	if _, err := store.NewRosterService(db).ImportRoster(ctx, "313601", roster); err != nil {
		t.Fatal(err)
	}
	if h.school, err = store.NewSchoolService(db).FindSchool(ctx, "313601"); err != nil {
		t.Fatal(err)
	}
	h.g1 = h.mustLink("tp-parent-1", lineUser(1))
	h.g2 = h.mustLink("tp-parent-2", lineUser(2))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String()
	deps := settings.Deps{Guardians: h.guardians, Settings: h.store}
	if !opts.emailOff {
		h.mailbox, err = linesim.StartMailbox("127.0.0.1:0", linesim.MailboxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.mailbox.Close() })
		mailer, err := push.NewMailer(push.MailerConfig{URL: h.mailbox.URL("ecardbot", "pw"), From: "到離校通知 <noreply@ecard.taipei>",
			TLSConfig: h.mailbox.ClientTLSConfig(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		deps.Mailer = mailer
	}
	h.settings, err = settings.New(settings.Config{PublicURL: h.url, SecretKey: secret, Now: h.clock.Now,
		Location: opts.location, LinkTTL: opts.linkTTL}, deps)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	web.Register(r)
	h.settings.Register(r)
	srv := httptest.NewUnstartedServer(r)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return h
}

func mustParse[T any](t *testing.T, path string, parse func(*os.File) ([]T, error)) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (h *harness) mustLink(account, user string) int64 {
	h.t.Helper()
	res, err := h.guardians.LinkGuardian(context.Background(), account, user)
	if err != nil {
		h.t.Fatal(err)
	}
	return res.Guardian.ID
}

// addChild makes the pupil the guardian's child the way the page does: matched on the roster,
// then added with LINE notices of every kind. It returns the pupil's id.
func (h *harness) addChild(guardianID int64, no, name, birth, id string) int64 {
	h.t.Helper()
	ctx := context.Background()
	q := ecardbot.StudentQuery{SchoolID: h.school.ID, StudentNo: no, Name: name, BirthDate: birth,
		NationalIDHash: ecardbot.KeyedHash(secret, ecardbot.PurposeNationalID, ecardbot.NormalizeNationalID(id))}
	sid, err := h.store.MatchStudent(ctx, guardianID, q, h.clock.Now(), 5, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.guardians.AddGuardianship(ctx, guardianID, sid); err != nil {
		h.t.Fatal(err)
	}
	var subs []ecardbot.Subscription
	for _, k := range ecardbot.NoticeKinds {
		subs = append(subs, ecardbot.Subscription{StudentID: sid, Kind: k, Channel: ecardbot.ChannelLINE})
	}
	if err := h.guardians.SetSubscriptions(ctx, guardianID, sid, subs); err != nil {
		h.t.Fatal(err)
	}
	return sid
}

// link returns a fresh single-use link for the guardian.
func (h *harness) link(guardianID int64, page ecardbot.SettingsPage) string {
	h.t.Helper()
	u, err := h.settings.SettingsURL(context.Background(), guardianID, page)
	if err != nil {
		h.t.Fatal(err)
	}
	if !strings.HasPrefix(u, h.url+"/settings/open?t=") {
		h.t.Fatalf("SettingsURL = %q", u)
	}
	return u
}

func (h *harness) subscriptions(guardianID int64) []ecardbot.Subscription {
	h.t.Helper()
	subs, err := h.guardians.Subscriptions(context.Background(), guardianID)
	if err != nil {
		h.t.Fatal(err)
	}
	return subs
}

func (h *harness) children(guardianID int64) []ecardbot.Child {
	h.t.Helper()
	ch, err := h.store.Children(context.Background(), guardianID)
	if err != nil {
		h.t.Fatal(err)
	}
	return ch
}

// fillChild picks 松山區, 國小 and 松山國小 on the 歸戶 page and types the pupil's details.
func fillChild(t *testing.T, b *browsertest.Tab, name, no, birth, id string) {
	t.Helper()
	b.Do(chromedp.SetValue(chromedp.ID("district"), "松山區"), chromedp.SetValue(chromedp.ID("level"), ecardbot.LevelElementary))
	b.WantStatus(b.Submit("#list-schools"), http.StatusOK, "list schools")
	b.WantText("#school", "松山國小")
	b.Do(
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("student_no"), no),
		chromedp.SetValue(chromedp.ID("birth_date"), birth),
		chromedp.SendKeys(chromedp.ID("national_id"), id),
	)
}

var confirmLink = regexp.MustCompile(`http://\S+/settings/email/confirm\?t=[A-Za-z0-9_-]+`)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

// noRedirect GETs url without following redirects.
func noRedirect(t *testing.T, url string) *http.Response {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func ginWith(s *settings.Settings) http.Handler {
	r := gin.New()
	s.Register(r)
	return r
}
