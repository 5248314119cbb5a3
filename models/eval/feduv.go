package eval

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/metrics"
)

// FedUV (Hosseini et al., ICML 2021) measured against the deployed keystroke models: a shared
// embedding network trained by federated averaging in which every device holds one class, its
// user, and pulls the embeddings of its own windows towards a secret codeword of its own; no
// class embedding leaves a device. A user's reference is the mean embedding of their enrolment
// windows and a window's score its cosine distance to it. This is an experiment (issue 13), not
// a shipped model: `vigil eval feduv`.
//
// Inputs: each window's 31 summary entries (models.Window.Dense) and, per root bucket of the
// layout (hold times of a key class; press-to-press and release-to-press times into a key
// class), the mean of the window's events under that root; each standardised by the mean and
// spread of the same features over the synthetic typists' windows (the public reference's
// source, which describes nobody), missing entries 0, clamped to +-5.
//
// Network: input -> Hidden tanh -> Dim tanh. Loss of a window x of the user with codeword c:
// max(0, Margin - cos(f(x), c)). Codewords: a random binary code, entries +-1/sqrt(Dim), drawn by
// each device from its own secret seed.
//
// Measured (Aalto, 500 users, L = 50, G = 5, seed 1; the deployed models give 4.35% / 5.74%):
// plaintext FedAvg, 200 rounds, 142 -> 64 -> 64: mean per-user EER 17.51%, pooled 18.07%; DP at
// epsilon 8 (100 rounds, z 6.38, C 0.1): 20.09% / 21.22%; the untrained network 20.27% / 21.84%
// and cosine on the inputs without any network 15.96% / 17.46%. Fused with the deployed score:
// at most 0.05 points of mean EER (within noise). Not a route to the targets on this data.

// FedUVConfig sets a FedUV experiment; zero fields take defaults.
type FedUVConfig struct {
	// Dir, Window, Enrol, Skip, Users, Seed and Workers select and split participants exactly as
	// KeystrokeConfig does (every selected participant is a device of the fleet and is evaluated).
	Dir           string
	Window, Enrol int
	Skip, Users   int
	Seed          uint64
	Workers       int
	// Epsilon is the total budget of all rounds at Delta (default 1e-5); +Inf or 0: plaintext
	// FedAvg without clipping or noise.
	Epsilon, Delta float64
	// Rounds of federated averaging (default 100); every device takes part in every round.
	Rounds int
	// LocalSteps of full-batch gradient descent at LearningRate on the device's enrolment
	// windows per round (defaults 5 and 0.5); ServerRate scales the averaged delta (default 1).
	LocalSteps               int
	LearningRate, ServerRate float64
	// Clip is C, the L2 bound on each device's delta in private rounds (default 0.1).
	Clip float64
	// Hidden and Dim are the network's widths (defaults 64 and 64); Margin the hinge's (default 1).
	Hidden, Dim int
	Margin      float64
	// Fuse also runs the deployed models (population round at FuseEpsilon, default Epsilon;
	// +Inf: no noise) on the same trials and reports FedUV fused with them.
	Fuse        bool
	FuseEpsilon float64
	// Progress, when set, is told of progress through each stage.
	Progress func(stage string, done, total int) `json:"-"`
}

func (c *FedUVConfig) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("eval: no data directory")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Window, 50)
	def(&c.Enrol, 5)
	def(&c.Rounds, 100)
	def(&c.LocalSteps, 5)
	def(&c.Hidden, 64)
	def(&c.Dim, 64)
	deff(&c.LearningRate, 0.5)
	deff(&c.ServerRate, 1)
	deff(&c.Clip, 0.1)
	deff(&c.Margin, 1)
	deff(&c.Delta, 1e-5)
	deff(&c.Epsilon, math.Inf(1))
	deff(&c.FuseEpsilon, c.Epsilon)
	switch {
	case c.Rounds < 1 || c.LocalSteps < 1 || c.Hidden < 1 || c.Dim < 2 || c.Skip < 0 || c.Users < 0:
		return fmt.Errorf("eval: FedUV setting out of range: rounds %d, local steps %d, widths %d/%d", c.Rounds, c.LocalSteps, c.Hidden, c.Dim)
	case !(c.Epsilon > 0) || !(c.FuseEpsilon > 0) || !(c.Delta > 0 && c.Delta < 1):
		return fmt.Errorf("eval: epsilon %v (fusion %v) at delta %v", c.Epsilon, c.FuseEpsilon, c.Delta)
	case !(c.LearningRate > 0) || !(c.ServerRate > 0) || !(c.Clip > 0) || !(c.Margin > 0):
		return fmt.Errorf("eval: FedUV rates, clip or margin not positive")
	}
	return nil
}

