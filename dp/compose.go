package dp

import "fmt"

// ComposeLedgers returns the epsilon at delta, and its order, of every
// private round recorded in the given ledgers together: what one user
// loses across all the models trained on the same population. RDP adds
// across models as it does across rounds. Rounds without differential
// privacy are not composable; callers check Unprotected.
func ComposeLedgers(delta float64, snaps ...*LedgerSnapshot) (eps, order float64, err error) {
	if err := validateDelta(delta); err != nil {
		return 0, 0, err
	}
	acc, err := NewAccountant(Options{})
	if err != nil {
		return 0, 0, err
	}
	curves := map[Event][]float64{}
	n := 0
	for _, s := range snaps {
		for _, e := range s.Entries {
			if !e.Private() {
				continue
			}
			ev := e.Event()
			r, ok := curves[ev]
			if !ok {
				if r, err = RDP(ev, acc.opts.Orders, acc.opts.Series); err != nil {
					return 0, 0, fmt.Errorf("%s round %d: %w", s.Subject, e.Round, err)
				}
				curves[ev] = r
			}
			acc.add(r)
			n++
		}
	}
	if n == 0 {
		return 0, 0, nil
	}
	return acc.Epsilon(delta)
}
