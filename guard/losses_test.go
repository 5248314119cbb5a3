package guard

import (
	"math"
	"testing"
)

func TestLossesChargeEachEventOnce(t *testing.T) {
	w := newWindow[int](4, 1, 1)
	for i := 0; i < 4; i++ {
		w.push(i)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	// Nothing charged yet: the window owes its whole loss.
	if got := w.unpaid(0.5); !near(got, 1) {
		t.Fatalf("fresh window owes %v, want 1", got)
	}
	w.pay(0.5)
	// The same events at the same severity owe nothing; at a higher one, only the rise.
	if got := w.unpaid(0.5); !near(got, 0) {
		t.Fatalf("paid window owes %v, want 0", got)
	}
	if got := w.unpaid(1); !near(got, 0.5) {
		t.Fatalf("rise from 0.5 to 1 owes %v, want 0.5", got)
	}
	// One new event in a window of four: a quarter of the loss at the same severity.
	w.push(4)
	if got := w.unpaid(0.5); !near(got, 0.25) {
		t.Fatalf("one new event owes %v, want 0.25", got)
	}
	if got := w.unpaid(0); got != 0 {
		t.Fatalf("no severity owes %v", got)
	}
}

func TestLossesSustained(t *testing.T) {
	// Windows every 2 events, judged over the last 4: the window itself and the two before it.
	w := newWindow[int](4, 2, 4)
	var got []float64
	for i, a := range []float64{0.9, 0.2, 0.95, 0.97, 0.99, 0.1} {
		for k := 0; k < 2; k++ {
			w.push(2*i + k)
		}
		got = append(got, w.sustained(a))
	}
	want := []float64{0.9, 0.2, 0.2, 0.2, 0.95, 0.1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sustained anomalies %v, want %v", got, want)
		}
	}
	// A mouse-sized hop longer than Sustain judges each window alone.
	m := newWindow[int](4, 4, 2)
	for _, a := range []float64{0.2, 0.9} {
		for k := 0; k < 4; k++ {
			m.push(k)
		}
		if s := m.sustained(a); s != a {
			t.Fatalf("window alone judged at %v, want %v", s, a)
		}
	}
}
