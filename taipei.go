package ecardbot

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// District is one of Taipei's 12 administrative districts (行政區). Parents pick a district
// before a school on the 歸戶 page, and school imports name one, so the list is fixed here.
type District struct {
	Name    string // as the city writes it, e.g. "松山區": the value kept in School.District
	English string // e.g. "Songshan"; addresses add " Dist."
	ZIP     string // three-digit postal code, e.g. "105"
}

// Districts lists the 12 districts of Taipei in postal-code order, the order the city's own
// forms use. Names are exactly those of taipei.md §3: imports are compared with them byte for
// byte, so a CSV that writes "松山" or "臺北市松山區" is rejected rather than guessed at.
var Districts = []District{
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

// ValidDistrict reports whether zh is the Chinese name of a Taipei district exactly as in
// Districts. It does not trim or convert: callers trim their input, and a near miss is an
// error for the operator to fix, not something to guess.
func ValidDistrict(zh string) bool {
	return slices.ContainsFunc(Districts, func(d District) bool { return d.Name == zh })
}

// School levels (級別) as the city's student-card portal names them.
const (
	LevelElementary = "國小" // elementary school
	LevelJunior     = "國中" // junior high school
	LevelSenior     = "高中" // senior high school
	LevelVocational = "高職" // vocational high school
)

// Levels lists the school levels in the order parents pick them, youngest pupils first. A
// complete high school that teaches two levels is imported once per level.
var Levels = []string{LevelElementary, LevelJunior, LevelSenior, LevelVocational}

// ValidLevel reports whether level is one of Levels, compared exactly.
func ValidLevel(level string) bool {
	return slices.Contains(Levels, level)
}

// Default school times, used when a school's import leaves them empty.
const (
	// DefaultCutoff is 08:30, when the 未到校 sweep runs unless a school sets its own cutoff.
	DefaultCutoff Clock = 8*60 + 30
	// DefaultEarliestLeave is 12:00, the earliest a Taipei school day ends: from then on an
	// "out" without an "in", or a tap of unknown direction, means 離校.
	DefaultEarliestLeave Clock = 12 * 60
)

// ParseClock parses a time of day written "HH:MM" (00:00 to 23:59). A one-digit hour ("8:30")
// is accepted because spreadsheets drop the leading zero when they re-save a CSV; minutes
// always have two digits and seconds are not allowed. Surrounding spaces are ignored. Returns
// EINVALID for anything else, including "24:00".
func ParseClock(s string) (Clock, error) {
	t := strings.TrimSpace(s)
	h, m, ok := strings.Cut(t, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !allASCIIDigits(h) || !allASCIIDigits(m) {
		return 0, Errorf(EINVALID, "Time %q is not a time of day written HH:MM.", s)
	}
	hh, mm := atoiDigits(h), atoiDigits(m)
	if hh > 23 || mm > 59 {
		return 0, Errorf(EINVALID, "Time %q is not between 00:00 and 23:59.", s)
	}
	return Clock(hh*60 + mm), nil
}

// String returns the clock as "HH:MM", the form ParseClock reads and school imports use.
// A value outside a day, which ParseClock never returns, prints as "Clock(n)".
func (c Clock) String() string {
	if c < 0 || c >= 24*60 {
		return fmt.Sprintf("Clock(%d)", int(c))
	}
	return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60)
}

// On returns the instant at which the wall clock in loc shows c on the calendar date that day
// has in loc. Taps carry any UTC offset while cutoffs are school-local: 2026-11-26T23:30Z is
// already the 27th in Taipei, and its 08:30 cutoff must be the 27th's. A nil loc means day's
// own location.
func (c Clock) On(day time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = day.Location()
	}
	y, m, d := day.In(loc).Date()
	return time.Date(y, m, d, 0, int(c), 0, 0, loc)
}

func allASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoiDigits converts a short string of ASCII digits; the caller has checked them.
func atoiDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Taipei is the service's default time zone. Taiwan has kept UTC+8 without daylight saving since
// 1979, so a fixed zone is exact and works on an image without a time zone database.
var Taipei = time.FixedZone("Asia/Taipei", 8*60*60)
