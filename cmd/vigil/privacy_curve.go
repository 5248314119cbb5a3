package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/vigilauth/vigil/dp"
)

// runPrivacyCurve is `vigil privacy curve`: epsilon after each round for
// several noise multipliers, as a table and optionally a PNG plot.
func runPrivacyCurve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy curve", stdout)
	var (
		q, delta, budget                      float64
		population, perRound, minParticipants int
		rounds                                int
		zList, pngPath                        string
		acct                                  accountingFlags
		mech                                  mechanismFlag
		asJSON                                bool
	)
	fs.Float64Var(&q, "sampling-rate", 0, "sampling rate q in (0, 1] (or give --population and --clients-per-round)")
	fs.IntVar(&population, "population", 0, "enrolled devices N")
	fs.IntVar(&perRound, "clients-per-round", 0, "expected participants per round K")
	fs.IntVar(&minParticipants, "min-participants", 0, "m_min with --population: rounds that sample fewer are drawn again, which raises q above K/N (default min(2, K), the coordinator's)")
	fs.IntVar(&rounds, "rounds", 0, fmt.Sprintf("rounds to plot (required, at most %d)", dp.MaxCurveRounds))
	fs.Float64Var(&delta, "delta", 0, "delta in (0, 1) (required)")
	fs.StringVar(&zList, "noise-multipliers", "0.8,1,1.2,1.5,2", "comma-separated noise multipliers, one curve each")
	fs.Float64Var(&budget, "budget", 0, "draw this epsilon budget as a horizontal line")
	fs.StringVar(&pngPath, "png", "", "write the plot to this PNG file")
	acct.register(fs)
	mech.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print the curves as JSON instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := setFlags(fs)
	if err := requireFlags(set, "rounds", "delta"); err != nil {
		return err
	}
	switch {
	case set["sampling-rate"] && (set["population"] || set["clients-per-round"] || set["min-participants"]):
		return errors.New("--sampling-rate conflicts with --population/--clients-per-round/--min-participants: give one or the other")
	case set["population"] || set["clients-per-round"]:
		if err := requireFlags(set, "population", "clients-per-round"); err != nil {
			return err
		}
		if !set["min-participants"] {
			minParticipants = min(2, perRound) // the coordinator's default --min-updates
		}
		var err error
		if q, err = dp.InclusionRate(perRound, population, minParticipants); err != nil {
			return blameFlag(err, planFlagNames())
		}
	case !set["sampling-rate"]:
		return errors.New("missing --sampling-rate (or --population and --clients-per-round)")
	}
	if rounds < 1 || rounds > dp.MaxCurveRounds {
		// Checked before any work: each round costs a conversion per order and a float.
		return fmt.Errorf("--rounds %d: must be in [1, %d]", rounds, dp.MaxCurveRounds)
	}
	if set["budget"] && (!(budget > 0) || math.IsInf(budget, 1)) {
		return fmt.Errorf("--budget: %v is not a positive finite epsilon", budget)
	}
	zs, err := parseFloatList(zList)
	if err != nil {
		return fmt.Errorf("--noise-multipliers: %w", err)
	}
	opts, err := acct.options()
	if err != nil {
		return err
	}
	curves := make([][]float64, len(zs))
	for i, z := range zs {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "curve %d/%d: z = %g, %d rounds\n", i+1, len(zs), z, rounds)
		step := dp.Event{SamplingRate: q, NoiseMultiplier: z, Steps: 1, Mechanism: mech.m}
		if curves[i], err = dp.EpsilonCurveOf(step, rounds, delta, opts); err != nil {
			return blameFlag(err, planFlagNames())
		}
		if err := ctx.Err(); err != nil { // a curve takes at most about a second
			return err
		}
	}
	if pngPath != "" {
		if err := writeCurvePNG(pngPath, q, delta, budget, zs, curves); err != nil {
			return fmt.Errorf("--png %s: %w", pngPath, err)
		}
		fmt.Fprintf(stderr, "wrote %s\n", pngPath)
	}
	if asJSON {
		type curve struct {
			NoiseMultiplier float64   `json:"noise_multiplier"`
			Epsilon         []float64 `json:"epsilon"`
		}
		out := struct {
			SamplingRate float64 `json:"sampling_rate"`
			Delta        float64 `json:"delta"`
			Rounds       int     `json:"rounds"`
			Mechanism    string  `json:"mechanism"`
			Curves       []curve `json:"curves"`
		}{q, delta, rounds, mech.m.String(), nil}
		for i, z := range zs {
			out.Curves = append(out.Curves, curve{z, curves[i]})
		}
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "epsilon at delta = %g after each round, q = %g, %s (%s)\n", delta, q, mechanismWords(mech.m), acct.describe(opts))
	fmt.Fprintf(stdout, "%8s", "round")
	for _, z := range zs {
		fmt.Fprintf(stdout, " %12s", "z="+strconv.FormatFloat(z, 'g', -1, 64))
	}
	fmt.Fprintln(stdout)
	every := max(1, rounds/10)
	for r := 1; r <= rounds; r++ {
		if r != 1 && r%every != 0 && r != rounds {
			continue
		}
		fmt.Fprintf(stdout, "%8d", r)
		for i := range zs {
			fmt.Fprintf(stdout, " %12.6g", curves[i][r-1])
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

func parseFloatList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		if !(v > 0) || v > 1e6 {
			return nil, fmt.Errorf("%v is not a noise multiplier in (0, 1e6]", v)
		}
		out = append(out, v)
	}
	return out, nil
}

// writeCurvePNG plots epsilon against rounds, one line per noise multiplier.
func writeCurvePNG(path string, q, delta, budget float64, zs []float64, curves [][]float64) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Privacy spent: q = %g, delta = %g", q, delta)
	p.X.Label.Text = "rounds"
	p.Y.Label.Text = "epsilon"
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	var lines []any
	for i, z := range zs {
		xys := make(plotter.XYs, len(curves[i]))
		for r, eps := range curves[i] {
			xys[r] = plotter.XY{X: float64(r + 1), Y: eps}
		}
		lines = append(lines, "z = "+strconv.FormatFloat(z, 'g', -1, 64), xys)
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return err
	}
	p.Y.Min = 0
	if budget > 0 {
		f := plotter.NewFunction(func(float64) float64 { return budget })
		f.Color = color.Black
		f.Width = vg.Points(1.5)
		f.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(f)
		p.Legend.Add(fmt.Sprintf("budget epsilon = %g", budget), f)
		p.Y.Max = max(p.Y.Max, 1.05*budget)
	}
	wt, err := p.WriterTo(7*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
