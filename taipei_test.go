package ecardbot_test

import (
	"testing"
	"time"

	"github.com/taipei-doit/ecardbot"
)

func TestDistricts(t *testing.T) {
	// taipei.md §3, in postal-code order.
	want := []ecardbot.District{
		{Name: "中正區", English: "Zhongzheng", ZIP: "100"},
		{Name: "大同區", English: "Datong", ZIP: "103"},
		{Name: "中山區", English: "Zhongshan", ZIP: "104"},
		{Name: "松山區", English: "Songshan", ZIP: "105"},
		{Name: "大安區", English: "Da'an", ZIP: "106"},
		{Name: "萬華區", English: "Wanhua", ZIP: "108"},
		{Name: "信義區", English: "Xinyi", ZIP: "110"},
		{Name: "士林區", English: "Shilin", ZIP: "111"},
		{Name: "北投區", English: "Beitou", ZIP: "112"},
		{Name: "內湖區", English: "Neihu", ZIP: "114"},
		{Name: "南港區", English: "Nangang", ZIP: "115"},
		{Name: "文山區", English: "Wenshan", ZIP: "116"},
	}
	if len(ecardbot.Districts) != len(want) {
		t.Fatalf("len(Districts) = %d, want %d", len(ecardbot.Districts), len(want))
	}
	for i, d := range ecardbot.Districts {
		if d != want[i] {
			t.Errorf("Districts[%d] = %+v, want %+v", i, d, want[i])
		}
		if !ecardbot.ValidDistrict(d.Name) {
			t.Errorf("ValidDistrict(%q) = false", d.Name)
		}
	}
}

func TestValidDistrictRejects(t *testing.T) {
	for _, s := range []string{"", "松山", "臺北市松山區", "台北市松山區", " 松山區", "松山區 ", "Songshan", "板橋區", "内湖區"} {
		if ecardbot.ValidDistrict(s) {
			t.Errorf("ValidDistrict(%q) = true, want false", s)
		}
	}
}

func TestLevels(t *testing.T) {
	want := []string{"國小", "國中", "高中", "高職"}
	if len(ecardbot.Levels) != len(want) {
		t.Fatalf("Levels = %q, want %q", ecardbot.Levels, want)
	}
	for i, l := range want {
		if ecardbot.Levels[i] != l {
			t.Errorf("Levels[%d] = %q, want %q", i, ecardbot.Levels[i], l)
		}
		if !ecardbot.ValidLevel(l) {
			t.Errorf("ValidLevel(%q) = false", l)
		}
	}
	for _, s := range []string{"", "國民小學", "高中職", "大學", "elementary", " 國小"} {
		if ecardbot.ValidLevel(s) {
			t.Errorf("ValidLevel(%q) = true, want false", s)
		}
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    ecardbot.Clock
		wantErr bool
	}{
		{name: "midnight", input: "00:00", want: 0},
		{name: "default cutoff", input: "08:30", want: ecardbot.DefaultCutoff},
		{name: "one-digit hour", input: "8:30", want: ecardbot.DefaultCutoff},
		{name: "noon", input: "12:00", want: ecardbot.DefaultEarliestLeave},
		{name: "last minute", input: "23:59", want: 23*60 + 59},
		{name: "surrounding spaces", input: " 07:45 ", want: 7*60 + 45},
		{name: "empty", input: "", wantErr: true},
		{name: "24:00", input: "24:00", wantErr: true},
		{name: "minute 60", input: "12:60", wantErr: true},
		{name: "one-digit minute", input: "8:5", wantErr: true},
		{name: "no colon", input: "0830", wantErr: true},
		{name: "seconds", input: "08:30:00", wantErr: true},
		{name: "three-digit hour", input: "008:30", wantErr: true},
		{name: "negative", input: "-1:00", wantErr: true},
		{name: "plus sign", input: "+8:30", wantErr: true},
		{name: "no hour", input: ":30", wantErr: true},
		{name: "no minute", input: "08:", wantErr: true},
		{name: "letters", input: "08:3a", wantErr: true},
		{name: "hyphen", input: "08-30", wantErr: true},
		{name: "full-width digits", input: "０８:３０", wantErr: true},
		{name: "inner space", input: "08: 30", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ecardbot.ParseClock(tt.input)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseClock(%q) = %v, nil; want an error", tt.input, got)
				}
				if code := ecardbot.ErrorCode(err); code != ecardbot.EINVALID {
					t.Errorf("ErrorCode = %q, want %q", code, ecardbot.EINVALID)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClock(%q) error = %v", tt.input, err)
			}
			if got != tt.want {
				t.Errorf("ParseClock(%q) = %d, want %d", tt.input, got, tt.want)
			}
		})
	}
}

func TestClockStringRoundTrip(t *testing.T) {
	for c := ecardbot.Clock(0); c < 24*60; c++ {
		s := c.String()
		if len(s) != 5 {
			t.Fatalf("Clock(%d).String() = %q, want HH:MM", c, s)
		}
		got, err := ecardbot.ParseClock(s)
		if err != nil || got != c {
			t.Fatalf("ParseClock(%q) = %d, %v; want %d", s, got, err, c)
		}
	}
	for _, tt := range []struct {
		c    ecardbot.Clock
		want string
	}{{0, "00:00"}, {ecardbot.DefaultCutoff, "08:30"}, {ecardbot.DefaultEarliestLeave, "12:00"}, {-1, "Clock(-1)"}, {24 * 60, "Clock(1440)"}} {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Clock(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
}

func TestClockOn(t *testing.T) {
	taipei := time.FixedZone("Asia/Taipei", 8*60*60)
	tests := []struct {
		name  string
		clock ecardbot.Clock
		day   time.Time
		loc   *time.Location
		want  time.Time
	}{
		{
			name:  "same zone",
			clock: ecardbot.DefaultCutoff,
			day:   time.Date(2026, 11, 27, 15, 4, 5, 6, taipei),
			loc:   taipei,
			want:  time.Date(2026, 11, 27, 8, 30, 0, 0, taipei),
		},
		{
			name:  "UTC evening is the next Taipei day",
			clock: ecardbot.DefaultCutoff,
			day:   time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC),
			loc:   taipei,
			want:  time.Date(2026, 11, 27, 8, 30, 0, 0, taipei),
		},
		{
			name:  "UTC morning is the same Taipei day",
			clock: ecardbot.DefaultEarliestLeave,
			day:   time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC),
			loc:   taipei,
			want:  time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC),
		},
		{
			name:  "Taipei early morning is the previous UTC day",
			clock: 0,
			day:   time.Date(2026, 11, 27, 7, 0, 0, 0, taipei),
			loc:   time.UTC,
			want:  time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		},
		{
			name:  "nil location uses the day's",
			clock: 23*60 + 59,
			day:   time.Date(2026, 11, 27, 0, 0, 0, 0, taipei),
			want:  time.Date(2026, 11, 27, 23, 59, 0, 0, taipei),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.clock.On(tt.day, tt.loc)
			if !got.Equal(tt.want) {
				t.Errorf("On = %v, want %v", got, tt.want)
			}
			if tt.loc != nil && got.Location() != tt.loc {
				t.Errorf("On location = %v, want %v", got.Location(), tt.loc)
			}
		})
	}
}
