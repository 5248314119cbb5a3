package guard

import (
	"testing"
	"time"
)

func TestHourOfWeek(t *testing.T) {
	cases := []struct {
		t    time.Time
		slot int
	}{
		{time.Date(2025, 2, 23, 0, 30, 0, 0, time.UTC), 0},                  // Sunday
		{time.Date(2025, 2, 24, 9, 0, 0, 0, time.UTC), 24 + 9},              // Monday
		{time.Date(2025, 3, 1, 23, 59, 0, 0, time.UTC), 167},                // Saturday
		{time.Date(2025, 2, 24, 20, 0, 0, 0, chicago).In(warsaw), 2*24 + 3}, // Monday 20:00 in Chicago is Tuesday 03:00 in Warsaw
	}
	for _, c := range cases {
		if got := hourOfWeek(c.t); got != c.slot {
			t.Errorf("%v: slot %d (%s), want %d (%s)", c.t, got, slotName(got), c.slot, slotName(c.slot))
		}
	}
}

func TestUnusualHours(t *testing.T) {
	const prior, minObs, unusual = 10, 40, 0.15
	// Half a year of a 9-to-5 weekday worker, and of someone who works only Saturday mornings.
	var office, weekend hourHistogram
	for week := 0; week < 26; week++ {
		for day := time.Monday; day <= time.Friday; day++ {
			for h := 9; h < 17; h++ {
				office.add(int(day)*24+h, 1)
			}
		}
		for h := 9; h < 13; h++ {
			weekend.add(int(time.Saturday)*24+h, 1)
		}
	}
	slot := func(d time.Weekday, h int) int { return int(d)*24 + h }
	cases := []struct {
		name    string
		h       *hourHistogram
		slot    int
		unusual bool
	}{
		{"office: Tuesday 10:00", &office, slot(time.Tuesday, 10), false},
		{"office: Tuesday 18:00, an hour after work", &office, slot(time.Tuesday, 18), false},
		{"office: Saturday 10:00, a usual hour on an unusual day", &office, slot(time.Saturday, 10), false},
		{"office: Tuesday 03:00", &office, slot(time.Tuesday, 3), true},
		{"office: Sunday 23:00", &office, slot(time.Sunday, 23), true},
		{"weekend: Saturday 11:00", &weekend, slot(time.Saturday, 11), false},
		{"weekend: Wednesday 03:00", &weekend, slot(time.Wednesday, 3), true},
	}
	for _, c := range cases {
		r, ok := c.h.ratio(c.slot, prior, minObs)
		if !ok {
			t.Fatalf("%s: not enough observations", c.name)
		}
		if got := r < unusual; got != c.unusual {
			t.Errorf("%s: ratio %.3f, unusual=%v, want %v", c.name, r, got, c.unusual)
		}
	}
	var fresh hourHistogram
	for h := 0; h < minObs-1; h++ {
		fresh.add(slot(time.Monday, 10), 1)
	}
	if _, ok := fresh.ratio(slot(time.Tuesday, 3), prior, minObs); ok {
		t.Error("a user with fewer than minObs observations was judged")
	}
}