// FedUVFused is FedUV's score fused with the deployed combined score:
// combined + Weight * (log d - log d_enrol), d the cosine distance and d_enrol the user's mean
// leave-one-out enrolment distance (the autoencoder detector's form).
type FedUVFused struct {
	Weight float64
	// All users; Dev the first 100 (where the project chooses weights); Rest the others.
	All, Dev, Rest Rates
}

// FedUVResult is the outcome of a FedUV experiment.
type FedUVResult struct {
	Config                        FedUVConfig
	Users, Inputs, Params         int
	GenuineTrials, ImpostorTrials int
	// NoiseMultiplier z (0: no noise) and the accountant's epsilon of Rounds rounds at z.
	NoiseMultiplier, EpsilonSpent float64
	// CodeMinDistance is the smallest Hamming distance between two users' codewords.
	CodeMinDistance int
	// LossStart and LossEnd are the mean training loss over every device's enrolment windows
	// (a simulation diagnostic; no round reveals it). ClippedShare is the share of device deltas
	// the clip shortened, over all rounds.
	LossStart, LossEnd, ClippedShare float64
	// FedUV's rates, with bootstrap 95% intervals over users.
	FedUV                    Rates
	FedUVMeanCI, FedUVPoolCI Interval
	// Deployed is the deployed combined score on the same trials (Fuse only); Fused the fusions
	// (weight 0: the deployed score alone). ComposedEpsilon is the epsilon at Delta of both
	// private releases together (the population round and the FedUV rounds).
	ComposedEpsilon                              float64
	Deployed                                     *Rates       `json:",omitempty"`
	Fused                                        []FedUVFused `json:",omitempty"`
	LoadTime, TrainTime, ScoreTime, DeployedTime time.Duration
}

