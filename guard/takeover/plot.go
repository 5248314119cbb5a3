package takeover

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WritePNG writes a PNG of how fast takeovers were challenged: the share of takeover sessions
// challenged within n of the other person's keystrokes, against n. The curve ends below 1 by
// the share never challenged.
func WritePNG(w io.Writer, res *Result) error {
	t := res.Takeover
	if t.Sessions == 0 {
		return fmt.Errorf("takeover: no takeover sessions to plot")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Takeovers challenged, %d participants, %d sessions (L=%d, hop %d, %s start)",
		res.Users, t.Sessions, res.Config.Window, res.Config.Hop, res.Config.Start)
	p.X.Label.Text = "keystrokes typed by the other person"
	p.Y.Label.Text = "share of takeovers challenged"
	p.Y.Min, p.Y.Max = 0, 1
	last := 0
	if n := len(t.ToChallenge); n > 0 {
		last = t.ToChallenge[n-1]
	}
	p.X.Min, p.X.Max = 0, float64(max(last, 2*res.Config.Window))
	xys := plotter.XYs{{X: 0, Y: 0}}
	for i, n := range t.ToChallenge {
		share := float64(i+1) / float64(t.Sessions)
		xys = append(xys, plotter.XY{X: float64(n), Y: xys[len(xys)-1].Y}, plotter.XY{X: float64(n), Y: share})
	}
	xys = append(xys, plotter.XY{X: p.X.Max, Y: xys[len(xys)-1].Y})
	line, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	line.Width = vg.Points(1.5)
	p.Add(line, plotter.NewGrid())
	p.Legend.Add(fmt.Sprintf("median %s keystrokes, %.1f%% never challenged", medianWords(t.Median), 100*t.MissedShare), line)
	p.Legend.Top, p.Legend.Left = false, false
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

func medianWords(v float64) string {
	if v != v {
		return "never"
	}
	return fmt.Sprintf("%.0f", v)
}
