package agent

import (
	"runtime"
	"testing"
)

// TestCoresLend: fits running at once share the one lent P, which returns when the last ends,
// whatever the order; changing the serving Ps during a fit keeps the fit's.
func TestCoresLend(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(all)
	c := &cores{most: 4, serving: 4}
	procs := func(want int, when string) {
		t.Helper()
		if got := runtime.GOMAXPROCS(0); got != want {
			t.Errorf("%s: %d Ps, want %d", when, got, want)
		}
	}
	restore := c.serveOn(1)
	procs(1, "serving on one")
	first, second := c.lend(), c.lend()
	procs(2, "two fits")
	first()
	first() // giving back twice gives back once
	procs(2, "one fit left")
	c.serveOn(2)
	procs(3, "serving on two during a fit")
	second()
	procs(2, "no fit")
	c.serveOn(4)
	give := c.lend()
	procs(4, "a fit with every P serving")
	give()
	c.serveOn(1)
	restore()
	procs(4, "restored")
}