// FedUV runs the experiment.
func FedUV(ctx context.Context, cfg FedUVConfig) (*FedUVResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kc := KeystrokeConfig{Dir: cfg.Dir, Window: cfg.Window, Enrol: cfg.Enrol, Skip: cfg.Skip, Users: cfg.Users, Seed: cfg.Seed, Workers: cfg.Workers, SkipAlone: true, Progress: cfg.Progress}
	if cfg.Fuse {
		kc.Privacy = PrivacyConfig{Epsilon: cfg.FuseEpsilon}
	}
	d, err := loadKeystrokes(ctx, kc)
	if err != nil {
		return nil, err
	}
	res := &FedUVResult{Config: cfg, Users: len(d.users), LoadTime: d.res.LoadTime}
	feat, err := newFeduvFeatures(d.layout, cfg.Window)
	if err != nil {
		return nil, err
	}
	n := len(d.users)
	enrolX := make([][][]float64, n)
	testX := make([][][]float64, n)
	for i, u := range d.users {
		for _, w := range u.enrol {
			enrolX[i] = append(enrolX[i], feat.of(w))
		}
		for _, w := range u.test {
			testX[i] = append(testX[i], feat.of(w))
		}
	}
	net := feduvNet{in: feat.len(), hidden: cfg.Hidden, dim: cfg.Dim}
	res.Inputs, res.Params = net.in, net.numParams()
	codes := make([][]float64, n)
	for i := range codes {
		codes[i] = feduvCodeword(cfg.Dim, cfg.Seed, uint64(i))
	}
	res.CodeMinDistance = codeMinDistance(codes)

	tc := feduvTrainConfig{Rounds: cfg.Rounds, LocalSteps: cfg.LocalSteps, LearningRate: cfg.LearningRate, ServerRate: cfg.ServerRate, Margin: cfg.Margin, Workers: cfg.Workers}
	if !math.IsInf(cfg.Epsilon, 1) {
		// The coordinator's planner and mechanism (coordinator/privacy.go charges every round as
		// KnownParticipation), every device sampled in every round.
		plan, err := dp.Plan(dp.PlanConfig{Epsilon: cfg.Epsilon, Delta: cfg.Delta, Population: n, ClientsPerRound: n, Rounds: cfg.Rounds, Mechanism: dp.KnownParticipation})
		if err != nil {
			return nil, fmt.Errorf("eval: planning %d FedUV rounds: %w", cfg.Rounds, err)
		}
		tc.Noise, tc.Clip = plan.NoiseMultiplier, cfg.Clip
		res.NoiseMultiplier, res.EpsilonSpent = plan.NoiseMultiplier, plan.Epsilon
	} else {
		res.EpsilonSpent = math.Inf(1)
	}
	start := time.Now()
	init := net.init(cfg.Seed)
	params, rep, err := feduvTrain(ctx, net, init, enrolX, codes, tc, cfg.Seed, cfg.progressOf("feduv rounds"))
	if err != nil {
		return nil, err
	}
	res.TrainTime = time.Since(start)
	res.LossStart, res.LossEnd, res.ClippedShare = rep.lossStart, rep.lossEnd, rep.clippedShare

	start = time.Now()
	gen, imp, enrolDist := feduvScores(net, params, enrolX, testX)
	trials := make([]userTrials, n)
	for i := range trials {
		trials[i].gen[modeFederated][detCombined] = gen[i]
		trials[i].imp[modeFederated][detCombined] = imp[i]
		res.GenuineTrials += len(gen[i])
		res.ImpostorTrials += len(imp[i])
	}
	var userEER []float64
	if res.FedUV, userEER, err = ratesOf(trials, 0, n); err != nil {
		return nil, err
	}
	res.FedUVMeanCI, res.FedUVPoolCI = bootstrapRates(trials, userEER, modeFederated, uint64(n))
	res.ScoreTime = time.Since(start)

	if cfg.Fuse {
		start = time.Now()
		ids, enrol := keyEnrolments(d.users)
		global, pr, err := FederatePrivately(ctx, d.layout, ids, enrol, kc.Privacy, cfg.Seed, cfg.Workers)
		if err != nil {
			return nil, err
		}
		if res.NoiseMultiplier > 0 && pr.NoiseMultiplier > 0 {
			// Both released models come from the same devices' enrolment: their budgets compose.
			res.ComposedEpsilon, _, err = dp.Epsilon([]dp.Event{
				{SamplingRate: 1, NoiseMultiplier: pr.NoiseMultiplier, Steps: 1, Mechanism: dp.KnownParticipation},
				{SamplingRate: 1, NoiseMultiplier: res.NoiseMultiplier, Steps: cfg.Rounds, Mechanism: dp.KnownParticipation},
			}, cfg.Delta, dp.Options{})
			if err != nil {
				return nil, err
			}
		}
		dep, err := scoreUsers(ctx, d.layout, global, d.users, d.res.Config)
		if err != nil {
			return nil, err
		}
		res.DeployedTime = time.Since(start)
		for i := range dep {
			if len(dep[i].gen[modeFederated][detCombined]) != len(gen[i]) || len(dep[i].imp[modeFederated][detCombined]) != len(imp[i]) {
				return nil, fmt.Errorf("eval: user %d: deployed and FedUV trials differ", i)
			}
		}
		deployed := make([]userTrials, n)
		for i := range deployed {
			deployed[i].gen[modeFederated][detCombined] = dep[i].gen[modeFederated][detCombined]
			deployed[i].imp[modeFederated][detCombined] = dep[i].imp[modeFederated][detCombined]
		}
		r, _, err := ratesOf(deployed, 0, n)
		if err != nil {
			return nil, err
		}
		res.Deployed = &r
		for _, w := range []float64{0, 0.1, 0.25, 0.5, 1} { // 0: the deployed score alone
			fused := make([]userTrials, n)
			for i := range fused {
				c := math.Log(enrolDist[i] + 1e-6)
				f := func(dep, fuv []float64) []float64 {
					out := make([]float64, len(dep))
					for k := range out {
						out[k] = dep[k] + w*(math.Log(fuv[k]+1e-6)-c)
					}
					return out
				}
				fused[i].gen[modeFederated][detCombined] = f(dep[i].gen[modeFederated][detCombined], gen[i])
				fused[i].imp[modeFederated][detCombined] = f(dep[i].imp[modeFederated][detCombined], imp[i])
			}
			fr := FedUVFused{Weight: w}
			if fr.All, _, err = ratesOf(fused, 0, n); err != nil {
				return nil, err
			}
			if n > 100 {
				if fr.Dev, _, err = ratesOf(fused, 0, 100); err != nil {
					return nil, err
				}
				if fr.Rest, _, err = ratesOf(fused, 100, n); err != nil {
					return nil, err
				}
			}
			res.Fused = append(res.Fused, fr)
		}
	}
	return res, nil
}

