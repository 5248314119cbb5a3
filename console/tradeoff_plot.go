package console

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// The privacy page's trade-off plot is SVG drawn on the server: the page stays free of
// JavaScript, and each point's <title> is its tooltip. Its numbers are also in the table beside
// it, for readers who cannot see the plot.

// Metrics the plot can show, by the page's ?metric= value.
const (
	metricEER       = "eer" // mean per-user and pooled EER together (default)
	metricEERMean   = "eer-mean"
	metricEERPooled = "eer-pooled"
	metricAUC       = "auc"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                             = 640, 436
	plotLeft, plotRight, plotTop, plotBottom = 64, 604, 24, 340
	// maxMarkedLedgers bounds the ledgers marked on the plot; the page lists them all.
	maxMarkedLedgers = 4
)

// metricChoice is one entry of the page's metric switch.
type metricChoice struct {
	Value, Label string
	Current      bool
}

// tradeoffView is the trade-off section of the privacy page.
type tradeoffView struct {
	Path    string
	Err     string
	T       *Tradeoff
	Metric  string
	Choices []metricChoice
	Plot    *tradeoffPlot
	HasAUC  bool
	// Current marks the rows whose epsilon is a shown ledger's budget.
	Current map[int]bool
}

type tradeoffPlot struct {
	W, H                     int
	Left, Right, Top, Bottom float64
	// Where the axis labels go.
	InnerW, InnerH, CentreX, MiddleY, YTickX, XTickY, XLabelY float64
	// BreakPath draws the break on the epsilon axis.
	BreakPath      string
	Title, Desc    string
	XLabel, YLabel string
	XTicks, YTicks []plotTick
	// BreakX is where the epsilon axis breaks before the unbounded budget (0: no break).
	BreakX  float64
	Series  []plotSeries
	Markers []plotMarker
	Legend  []plotLegend
}

type plotTick struct {
	At    float64
	Label string
}

type plotSeries struct {
	Name, Colour, Shape string
	// Path joins the finite budgets; InfPath goes on across the axis break to "no noise".
	Path, InfPath string
	Points        []plotPoint
	// Alone is the y of each device learning alone (0: not shown), AloneTitle its tooltip.
	Alone      float64
	AloneTitle string
}

type plotPoint struct {
	X, Y float64
	// Mark draws the point in its series' shape; CI its interval ("" without one).
	Mark, CI string
	Title    string
}

type plotMarker struct {
	X           float64
	Dashed      bool
	Label       string
	LabelX      float64
	LabelAnchor string
	LabelY      float64
	Title       string
}

type plotLegend struct {
	X, Y, LabelX float64
	Colour       string
	// Mark draws the entry's point shape ("" for none); Line its line, Dash its dashes.
	Mark, Line, Dash string
	Label            string
}

// newTradeoffView lays out the trade-off for metric, marking the epsilon spent and the budget
// of each ledger that reads.
func newTradeoffView(path string, t *Tradeoff, metric string, ledgers []ledgerView) tradeoffView {
	v := tradeoffView{Path: path, T: t, Current: map[int]bool{}}
	v.HasAUC = t.Rows[0].AUC != nil
	v.Choices = []metricChoice{{metricEER, "EER: mean per user and pooled", false}, {metricEERMean, "mean per-user EER", false},
		{metricEERPooled, "pooled EER", false}}
	if v.HasAUC {
		v.Choices = append(v.Choices, metricChoice{metricAUC, "mouse AUC", false})
	}
	v.Metric = metricEER
	for i := range v.Choices {
		if v.Choices[i].Value == metric {
			v.Metric = metric
		}
	}
	for i := range v.Choices {
		v.Choices[i].Current = v.Choices[i].Value == v.Metric
	}
	var marks []ledgerView
	for _, l := range ledgers {
		if l.snap == nil {
			continue
		}
		for i, r := range t.Rows {
			if float64(r.Epsilon) == l.Budget.Epsilon {
				v.Current[i] = true
			}
		}
		if len(marks) < maxMarkedLedgers {
			marks = append(marks, l)
		}
	}
	v.Plot = layoutTradeoff(t, v.Metric, marks)
	return v
}

