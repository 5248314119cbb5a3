package takeover

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/vigilauth/vigil/models/eval"
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

// WriteMousePNG writes a PNG of how fast mouse takeovers were challenged: the share of
// takeovers challenged within n of the impostor's mouse actions (left) and within s seconds of
// their mouse use (right), for the account takeovers (the data set's illegal sessions), the
// cross-user ones and the control (the owner's own movement in the impostor's place). Each
// curve ends below 1 by the share never challenged.
func WriteMousePNG(w io.Writer, res *MouseResult) error {
	if res.Account.Sessions+res.CrossUser.Sessions == 0 {
		return fmt.Errorf("takeover: no takeover sessions to plot")
	}
	kinds := []struct {
		name  string
		t     MouseTakeovers
		color color.Color
	}{
		{"other people on the account", res.Account, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
		{"another user's session", res.CrossUser, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
		{"control: the owner's own session", res.Control, color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}},
	}
	panels := []struct {
		x, unit string
		values  func(MouseTakeovers) []float64
		median  func(MouseTakeovers) float64
	}{
		{"mouse actions after the switch (by the impostor; the owner in the control)", "actions", func(t MouseTakeovers) []float64 {
			out := make([]float64, len(t.ToChallengeActions))
			for i, n := range t.ToChallengeActions {
				out[i] = float64(n)
			}
			return out
		}, func(t MouseTakeovers) float64 { return t.Actions.Median }},
		{"seconds of mouse use after the switch", "s", func(t MouseTakeovers) []float64 { return t.ToChallengeUseSeconds },
			func(t MouseTakeovers) float64 { return t.UseSeconds.Median }},
	}
	plots := make([][]*plot.Plot, 1)
	for _, panel := range panels {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("Mouse takeovers challenged, %d users, %s (window %d, hop %d, %s start)",
			res.Users, federationWords(res.Config.Privacy), res.Config.Guard.MouseWindow, res.Config.Guard.MouseHop, res.Config.Start)
		p.X.Label.Text = panel.x
		p.Y.Label.Text = "share of sessions challenged"
		p.Y.Min, p.Y.Max = 0, 1
		var top float64
		for _, k := range kinds {
			if vs := panel.values(k.t); len(vs) > 0 {
				top = max(top, vs[int(0.95*float64(len(vs)-1))])
			}
		}
		p.X.Min, p.X.Max = 0, max(top, 10)
		for _, k := range kinds {
			if k.t.Sessions == 0 {
				continue
			}
			line, err := plotter.NewLine(shareCurve(panel.values(k.t), k.t.Sessions, p.X.Max))
			if err != nil {
				return err
			}
			line.Color = k.color
			line.Width = vg.Points(1.5)
			p.Add(line)
			p.Legend.Add(fmt.Sprintf("%s: %d, median %s %s, %.1f%% never", k.name, k.t.Sessions,
				medianWords(panel.median(k.t)), panel.unit, 100*k.t.MissedShare), line)
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = false, false
		plots[0] = append(plots[0], p)
	}
	const width, height = 14 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	canvases := plot.Align(plots, draw.Tiles{Rows: 1, Cols: len(plots[0]), PadX: vg.Points(12), PadY: vg.Points(6)}, dc)
	for j, p := range plots[0] {
		p.Draw(canvases[0][j])
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// shareCurve is the step curve of the share of n takeovers challenged by x, from the sorted
// values of the challenged ones, drawn to xMax.
func shareCurve(sorted []float64, n int, xMax float64) plotter.XYs {
	xys := plotter.XYs{{X: 0, Y: 0}}
	for i, v := range sorted {
		if v > xMax {
			break
		}
		share := float64(i+1) / float64(n)
		xys = append(xys, plotter.XY{X: v, Y: xys[len(xys)-1].Y}, plotter.XY{X: v, Y: share})
	}
	return append(xys, plotter.XY{X: xMax, Y: xys[len(xys)-1].Y})
}

// federationWords names the federation the models came from.
func federationWords(p eval.PrivacyConfig) string {
	switch {
	case !p.Enabled():
		return "plaintext federation"
	case math.IsInf(p.Epsilon, 1):
		return "epsilon inf"
	}
	return fmt.Sprintf("epsilon %g", p.Epsilon)
}
