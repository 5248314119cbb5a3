package updater

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/modelstest"
	"github.com/vigilauth/vigil/models/mouse"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

const testPopulationModel = "keystroke-population"

// testPopulation is a population model of l learnt from a few synthetic typists.
func testPopulation(t testing.TB, l *models.Layout, seed uint64) *models.Population {
	t.Helper()
	var sum []float64
	for s := seed; s < seed+5; s++ {
		var ws []models.Window
		var ex keystroke.TimingExtractor
		var tm keystroke.Timings
		for _, w := range keystroke.Windows(keystroke.NewTypist(s).Type(500), 50) {
			if ex.Extract(&tm, w) == nil {
				ws = append(ws, tm.Window())
			}
		}
		c, err := models.Contribution(l, ws)
		if err != nil {
			t.Fatal(err)
		}
		if sum == nil {
			sum = make([]float64, len(c))
		}
		for i := range c {
			sum[i] += c[i]
		}
	}
	pop, err := models.NewPopulation(l, sum, models.PopulationConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return pop
}

// populationFiles returns the files of a population release as the coordinator writes them:
// the round's sum as params.f64, meta.json of kind models.KindPopulation, population.f64.
func populationFiles(t testing.TB, version uint64, pop *models.Population) map[string][]byte {
	t.Helper()
	sum := []float64{1, 2, 3, float64(version)}
	raw := models.EncodeParams(sum)
	digest := sha256.Sum256(raw)
	meta, err := json.Marshal(Meta{
		Name: testPopulationModel, Version: version, Created: t0, FeatureSet: pop.Layout.Name, Kind: models.KindPopulation,
		NumParams: len(sum), ParamsSHA256: hex.EncodeToString(digest[:]),
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{models.ArtifactParams: raw, models.ArtifactMeta: meta, models.ArtifactPopulation: models.EncodePopulation(pop)}
}

// publishPopulation publishes pop as version of the population model, with files besides it.
func (tr *trust) publishPopulation(t testing.TB, st store.Store, version uint64, files map[string][]byte) {
	t.Helper()
	b, err := release.Build(release.Spec{
		Model: testPopulationModel, Version: version, Parent: version - 1, Created: t0, Expires: t0.AddDate(0, 1, 0),
		Training: release.Training{Rounds: version, Devices: 5, Epsilon: 1, Delta: 1e-5},
		Files:    files, LatestExpires: t0.Add(6 * time.Hour),
	}, tr.release, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, st, b)
}

// A device following a population model installs each release that verifies and decodes for its
// layout at once (there is no reconstruction error to compare in shadow), keeps the one replaced
// for Rollback, reloads it after a restart, and rejects for good a release for another layout.
func TestPopulationReleases(t *testing.T) {
	ctx := context.Background()
	tr, st := newTrust(t), newFS(t)
	l := keystroke.NewLayout()
	d := newDevice(t, tr, st)
	d.cfg.Model, d.cfg.FeatureSet, d.cfg.Population = testPopulationModel, keystroke.TimingFeatureSet, l
	u := d.open()

	tr.publishPopulation(t, st, 1, populationFiles(t, 1, testPopulation(t, l, 10)))
	if ev, err := u.Poll(ctx); err != nil || ev.Kind != Installed || ev.Version != 1 {
		t.Fatalf("first population release: %+v, %v", ev, err)
	}
	second := testPopulation(t, l, 20)
	tr.publishPopulation(t, st, 2, populationFiles(t, 2, second))
	if ev, err := u.Poll(ctx); err != nil || ev.Kind != Installed || ev.Version != 2 || ev.Replaced != 1 {
		t.Fatalf("second population release: %+v, %v", ev, err)
	}
	if cur := u.Current(); cur.Population == nil || !bytes.Equal(models.EncodePopulation(cur.Population), models.EncodePopulation(second)) {
		t.Fatalf("current population is not the second release")
	}
	if p := u.Previous(); p == nil || p.Version != 1 {
		t.Fatalf("previous %+v, want v1 kept for rollback", p)
	}

	// A population of another layout is genuine but cannot run here: rejected for good.
	other := testPopulation(t, l, 30)
	other.Layout = &models.Layout{}
	*other.Layout = *l
	other.Layout.Name = "other-features"
	files := populationFiles(t, 3, other)
	files[models.ArtifactMeta] = populationFiles(t, 3, testPopulation(t, l, 30))[models.ArtifactMeta]
	tr.publishPopulation(t, st, 3, files)
	if ev, err := u.Poll(ctx); err != nil || ev.Kind != Rejected || !errors.Is(ev.Reason, ErrIncompatible) {
		t.Fatalf("population for another layout: %+v, %v", ev, err)
	}

	u = d.open() // restart
	if cur := u.Current(); cur == nil || cur.Version != 2 || cur.Population == nil {
		t.Fatalf("after a restart: current %+v", cur)
	}
	if ev, err := u.Rollback(); err != nil || ev.Version != 1 {
		t.Fatalf("rollback: %+v, %v", ev, err)
	}
}

// TestAttackPoisonedPopulationRelease performs what a coordinator holding the online release key
// could: it signs and publishes a population whose within-user variances are inflated a
// hundredfold, under which an impostor's timings pass for the victim's. A device with the rounds'
// encoding (Config.PopulationBounds) refuses it for good and keeps the honest population it runs;
// the honest releases before and after it install.
func TestAttackPoisonedPopulationRelease(t *testing.T) {
	ctx := context.Background()
	tr, st := newTrust(t), newFS(t)
	l := keystroke.NewLayout()
	ref, err := keystroke.Reference(l, 50)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := models.NewPopulationStats(l, ref, models.PopulationStatsConfig{Clip: 30})
	if err != nil {
		t.Fatal(err)
	}
	// An honest population, as a round decodes it from five typists' statistics.
	sum := make([]float64, enc.Len())
	for s := uint64(40); s < 45; s++ {
		v, err := enc.Contribute(keystroke.TimingWindows(keystroke.NewTypist(s).Type(500), 50))
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			sum[i] += v[i]
		}
	}
	honest, err := enc.Decode(sum, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, tr, st)
	d.cfg.Model, d.cfg.FeatureSet, d.cfg.Population, d.cfg.PopulationBounds = testPopulationModel, keystroke.TimingFeatureSet, l, enc
	u := d.open()

	tr.publishPopulation(t, st, 1, populationFiles(t, 1, honest))
	if ev, err := u.Poll(ctx); err != nil || ev.Kind != Installed || ev.Version != 1 {
		t.Fatalf("honest population: %+v, %v", ev, err)
	}
	poisoned := *honest
	poisoned.Within = append([]float64(nil), honest.Within...)
	for b := range poisoned.Within {
		poisoned.Within[b] *= 100
	}
	tr.publishPopulation(t, st, 2, populationFiles(t, 2, &poisoned))
	ev, err := u.Poll(ctx)
	if err != nil || ev.Kind != Rejected || !errors.Is(ev.Reason, ErrIncompatible) || !errors.Is(ev.Reason, models.ErrBadData) {
		t.Fatalf("poisoned population: %+v, %v; want it rejected as outside the encoding's bounds", ev, err)
	}
	if cur := u.Current(); cur == nil || cur.Version != 1 {
		t.Fatalf("after the poisoned release the device runs %+v, want v1", cur)
	}
	tr.publishPopulation(t, st, 3, populationFiles(t, 3, honest))
	if ev, err := u.Poll(ctx); err != nil || ev.Kind != Installed || ev.Version != 3 {
		t.Fatalf("the next honest population: %+v, %v", ev, err)
	}
}

// TestAttackPoisonedMousePopulationRelease performs what a coordinator holding the online release
// key could do to a population whose reference its own rounds learnt (mouse): widen the
// reference's scales a hundredfold so that variances inflated as much pass the bounds taken
// relative to it, or publish a population without its reference. A device with the rounds'
// encodings (models.LearntBounds) refuses both and keeps the honest population.
func TestAttackPoisonedMousePopulationRelease(t *testing.T) {
	ctx := context.Background()
	tr, st := newTrust(t), newFS(t)
	cfg := models.PopulationStatsConfig{Clip: 100}
	honest, rs := modelstest.MousePopulation(t, cfg, modelstest.MouseUsers(100, 60, 61, 62, 63, 64, 65, 66, 67))
	ref := *honest.Reference

	d := newDevice(t, tr, st)
	d.cfg.Model, d.cfg.FeatureSet, d.cfg.Population = testPopulationModel, mouse.FeatureSet, rs.Layout()
	d.cfg.PopulationBounds = models.LearntBounds{Reference: rs, Stats: cfg}
	u := d.open()
	tr.publishPopulation(t, st, 1, populationFiles(t, 1, honest))
	if ev, err := u.Poll(ctx); err != nil || ev.Kind != Installed || ev.Version != 1 {
		t.Fatalf("honest mouse population: %+v, %v", ev, err)
	}

	wide := *honest
	wideRef := models.Reference{Center: ref.Center, Scale: append([]float64(nil), ref.Scale...)}
	wide.Reference = &wideRef
	wide.Within = append([]float64(nil), honest.Within...)
	for b := range wide.Within {
		wideRef.Scale[b] *= 100
		wide.Within[b] *= 100 * 100
	}
	bare := *honest
	bare.Reference = nil
	for i, poisoned := range []*models.Population{&wide, &bare} {
		v := uint64(2 + i)
		tr.publishPopulation(t, st, v, populationFiles(t, v, poisoned))
		ev, err := u.Poll(ctx)
		if err != nil || ev.Kind != Rejected || !errors.Is(ev.Reason, ErrIncompatible) || !errors.Is(ev.Reason, models.ErrBadData) {
			t.Fatalf("poisoned mouse population v%d: %+v, %v; want it rejected", v, ev, err)
		}
		t.Logf("v%d refused: %v", v, ev.Reason)
	}
	if cur := u.Current(); cur == nil || cur.Version != 1 {
		t.Fatalf("after the poisoned releases the device runs %+v, want v1", cur)
	}
	tr.publishPopulation(t, st, 4, populationFiles(t, 4, honest))
	if ev, err := u.Poll(ctx); err != nil || ev.Kind != Installed || ev.Version != 4 {
		t.Fatalf("the next honest mouse population: %+v, %v", ev, err)
	}
}
