package bot_test

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taipei-doit/ecardbot"
	"github.com/taipei-doit/ecardbot/bot"
	"github.com/taipei-doit/ecardbot/lineapi"
)

// New refuses a missing dependency up front, naming it, instead of panicking at the first event
// that needs it.
func TestNewNamesTheMissingDependency(t *testing.T) {
	t.Parallel()
	full := func() bot.Deps {
		return bot.Deps{
			Users:     struct{ ecardbot.LineUserService }{},
			Claims:    struct{ ecardbot.EventClaimer }{},
			LINE:      &lineapi.Client{},
			Logger:    slog.New(slog.DiscardHandler),
			Registry:  prometheus.NewRegistry(),
			Guardians: struct{ ecardbot.GuardianService }{},
			Linker:    struct{ ecardbot.AccountLinker }{},
			Settings:  struct{ ecardbot.SettingsLinker }{},
		}
	}
	cfg := bot.Config{ChannelSecret: "secret"}
	if b, err := bot.New(cfg, full()); err != nil || b == nil {
		t.Fatalf("New with every dependency: %v, %v", b, err)
	}
	for i := range reflect.TypeFor[bot.Deps]().NumField() {
		d := full()
		f := reflect.ValueOf(&d).Elem().Field(i)
		name := reflect.TypeFor[bot.Deps]().Field(i).Name
		f.SetZero()
		b, err := bot.New(cfg, d)
		if err == nil || b != nil || !strings.Contains(err.Error(), "Deps."+name+" ") {
			t.Errorf("New without %s: %v, %v; want an error naming Deps.%s", name, b, err, name)
		}
	}
	if _, err := bot.New(bot.Config{}, full()); err == nil || !strings.Contains(err.Error(), "channel secret") {
		t.Errorf("New without a channel secret: %v", err)
	}
}
