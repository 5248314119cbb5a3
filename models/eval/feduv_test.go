package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/vigilauth/vigil/models/keystroke"
)

// feduvSynthetic returns users whose rows scatter around a centre of their own in dim inputs:
// enrol rows and test rows per user.
func feduvSynthetic(users, dim, enrol, test int, spread float64, seed uint64) (e, t [][][]float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for u := 0; u < users; u++ {
		centre := make([]float64, dim)
		for k := range centre {
			centre[k] = rng.NormFloat64()
		}
		rows := func(n int) [][]float64 {
			out := make([][]float64, n)
			for i := range out {
				out[i] = make([]float64, dim)
				for k := range out[i] {
					out[i][k] = centre[k] + spread*rng.NormFloat64()
				}
			}
			return out
		}
		e, t = append(e, rows(enrol)), append(t, rows(test))
	}
	return e, t
}

// TestFedUVTrainsAndVerifies trains the embedding by FedAvg on a small synthetic fleet whose
// users differ, plaintext and with DP noise, and checks that the loss falls and that verification
// by cosine distance to the enrolment mean separates users far better than chance (EER 50%).
// A broken gradient, averaging or scoring fails it.
func TestFedUVTrainsAndVerifies(t *testing.T) {
	const users, dim = 40, 8
	enrol, test := feduvSynthetic(users, dim, 5, 6, 0.6, 3)
	net := feduvNet{in: dim, hidden: 16, dim: 16}
	codes := make([][]float64, users)
	for i := range codes {
		codes[i] = feduvCodeword(net.dim, 1, uint64(i))
	}
	if d := codeMinDistance(codes); d < 1 {
		t.Fatalf("two users share a codeword (min distance %d)", d)
	}
	for _, tc := range []struct {
		name    string
		cfg     feduvTrainConfig
		maxLoss float64 // share of the starting loss
		maxEER  float64
	}{
		{"plaintext", feduvTrainConfig{Rounds: 60, LocalSteps: 5, LearningRate: 0.5, ServerRate: 1, Margin: 1}, 0.6, 0.15},
		{"dp", feduvTrainConfig{Rounds: 60, LocalSteps: 5, LearningRate: 0.5, ServerRate: 1, Margin: 1, Noise: 0.5, Clip: 1}, 0.8, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params, rep, err := feduvTrain(context.Background(), net, net.init(1), enrol, codes, tc.cfg, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !(rep.lossEnd < tc.maxLoss*rep.lossStart) {
				t.Errorf("loss %.4f -> %.4f, want below %.2f of the start", rep.lossStart, rep.lossEnd, tc.maxLoss)
			}
			gen, imp, _ := feduvScores(net, params, enrol, test)
			trials := make([]userTrials, users)
			for i := range trials {
				trials[i].gen[modeFederated][detCombined] = gen[i]
				trials[i].imp[modeFederated][detCombined] = imp[i]
				if len(gen[i]) != 6 || len(imp[i]) != 6*(users-1) {
					t.Fatalf("user %d: %d genuine and %d impostor trials", i, len(gen[i]), len(imp[i]))
				}
			}
			r, _, err := ratesOf(trials, 0, users)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("loss %.4f -> %.4f, clipped %.0f%%; EER mean %.2f%%, pooled %.2f%%", rep.lossStart, rep.lossEnd, 100*rep.clippedShare, 100*r.EERMean, 100*r.EERPooled)
			if !(r.EERMean < tc.maxEER && r.EERPooled < tc.maxEER) {
				t.Errorf("EER mean %.3f, pooled %.3f, want below %.2f", r.EERMean, r.EERPooled, tc.maxEER)
			}
		})
	}
}

// TestFedUVGradient checks the loss's gradient against finite differences.
func TestFedUVGradient(t *testing.T) {
	net := feduvNet{in: 5, hidden: 4, dim: 6}
	p := net.init(2)
	rng := rand.New(rand.NewPCG(4, 4))
	for k := range p {
		p[k] += 0.3 * rng.NormFloat64()
	}
	x := []float64{0.5, -1, 2, 0.1, -0.3}
	c := feduvCodeword(net.dim, 1, 7)
	g := make([]float64, len(p))
	b := net.buf()
	net.lossGrad(p, x, c, 1, 1, g, b)
	for k := range p {
		const h = 1e-6
		q := append([]float64(nil), p...)
		q[k] += h
		up := net.lossGrad(q, x, c, 1, 0, nil, b)
		q[k] -= 2 * h
		down := net.lossGrad(q, x, c, 1, 0, nil, b)
		if num := (up - down) / (2 * h); math.Abs(num-g[k]) > 1e-6*max(1, math.Abs(num)) {
			t.Errorf("parameter %d: gradient %.8f, finite difference %.8f", k, g[k], num)
		}
	}
}

// TestExploreFedUVInputs measures the inputs without any network: each user's reference is the
// mean of their standardised enrolment inputs and a trial's score the cosine (or Euclidean)
// distance to it; it runs with VIGIL_EXPLORE_FEDUV set (participants to load).
func TestExploreFedUVInputs(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIGIL_EXPLORE_FEDUV"))
	if n == 0 {
		t.Skip("VIGIL_EXPLORE_FEDUV not set")
	}
	skipWithout(t, aaltoDir)
	d, err := loadKeystrokes(context.Background(), KeystrokeConfig{Dir: aaltoDir, Users: n, SkipAlone: true})
	if err != nil {
		t.Fatal(err)
	}
	feat, err := newFeduvFeatures(d.layout, 50)
	if err != nil {
		t.Fatal(err)
	}
	var enrol, test [][][]float64
	sum, sq := make([]float64, feat.len()), make([]float64, feat.len())
	rows := 0
	for _, u := range d.users {
		var e, s [][]float64
		for _, w := range u.enrol {
			x := feat.of(w)
			e = append(e, x)
			for k, v := range x {
				sum[k] += v
				sq[k] += v * v
			}
			rows++
		}
		for _, w := range u.test {
			s = append(s, feat.of(w))
		}
		enrol, test = append(enrol, e), append(test, s)
	}
	names := keystroke.SummaryNames()
	for k := range sum {
		m := sum[k] / float64(rows)
		name := "root"
		if k < len(names) {
			name = names[k]
		}
		t.Logf("input %3d %-45s real mean %6.2f sd %5.2f (synthetic units)", k, name, m, math.Sqrt(sq[k]/float64(rows)-m*m))
	}
	// Cosine distance on the inputs themselves.
	gen, imp, _ := feduvScoresOf(func(x []float64) []float64 { return x }, enrol, test)
	feduvLogRates(t, "cosine on inputs", gen, imp)
}

func feduvLogRates(t *testing.T, name string, gen, imp [][]float64) {
	trials := make([]userTrials, len(gen))
	for i := range trials {
		trials[i].gen[modeFederated][detCombined] = gen[i]
		trials[i].imp[modeFederated][detCombined] = imp[i]
	}
	r, _, err := ratesOf(trials, 0, len(trials))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: EER mean %.2f%%, pooled %.2f%%", name, 100*r.EERMean, 100*r.EERPooled)
}