func (c *FedUVConfig) progressOf(stage string) func(done, total int) {
	if c.Progress == nil {
		return nil
	}
	return func(done, total int) { c.Progress(stage, done, total) }
}

// ratesOf is the evaluation's mean per-user and pooled EER of the combined score of users
// [from, to), with each user's EER.
func ratesOf(trials []userTrials, from, to int) (Rates, []float64, error) {
	var gen, imp, userEER []float64
	var sum float64
	for _, t := range trials[from:to] {
		g, i := t.gen[modeFederated][detCombined], t.imp[modeFederated][detCombined]
		e, err := metrics.EER(g, i)
		if err != nil {
			return Rates{}, nil, err
		}
		sum += e
		userEER = append(userEER, e)
		gen = append(gen, g...)
		imp = append(imp, i...)
	}
	c, err := metrics.ROC(gen, imp)
	if err != nil {
		return Rates{}, nil, err
	}
	return Rates{EERMean: sum / float64(to-from), EERPooled: c.EER()}, userEER, nil
}

// feduvFeatures turns a keystroke window into the network's input.
type feduvFeatures struct {
	dense       int
	root        []int // per bucket, the index of its root's feature, or -1
	roots       int
	mean, scale []float64
	sum         []float64
	count       []int
}

func newFeduvFeatures(l *models.Layout, window int) (*feduvFeatures, error) {
	f := &feduvFeatures{dense: l.NumDense, root: make([]int, l.NumBuckets())}
	index := map[int]int{}
	for b := range f.root {
		f.root[b] = -1
		if l.BucketKind[b] < 0 || (b >= l.DenseBase && b < l.DenseBase+l.NumDense) {
			continue
		}
		r := b
		for l.Parent[r] >= 0 {
			r = l.Parent[r]
		}
		k, ok := index[r]
		if !ok {
			k = len(index)
			index[r] = k
		}
		f.root[b] = k
	}
	f.roots = len(index)
	f.sum, f.count = make([]float64, f.roots), make([]int, f.roots)
	// Standardisation from the synthetic typists' windows: public, the same on every device.
	n := f.len()
	f.mean, f.scale = make([]float64, n), slices.Repeat([]float64{1}, n)
	sum, sq, cnt := make([]float64, n), make([]float64, n), make([]float64, n)
	for seed := uint64(1); seed <= 50; seed++ {
		for _, w := range keystroke.TimingWindows(keystroke.NewTypist(seed).Type(20*window), window) {
			for k, v := range f.raw(w) {
				if !math.IsNaN(v) {
					sum[k] += v
					sq[k] += v * v
					cnt[k]++
				}
			}
		}
	}
	for k := range sum {
		if cnt[k] < 2 {
			continue
		}
		m := sum[k] / cnt[k]
		v := sq[k]/cnt[k] - m*m
		f.mean[k] = m
		if v > 1e-8 {
			f.scale[k] = math.Sqrt(v)
		}
	}
	return f, nil
}

func (f *feduvFeatures) len() int { return f.dense + f.roots }

