package guard

import (
	"fmt"
	"time"
)

// hoursPerWeek is the number of hour-of-week slots: Sunday 00:00 is slot 0.
const hoursPerWeek = 7 * 24

// hourOfWeek returns the slot of t on its own wall clock.
func hourOfWeek(t time.Time) int { return int(t.Weekday())*24 + t.Hour() }

func slotName(slot int) string {
	return fmt.Sprintf("%s %02d:00", time.Weekday(slot / 24).String()[:3], slot%24)
}

// hourHistogram is a user's activity over the hours of the week. Each session counts once per
// slot it is active in, so a busy hour does not outweigh a long habit.
type hourHistogram struct {
	count [hoursPerWeek]float64
	total float64
}

func (h *hourHistogram) add(slot int, w float64) {
	h.count[slot] += w
	h.total += w
	if h.count[slot] < 0 { // rounding after a rollback
		h.total -= h.count[slot]
		h.count[slot] = 0
	}
}

// Smoothing: activity spreads to neighbouring hours (kernel over ±2 hours) and, more weakly,
// to the same hour on other days, so a user seen at 9:00 on four weekdays is not unusual at 9:00
// on the fifth, nor at 10:00, while 3:00 stays unusual. Both keep the total mass.
var hourKernel = [5]float64{0.1, 0.2, 0.4, 0.2, 0.1}

const dailyShare = 0.25

func (h *hourHistogram) near(slot int) float64 {
	var s float64
	for i, k := range hourKernel {
		s += k * h.count[(slot+i-2+hoursPerWeek)%hoursPerWeek]
	}
	return s
}

// ratio returns the smoothed share of activity in slot relative to the average slot (1 =
// average, 0 = never), with prior observations spread uniformly. ok is false while the histogram
// holds fewer than minObs observations.
func (h *hourHistogram) ratio(slot int, prior float64, minObs int) (r float64, ok bool) {
	if h.total < float64(minObs) {
		return 1, false
	}
	var daily float64
	for d := 0; d < 7; d++ {
		daily += h.near((slot + 24*d) % hoursPerWeek)
	}
	s := (1-dailyShare)*h.near(slot) + dailyShare*daily/7
	p := (s + prior/hoursPerWeek) / (h.total + prior)
	return p * hoursPerWeek, true
}
