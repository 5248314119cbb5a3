package main

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/console"
	"github.com/vigilauth/vigil/models/eval"
)

func TestPrivacyTradeoff(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", filepath.Join(t.TempDir(), "nope")}, "-data"},
		{[]string{"--data", t.TempDir(), "--epsilons", "8,zero"}, "-epsilons"},
		{[]string{"--data", t.TempDir(), "--clip", "-3"}, "-clip"},
	} {
		var out, errOut bytes.Buffer
		if err := runPrivacyTradeoff(ctx, tc.args, &out, &errOut); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tradeoff %q: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(evalAaltoDir); err != nil {
		t.Skipf("Aalto keystroke data not available at %s", evalAaltoDir)
	}
	pngPath := filepath.Join(t.TempDir(), "tradeoff.png")
	var out, errOut bytes.Buffer
	if err := runPrivacyTradeoff(ctx, []string{"--data", evalAaltoDir, "--users", "15", "--epsilons", "8,inf", "--png", pngPath}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"\n8 ", "\ninf ", "\nalone ", "protocol:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
}

// tradeoffResults are keystroke results at epsilon 1, 2, 4, 8 and inf shaped as
// eval.KeystrokesTradeoff returns them, with the README's measured EERs.
func tradeoffResults() []*eval.KeystrokeResult {
	var res []*eval.KeystrokeResult
	for i, e := range []float64{1, 2, 4, 8, math.Inf(1)} {
		mean, pooled := []float64{0.1155, 0.0715, 0.0557, 0.0445, 0.0391}[i], []float64{0.1281, 0.0844, 0.0678, 0.0588, 0.0512}[i]
		r := &eval.KeystrokeResult{Users: 500, Protocol: "protocol"}
		r.Config.Dir, r.Config.Privacy.Epsilon, r.Config.Privacy.Delta = "aalto-keystrokes", e, 1e-5
		r.Private = &eval.PrivateRounds{Epsilon: e, Delta: 1e-5, EpsilonSpent: e, Clip: 30, NoiseMultiplier: 2 / float64(i+1)}
		r.Federated.EERMean, r.Federated.EERPooled = mean, pooled
		r.Federated.EERMeanCI, r.Federated.EERPooledCI = eval.Interval{Lo: mean - 0.004, Hi: mean + 0.004}, eval.Interval{Lo: pooled - 0.004, Hi: pooled + 0.004}
		r.Federated.FAR, r.Federated.FRR = 0.056, 0.062
		r.Alone.EERMean, r.Alone.EERPooled = 0.0702, 0.0951
		r.Alone.EERMeanCI, r.Alone.EERPooledCI = eval.Interval{Lo: 0.065, Hi: 0.075}, eval.Interval{Lo: 0.09, Hi: 0.1}
		res = append(res, r)
	}
	return res
}

// TestTradeoffJSONForConsole: --json encodes the unbounded budget (JSON has no infinity, and
// the inf row's privacy report holds one), and what it writes is what vigil console --tradeoff
// reads, value for value.
func TestTradeoffJSONForConsole(t *testing.T) {
	res := tradeoffResults()
	var out bytes.Buffer
	if err := evalWriteJSON(&out, tradeoffJSON(res, "")); err != nil {
		t.Fatalf("--json with epsilon inf: %v", err)
	}
	got, err := console.ParseTradeoff(out.Bytes())
	if err != nil {
		t.Fatalf("console reads --json: %v\n%s", err, out.String())
	}
	if len(got.Rows) != len(res) || got.Users != 500 || got.Alone == nil || got.Alone.EERMean != 0.0702 {
		t.Fatalf("console read %+v", got)
	}
	for i, r := range got.Rows {
		o := res[i].Federated
		if float64(r.Epsilon) != res[i].Config.Privacy.Epsilon || r.EERMean != o.EERMean || r.EERPooledCI.Hi != o.EERPooledCI.Hi ||
			r.FAR == nil || *r.FAR != o.FAR || r.Delta != 1e-5 {
			t.Errorf("row %d: %+v, want epsilon %v and %+v", i, r, res[i].Config.Privacy.Epsilon, o)
		}
	}
}