// raw returns the features before standardisation (NaN: missing).
func (f *feduvFeatures) raw(w models.Window) []float64 {
	out := make([]float64, f.len())
	copy(out, w.Dense)
	clear(f.sum)
	clear(f.count)
	for _, e := range w.Events {
		if e.Bucket < 0 || e.Bucket >= len(f.root) || f.root[e.Bucket] < 0 || math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			continue
		}
		f.sum[f.root[e.Bucket]] += e.Value
		f.count[f.root[e.Bucket]]++
	}
	for r := range f.sum {
		out[f.dense+r] = math.NaN()
		if f.count[r] > 0 {
			out[f.dense+r] = f.sum[r] / float64(f.count[r])
		}
	}
	return out
}

func (f *feduvFeatures) of(w models.Window) []float64 {
	x := f.raw(w)
	for k, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			x[k] = 0
			continue
		}
		x[k] = max(-5, min(5, (v-f.mean[k])/f.scale[k]))
	}
	return x
}

// feduvCodeword is device i's secret codeword: Dim random signs / sqrt(Dim) from the device's
// own seed (a random binary code).
func feduvCodeword(dim int, seed, device uint64) []float64 {
	b := seedBytes(seed, device)
	b[16] = 0xc0 // domain: FedUV codewords
	rng := rand.New(rand.NewChaCha8(b))
	c := make([]float64, dim)
	for k := range c {
		c[k] = 1 / math.Sqrt(float64(dim))
		if rng.Uint64()&1 == 1 {
			c[k] = -c[k]
		}
	}
	return c
}

func codeMinDistance(codes [][]float64) int {
	words := make([][]uint64, len(codes))
	for i, c := range codes {
		words[i] = make([]uint64, (len(c)+63)/64)
		for k, v := range c {
			if v > 0 {
				words[i][k/64] |= 1 << (k % 64)
			}
		}
	}
	best := math.MaxInt
	for i := range words {
		for j := i + 1; j < len(words); j++ {
			d := 0
			for k := range words[i] {
				d += bits.OnesCount64(words[i][k] ^ words[j][k])
			}
			best = min(best, d)
		}
	}
	return best
}

// feduvNet is the embedding network in -> hidden (tanh) -> dim (tanh) on one flat parameter
// slice: W1 (hidden x in), b1, W2 (dim x hidden), b2.
type feduvNet struct{ in, hidden, dim int }

func (n feduvNet) numParams() int { return n.hidden*n.in + n.hidden + n.dim*n.hidden + n.dim }

func (n feduvNet) init(seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0xfed0))
	p := make([]float64, n.numParams())
	a1 := math.Sqrt(6 / float64(n.in+n.hidden))
	for k := 0; k < n.hidden*n.in; k++ {
		p[k] = a1 * (2*rng.Float64() - 1)
	}
	o := n.hidden*n.in + n.hidden
	a2 := math.Sqrt(6 / float64(n.hidden+n.dim))
	for k := 0; k < n.dim*n.hidden; k++ {
		p[o+k] = a2 * (2*rng.Float64() - 1)
	}
	return p
}

// feduvBuf holds one forward and backward pass's intermediates.
type feduvBuf struct{ h, e, dz2, dh []float64 }

func (n feduvNet) buf() *feduvBuf {
	return &feduvBuf{h: make([]float64, n.hidden), e: make([]float64, n.dim), dz2: make([]float64, n.dim), dh: make([]float64, n.hidden)}
}

// forward fills b.h and b.e with the hidden layer and the embedding of x.
func (n feduvNet) forward(p, x []float64, b *feduvBuf) {
	w1, b1 := p[:n.hidden*n.in], p[n.hidden*n.in:n.hidden*n.in+n.hidden]
	o := n.hidden*n.in + n.hidden
	w2, b2 := p[o:o+n.dim*n.hidden], p[o+n.dim*n.hidden:]
	for j := 0; j < n.hidden; j++ {
		s := b1[j]
		row := w1[j*n.in : (j+1)*n.in]
		for k, v := range x {
			s += row[k] * v
		}
		b.h[j] = math.Tanh(s)
	}
	for j := 0; j < n.dim; j++ {
		s := b2[j]
		row := w2[j*n.hidden : (j+1)*n.hidden]
		for k, v := range b.h {
			s += row[k] * v
		}
		b.e[j] = math.Tanh(s)
	}
}

