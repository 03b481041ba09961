package ecardbot_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
)

var classifyZone = time.FixedZone("Asia/Taipei", 8*60*60)

// MustAt returns the instant of "HH:MM" or "HH:MM:SS" on 2026-11-27 in Taipei.
func MustAt(tb testing.TB, clock string) time.Time {
	tb.Helper()
	for _, layout := range []string{"15:04", "15:04:05", "15:04:05.000"} {
		if t, err := time.ParseInLocation(layout, clock, classifyZone); err == nil {
			return time.Date(2026, 11, 27, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), classifyZone)
		}
	}
	tb.Fatalf("bad clock %q", clock)
	return time.Time{}
}

// MustTaps builds taps from "HH:MM dir" pairs; dir is in, out or ? (unknown).
func MustTaps(tb testing.TB, specs ...string) []ecardbot.Tap {
	tb.Helper()
	var taps []ecardbot.Tap
	for _, s := range specs {
		var clock, dir string
		if _, err := fmt.Sscan(s, &clock, &dir); err != nil {
			tb.Fatalf("bad tap %q: %v", s, err)
		}
		d := ecardbot.Direction(dir)
		if dir == "?" {
			d = ecardbot.DirectionUnknown
		}
		taps = append(taps, ecardbot.Tap{At: MustAt(tb, clock), Direction: d})
	}
	return taps
}

func defaultRules(tb testing.TB) ecardbot.DayRules {
	return ecardbot.DayRules{
		EarliestLeave: ecardbot.DefaultEarliestLeave.On(MustAt(tb, "00:00"), classifyZone),
		Debounce:      3 * time.Minute,
	}
}

func TestClassify(t *testing.T) {
	rules := defaultRules(t)
	tests := []struct {
		name        string
		taps        []ecardbot.Tap
		rules       *ecardbot.DayRules // nil: defaultRules
		wantArrived string             // "HH:MM dir" of the arriving tap, "" for none
		wantLeft    string
	}{
		{name: "empty"},
		{name: "empty non-nil", taps: []ecardbot.Tap{}},
		{name: "normal day", taps: MustTaps(t, "07:40 in", "16:00 out"), wantArrived: "07:40 in", wantLeft: "16:00 out"},
		{
			name:        "repeated taps within 3 minutes",
			taps:        MustTaps(t, "07:40 in", "07:41 in", "07:42:59 in", "16:00 out", "16:01 out", "16:02:30 out"),
			wantArrived: "07:40 in", wantLeft: "16:00 out",
		},
		{name: "in then out within debounce is one tap", taps: MustTaps(t, "07:40 in", "07:41 out"), wantArrived: "07:40 in"},
		{name: "double in", taps: MustTaps(t, "07:40 in", "07:50 in"), wantArrived: "07:40 in"},
		{name: "double in then out", taps: MustTaps(t, "07:40 in", "07:50 in", "16:00 out"), wantArrived: "07:40 in", wantLeft: "16:00 out"},
		{name: "unknown pair", taps: MustTaps(t, "07:40 ?", "16:00 ?"), wantArrived: "07:40 ?", wantLeft: "16:00 ?"},
		{name: "unknown single morning tap", taps: MustTaps(t, "07:40 ?"), wantArrived: "07:40 ?"},
		{name: "unknown single afternoon tap is a departure", taps: MustTaps(t, "16:00 ?"), wantLeft: "16:00 ?"},
		{name: "unknown at earliest leave is a departure", taps: MustTaps(t, "12:00 ?"), wantLeft: "12:00 ?"},
		{name: "unknown just before earliest leave is an arrival", taps: MustTaps(t, "11:59:59 ?"), wantArrived: "11:59:59 ?"},
		{name: "unknown morning taps after arrival", taps: MustTaps(t, "07:40 ?", "10:00 ?", "11:00 ?"), wantArrived: "07:40 ?"},
		{name: "unknown taps, afternoon repeats", taps: MustTaps(t, "07:40 ?", "12:30 ?", "16:00 ?"), wantArrived: "07:40 ?", wantLeft: "12:30 ?"},
		{name: "unknown arrival, directional departure", taps: MustTaps(t, "07:40 ?", "16:00 out"), wantArrived: "07:40 ?", wantLeft: "16:00 out"},
		{name: "unknown direction value other than in and out", taps: MustTaps(t, "07:40 sideways", "16:00 IN"), wantArrived: "07:40 sideways", wantLeft: "16:00 IN"},
		{name: "early pick-up: out before earliest leave after in", taps: MustTaps(t, "07:40 in", "10:15 out"), wantArrived: "07:40 in", wantLeft: "10:15 out"},
		{name: "out before earliest leave without in is ignored", taps: MustTaps(t, "07:30 out")},
		{name: "ignored out, then in", taps: MustTaps(t, "07:30 out", "07:45 in", "16:00 out"), wantArrived: "07:45 in", wantLeft: "16:00 out"},
		{name: "ignored out does not debounce the in after it", taps: MustTaps(t, "07:30 out", "07:31 in"), wantArrived: "07:31 in"},
		{name: "out after earliest leave without in", taps: MustTaps(t, "16:00 out"), wantLeft: "16:00 out"},
		{name: "late arrival through an in reader", taps: MustTaps(t, "13:00 in", "16:00 out"), wantArrived: "13:00 in", wantLeft: "16:00 out"},
		{name: "in after left changes nothing", taps: MustTaps(t, "07:40 in", "16:00 out", "16:30 in", "17:00 out"), wantArrived: "07:40 in", wantLeft: "16:00 out"},
		{name: "in after a departure without arrival changes nothing", taps: MustTaps(t, "16:00 ?", "16:30 in"), wantLeft: "16:00 ?"},
		{name: "late upload in reverse order", taps: MustTaps(t, "16:01 out", "16:00 out", "07:41 in", "07:40 in"), wantArrived: "07:40 in", wantLeft: "16:00 out"},
		{name: "debounce boundary: exactly Debounce apart is kept", taps: MustTaps(t, "07:40 in", "07:43 out"), wantArrived: "07:40 in", wantLeft: "07:43 out"},
		{name: "debounce boundary: a millisecond less is dropped", taps: MustTaps(t, "07:40 in", "07:42:59.999 out"), wantArrived: "07:40 in"},
		{
			name:        "debounce measured from the previous kept tap",
			taps:        MustTaps(t, "07:40 in", "07:42 in", "07:44 out"),
			wantArrived: "07:40 in", wantLeft: "07:44 out",
		},
		{name: "same instant in and out: in first", taps: MustTaps(t, "16:00 out", "16:00 in"), wantArrived: "16:00 in"},
		{
			name:        "zero debounce keeps every tap",
			taps:        MustTaps(t, "07:40 in", "07:40 out"),
			rules:       &ecardbot.DayRules{EarliestLeave: rules.EarliestLeave},
			wantArrived: "07:40 in", wantLeft: "07:40 out",
		},
		{
			name:        "zero earliest leave: every tap is after it",
			taps:        MustTaps(t, "07:40 ?"),
			rules:       &ecardbot.DayRules{Debounce: 3 * time.Minute},
			wantLeft:    "07:40 ?",
			wantArrived: "",
		},
		{
			name: "taps with other offsets are ordered by instant",
			taps: []ecardbot.Tap{
				{At: MustAt(t, "16:00").UTC(), Direction: ecardbot.DirectionOut},
				{At: MustAt(t, "07:40").In(time.FixedZone("", -5*60*60)), Direction: ecardbot.DirectionIn},
			},
			wantArrived: "07:40 in", wantLeft: "16:00 out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rules
			if tt.rules != nil {
				r = *tt.rules
			}
			input := slices.Clone(tt.taps)
			got := ecardbot.Classify(tt.taps, r)
			if !slices.Equal(input, tt.taps) {
				t.Errorf("Classify modified its input")
			}
			if s := tapString(got.Arrived); s != tt.wantArrived {
				t.Errorf("Arrived = %q, want %q", s, tt.wantArrived)
			}
			if s := tapString(got.Left); s != tt.wantLeft {
				t.Errorf("Left = %q, want %q", s, tt.wantLeft)
			}
		})
	}
}

