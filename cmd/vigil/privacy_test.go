package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

func privacy(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runPrivacy(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestPrivacyEpsilonReferenceValues(t *testing.T) {
	// tensorflow/privacy compute_dp_sgd_privacy_test.py Test0, TF-Privacy orders.
	for _, tc := range []struct {
		conversion string
		want       float64
	}{{"improved", 0.7242234026109595}, {"classic", 0.941870567}} {
		out, _, err := privacy(t, "epsilon", "--sampling-rate", "0.0025", "--noise-multiplier", "1.3", "--steps", "6000",
			"--delta", "1e-5", "--orders", "tf-privacy", "--conversion", tc.conversion, "--mechanism", "poisson-hidden", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Epsilon float64 `json:"epsilon"`
			Order   float64 `json:"order"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if math.Abs(got.Epsilon-tc.want) > 1e-6*tc.want || got.Order != 19 {
			t.Errorf("%s: %s, want epsilon %v at order 19", tc.conversion, out, tc.want)
		}
		var keys map[string]any
		json.Unmarshal([]byte(out), &keys)
		if len(keys) != 2 {
			t.Errorf("JSON has keys %v, want exactly epsilon and order", keys)
		}
	}
}

func TestPrivacyEpsilonComposedEvents(t *testing.T) {
	out, _, err := privacy(t, "epsilon", "--event", "1e-5:1.0:10", "--event", "1e-4:3.0:4:hidden", "--delta", "1e-5", "--series", "signed", "--mechanism", "poisson-hidden")
	if err != nil {
		t.Fatal(err)
	}
	want, order, err := dp.Epsilon([]dp.Event{{SamplingRate: 1e-5, NoiseMultiplier: 1.0, Steps: 10}, {SamplingRate: 1e-4, NoiseMultiplier: 3.0, Steps: 4}}, 1e-5, dp.Options{Series: dp.SeriesSigned})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"epsilon = " + trimG(want), "order " + trimG(order), "q = 1e-05, z = 1, T = 10", "q = 0.0001, z = 3, T = 4", "series signed"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func trimG(v float64) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 6 {
		s = s[:6]
	}
	return s
}

// TestPrivacyErrorsNameTheFlag: bad input gives an error naming the flag.
func TestPrivacyErrorsNameTheFlag(t *testing.T) {
	base := []string{"--sampling-rate", "0.01", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"}
	with := func(flag, value string) []string {
		args := append([]string{"epsilon"}, base...)
		for i := range args {
			if args[i] == flag {
				args[i+1] = value
				return args
			}
		}
		return append(args, flag, value)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{with("--sampling-rate", "1.5"), "--sampling-rate"},
		{with("--sampling-rate", "0"), "--sampling-rate"},
		{with("--noise-multiplier", "0"), "--noise-multiplier"},
		{with("--noise-multiplier", "-2"), "--noise-multiplier"},
		{with("--steps", "-1"), "--steps"},
		{with("--delta", "1"), "--delta"},
		{with("--delta", "0"), "--delta"},
		{with("--orders", "mine"), "--orders"},
		{with("--series", "both"), "--series"},
		{with("--conversion", "best"), "--conversion"},
		{with("--event", "0.1:1"), "-event"},
		{with("--event", "2:1:1"), "-event"},
		{with("--event", "0.1:x:1"), "-event"},
		{with("--event", "0.1:1:1:maybe"), "-event"},
		{with("--mechanism", "hidden"), "-mechanism"},
		{[]string{"epsilon", "--sampling-rate", "0.1", "--delta", "1e-5"}, "--noise-multiplier"},
		{[]string{"epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1", "--steps", "1"}, "--delta"},
		{[]string{"epsilon", "--delta", "1e-5"}, "--event"},
		{[]string{"plan", "--epsilon", "1", "--delta", "1e-5", "--population", "10", "--clients-per-round", "20", "--rounds", "5"}, "--clients-per-round"},
		{[]string{"plan", "--epsilon", "-1", "--delta", "1e-5", "--population", "10", "--clients-per-round", "2", "--rounds", "5"}, "--epsilon"},
		{[]string{"plan", "--epsilon", "1", "--delta", "1e-5", "--population", "10", "--clients-per-round", "2", "--rounds", "0"}, "--rounds"},
		{[]string{"plan", "--epsilon", "1", "--delta", "1e-5", "--population", "10", "--clients-per-round", "2"}, "--rounds"},
		{[]string{"curve", "--sampling-rate", "0.01", "--rounds", "10", "--delta", "1e-5", "--noise-multipliers", "1,zero"}, "--noise-multipliers"},
		{[]string{"curve", "--sampling-rate", "0.01", "--population", "10", "--rounds", "10", "--delta", "1e-5"}, "--sampling-rate"},
		{[]string{"curve", "--sampling-rate", "2", "--rounds", "10", "--delta", "1e-5"}, "--sampling-rate"},
		{[]string{"curve", "--sampling-rate", "0.1", "--rounds", "0", "--delta", "1e-5"}, "--rounds"},
		{[]string{"ledger"}, "--path"},
		{[]string{"ledger", "--path", filepath.Join(t.TempDir(), "missing")}, "--path"},
	} {
		_, _, err := privacy(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: err = %v, want it to name %s", tc.args, err, tc.flag)
		}
	}
	if _, _, err := privacy(t, "bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown subcommand: %v", err)
	}
	if _, _, err := privacy(t, "epsilon", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if _, _, err := privacy(t, "epsilon", "--delta", "1e-5", "--event", "0.1:1:1", "extra"); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Errorf("positional argument: %v", err)
	}
}

func TestPrivacyPlan(t *testing.T) {
	out, _, err := privacy(t, "plan", "--epsilon", "8", "--delta", "1e-6", "--population", "100000", "--clients-per-round", "1000", "--rounds", "1000", "--mechanism", "poisson-hidden", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		NoiseMultiplier float64 `json:"noise_multiplier"`
		Epsilon         float64 `json:"epsilon"`
		SamplingRate    float64 `json:"sampling_rate"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	eps, _, err := dp.Epsilon([]dp.Event{{SamplingRate: 0.01, NoiseMultiplier: res.NoiseMultiplier, Steps: 1000}}, 1e-6, dp.Options{})
	if err != nil || eps > 8 || eps != res.Epsilon || res.SamplingRate != 0.01 {
		t.Errorf("plan %s: recomputed epsilon %v (%v)", out, eps, err)
	}
	out, _, err = privacy(t, "plan", "--epsilon", "8", "--delta", "1e-6", "--population", "100000", "--clients-per-round", "1000", "--rounds", "1000", "--mechanism", "poisson-hidden")
	if err != nil || !strings.Contains(out, "smallest noise multiplier: z = 0.645") || !strings.Contains(out, "tolerance") && !strings.Contains(out, "relative width") {
		t.Errorf("human output:\n%s (%v)", out, err)
	}
}

func TestPrivacyCurvePNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curve.png")
	out, stderr, err := privacy(t, "curve", "--population", "100000", "--clients-per-round", "1000", "--rounds", "200",
		"--delta", "1e-6", "--noise-multipliers", "0.8,1.1,1.5", "--budget", "8", "--png", path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("PNG is %v", b)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 10 || !strings.Contains(lines[1], "z=1.1") || !strings.HasPrefix(strings.TrimSpace(lines[len(lines)-1]), "200 ") {
		t.Errorf("table:\n%s", out)
	}
	if !strings.Contains(stderr, "curve 3/3") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	// JSON: the last point of each curve is the epsilon after all rounds.
	out, _, err = privacy(t, "curve", "--sampling-rate", "0.01", "--rounds", "50", "--delta", "1e-6", "--noise-multipliers", "1.1", "--mechanism", "poisson-hidden", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Curves []struct {
			Epsilon []float64 `json:"epsilon"`
		} `json:"curves"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || len(c.Curves) != 1 || len(c.Curves[0].Epsilon) != 50 {
		t.Fatalf("%s: %v", out, err)
	}
	want, _, _ := dp.Epsilon([]dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 50}}, 1e-6, dp.Options{})
	if got := c.Curves[0].Epsilon[49]; math.Abs(got-want) > 1e-12*want {
		t.Errorf("epsilon after 50 rounds %v, want %v", got, want)
	}
}

func TestPrivacyLedger(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ledger")
	l, err := dp.OpenLedger(path, "model/authnet", dp.Budget{Epsilon: 4, Delta: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	for r := uint64(1); r <= 3; r++ {
		if _, err := l.Charge(r*10, dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 1}); err != nil {
			t.Fatal(err)
		}
	}
	spent, _ := l.Spent()
	out, _, err := privacy(t, "ledger", "--path", path, "--subject", "model/authnet")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"model/authnet", "epsilon 4 at delta 1e-06", "        10 ", "        30 ", "in 3 rounds"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	out, _, err = privacy(t, "ledger", "--path", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Subject string           `json:"subject"`
		Spent   float64          `json:"spent"`
		Rounds  []dp.LedgerEntry `json:"rounds"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Spent != spent || len(js.Rounds) != 3 || js.Rounds[2].Round != 30 {
		t.Errorf("%s: %v", out, err)
	}
	if _, _, err := privacy(t, "ledger", "--path", path, "--subject", "model/other"); !errors.Is(err, dp.ErrLedgerMismatch) || !strings.Contains(err.Error(), "--subject") {
		t.Errorf("wrong subject: %v", err)
	}
	data, _ := os.ReadFile(path)
	bad := filepath.Join(dir, "bad.ledger")
	os.WriteFile(bad, bytes.Replace(data, []byte(`"steps":1`), []byte(`"steps":2`), 1), 0o600)
	if _, _, err := privacy(t, "ledger", "--path", bad); !errors.Is(err, dp.ErrLedgerCorrupt) || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt file: %v", err)
	}
}

// TestPrivacyMechanismDefault: the reviewers' tools default to the analysis Vigil's ledgers
// charge (participation known), so that a plan is what the coordinator will spend;
// --mechanism poisson-hidden and an event's :hidden suffix give the hidden-sampling analysis.
func TestPrivacyMechanismDefault(t *testing.T) {
	eps := func(args ...string) float64 {
		t.Helper()
		out, _, err := privacy(t, append([]string{"epsilon", "--delta", "1e-5", "--json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Epsilon float64 }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		return got.Epsilon
	}
	single := []string{"--sampling-rate", "0.25", "--noise-multiplier", "2", "--steps", "20"}
	known, _, _ := dp.Epsilon([]dp.Event{{SamplingRate: 0.25, NoiseMultiplier: 2, Steps: 20, Mechanism: dp.KnownParticipation}}, 1e-5, dp.Options{})
	hidden, _, _ := dp.Epsilon([]dp.Event{{SamplingRate: 0.25, NoiseMultiplier: 2, Steps: 20}}, 1e-5, dp.Options{})
	for name, tc := range map[string]struct {
		args []string
		want float64
	}{
		"default":          {single, known},
		"hidden":           {append(single, "--mechanism", "poisson-hidden"), hidden},
		"event":            {[]string{"--event", "0.25:2:20"}, known},
		"event :hidden":    {[]string{"--event", "0.25:2:20:hidden"}, hidden},
		"event :known":     {[]string{"--event", "0.25:2:20:known", "--mechanism", "poisson-hidden"}, known},
		"flag then suffix": {[]string{"--mechanism", "poisson-hidden", "--event", "0.25:2:20"}, hidden},
	} {
		if got := eps(tc.args...); got != tc.want {
			t.Errorf("%s: epsilon %v, want %v", name, got, tc.want)
		}
	}
	if !(known > hidden) {
		t.Fatalf("known %v <= hidden %v", known, hidden)
	}
}

// TestPrivacyPlanPrintedNoiseMeetsTarget: the z `privacy plan` prints, fed back to the
// accountant with the printed q, meets the target, and so does a ledger charging the planned
// rounds at it; the epsilon printed beside it is its own, and --json gives the same z. A review
// found the z rounded to the nearest 6 digits over the target in 35 of 96 such configurations
// (epsilon 3, delta 1e-5, N = 1000, K = 10, 10 rounds: z = 1.6598 lost the 10th round).
func TestPrivacyPlanPrintedNoiseMeetsTarget(t *testing.T) {
	zLine := regexp.MustCompile(`smallest noise multiplier: z = (\S+)\n  gives epsilon = (\S+) <=`)
	qLine := regexp.MustCompile(`sampling rate q = (?:\d+/\d+ = )?([^\s:]+)`)
	n := 0
	for _, eps := range []string{"0.5", "1", "3", "8"} {
		for _, delta := range []string{"1e-5", "1e-8"} {
			for _, pop := range []string{"1000", "100000"} {
				for _, k := range []string{"10", "100"} {
					for _, rounds := range []string{"10", "1000", "30000"} {
						args := []string{"plan", "--epsilon", eps, "--delta", delta, "--population", pop, "--clients-per-round", k, "--rounds", rounds}
						out, _, err := privacy(t, args...)
						if err != nil {
							t.Fatalf("%v: %v", args, err)
						}
						zm, qm := zLine.FindStringSubmatch(out), qLine.FindStringSubmatch(out)
						if zm == nil || qm == nil {
							t.Fatalf("%v: no z or q in\n%s", args, out)
						}
						z, _ := strconv.ParseFloat(zm[1], 64)
						q, _ := strconv.ParseFloat(qm[1], 64)
						target, _ := strconv.ParseFloat(eps, 64)
						d, _ := strconv.ParseFloat(delta, 64)
						r, _ := strconv.Atoi(rounds)
						ev := dp.Event{SamplingRate: q, NoiseMultiplier: z, Steps: r, Mechanism: dp.KnownParticipation}
						got, _, err := dp.Epsilon([]dp.Event{ev}, d, dp.Options{})
						if err != nil || got > target {
							t.Errorf("%v: printed z = %s, q = %s give epsilon %v over the target %s (%v)", args, zm[1], qm[1], got, eps, err)
						}
						if printed := strconv.FormatFloat(got, 'g', 8, 64); printed != zm[2] {
							t.Errorf("%v: printed epsilon %s, z = %s gives %s", args, zm[2], zm[1], printed)
						}
						out, _, err = privacy(t, append(args, "--json")...)
						var js struct {
							NoiseMultiplier float64 `json:"noise_multiplier"`
							Epsilon         float64 `json:"epsilon"`
						}
						if err != nil || json.Unmarshal([]byte(out), &js) != nil || js.NoiseMultiplier != z || js.Epsilon != got {
							t.Errorf("%v --json: %s (%v), want z %v and epsilon %v as printed", args, out, err, z, got)
						}
						if r <= 10 { // what the coordinator's ledger does with it: every planned round is charged
							l, err := dp.OpenLedger(filepath.Join(t.TempDir(), "model.ledger"), "m", dp.Budget{Epsilon: target, Delta: d})
							if err != nil {
								t.Fatal(err)
							}
							one := dp.Event{SamplingRate: q, NoiseMultiplier: z, Steps: 1, Mechanism: dp.KnownParticipation}
							for i := 1; i <= r; i++ {
								if _, err := l.Charge(uint64(i), one); err != nil {
									t.Errorf("%v: ledger at the printed z: %v", args, err)
									break
								}
							}
						}
						n++
					}
				}
			}
		}
	}
	t.Logf("%d configurations", n)
}

// TestRoundUpDigits: z is rounded up to the digits `privacy plan` prints, and those digits parse
// back to the value returned.
func TestRoundUpDigits(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{
		{2.435283660888672, 2.43529}, {2.43528, 2.43528}, {1.6597999, 1.6598}, {9.9999951, 10},
		{0.015625, 0.015625}, {10000, 10000}, {1.0000000000000002, 1.00001}, {123456.7, 123457},
	} {
		got := roundUpDigits(tc.x)
		back, err := strconv.ParseFloat(formatPlanNoise(got), 64)
		if got != tc.want || got < tc.x || err != nil || back != got {
			t.Errorf("roundUpDigits(%v) = %v printed %s, want %v", tc.x, got, formatPlanNoise(got), tc.want)
		}
	}
}

// TestPrivacyFlagsAreNotReplaced: a flag given a value outside its domain is refused naming the
// flag, not replaced by its default. report --delta 0 (or 1e-400, which parses to 0) composed at
// the ledgers' delta; plan --tolerance 0 searched at 1e-6 and printed 0; curve --budget Inf drew
// an empty plot; an unreachable --min-participants gave an error that did not name it. And
// plan's q line is the rate it planned with: with m_min = 1 it printed K/N beside the higher
// rate of redrawing empty draws.
func TestPrivacyFlagsAreNotReplaced(t *testing.T) {
	dir := t.TempDir()
	writeTestLedger(t, dir, dp.Budget{Epsilon: 10, Delta: 1e-5}, dp.RoundCharge{Round: 1,
		Event: dp.Event{SamplingRate: 0.5, NoiseMultiplier: 2, Steps: 1, Mechanism: dp.KnownParticipation}, ClipNorm: 1, MinParticipants: 10, ToleratedDevices: 1, Participants: 12})
	if _, _, err := privacy(t, "report", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	plan := []string{"plan", "--epsilon", "8", "--delta", "1e-5", "--population", "1000", "--clients-per-round", "10", "--rounds", "10"}
	png := filepath.Join(t.TempDir(), "c.png")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"report", "--dir", dir, "--delta", "0"}, "--delta"},
		{[]string{"report", "--dir", dir, "--delta", "1e-400"}, "--delta"},
		{[]string{"report", "--dir", dir, "--delta", "1"}, "--delta"},
		{append(plan, "--tolerance", "0"), "--tolerance"},
		{append(plan, "--tolerance", "0.5"), "--tolerance"},
		{[]string{"curve", "--sampling-rate", "0.01", "--rounds", "5", "--delta", "1e-5", "--budget", "Inf", "--png", png}, "--budget"},
		{[]string{"curve", "--sampling-rate", "0.01", "--rounds", "5", "--delta", "1e-5", "--budget", "NaN"}, "--budget"},
		{[]string{"plan", "--epsilon", "2", "--delta", "1e-5", "--population", "100000", "--clients-per-round", "1", "--min-participants", "1000", "--rounds", "10"}, "--min-participants"},
	} {
		if _, _, err := privacy(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: err = %v, want a refusal naming %s", tc.args, err, tc.flag)
		}
	}
	if _, err := os.Stat(png); err == nil {
		t.Errorf("curve --budget Inf wrote %s", png)
	}
	out, _, err := privacy(t, "plan", "--epsilon", "8", "--delta", "1e-5", "--population", "10", "--clients-per-round", "1", "--rounds", "10", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		SamplingRate float64 `json:"sampling_rate"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || !(js.SamplingRate > 0.1) {
		t.Fatalf("%s: %v, want q above K/N = 0.1 with m_min = 1", out, err)
	}
	out, _, err = privacy(t, "plan", "--epsilon", "8", "--delta", "1e-5", "--population", "10", "--clients-per-round", "1", "--rounds", "10")
	if want := fmt.Sprintf("sampling rate q = %v:", js.SamplingRate); err != nil || !strings.Contains(out, want) || strings.Contains(out, "q = 1/10") {
		t.Errorf("plan with m_min = 1 (%v):\n%s\nwant %q", err, out, want)
	}
}
