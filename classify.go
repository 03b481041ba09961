package ecardbot

import (
	"slices"
	"strings"
)

// Classification is what one student's taps of one school day mean for the notices: the tap
// that makes the 到校 notice and the tap that makes the 離校 notice, each nil when there is
// none. Both are copies; Classify never points into its input.
type Classification struct {
	Arrived *Tap
	Left    *Tap
}

// Classify decides which of one student's taps of one school day make the 到校 (arrived) and
// 離校 (left) notices. taps may come in any order: offline readers upload late, so a batch can
// hold taps older than ones already stored. The answer depends only on the set of taps, never
// on their order, so classifying the whole day again after each upload is always safe.
//
// Taps are walked in time order (ties: in, then unknown, then out). The rules, and why:
//
//   - Debounce: a tap less than rules.Debounce after the previous kept tap, in any direction,
//     is dropped. A card held to a reader reads several times, and a pupil may brush both the
//     in and the out reader of one gate; neither is a real departure. The window is measured
//     from the previous kept tap, not the previous tap, so a pupil tapping every minute still
//     gets through once per window. A tap exactly rules.Debounce later is kept.
//   - An "in" is 到校 if nothing arrived yet. A second "in" changes nothing: at most one
//     notice per kind per day.
//   - An "out" is 離校 when an arrival precedes it (a pupil picked up early for the doctor) or
//     when it is at or after rules.EarliestLeave (a pupil whose morning tap was missed still
//     leaves). An "out" before EarliestLeave with no arrival is ignored: a child walking out to
//     the playground gate before tapping in has not left school. An ignored tap is not kept,
//     so it cannot debounce away the "in" that follows it a moment later.
//   - A tap of unknown direction (DirectionUnknown, or any value other than in and out) is
//     到校 if nothing arrived yet and it is before EarliestLeave, and 離校 if it is at or after
//     EarliestLeave, whether or not an arrival precedes it. Readers that cannot tell direction
//     give no other clue than the hour: a lone afternoon tap is far more likely a pupil going
//     home (with the morning tap missed) than a pupil arriving after noon. A morning tap after
//     an arrival changes nothing.
//   - Once 離校 is set, later taps change nothing, not even an "in": a pupil who comes back
//     for a forgotten bag must not send parents a second 到校.
//
// rules.EarliestLeave is an instant (School.EarliestLeave.On(day, loc)); the zero time.Time
// puts every tap at or after it. A zero or negative rules.Debounce drops nothing.
func Classify(taps []Tap, rules DayRules) Classification {
	sorted := slices.Clone(taps)
	slices.SortStableFunc(sorted, func(a, b Tap) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		// Equal instants are ordered by direction, so that the result does not depend on the
		// order the taps arrived in.
		if c := directionRank(a.Direction) - directionRank(b.Direction); c != 0 {
			return c
		}
		return strings.Compare(string(a.Direction), string(b.Direction))
	})

	var c Classification
	var last *Tap // previous kept tap
	for i := range sorted {
		t := &sorted[i]
		if c.Left != nil {
			break
		}
		if last != nil && t.At.Sub(last.At) < rules.Debounce {
			continue
		}
		afterEarliestLeave := !t.At.Before(rules.EarliestLeave)
		switch t.Direction {
		case DirectionIn:
			if c.Arrived == nil {
				c.Arrived = copyTap(t)
			}
		case DirectionOut:
			if c.Arrived == nil && !afterEarliestLeave {
				continue // ignored, and not kept
			}
			c.Left = copyTap(t)
		default:
			if c.Arrived == nil && !afterEarliestLeave {
				c.Arrived = copyTap(t)
			} else if afterEarliestLeave {
				c.Left = copyTap(t)
			}
		}
		last = t
	}
	return c
}

// directionRank orders taps of the same instant: in, unknown, out.
func directionRank(d Direction) int {
	switch d {
	case DirectionIn:
		return 0
	case DirectionOut:
		return 2
	default:
		return 1
	}
}

func copyTap(t *Tap) *Tap {
	c := *t
	return &c
}
