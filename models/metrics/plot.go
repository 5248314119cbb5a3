package metrics

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Series is one named curve of a plot.
type Series struct {
	Name  string
	Curve Curve
}

// maxPlotPoints bounds the points drawn per curve: a pooled curve over millions of trials has
// far more operating points than a picture can show.
const maxPlotPoints = 2000

// lineColor is the colour of the i-th curve.
func lineColor(i int) color.Color {
	colors := [...]color.RGBA{
		{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	}
	return colors[i%len(colors)]
}

// WriteROC writes a PNG of the series' ROC curves: impostors accepted (FAR) across, genuine
// users accepted (1 - FRR) up, with each curve's AUC and EER in the legend.
func WriteROC(w io.Writer, title string, series ...Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "false accept rate (impostors accepted)"
	p.Y.Label.Text = "true accept rate (genuine users accepted)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Legend.Top, p.Legend.Left = false, false
	for i, s := range series {
		xys := thin(s.Curve, func(pt Point) (float64, float64) { return pt.FAR, 1 - pt.FRR })
		if err := addLine(p, i, fmt.Sprintf("%s (AUC %.3f, EER %.1f%%)", s.Name, s.Curve.AUC(), 100*s.Curve.EER()), xys); err != nil {
			return err
		}
	}
	diag, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	diag.Color = color.Gray{Y: 0xbb}
	diag.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(diag, plotter.NewGrid())
	return writePNG(p, w)
}

// WriteDET writes a PNG of the series' detection error trade-off curves: FAR across and FRR up,
// both on normal-deviate scales (Martin et al. 1997), where the low error rates that matter are
// spread out, with each curve's EER in the legend.
func WriteDET(w io.Writer, title string, series ...Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "false accept rate (%)"
	p.Y.Label.Text = "false reject rate (%)"
	const lo, hi = 0.0005, 0.6
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi
	p.X.Scale, p.Y.Scale = probitScale{}, probitScale{}
	ticks := plot.ConstantTicks(detTicks())
	p.X.Tick.Marker, p.Y.Tick.Marker = ticks, ticks
	p.Legend.Top = true
	for i, s := range series {
		xys := thin(s.Curve, func(pt Point) (float64, float64) { return pt.FAR, pt.FRR })
		// Operating points off the axes (an error rate of 0 lies at minus infinity) are left out.
		in := xys[:0]
		for _, p := range xys {
			if p.X >= lo && p.X <= hi && p.Y >= lo && p.Y <= hi {
				in = append(in, p)
			}
		}
		xys = in
		if len(xys) < 2 {
			continue
		}
		if err := addLine(p, i, fmt.Sprintf("%s (EER %.1f%%)", s.Name, 100*s.Curve.EER()), xys); err != nil {
			return err
		}
	}
	eq, _ := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	eq.Color = color.Gray{Y: 0xbb}
	eq.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(eq, plotter.NewGrid())
	return writePNG(p, w)
}

func addLine(p *plot.Plot, i int, name string, xys plotter.XYs) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("metrics: plot %s: %w", name, err)
	}
	l.Color = lineColor(i)
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func writePNG(p *plot.Plot, w io.Writer) error {
	wt, err := p.WriterTo(6*vg.Inch, 6*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("metrics: plot: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("metrics: plot: %w", err)
	}
	return nil
}

// thin maps a curve's points to plot coordinates, keeping at most about maxPlotPoints of them
// spread evenly along the curve (always the first and last).
func thin(c Curve, xy func(Point) (float64, float64)) plotter.XYs {
	n := len(c.Points)
	step := max(1, n/maxPlotPoints)
	out := make(plotter.XYs, 0, n/step+2)
	for i := 0; i < n; i += step {
		x, y := xy(c.Points[i])
		out = append(out, plotter.XY{X: x, Y: y})
	}
	if (n-1)%step != 0 {
		x, y := xy(c.Points[n-1])
		out = append(out, plotter.XY{X: x, Y: y})
	}
	return out
}

// probitScale places probabilities by their normal deviate.
type probitScale struct{}

func (probitScale) Normalize(min, max, x float64) float64 {
	lo, hi := probit(min), probit(max)
	return (probit(x) - lo) / (hi - lo)
}

func probit(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

func detTicks() []plot.Tick {
	var ts []plot.Tick
	for _, v := range []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4} {
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%g", 100*v)})
	}
	return ts
}
