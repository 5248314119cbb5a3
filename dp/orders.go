package dp

import (
	"fmt"
	"math"
)

// The standard RDP order lists of the reference libraries. Each function
// returns a fresh slice, so callers may modify it.
//
// The values are computed exactly as the Python libraries compute them
// (1 + x/10.0 in float64), so the integer orders among them (2.0, 3.0, ...)
// are recognised as integers and take the exact integer series there too.

// DefaultOrders returns the 156 orders of Google dp_accounting's
// DEFAULT_RDP_ORDERS (rdp_privacy_accountant.py):
// [1 + x/10 for x in 1..99] + [11..63] + [128, 256, 512, 1024].
func DefaultOrders() []float64 {
	o := tenths()
	for a := 11; a < 64; a++ {
		o = append(o, float64(a))
	}
	return append(o, 128, 256, 512, 1024)
}

// TFPrivacyOrders returns the 72 orders of TF-Privacy's
// compute_dp_sgd_privacy_lib.py, the list behind its published test values:
// [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5] + [5..63] + [128, 256, 512].
//
// (The list [1 + x/10 for x in 1..99] + [12..63] that TF-Privacy's tutorials
// use is Opacus's default; see OpacusOrders.)
func TFPrivacyOrders() []float64 {
	o := []float64{1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5}
	for a := 5; a < 64; a++ {
		o = append(o, float64(a))
	}
	return append(o, 128, 256, 512)
}

// OpacusOrders returns the 151 orders of Opacus's RDPAccountant.DEFAULT_ALPHAS:
// [1 + x/10 for x in 1..99] + [12..63].
func OpacusOrders() []float64 {
	o := tenths()
	for a := 12; a < 64; a++ {
		o = append(o, float64(a))
	}
	return o
}

func tenths() []float64 {
	o := make([]float64, 0, 160)
	for x := 1; x < 100; x++ {
		o = append(o, 1+float64(x)/10.0)
	}
	return o
}

// NamedOrders returns the order list called name: "default"
// (DefaultOrders), "tf-privacy" (TFPrivacyOrders) or "opacus" (OpacusOrders).
func NamedOrders(name string) ([]float64, error) {
	switch name {
	case "default", "":
		return DefaultOrders(), nil
	case "tf-privacy":
		return TFPrivacyOrders(), nil
	case "opacus":
		return OpacusOrders(), nil
	}
	return nil, paramErr("order list", fmt.Sprintf("%q", name), `one of "default", "tf-privacy", "opacus"`)
}

// validateOrders checks that every order is finite, > 1 and <= MaxOrder.
func validateOrders(orders []float64) error {
	if len(orders) == 0 {
		return paramErr("number of RDP orders", 0, ">= 1")
	}
	if len(orders) > MaxOrders {
		return paramErr("number of RDP orders", len(orders), fmt.Sprintf("<= %d", MaxOrders))
	}
	for _, a := range orders {
		if !(a > 1) || a > MaxOrder || math.IsNaN(a) {
			return paramErr("RDP order", a, fmt.Sprintf("in (1, %d]", MaxOrder))
		}
	}
	return nil
}

func isInteger(a float64) bool { return a == math.Trunc(a) }
