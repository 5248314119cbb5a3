package eval

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// TestExplorePrivate compares population components on one load of the data, scoring only the
// federated mode; it runs only with VIGIL_EXPLORE set (participants to load, in file name
// order), since it takes minutes. VIGIL_VARIANTS lists, comma-separated:
//
//   - exact: NewPopulation from the exact sum of raw statistics, no global autoencoder;
//   - pooledvar, pooledwithin, pooledbetween: exact, with event buckets' variances replaced by
//     their kind's (event-weighted);
//   - epsE:C::B:W:R:M: the deployable round at total epsilon E (inf: no noise), clip C, backoff
//     (b) or not (n), weights W (five, slash-separated), Relevance R, NoiseMargin M; empty
//     fields take the defaults.
func TestExplorePrivate(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIGIL_EXPLORE"))
	if n == 0 {
		t.Skip("VIGIL_EXPLORE not set")
	}
	skipWithout(t, aaltoDir)
	ctx := context.Background()
	files, _ := keystroke.AaltoFiles(aaltoDir)
	files = files[:n]
	cfg := KeystrokeConfig{Dir: aaltoDir, SkipAlone: true, Seed: 1}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	users, _, err := loadKeystrokeUsers(ctx, files, cfg.Window, cfg.Enrol, cfg.Stride, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	layout := keystroke.NewLayout()
	ids, enrol := keyEnrolments(users)
	run := func(name string, g *models.Global) {
		trials, err := scoreUsers(ctx, layout, g, users, cfg)
		if err != nil {
			t.Fatal(err)
		}
		o, err := summarise(trials, modeFederated)
		if err != nil {
			t.Fatal(err)
		}
		usable := 0
		if g != nil {
			for _, m := range g.Population.Mean {
				if !math.IsNaN(m) {
					usable++
				}
			}
		}
		t.Logf("%-40s mean %.2f%% pooled %.2f%% profile %.2f/%.2f FAR %.2f FRR %.2f buckets %d", name, 100*o.EERMean, 100*o.EERPooled,
			100*o.Detectors["profile"].EERMean, 100*o.Detectors["profile"].EERPooled, 100*o.FAR, 100*o.FRR, usable)
	}
	for _, v := range strings.Split(os.Getenv("VIGIL_VARIANTS"), ",") {
		switch {
		case strings.HasPrefix(v, "fit"):
			// fitE: the deployable population at epsilon E from every loaded device; the
			// threshold placement fitted to the first 100 participants' trials.
			eps, _ := strconv.ParseFloat(strings.TrimPrefix(v, "fit"), 64)
			pc := PrivacyConfig{Epsilon: eps}
			g, _, err := FederatePrivately(ctx, layout, ids, enrol, pc, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			dev := users[:min(100, len(users))]
			trials, err := scoreUsers(ctx, layout, g, dev, cfg)
			if err != nil {
				t.Fatal(err)
			}
			o, err := summarise(trials, modeFederated)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: fitted on %d development participants: %+v (pooled EER %.4f); FAR %.4f FRR %.4f at the current defaults", v, len(dev), o.Fitted, o.FittedEER, o.FAR, o.FRR)
			f := o.Fitted
			for _, off := range []float64{f.Offset, f.Offset + 0.1, f.Offset + 0.2, f.Offset + 0.3, f.Offset + 0.4} {
				var fa, fr, ni, ng float64
				for _, tr := range trials {
					th := off + f.Slope*(tr.level[modeFederated]-f.Typical)
					for _, sc := range tr.gen[modeFederated][detCombined] {
						ng++
						if sc >= th {
							fr++
						}
					}
					for _, sc := range tr.imp[modeFederated][detCombined] {
						ni++
						if sc < th {
							fa++
						}
					}
				}
				t.Logf("  offset %.3f: FAR %.4f FRR %.4f on the development participants", off, fa/ni, fr/ng)
			}
		case v == "exact":
			sum := make([]float64, models.ContributionLen(layout))
			for _, e := range enrol {
				c, _ := models.Contribution(layout, e.Windows)
				for i := range c {
					sum[i] += c[i]
				}
			}
			pop, err := models.NewPopulation(layout, sum, models.PopulationConfig{})
			if err != nil {
				t.Fatal(err)
			}
			run("exact population, no global AE", &models.Global{Population: pop})
		case v == "pooledvar" || v == "pooledbetween" || v == "pooledwithin":
			sum := make([]float64, models.ContributionLen(layout))
			for _, e := range enrol {
				c, _ := models.Contribution(layout, e.Windows)
				for i := range c {
					sum[i] += c[i]
				}
			}
			pop, err := models.NewPopulation(layout, sum, models.PopulationConfig{})
			if err != nil {
				t.Fatal(err)
			}
			nk := len(layout.Kinds) + 1
			w, wi, be := make([]float64, nk), make([]float64, nk), make([]float64, nk)
			for b, m := range pop.Mean {
				if math.IsNaN(m) {
					continue
				}
				g := layout.BucketKind[b] + 1
				if b >= layout.DenseBase {
					continue
				}
				w[g] += pop.Freq[b]
				wi[g] += pop.Freq[b] * pop.Within[b]
				be[g] += pop.Freq[b] * pop.Between[b]
			}
			for b, m := range pop.Mean {
				if math.IsNaN(m) || b >= layout.DenseBase {
					continue
				}
				g := layout.BucketKind[b] + 1
				if v != "pooledbetween" {
					pop.Within[b] = wi[g] / w[g]
				}
				if v != "pooledwithin" {
					pop.Between[b] = be[g] / w[g]
				}
			}
			run(v, &models.Global{Population: pop})
		case strings.HasPrefix(v, "eps"):
			// epsN[:clipC]
			parts := strings.Split(strings.TrimPrefix(v, "eps"), ":")
			eps, _ := strconv.ParseFloat(parts[0], 64)
			pc := PrivacyConfig{Epsilon: eps}
			if len(parts) > 1 {
				pc.Stats.Clip, _ = strconv.ParseFloat(parts[1], 64)
			}
			if err := pc.validate(); err != nil {
				t.Fatal(err)
			}
			if len(parts) > 3 {
				pc.Stats.Backoff = parts[3] == "b"
			}
			if len(parts) > 5 && parts[5] != "" {
				pc.Stats.Relevance, _ = strconv.ParseFloat(parts[5], 64)
			}
			if len(parts) > 6 {
				pc.Stats.NoiseMargin, _ = strconv.ParseFloat(parts[6], 64)
			}
			if len(parts) > 4 && parts[4] != "" {
				for i, f := range strings.Split(parts[4], "/") {
					pc.Stats.Weight[i], _ = strconv.ParseFloat(f, 64)
				}
			}
			ref, err := keystrokeReference(layout, 50)
			if err != nil {
				t.Fatal(err)
			}
			pop, rep, err := privatePopulation(ctx, layout, ref, ids, enrol, pc, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: z %.3f spent %.3f, clip %v, noise %v, m_min %d t_dev %d", v, rep.NoiseMultiplier, rep.EpsilonSpent, rep.Clip, rep.DeviceNoise, rep.MMin, rep.TDev)
			run(v, &models.Global{Population: pop})
		}
	}
}