// lossGrad returns the loss max(0, margin - cos(f(x), c)) and adds scale times its gradient to g.
func (n feduvNet) lossGrad(p, x, c []float64, margin, scale float64, g []float64, b *feduvBuf) float64 {
	n.forward(p, x, b)
	var dot, ee, cc float64
	for k, e := range b.e {
		dot += e * c[k]
		ee += e * e
		cc += c[k] * c[k]
	}
	ne, nc := math.Sqrt(ee)+1e-12, math.Sqrt(cc)
	cos := dot / (ne * nc)
	loss := margin - cos
	if loss <= 0 || g == nil {
		return max(loss, 0)
	}
	// d loss / d e = -(c/(|e||c|) - cos e/|e|^2), through tanh.
	for k, e := range b.e {
		de := -(c[k]/(ne*nc) - cos*e/(ne*ne))
		b.dz2[k] = scale * de * (1 - e*e)
	}
	o := n.hidden*n.in + n.hidden
	w2 := p[o : o+n.dim*n.hidden]
	gw1, gb1 := g[:n.hidden*n.in], g[n.hidden*n.in:o]
	gw2, gb2 := g[o:o+n.dim*n.hidden], g[o+n.dim*n.hidden:]
	clear(b.dh)
	for j, dz := range b.dz2 {
		gb2[j] += dz
		row, grow := w2[j*n.hidden:(j+1)*n.hidden], gw2[j*n.hidden:(j+1)*n.hidden]
		for k, h := range b.h {
			grow[k] += dz * h
			b.dh[k] += row[k] * dz
		}
	}
	for j, h := range b.h {
		dz := b.dh[j] * (1 - h*h)
		if dz == 0 {
			continue
		}
		gb1[j] += dz
		grow := gw1[j*n.in : (j+1)*n.in]
		for k, v := range x {
			grow[k] += dz * v
		}
	}
	return loss
}

// meanLoss is the mean loss over every device's rows.
func (n feduvNet) meanLoss(p []float64, devices [][][]float64, codes [][]float64, margin float64) float64 {
	b := n.buf()
	var sum float64
	var rows int
	for i, d := range devices {
		for _, x := range d {
			sum += n.lossGrad(p, x, codes[i], margin, 0, nil, b)
			rows++
		}
	}
	return sum / float64(max(rows, 1))
}

type feduvTrainConfig struct {
	Rounds, LocalSteps       int
	LearningRate, ServerRate float64
	Margin                   float64
	// Noise is z (0: plaintext, no clipping); Clip is C.
	Noise, Clip float64
	Workers     int
}

type feduvReport struct{ lossStart, lossEnd, clippedShare float64 }

// feduvTrain runs federated averaging: every round every device starts from the global
// parameters, takes LocalSteps full-batch gradient steps on its own rows towards its own
// codeword, and sends its delta. Plaintext: the global model moves by ServerRate times the mean
// delta. Private: each delta is clipped to C (dp.ClipL2), Gaussian noise of standard deviation
// zC is added to their sum (dp.AddGaussian), and the sum is divided by the fixed number of
// devices (dp.FixedDenominatorMean).
func feduvTrain(ctx context.Context, net feduvNet, init []float64, devices [][][]float64, codes [][]float64, cfg feduvTrainConfig, seed uint64, progress func(done, total int)) ([]float64, feduvReport, error) {
	var rep feduvReport
	global := slices.Clone(init)
	np := len(global)
	n := len(devices)
	deltas := make([][]float64, n)
	for i := range deltas {
		deltas[i] = make([]float64, np)
	}
	rep.lossStart = net.meanLoss(global, devices, codes, cfg.Margin)
	clipped := 0
	for r := 0; r < cfg.Rounds; r++ {
		clips := make([]bool, n)
		err := forEach(ctx, n, cfg.Workers, nil, func(i int) error {
			local := deltas[i]
			copy(local, global)
			g := make([]float64, np)
			b := net.buf()
			rows := devices[i]
			for s := 0; s < cfg.LocalSteps; s++ {
				clear(g)
				for _, x := range rows {
					net.lossGrad(local, x, codes[i], cfg.Margin, 1/float64(len(rows)), g, b)
				}
				for k := range local {
					local[k] -= cfg.LearningRate * g[k]
				}
			}
			for k := range local {
				local[k] -= global[k]
			}
			if cfg.Noise > 0 {
				norm, err := dp.ClipL2(local, cfg.Clip)
				if err != nil {
					return fmt.Errorf("eval: FedUV round %d, device %d: %w", r+1, i, err)
				}
				clips[i] = norm > cfg.Clip
			}
			return nil
		})
		if err != nil {
			return nil, rep, err
		}
		sum := make([]float64, np)
		for i, d := range deltas {
			if clips[i] {
				clipped++
			}
			for k, v := range d {
				sum[k] += v
			}
		}
		if cfg.Noise > 0 {
			b := seedBytes(seed, uint64(r))
			b[16] = 0xc1 // domain: FedUV round noise
			if err := dp.AddGaussian(sum, cfg.Noise*cfg.Clip, rand.NewChaCha8(b)); err != nil {
				return nil, rep, err
			}
		}
		if err := dp.FixedDenominatorMean(sum, float64(n)); err != nil {
			return nil, rep, err
		}
		for k := range global {
			global[k] += cfg.ServerRate * sum[k]
		}
		if progress != nil {
			progress(r+1, cfg.Rounds)
		}
	}
	rep.lossEnd = net.meanLoss(global, devices, codes, cfg.Margin)
	rep.clippedShare = float64(clipped) / float64(n*cfg.Rounds)
	return global, rep, nil
}