func TestClassifyReturnsCopies(t *testing.T) {
	taps := MustTaps(t, "07:40 in", "16:00 out")
	got := ecardbot.Classify(taps, defaultRules(t))
	got.Arrived.Direction = ecardbot.DirectionOut
	got.Left.At = time.Time{}
	if want := MustTaps(t, "07:40 in", "16:00 out"); !slices.Equal(taps, want) {
		t.Errorf("changing the result changed the input: %v", taps)
	}
}

// TestClassifyOrderIndependent checks that the order of the input never matters: taps of one
// day are classified again after every (possibly late) upload.
func TestClassifyOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	directions := []ecardbot.Direction{ecardbot.DirectionIn, ecardbot.DirectionOut, ecardbot.DirectionUnknown, "sideways"}
	day := MustAt(t, "00:00")
	for i := range 2000 {
		rules := ecardbot.DayRules{
			EarliestLeave: day.Add(time.Duration(6*60+rng.IntN(12*60)) * time.Minute),
			Debounce:      time.Duration(rng.IntN(5)) * time.Minute,
		}
		// Few distinct instants, so that ties and debounce windows are common.
		instants := make([]time.Time, 1+rng.IntN(6))
		for j := range instants {
			instants[j] = day.Add(time.Duration(6*60+rng.IntN(12*60)) * time.Minute)
		}
		taps := make([]ecardbot.Tap, rng.IntN(10))
		for j := range taps {
			taps[j] = ecardbot.Tap{At: instants[rng.IntN(len(instants))], Direction: directions[rng.IntN(len(directions))]}
		}
		want := ecardbot.Classify(taps, rules)
		for range 5 {
			shuffled := slices.Clone(taps)
			rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
			got := ecardbot.Classify(shuffled, rules)
			if !sameTap(got.Arrived, want.Arrived) || !sameTap(got.Left, want.Left) {
				t.Fatalf("case %d: rules %+v\ntaps     %v\nshuffled %v\ngot  %s / %s\nwant %s / %s", i, rules, taps, shuffled,
					tapString(got.Arrived), tapString(got.Left), tapString(want.Arrived), tapString(want.Left))
			}
		}
	}
}

func sameTap(a, b *ecardbot.Tap) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.At.Equal(b.At) && a.Direction == b.Direction
}

// tapString formats a result tap the way the tests write taps: "HH:MM dir" in Taipei, with
// seconds when they are not zero; "" for nil.
func tapString(t *ecardbot.Tap) string {
	if t == nil {
		return ""
	}
	layout := "15:04"
	if local := t.At.In(classifyZone); local.Nanosecond() != 0 {
		layout = "15:04:05.000"
	} else if local.Second() != 0 {
		layout = "15:04:05"
	}
	dir := string(t.Direction)
	if t.Direction == ecardbot.DirectionUnknown {
		dir = "?"
	}
	return t.At.In(classifyZone).Format(layout) + " " + dir
}
