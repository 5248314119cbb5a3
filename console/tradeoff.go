package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
)

// Limits of the trade-off file the privacy page reads.
const (
	// MaxTradeoffBytes bounds the file: a few rows and the protocol's description.
	MaxTradeoffBytes = 1 << 20
	// MaxTradeoffRows bounds the budgets evaluated.
	MaxTradeoffRows = 32
)

// Tradeoff is the accuracy of the deployable models against the privacy budget, as `vigil
// privacy tradeoff --json` writes it: one row per total epsilon evaluated (at the row's delta),
// and the accuracy of each device learning alone, which spends no budget.
type Tradeoff struct {
	Eval  string        `json:"eval"`
	Data  string        `json:"data"`
	Users int           `json:"users"`
	Rows  []TradeoffRow `json:"rows"`
	Alone *TradeoffRow  `json:"alone"`
}

// TradeoffRow is the accuracy at one budget. Rates are fractions; intervals are bootstrap 95%
// intervals. AUC (the mouse model's) is optional.
type TradeoffRow struct {
	Epsilon     Epsilon   `json:"epsilon"`
	Delta       float64   `json:"delta"`
	EERMean     float64   `json:"eer_mean"`
	EERMeanCI   Interval  `json:"eer_mean_ci95"`
	EERPooled   float64   `json:"eer_pooled"`
	EERPooledCI Interval  `json:"eer_pooled_ci95"`
	AUC         *float64  `json:"auc"`
	AUCCI       *Interval `json:"auc_ci95"`
	FAR         *float64  `json:"far"`
	FRR         *float64  `json:"frr"`
}

// Interval is a 95% interval.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Epsilon is a privacy budget: a number, or "inf" (JSON has no infinity) for no noise at all.
type Epsilon float64

// UnmarshalJSON implements json.Unmarshaler.
func (e *Epsilon) UnmarshalJSON(b []byte) error {
	if string(b) == `"inf"` {
		*e = Epsilon(math.Inf(1))
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("epsilon %s: want a number or \"inf\"", b)
	}
	*e = Epsilon(f)
	return nil
}

// String formats the budget as the page shows it.
func (e Epsilon) String() string {
	if math.IsInf(float64(e), 1) {
		return "∞"
	}
	return strconv.FormatFloat(float64(e), 'g', 4, 64)
}

// Inf reports whether the budget is unbounded: no noise.
func (e Epsilon) Inf() bool { return math.IsInf(float64(e), 1) }

// ReadTradeoff reads and checks a trade-off file: rows sorted by epsilon, rates in [0, 1]
// inside their intervals. A file that does not check is refused whole, not plotted in part.
func ReadTradeoff(path string) (*Tradeoff, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxTradeoffBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxTradeoffBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxTradeoffBytes)
	}
	t, err := ParseTradeoff(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTradeoff parses and checks what `vigil privacy tradeoff --json` writes.
func ParseTradeoff(data []byte) (*Tradeoff, error) {
	var t Tradeoff
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("not a vigil privacy tradeoff --json output: %w", err)
	}
	switch {
	case len(t.Rows) == 0:
		return nil, errors.New("no rows: want one per epsilon evaluated")
	case len(t.Rows) > MaxTradeoffRows:
		return nil, fmt.Errorf("%d rows, more than %d", len(t.Rows), MaxTradeoffRows)
	}
	slices.SortFunc(t.Rows, func(a, b TradeoffRow) int { return cmpFloat(float64(a.Epsilon), float64(b.Epsilon)) })
	auc := t.Rows[0].AUC != nil
	for i, r := range t.Rows {
		if !(r.Epsilon > 0) {
			return nil, fmt.Errorf("row %d: epsilon %v, want > 0 or \"inf\"", i+1, float64(r.Epsilon))
		}
		if i > 0 && r.Epsilon == t.Rows[i-1].Epsilon {
			return nil, fmt.Errorf("epsilon %v appears twice", r.Epsilon)
		}
		if (r.AUC != nil) != auc {
			return nil, errors.New("auc is given for some rows and not others")
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("epsilon %v: %w", r.Epsilon, err)
		}
	}
	if t.Alone != nil {
		if err := t.Alone.check(); err != nil {
			return nil, fmt.Errorf("alone: %w", err)
		}
	}
	return &t, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// check: every rate a fraction, every interval an interval of fractions. (A bootstrap
// percentile interval need not contain the estimate, so that is not asked.)
func (r *TradeoffRow) check() error {
	rate := func(name string, v float64, ci *Interval) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s %v is not in [0, 1]", name, v)
		}
		if ci != nil && !(0 <= ci.Lo && ci.Lo <= ci.Hi && ci.Hi <= 1) {
			return fmt.Errorf("%s: [%v, %v] is not an interval in [0, 1]", name, ci.Lo, ci.Hi)
		}
		return nil
	}
	if err := rate("eer_mean", r.EERMean, &r.EERMeanCI); err != nil {
		return err
	}
	if err := rate("eer_pooled", r.EERPooled, &r.EERPooledCI); err != nil {
		return err
	}
	if r.AUC != nil {
		if err := rate("auc", *r.AUC, r.AUCCI); err != nil {
			return err
		}
	}
	for name, v := range map[string]*float64{"far": r.FAR, "frr": r.FRR} {
		if v != nil {
			if err := rate(name, *v, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// cell is a value as the table shows it: the value, and its interval under it.
type cell struct{ Value, CI string }

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

func pctCell(v float64, ci Interval) cell {
	return cell{pct(v), fmt.Sprintf("[%s, %s]", pct(ci.Lo), pct(ci.Hi))}
}

// EERMeanCell is the mean per-user EER with its interval.
func (r *TradeoffRow) EERMeanCell() cell { return pctCell(r.EERMean, r.EERMeanCI) }

// EERPooledCell is the pooled EER with its interval.
func (r *TradeoffRow) EERPooledCell() cell { return pctCell(r.EERPooled, r.EERPooledCI) }

// AUCCell is the AUC with its interval, "-" without an AUC.
func (r *TradeoffRow) AUCCell() cell {
	switch {
	case r.AUC == nil:
		return cell{Value: "-"}
	case r.AUCCI == nil:
		return cell{Value: fmt.Sprintf("%.3f", *r.AUC)}
	}
	return cell{fmt.Sprintf("%.3f", *r.AUC), fmt.Sprintf("[%.3f, %.3f]", r.AUCCI.Lo, r.AUCCI.Hi)}
}