// feduvScores embeds every window; a user's reference is the mean embedding of their enrolment
// rows, a trial's score the cosine distance to it (higher: less like the user). Genuine trials
// of user i are their own test rows; impostor trials every other user's test rows, in user
// order (the order of scoreUsers). enrolDist[i] is user i's mean leave-one-out enrolment
// distance (each enrolment row against the mean of the others).
func feduvScores(net feduvNet, p []float64, enrol, test [][][]float64) (gen, imp [][]float64, enrolDist []float64) {
	b := net.buf()
	return feduvScoresOf(func(x []float64) []float64 {
		net.forward(p, x, b)
		return slices.Clone(b.e)
	}, enrol, test)
}

// feduvScoresOf is feduvScores with any embedding.
func feduvScoresOf(embedRow func(x []float64) []float64, enrol, test [][][]float64) (gen, imp [][]float64, enrolDist []float64) {
	embed := func(rows [][]float64) [][]float64 {
		out := make([][]float64, len(rows))
		for k, x := range rows {
			out[k] = embedRow(x)
		}
		return out
	}
	n := len(enrol)
	refs := make([][]float64, n)
	tests := make([][][]float64, n)
	enrolDist = make([]float64, n)
	for i := range enrol {
		e := embed(enrol[i])
		refs[i] = meanRows(e, -1)
		for k := range e {
			enrolDist[i] += cosDist(e[k], meanRows(e, k)) / float64(len(e))
		}
		tests[i] = embed(test[i])
	}
	gen, imp = make([][]float64, n), make([][]float64, n)
	for i := range refs {
		for _, t := range tests[i] {
			gen[i] = append(gen[i], cosDist(t, refs[i]))
		}
		for j := range tests {
			if j == i {
				continue
			}
			for _, t := range tests[j] {
				imp[i] = append(imp[i], cosDist(t, refs[i]))
			}
		}
	}
	return gen, imp, enrolDist
}

// meanRows is the mean of rows but row skip (-1: none); with nothing left, the mean of all.
func meanRows(rows [][]float64, skip int) []float64 {
	m := make([]float64, len(rows[0]))
	n := 0
	for k, r := range rows {
		if k == skip && len(rows) > 1 {
			continue
		}
		for j, v := range r {
			m[j] += v
		}
		n++
	}
	for j := range m {
		m[j] /= float64(n)
	}
	return m
}

func cosDist(a, b []float64) float64 {
	var ab, aa, bb float64
	for k := range a {
		ab += a[k] * b[k]
		aa += a[k] * a[k]
		bb += b[k] * b[k]
	}
	return 1 - ab/(math.Sqrt(aa*bb)+1e-12)
}
