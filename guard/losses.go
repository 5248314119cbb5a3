package guard

// losses keeps what one stream of scored windows (a session's typing, or its mouse use) has
// cost: for every event of the current window, the severity it has already been charged, and
// the anomalies of the windows scored over the last Trust.Sustain events.
//
// Windows overlap, so one stretch of odd input shows in every window that holds it. Each event
// is charged once, at the highest severity of a deviating window that held it: a window is
// charged only for what its events have not yet paid, so that a steady run of foreign windows
// costs trust in proportion to the new events each brings, a rising one pays the rise, and
// windows sharing an already-charged outlier pay little for it. And a window's loss is judged
// by the least anomalous of the windows scored over the last Sustain events: a short odd
// stretch of the owner's (a pause, a correction) rarely keeps every window around it foreign,
// another person's typing does.
type losses struct {
	charged []float64 // per ring slot of the window: severity in [0, 1] already charged
	events  int       // events pushed so far
	sustain int
	recent  []scoredWindow // ring of the last windows scored
	rnext   int
}

// scoredWindow is a window's anomaly and the count of events at its end.
type scoredWindow struct {
	end     int
	anomaly float64
}

func newLosses(size, hop, sustain int) losses {
	return losses{charged: make([]float64, size), sustain: sustain, recent: make([]scoredWindow, sustain/hop+1)}
}

// sustained records a window's anomaly a and returns the least anomaly among it and the
// windows scored no more than sustain events before it.
func (l *losses) sustained(a float64) float64 {
	l.recent[l.rnext] = scoredWindow{end: l.events, anomaly: a}
	l.rnext = (l.rnext + 1) % len(l.recent)
	least := a
	for _, r := range l.recent {
		if r.end > 0 && l.events-r.end <= l.sustain && r.anomaly < least {
			least = r.anomaly
		}
	}
	return least
}

// unpaid returns the share of a window's loss at severity x in (0, 1] its events have not
// yet paid: 1 for events never charged, less for events charged before.
func (l *losses) unpaid(x float64) float64 {
	if x <= 0 {
		return 0
	}
	var due float64
	for _, c := range l.charged {
		if x > c {
			due += x - c
		}
	}
	return due / (x * float64(len(l.charged)))
}

// pay marks the window's events charged at severity x.
func (l *losses) pay(x float64) {
	for i, c := range l.charged {
		if x > c {
			l.charged[i] = x
		}
	}
}
