package settings_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/internal/browsertest"
	"github.com/taipei-doit/ecardbot/store"
)

// TestConfiguredZoneAndLinkTTL: the times the pages show are in Config.Location, not always
// Taipei's, and the page of a spent link says how long links work as Config.LinkTTL has it.
func TestConfiguredZoneAndLinkTTL(t *testing.T) {
	lima := time.FixedZone("America/Lima", -5*60*60)
	h := newHarness(t, harnessOptions{location: lima, linkTTL: 30 * time.Minute})
	ctx := context.Background()

	// History: a tap's time as Lima reads it.
	h.addChild(h.g1, childNo, childName, childBirth, childID)
	tap := ecardbot.GateEvent{ID: "tap-1", Card: childCard, Direction: ecardbot.DirectionIn, At: h.clock.Now().Add(-time.Minute), Gate: "north-1"}
	if res, err := store.NewGateService(h.db, store.GateConfig{}).Ingest(ctx, h.school, []ecardbot.GateEvent{tap}); err != nil || res.Accepted != 1 {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	b := browsertest.NewTab(t)
	link := h.link(h.g1, ecardbot.SettingsHistory)
	b.WantStatus(b.GoTo(link), http.StatusOK, "history")
	b.WantText("#entries", tap.At.In(lima).Format("01/02 15:04"))
	if strings.Contains(b.Text("#entries"), tap.At.In(ecardbot.Taipei).Format("15:04")) {
		t.Error("the history shows Taipei time")
	}
	b.Shot("history-lima")

	// The spent link's page says 30 minutes.
	other := browsertest.NewTab(t)
	other.WantStatus(other.GoTo(link), http.StatusGone, "second use")
	other.WantText("#text", "30 分鐘內有效")
	other.WantText("main", "only for 30 minutes")

	// 歸戶's retry time, in Lima.
	bad := ecardbot.StudentQuery{SchoolID: h.school.ID, StudentNo: childNo, Name: "x", BirthDate: childBirth, NationalIDHash: "x"}
	start := h.clock.Now()
	for range 5 {
		if _, err := h.store.MatchStudent(ctx, h.g2, bad, start, 5, time.Hour); ecardbot.ErrorCode(err) != ecardbot.ENOTFOUND {
			t.Fatalf("failed attempt: %v", err)
		}
	}
	b.WantStatus(b.GoTo(h.link(h.g2, ecardbot.SettingsAddChild)), http.StatusOK, "open link")
	fillChild(t, b, childName, childNo, childBirth, childID)
	b.WantStatus(b.Submit("#submit"), http.StatusTooManyRequests, "sixth attempt")
	retry := start.Add(time.Hour)
	b.WantText(".error", retry.In(lima).Format("01/02 15:04"))
	b.WantText(".error", "(America/Lima time)")
	if strings.Contains(b.Text(".error"), retry.In(ecardbot.Taipei).Format("15:04")) {
		t.Error("the retry time is Taipei's")
	}
	b.Shot("too-many-attempts-lima")
}
