package dp

import "fmt"

// Options configures RDP accounting. The zero value is the recommended
// setting: dp_accounting's 156 default orders, the conservative (bound)
// fractional series and the improved conversion.
type Options struct {
	// Orders are the RDP orders to evaluate, each in (1, MaxOrder].
	// Nil means DefaultOrders(); see also TFPrivacyOrders, OpacusOrders.
	Orders []float64
	// Series selects the fractional-order series (default SeriesBound).
	Series Series
	// Conversion selects the RDP to (epsilon, delta) conversion
	// (default ConversionImproved).
	Conversion Conversion
}

// validate fills defaults and rejects nonsense. The returned Options owns
// its Orders slice.
func (o Options) validate() (Options, error) {
	if o.Orders == nil {
		o.Orders = DefaultOrders()
	} else {
		o.Orders = append([]float64(nil), o.Orders...)
	}
	if err := validateOrders(o.Orders); err != nil {
		return Options{}, err
	}
	if o.Series != SeriesBound && o.Series != SeriesSigned {
		return Options{}, paramErr("fractional series", o.Series, `"bound" or "signed"`)
	}
	if o.Conversion != ConversionImproved && o.Conversion != ConversionClassic {
		return Options{}, paramErr("conversion", o.Conversion, `"improved" or "classic"`)
	}
	return o, nil
}

// Accountant composes events by adding their RDP curves and converts the
// total to (epsilon, delta). An Accountant is not safe for concurrent use.
type Accountant struct {
	opts Options
	rdp  []float64
}

// NewAccountant returns an Accountant with nothing composed yet.
func NewAccountant(opts Options) (*Accountant, error) {
	o, err := opts.validate()
	if err != nil {
		return nil, err
	}
	return &Accountant{opts: o, rdp: make([]float64, len(o.Orders))}, nil
}

// Compose adds ev to the accountant. RDP composes additively across events,
// including events with different q and z.
func (a *Accountant) Compose(ev Event) error {
	r, err := RDP(ev, a.opts.Orders, a.opts.Series)
	if err != nil {
		return err
	}
	a.add(r)
	return nil
}

// add adds an RDP curve computed at the accountant's orders.
func (a *Accountant) add(r []float64) {
	for i := range a.rdp {
		a.rdp[i] += r[i]
	}
}

// Epsilon returns the epsilon of everything composed so far at delta, and
// the optimal order.
func (a *Accountant) Epsilon(delta float64) (eps, order float64, err error) {
	return EpsilonFromRDP(a.opts.Orders, a.rdp, delta, a.opts.Conversion)
}

// Orders returns a copy of the accountant's orders.
func (a *Accountant) Orders() []float64 { return append([]float64(nil), a.opts.Orders...) }

// RDP returns a copy of the composed RDP curve, one value per order.
func (a *Accountant) RDP() []float64 { return append([]float64(nil), a.rdp...) }

// Epsilon composes events and returns their epsilon at delta and the optimal
// order. It needs at least one event; bad input (q outside (0, 1], z <= 0,
// negative steps, delta outside (0, 1), orders <= 1) gives a *ParamError.
func Epsilon(events []Event, delta float64, opts Options) (eps, order float64, err error) {
	if len(events) == 0 {
		return 0, 0, paramErr("number of events", 0, ">= 1")
	}
	if err := validateDelta(delta); err != nil {
		return 0, 0, err
	}
	acc, err := NewAccountant(opts)
	if err != nil {
		return 0, 0, err
	}
	for i, ev := range events {
		if err := acc.Compose(ev); err != nil {
			return 0, 0, fmt.Errorf("event %d (%v): %w", i+1, ev, err)
		}
	}
	return acc.Epsilon(delta)
}
