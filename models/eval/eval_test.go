package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/vigilauth/vigil/models"
)

const (
	aaltoDir   = "../../../shared/datasets/aalto-keystrokes"
	balabitDir = "../../../shared/datasets/balabit-mouse"
)

func skipWithout(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("data set not available at %s: %v", dir, err)
	}
}

// TestKeystrokesSmall runs the keystroke evaluation on 30 participants. The thresholds are loose
// (the full data set gives a few percent) but fail when the models or the protocol break.
func TestKeystrokesSmall(t *testing.T) {
	skipWithout(t, aaltoDir)
	res, err := Keystrokes(context.Background(), KeystrokeConfig{Dir: aaltoDir, Users: 30, Seed: 1, Fed: FedConfig{Rounds: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Users < 25 || res.GenuineTrials < 100 || res.ImpostorTrials < res.GenuineTrials*20 {
		t.Fatalf("%d users, %d genuine and %d impostor trials", res.Users, res.GenuineTrials, res.ImpostorTrials)
	}
	if res.Read.Rows == 0 || res.Read.Kept > res.Read.Rows {
		t.Fatalf("read %d rows, kept %d", res.Read.Rows, res.Read.Kept)
	}
	fed, alone := res.Federated, res.Alone
	t.Logf("federated EER mean %.4f pooled %.4f; alone %.4f %.4f", fed.EERMean, fed.EERPooled, alone.EERMean, alone.EERPooled)
	if !(fed.EERMean < 0.15 && fed.EERPooled < 0.2 && alone.EERMean < 0.25) {
		t.Fatalf("EER federated %.3f/%.3f, alone %.3f/%.3f: far above what these models reach", fed.EERMean, fed.EERPooled, alone.EERMean, alone.EERPooled)
	}
	if len(fed.UserEER) != res.Users || fed.FAR > 0.5 || fed.FRR > 0.5 {
		t.Fatalf("%d user EERs; FAR %.3f FRR %.3f at the users' thresholds", len(fed.UserEER), fed.FAR, fed.FRR)
	}
}

// TestKeystrokesBackground checks the disjoint protocol: participants who train the federation
// are not evaluated, and the federation still helps.
func TestKeystrokesBackground(t *testing.T) {
	skipWithout(t, aaltoDir)
	res, err := Keystrokes(context.Background(), KeystrokeConfig{Dir: aaltoDir, Users: 40, Background: 15, Seed: 1, Fed: FedConfig{Rounds: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Users < 20 || res.Users > 25 {
		t.Fatalf("%d users evaluated of 40 with 15 in the background", res.Users)
	}
	if !(res.Federated.EERMean < 0.15) {
		t.Fatalf("federated EER %.3f with a disjoint background", res.Federated.EERMean)
	}
	if _, err := Keystrokes(context.Background(), KeystrokeConfig{Dir: aaltoDir, Users: 10, Background: 9}); err == nil {
		t.Error("a background leaving one user accepted")
	}
}

// TestMouseDevelopment runs the mouse evaluation's development protocol with small models.
func TestMouseDevelopment(t *testing.T) {
	skipWithout(t, balabitDir)
	cfg := MouseConfig{Dir: balabitDir, Development: true, Seed: 1, MaxRows: 300, Fed: FedConfig{Rounds: 2}}
	cfg.Model.Train.Epochs = 5
	res, err := Mouse(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("development AUC federated %.4f, alone %.4f; %d sessions", res.Federated.AUC, res.Alone.AUC, res.Sessions)
	if res.Users != 10 || res.Genuine == 0 || res.Impostor < res.Genuine {
		t.Fatalf("%d users, %d genuine and %d impostor sessions", res.Users, res.Genuine, res.Impostor)
	}
	if !(res.Federated.AUC > 0.8) {
		t.Fatalf("federated AUC %.3f: far below what these models reach", res.Federated.AUC)
	}
}

func TestBadConfigs(t *testing.T) {
	ctx := context.Background()
	if _, err := Keystrokes(ctx, KeystrokeConfig{}); err == nil {
		t.Error("no directory accepted")
	}
	if _, err := Keystrokes(ctx, KeystrokeConfig{Dir: t.TempDir()}); err == nil {
		t.Error("empty directory accepted")
	}
	if _, err := Keystrokes(ctx, KeystrokeConfig{Dir: aaltoDir, Window: 3}); err == nil {
		t.Error("window of 3 accepted")
	}
	if _, err := Mouse(ctx, MouseConfig{Dir: t.TempDir()}); err == nil {
		t.Error("empty mouse directory accepted")
	}
}

// TestFedAvgLearns checks that federated averaging over devices holding different parts of
// the data lowers the reconstruction error of all of it.
func TestFedAvgLearns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	spec := models.Spec{Layers: []int{6, 4, 2, 4, 6}, Activation: models.Tanh}
	var all [][]float64
	devices := make([][][]float64, 8)
	for d := range devices {
		for i := 0; i < 20; i++ {
			a := rng.NormFloat64()
			row := []float64{a, -a, 0.5 * a, a * a / 2, 0.1 * float64(d), 1}
			devices[d] = append(devices[d], row)
			all = append(all, row)
		}
	}
	init, _ := spec.InitParams(1)
	global, err := fedAvg(context.Background(), spec, init, devices, FedConfig{Rounds: 5, PerRound: 4, LocalEpochs: 5}, models.TrainConfig{BatchSize: 8, LearningRate: 1e-2}, 1, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	mean := func(p []float64) float64 {
		e, err := models.GraphErrors(spec, p, all)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for _, v := range e {
			s += v / float64(len(e))
		}
		return s
	}
	if before, after := mean(init), mean(global); !(after < 0.5*before) {
		t.Fatalf("reconstruction error %v before federated training, %v after", before, after)
	}
}

// TestLogisticTemperature checks the fit against the exact answer for Gaussian classes: with
// genuine N(0, 1) and impostor N(2, 1), the log-odds are 2(s - 1), so T = 1/2 at offset 1.
func TestLogisticTemperature(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	gen, imp := make([]float64, 20000), make([]float64, 20000)
	for i := range gen {
		gen[i], imp[i] = rng.NormFloat64(), 2+rng.NormFloat64()
	}
	if got := logisticTemperature(gen, imp, 1); math.Abs(got-0.5) > 0.03 {
		t.Fatalf("temperature %v, want 0.5", got)
	}
}

func TestForEachStopsAtError(t *testing.T) {
	boom := errors.New("boom")
	done := make([]bool, 100)
	err := forEach(context.Background(), 100, 2, nil, func(i int) error {
		done[i] = true
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if done[99] {
		t.Error("jobs kept running after the error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := forEach(ctx, 10, 2, nil, func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}
