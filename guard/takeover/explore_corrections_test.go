package takeover

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
)

// TestExploreCorrections fits the recalibration of guard/behaviour's keystroke anomaly by the
// window's corrections (editEvidence and editShare there) on the first 100 (development)
// participants only, as `vigil eval takeover --users 100 --epsilon 8` federates them: each
// participant's model scores, every 5 keystrokes, the windows of their own held-out typing and
// of ten other participants'; the fit is the logistic regression of "someone else's window" on
// the log-odds of the model's anomaly (coefficient 1) and the count of corrections centred at
// their share over all windows, the two classes weighted equally. Set VIGIL_EXPLORE_CORRECTIONS
// to run it; VIGIL_SEED sets the seed (default 1).
func TestExploreCorrections(t *testing.T) {
	if os.Getenv("VIGIL_EXPLORE_CORRECTIONS") == "" {
		t.Skip("VIGIL_EXPLORE_CORRECTIONS not set")
	}
	seed, _ := strconv.ParseUint(os.Getenv("VIGIL_SEED"), 10, 64)
	if seed == 0 {
		seed = 1
	}
	dir := "../../../shared/datasets/aalto-keystrokes"
	ctx := context.Background()
	cfg := Config{Dir: dir, Seed: seed, Users: 100, Privacy: eval.PrivacyConfig{Epsilon: 8}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	files, err := keystroke.AaltoFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	ps, _, err := loadParticipants(ctx, files[:cfg.Users], &cfg)
	if err != nil {
		t.Fatal(err)
	}
	layout := keystroke.NewLayout()
	ids := make([]string, len(ps))
	enrol := make([]models.Enrolment, len(ps))
	for i, p := range ps {
		ids[i], enrol[i] = p.id, p.enrol
	}
	global, _, err := eval.FederatePrivately(ctx, layout, ids, enrol, cfg.Privacy, cfg.Seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	// scored is one window: the log-odds of the model's anomaly and its corrections.
	type scored struct {
		logit float64
		edits int
	}
	own, other := make([][]scored, len(ps)), make([][]scored, len(ps))
	err = forEach(ctx, len(ps), 0, nil, func(i int) error {
		mc := cfg.Model
		mc.Train.Seed, mc.Forest.Seed = cfg.Seed+uint64(i), cfg.Seed+uint64(i)
		m, err := behaviour.FitKeystrokes(ctx, layout, global, ps[i].enrol, mc)
		if err != nil {
			return err
		}
		var ex keystroke.TimingExtractor
		var tm keystroke.Timings
		score := func(ks []keystroke.Keystroke, out *[]scored) {
			for end := cfg.Window; end <= len(ks); end += cfg.Hop {
				w := ks[end-cfg.Window : end]
				if ex.Extract(&tm, w) != nil {
					continue
				}
				a, _ := m.Score(tm.Window())
				a = math.Min(math.Max(a, 1e-12), 1-1e-12)
				e := 0
				for _, k := range w {
					if k.Code == keystroke.CodeBackspace || k.Code == 46 || k.Code >= 37 && k.Code <= 40 {
						e++
					}
				}
				*out = append(*out, scored{math.Log(a / (1 - a)), e})
			}
		}
		score(ps[i].held, &own[i])
		rng := rand.New(rand.NewPCG(cfg.Seed, 0x7a4e0000+uint64(i)))
		for _, j := range impostors(rng, len(ps), i, 10) {
			score(ps[j].held, &other[i])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var genuine, impostor []scored
	for i := range ps {
		genuine, impostor = append(genuine, own[i]...), append(impostor, other[i]...)
	}
	var edits int
	for _, s := range append(append([]scored(nil), genuine...), impostor...) {
		edits += s.edits
	}
	n := len(genuine) + len(impostor)
	mean := float64(edits) / float64(n)
	// loss is the class-balanced log loss with the log-odds moved by -gamma per correction
	// beyond the mean.
	loss := func(gamma float64) float64 {
		var g, o float64
		for _, s := range genuine {
			g += softplus(s.logit - gamma*(float64(s.edits)-mean))
		}
		for _, s := range impostor {
			o += softplus(-(s.logit - gamma*(float64(s.edits)-mean)))
		}
		return g/float64(len(genuine)) + o/float64(len(impostor))
	}
	best := 0.0
	for g := 0.0; g <= 0.5; g += 0.01 {
		if loss(g) < loss(best) {
			best = g
		}
	}
	t.Logf("seed %d: %d windows of the owners', %d of others'; corrections per window %.3f (share %.4f of %d keystrokes)",
		seed, len(genuine), len(impostor), mean, mean/float64(cfg.Window), cfg.Window)
	t.Logf("evidence per correction %.2f: log loss %.5f (%.5f without)", best, loss(best), loss(0))
}

// softplus is log(1+e^x) without overflow.
func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}
