package metrics

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// TradeoffPoint is one measurement at a privacy budget: Value with its interval [Lo, Hi].
// Epsilon may be +Inf (no noise), which is drawn at the right of the finite budgets.
type TradeoffPoint struct {
	Epsilon, Value, Lo, Hi float64
}

// TradeoffSeries is one named measurement across budgets.
type TradeoffSeries struct {
	Name   string
	Points []TradeoffPoint
}

// WriteTradeoff writes a PNG of each series against epsilon on a log2 scale, with intervals as
// error bars; an infinite epsilon is placed one doubling beyond the largest finite one and
// labelled "inf". yLabel names the measurement, whose values are shown in percent.
func WriteTradeoff(w io.Writer, title, yLabel string, series ...TradeoffSeries) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "total epsilon at delta 1e-5 (log scale; inf: no noise)"
	p.Y.Label.Text = yLabel + " (%)"
	p.Legend.Top = true
	maxFinite := 1.0
	for _, s := range series {
		for _, pt := range s.Points {
			if !math.IsInf(pt.Epsilon, 1) {
				maxFinite = max(maxFinite, pt.Epsilon)
			}
		}
	}
	infX := math.Log2(maxFinite) + 1
	x := func(eps float64) float64 {
		if math.IsInf(eps, 1) {
			return infX
		}
		return math.Log2(eps)
	}
	var ticks []plot.Tick
	seen := map[float64]bool{}
	for i, s := range series {
		var xys plotter.XYs
		var bars plotter.XYs
		var errs plotter.YErrors
		// Drawn from the smallest budget to no noise, whatever order they were measured in.
		pts := slices.Clone(s.Points)
		slices.SortStableFunc(pts, func(a, b TradeoffPoint) int { return cmp.Compare(a.Epsilon, b.Epsilon) })
		for _, pt := range pts {
			if !(pt.Epsilon > 0) {
				return fmt.Errorf("metrics: tradeoff point at epsilon %v", pt.Epsilon)
			}
			px := x(pt.Epsilon)
			xys = append(xys, plotter.XY{X: px, Y: 100 * pt.Value})
			bars = append(bars, plotter.XY{X: px, Y: 100 * pt.Value})
			errs = append(errs, struct{ Low, High float64 }{100 * (pt.Value - pt.Lo), 100 * (pt.Hi - pt.Value)})
			if !seen[px] {
				seen[px] = true
				label := fmt.Sprintf("%g", pt.Epsilon)
				if math.IsInf(pt.Epsilon, 1) {
					label = "inf"
				}
				ticks = append(ticks, plot.Tick{Value: px, Label: label})
			}
		}
		if err := addLine(p, i, s.Name, xys); err != nil {
			return err
		}
		dots, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("metrics: plot %s: %w", s.Name, err)
		}
		dots.Color, dots.Shape = lineColor(i), draw.CircleGlyph{}
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYer
			plotter.YErrorer
		}{bars, errs})
		if err != nil {
			return fmt.Errorf("metrics: plot %s: %w", s.Name, err)
		}
		eb.Color, eb.CapWidth = lineColor(i), vg.Points(6)
		p.Add(dots, eb)
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	return writePNG(p, w)
}