// series is one curve: its name and how to read its value and interval from a row.
type series struct {
	name, colour, shape string
	value               func(*TradeoffRow) (float64, *Interval)
}

func metricSeries(metric string) []series {
	mean := series{"mean per-user EER", "#1f5fa8", "circle", func(r *TradeoffRow) (float64, *Interval) { return r.EERMean, &r.EERMeanCI }}
	pooled := series{"pooled EER", "#c0392b", "square", func(r *TradeoffRow) (float64, *Interval) { return r.EERPooled, &r.EERPooledCI }}
	switch metric {
	case metricEERMean:
		return []series{mean}
	case metricEERPooled:
		return []series{pooled}
	case metricAUC:
		return []series{{"mouse AUC", "#1e7b34", "diamond", func(r *TradeoffRow) (float64, *Interval) {
			if r.AUC == nil {
				return math.NaN(), nil
			}
			return *r.AUC, r.AUCCI
		}}}
	}
	return []series{mean, pooled}
}

func layoutTradeoff(t *Tradeoff, metric string, ledgers []ledgerView) *tradeoffPlot {
	p := &tradeoffPlot{W: plotW, H: plotH, Left: plotLeft, Right: plotRight, Top: plotTop, Bottom: plotBottom,
		InnerW: plotRight - plotLeft, InnerH: plotBottom - plotTop, CentreX: (plotLeft + plotRight) / 2, MiddleY: (plotTop + plotBottom) / 2,
		YTickX: plotLeft - 6, XTickY: plotBottom + 16, XLabelY: plotBottom + 34,
		XLabel: "total epsilon at the row's delta (log scale)"}
	ss := metricSeries(metric)
	auc := metric == metricAUC
	rate := func(v float64) string {
		if auc {
			return fmt.Sprintf("%.3f", v)
		}
		return fmt.Sprintf("%.2f%%", 100*v)
	}

	// The epsilon axis: log2, from the power of two at or below the smallest budget (or
	// spent epsilon) to the one at or above the largest; the unbounded budget, if evaluated,
	// one step further, after a break.
	lo, hi := math.Inf(1), math.Inf(-1)
	widen := func(e float64) {
		if e > 0 && !math.IsInf(e, 0) {
			lo, hi = min(lo, e), max(hi, e)
		}
	}
	inf := false
	for _, r := range t.Rows {
		widen(float64(r.Epsilon))
		inf = inf || r.Epsilon.Inf()
	}
	for _, l := range ledgers {
		widen(l.Spent)
		widen(l.Budget.Epsilon)
	}
	if math.IsInf(lo, 1) { // only "inf" was evaluated, and no ledger spent anything
		lo, hi = 1, 1
	}
	a, b := math.Floor(math.Log2(lo)), math.Ceil(math.Log2(hi))
	if a == b {
		b++
	}
	span := b - a
	if inf {
		span++
	}
	// Points stay clear of the frame, so that their intervals' caps show whole.
	x := func(e float64) float64 {
		k := b + 1 // the unbounded budget's place
		if !math.IsInf(e, 1) {
			k = math.Log2(e)
		}
		return round1(plotLeft + 16 + (k-a)/span*(plotRight-plotLeft-36))
	}
	step := math.Max(1, math.Ceil((b-a)/8)) // at most about 9 ticks
	for k := a; k <= b; k += step {
		p.XTicks = append(p.XTicks, plotTick{x(math.Exp2(k)), Epsilon(math.Exp2(k)).String()})
	}
	if inf {
		p.XTicks = append(p.XTicks, plotTick{x(math.Inf(1)), "∞ (no noise)"})
		p.BreakX = round1((x(math.Exp2(b)) + x(math.Inf(1))) / 2)
		p.BreakPath = fmt.Sprintf("M%g %gl6 -12M%g %gl6 -12", p.BreakX-6, float64(plotBottom+6), p.BreakX, float64(plotBottom+6))
	}

	// The value axis: EER from 0, AUC up to 1, in steps of 1, 2 or 5 times a power of ten.
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for i := range t.Rows {
			v, ci := s.value(&t.Rows[i])
			if math.IsNaN(v) {
				continue
			}
			ylo, yhi = min(ylo, v), max(yhi, v)
			if ci != nil {
				ylo, yhi = min(ylo, ci.Lo), max(yhi, ci.Hi)
			}
		}
		if t.Alone != nil && !auc {
			v, _ := s.value(t.Alone)
			yhi = max(yhi, v)
		}
	}
	if auc {
		yhi = 1
	} else {
		ylo = 0
	}
	if !(yhi > ylo) {
		yhi = ylo + 0.01
	}
	ystep := niceStep((yhi - ylo) / 5)
	ylo, yhi = math.Floor(ylo/ystep)*ystep, math.Ceil(yhi/ystep)*ystep
	y := func(v float64) float64 {
		return round1(plotBottom - (v-ylo)/(yhi-ylo)*(plotBottom-plotTop))
	}
	for v := ylo; v <= yhi+ystep/2; v += ystep {
		label := fmt.Sprintf("%.3g", v)
		if !auc {
			label = fmt.Sprintf("%g%%", math.Round(1000*v)/10)
		}
		p.YTicks = append(p.YTicks, plotTick{y(v), label})
	}
	if auc {
		p.YLabel = "AUC (bootstrap 95% intervals)"
	} else {
		p.YLabel = "EER (bootstrap 95% intervals)"
	}

	for si, s := range ss {
		ps := plotSeries{Name: s.name, Colour: s.colour, Shape: s.shape}
		// Series side by side at each budget, a few units apart, so their intervals do not
		// hide each other.
		dodge := 5 * (float64(si) - float64(len(ss)-1)/2)
		var path, infPath strings.Builder
		var last *plotPoint
		for i := range t.Rows {
			r := &t.Rows[i]
			v, ci := s.value(r)
			if math.IsNaN(v) {
				continue
			}
			pt := plotPoint{X: x(float64(r.Epsilon)) + dodge, Y: y(v)}
			pt.Mark = markPath(s.shape, pt.X, pt.Y)
			title := fmt.Sprintf("%s at epsilon %s: %s", s.name, r.Epsilon, rate(v))
			if ci != nil {
				ylo, yhi := y(ci.Lo), y(ci.Hi)
				pt.CI = fmt.Sprintf("M%g %gV%gM%g %gh8M%g %gh8", pt.X, ylo, yhi, pt.X-4, ylo, pt.X-4, yhi)
				title += fmt.Sprintf(" (95%% interval %s to %s)", rate(ci.Lo), rate(ci.Hi))
			}
			if r.Epsilon.Inf() {
				title += "; no noise, not a privacy guarantee"
			} else if r.Delta > 0 {
				title += fmt.Sprintf(" at delta %g", r.Delta)
			}
			pt.Title = title
			switch {
			case r.Epsilon.Inf() && last != nil:
				fmt.Fprintf(&infPath, "M%g %gL%g %g", last.X, last.Y, pt.X, pt.Y)
			case last == nil:
				fmt.Fprintf(&path, "M%g %g", pt.X, pt.Y)
			default:
				fmt.Fprintf(&path, "L%g %g", pt.X, pt.Y)
			}
			ps.Points = append(ps.Points, pt)
			last = &ps.Points[len(ps.Points)-1]
		}
		ps.Path, ps.InfPath = path.String(), infPath.String()
		if t.Alone != nil && !auc {
			v, ci := s.value(t.Alone)
			ps.Alone = y(v)
			ps.AloneTitle = fmt.Sprintf("%s with each device learning alone (no federation, no budget spent): %s (95%% interval %s to %s)",
				s.name, rate(v), rate(ci.Lo), rate(ci.Hi))
		}
		p.Series = append(p.Series, ps)
	}

	for _, l := range ledgers {
		if l.Spent > 0 {
			p.Markers = append(p.Markers, plotMarker{X: x(l.Spent), Label: fmt.Sprintf("%s now: %.3g", l.Subject, l.Spent),
				Title: fmt.Sprintf("%s has spent epsilon %.4g of its budget %g at delta %g in %d rounds (ledger %s)",
					l.Subject, l.Spent, l.Budget.Epsilon, l.Budget.Delta, len(l.Rounds), l.Path)})
		}
		if l.Budget.Epsilon > 0 && l.Budget.Epsilon != l.Spent {
			p.Markers = append(p.Markers, plotMarker{X: x(l.Budget.Epsilon), Dashed: true, Label: fmt.Sprintf("%s budget: %g", l.Subject, l.Budget.Epsilon),
				Title: fmt.Sprintf("%s's budget: epsilon %g at delta %g; %.4g remain (ledger %s)",
					l.Subject, l.Budget.Epsilon, l.Budget.Delta, max(0, l.Budget.Epsilon-l.Spent), l.Path)})
		}
	}
	// Labels stack down from the top, each beside its line, on the side with room.
	for i := range p.Markers {
		m := &p.Markers[i]
		m.LabelY = plotTop + 14 + 14*float64(i)
		m.LabelX, m.LabelAnchor = m.X+4, "start"
		if m.X > (plotLeft+plotRight)/2 {
			m.LabelX, m.LabelAnchor = m.X-4, "end"
		}
	}

	// The legend: the series on one line, what the reference lines mean on the next.
	next := [2]float64{plotLeft, plotLeft}
	add := func(row int, shape string, l plotLegend) {
		l.X, l.Y = next[row], float64(plotBottom+60+18*row)
		next[row] += 26 + 7*float64(utf8.RuneCountInString(l.Label)) + 22 // about 7 units a character at 13px
		l.Line, l.LabelX = fmt.Sprintf("M%g %gh20", l.X, l.Y-4), l.X+26
		if shape != "" {
			l.Mark = markPath(shape, l.X+10, l.Y-4)
		}
		p.Legend = append(p.Legend, l)
	}
	for _, s := range p.Series {
		add(0, s.Shape, plotLegend{Colour: s.Colour, Label: s.Name})
	}
	if len(p.Series) > 0 && p.Series[0].Alone != 0 {
		add(1, "", plotLegend{Colour: "#777", Dash: "2 4", Label: "each device alone (no budget spent)"})
	}
	if len(p.Markers) > 0 {
		add(1, "", plotLegend{Colour: "#444", Label: "epsilon spent now"})
		add(1, "", plotLegend{Colour: "#444", Dash: "6 4", Label: "budget"})
	}
	var names []string
	for _, s := range ss {
		names = append(names, s.name)
	}
	p.Title = fmt.Sprintf("%s against the privacy budget", strings.Join(names, " and "))
	p.Desc = fmt.Sprintf("%d budgets evaluated on %d users of %s; the same numbers are in the table beside the plot.", len(t.Rows), t.Users, t.Data)
	return p
}

// niceStep rounds a step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if !(raw > 0) {
		return 0.01
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// markPath draws a point of shape at (x, y): a circle, a square or a diamond, about 9 units
// across, so that the series differ by more than colour.
func markPath(shape string, x, y float64) string {
	switch shape {
	case "square":
		return fmt.Sprintf("M%g %gh8v8h-8z", x-4, y-4)
	case "diamond":
		return fmt.Sprintf("M%g %gl5 5l-5 5l-5 -5z", x, y-5)
	}
	return fmt.Sprintf("M%g %ga4.5 4.5 0 1 0 9 0a4.5 4.5 0 1 0 -9 0z", x-4.5, y)
}
