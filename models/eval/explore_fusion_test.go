package eval

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/metrics"
)

// TestExploreFusion measures detector weights for keystroke models against the deployable
// population at epsilon 8 from every loaded device, on the first 100 (development)
// participants only; it runs with VIGIL_EXPLORE_FUSION set (participants to load).
func TestExploreFusion(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIGIL_EXPLORE_FUSION"))
	if n == 0 {
		t.Skip("VIGIL_EXPLORE_FUSION not set")
	}
	skipWithout(t, aaltoDir)
	ctx := context.Background()
	files, _ := keystroke.AaltoFiles(aaltoDir)
	files = files[:n]
	seed, _ := strconv.ParseUint(os.Getenv("VIGIL_SEED"), 10, 64)
	if seed == 0 {
		seed = 1
	}
	cfg := KeystrokeConfig{Dir: aaltoDir, SkipAlone: true, Seed: seed}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	users, _, err := loadKeystrokeUsers(ctx, files, cfg.Window, cfg.Enrol, cfg.Stride, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	layout := keystroke.NewLayout()
	ids, enrol := keyEnrolments(users)
	pc := PrivacyConfig{Epsilon: 8}
	pc.Stats.Backoff = os.Getenv("VIGIL_BACKOFF") != ""
	g, _, err := FederatePrivately(ctx, layout, ids, enrol, pc, seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	dev := users[:min(100, len(users))]
	trials, err := scoreUsers(ctx, layout, g, dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var typical float64
	for _, tr := range trials {
		typical += tr.level[modeFederated] / float64(len(trials))
	}
	combine := func(w models.Weights, s [numDetectors][]float64) []float64 {
		out := make([]float64, len(s[detProfile]))
		for i := range out {
			out[i] = w.Profile*s[detProfile][i] + w.Autoencoder*s[detAutoencoder][i] + w.Forest*s[detForest][i]
		}
		return out
	}
	var lines strings.Builder
	for _, a := range []float64{0.3, 0.5} {
		for _, f := range []float64{0.15, 0.3, 0.5} {
			w := models.Weights{Profile: 1, Autoencoder: a, Forest: f}
			var mean float64
			var ls []levelScores
			for _, tr := range trials {
				gs, is := combine(w, tr.gen[modeFederated]), combine(w, tr.imp[modeFederated])
				e, _ := metrics.EER(gs, is)
				mean += e / float64(len(trials))
				ls = append(ls, levelScores{tr.level[modeFederated], gs, is})
			}
			fit, pooled, _ := fitThreshold(ls)
			fmt.Fprintf(&lines, "\n  ae %.2f forest %.2f: mean %.2f%% pooled(fitted slope) %.2f%%  fit %+v", a, f, 100*mean, 100*pooled, fit)
		}
	}
	t.Log(lines.String())
}
