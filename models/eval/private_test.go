package eval

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// syntheticEnrolments are synthetic typists' enrolments: devices for tests without data sets.
func syntheticEnrolments(t *testing.T, n int) ([]string, []models.Enrolment) {
	t.Helper()
	var ex keystroke.TimingExtractor
	var tm keystroke.Timings
	ids := make([]string, n)
	enrol := make([]models.Enrolment, n)
	for i := range enrol {
		ids[i] = "typist"
		for _, w := range keystroke.Windows(keystroke.NewTypist(uint64(1000+i)).Type(250), 50) {
			if ex.Extract(&tm, w) == nil {
				enrol[i].Windows = append(enrol[i].Windows, models.Window{Dense: slices.Clone(tm.Summary), Events: slices.Clone(tm.Events)})
			}
		}
	}
	return ids, enrol
}

// TestPrivatePopulation runs the simulated population round at several budgets: the noise is
// what the accountant and dp.DeviceNoiseStd say, the spend stays within the budget, and less
// noise leaves more buckets modelled.
func TestPrivatePopulation(t *testing.T) {
	layout := keystroke.NewLayout()
	ids, enrol := syntheticEnrolments(t, 60)
	ref, err := keystrokeReference(layout, 50)
	if err != nil {
		t.Fatal(err)
	}
	buckets := map[float64]int{}
	for _, eps := range []float64{2, 8, math.Inf(1)} {
		cfg := PrivacyConfig{Epsilon: eps}
		if err := cfg.validate(); err != nil {
			t.Fatal(err)
		}
		pop, rep, err := privatePopulation(context.Background(), layout, ref, ids, enrol, cfg, 1, 2)
		if err != nil {
			t.Fatalf("epsilon %v: %v", eps, err)
		}
		if pop == nil || rep.Buckets == 0 {
			t.Fatalf("epsilon %v: no bucket modelled", eps)
		}
		buckets[eps] = rep.Buckets
		if math.IsInf(eps, 1) {
			if rep.DeviceNoise != 0 || rep.NoiseMultiplier != 0 {
				t.Errorf("epsilon inf: noise %v, z %v", rep.DeviceNoise, rep.NoiseMultiplier)
			}
			continue
		}
		if !(rep.EpsilonSpent <= eps && rep.EpsilonSpent > 0.99*eps) {
			t.Errorf("epsilon %v: spent %v", eps, rep.EpsilonSpent)
		}
		want, err := dp.DeviceNoiseStd(rep.NoiseMultiplier, rep.Clip, rep.MMin, rep.TDev)
		if err != nil || rep.DeviceNoise != want {
			t.Errorf("epsilon %v: device noise %v, dp.DeviceNoiseStd %v (%v)", eps, rep.DeviceNoise, want, err)
		}
		if rep.MMin != 54 || rep.TDev != dp.DefaultToleratedDevices(54) {
			t.Errorf("m_min %d, t_dev %d for 60 devices", rep.MMin, rep.TDev)
		}
	}
	if !(buckets[2] <= buckets[8] && buckets[8] <= buckets[math.Inf(1)]) {
		t.Errorf("buckets modelled by epsilon: %v", buckets)
	}
}

// TestCentringRound checks the two-round budget split and that a centring round without public
// centres finds the broad buckets' means.
func TestCentringRound(t *testing.T) {
	z1, z2, spent, err := calibrateNoise(8, 1e-5, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if !(spent <= 8 && spent > 7.99) || math.Abs(z1*z1*0.1-z2*z2*0.9) > 1e-9*z1*z1 {
		t.Fatalf("z %v and %v spend %v", z1, z2, spent)
	}
	layout := keystroke.NewLayout()
	ids, enrol := syntheticEnrolments(t, 60)
	pop, rep, err := privatePopulation(context.Background(), layout, nil, ids, enrol, PrivacyConfig{Epsilon: math.Inf(1), Delta: 1e-5, MinShare: 0.9, CenterShare: 0.1}, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Buckets == 0 || pop == nil {
		t.Fatal("nothing modelled after a centring round")
	}
}

// TestMouseDeployable runs the mouse development protocol with the deployable federation at
// epsilon 8 (a simulated fleet of 500 devices), with small models.
func TestMouseDeployable(t *testing.T) {
	skipWithout(t, balabitDir)
	cfg := MouseConfig{Dir: balabitDir, Development: true, Seed: 1, MaxRows: 300, Privacy: PrivacyConfig{Epsilon: 8}}
	cfg.Model.Train.Epochs = 5
	res, err := Mouse(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := res.Private
	t.Logf("development AUC deployable (epsilon 8) %.4f [%.4f, %.4f], alone %.4f; z %.3f, centring z %.3f, %d buckets",
		res.Federated.AUC, res.Federated.AUCCI.Lo, res.Federated.AUCCI.Hi, res.Alone.AUC, p.NoiseMultiplier, p.CentringNoise, p.Buckets)
	if p == nil || p.Fleet != 500 || p.Devices != 10 || !(p.EpsilonSpent <= 8) {
		t.Fatalf("private rounds %+v", p)
	}
	if !(res.Federated.AUC > 0.8) {
		t.Fatalf("deployable AUC %.3f: far below what these models reach", res.Federated.AUC)
	}
}
