package coordinator_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// typistData is a device's local data as the agent keeps it: summary rows for training the
// global model and its enrolment windows for population statistics.
type typistData struct {
	rows    [][]float64
	windows []models.Window
}

func (d typistData) Features() [][]float64    { return d.rows }
func (d typistData) Windows() []models.Window { return d.windows }

// typistWindows returns n windows of 50 keystrokes typed by the synthetic typist seed.
func typistWindows(t testing.TB, seed uint64, n int) []models.Window {
	t.Helper()
	w := keystroke.TimingWindows(keystroke.NewTypist(seed+1000).Type(50*n+100), 50)
	if len(w) < n {
		t.Fatalf("typist %d gave %d windows, want %d", seed, len(w), n)
	}
	return w[:n]
}

func populationStats(t testing.TB, clip float64) *models.PopulationStats {
	t.Helper()
	l := keystroke.NewLayout()
	ref, err := keystroke.Reference(l, 50)
	if err != nil {
		t.Fatal(err)
	}
	s, err := models.NewPopulationStats(l, ref, models.PopulationStatsConfig{Clip: clip})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runDevices starts one client per device on f's coordinator and returns a function that stops
// them.
func runDevices(t *testing.T, f *coordinator.Coordinator, cfgs []client.Config) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, cfg := range cfgs {
		a, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	return func() { cancel(); wg.Wait() }
}

// plaintextPopulationRound runs a population round and a training round of six devices over
// real gRPC in plaintext without noise, and returns the coordinator, the encoding and the exact
// sum of the devices' contributions.
func plaintextPopulationRound(t *testing.T) (*fixture, *models.PopulationStats, []float64) {
	t.Helper()
	const devices = 6
	stats := populationStats(t, 30)
	f := start(t, coordinator.Config{Rounds: 1, DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: devices, RoundTimeout: 30 * time.Second, InitSeed: 1,
		Populations: []*coordinator.PopulationRounds{{Stats: stats, Window: 50}}})
	var cfgs []client.Config
	exact := make([]float64, stats.Len())
	for i := range devices {
		d := typistData{rows: typistRows(t, uint64(i+1), 20), windows: typistWindows(t, uint64(i+1), 5)}
		v, err := stats.Contribute(d.windows)
		if err != nil {
			t.Fatal(err)
		}
		for j := range v {
			exact[j] += v[j]
		}
		cfgs = append(cfgs, client.Config{DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: f.api, Data: d,
			Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i)})
	}
	stop := runDevices(t, f.coord, cfgs)
	err := f.coord.Run(context.Background())
	stop()
	if err != nil {
		t.Fatal(err)
	}
	return f, stats, exact
}

// TestAttackPopulationSwappedInStore performs what anyone writing to the coordinator's store
// could: replace a released population.f64 with another (here the same sum decoded as if noisy).
// The coordinator would sign and publish it again at its next start; loading it is refused.
func TestAttackPopulationSwappedInStore(t *testing.T) {
	f, stats, exact := plaintextPopulationRound(t)
	pop := f.coord.Population()
	swapped, err := stats.Decode(exact, 5)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("models/%s/v%010d/%s", pop.Meta.Name, pop.Meta.Version, models.ArtifactPopulation)
	if err := f.store.Put(context.Background(), key, models.EncodePopulation(swapped)); err != nil {
		t.Fatal(err)
	}
	if _, err := coordinator.LoadModel(context.Background(), f.store, pop.Meta.Name, pop.Meta.Version); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("a swapped population.f64 loaded: %v", err)
	}
}

// TestPopulationRoundIsTheDevicesSum runs a population round over real gRPC in plaintext and
// checks that the released population is exactly what decoding the sum of the devices'
// contributions gives: the live round and the evaluation's simulation are one code path.
func TestPopulationRoundIsTheDevicesSum(t *testing.T) {
	f, stats, exact := plaintextPopulationRound(t)
	pop := f.coord.Population()
	if pop.Meta.Version != 1 || pop.Meta.Round != 1 || pop.Meta.Kind != models.KindPopulation || f.coord.Global().Meta.Version != 2 {
		t.Fatalf("population %+v, global v%d: want the population from round 1 and a trained global from round 2", pop.Meta, f.coord.Global().Meta.Version)
	}
	stored, err := coordinator.LoadModel(context.Background(), f.store, pop.Meta.Name, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := models.DecodePopulation(stats.Layout(), stored.Population)
	if err != nil {
		t.Fatal(err)
	}
	want, err := stats.Decode(exact, 0)
	if err != nil {
		t.Fatal(err)
	}
	modelled := 0
	for b := range want.Mean {
		if math.IsNaN(want.Mean[b]) != math.IsNaN(got.Mean[b]) || !math.IsNaN(want.Mean[b]) && math.Abs(want.Mean[b]-got.Mean[b]) > 1e-9 {
			t.Fatalf("bucket %d: released mean %v, the exact sum decodes to %v", b, got.Mean[b], want.Mean[b])
		}
		if !math.IsNaN(want.Mean[b]) {
			modelled++
		}
	}
	if modelled < 100 {
		t.Fatalf("the population models %d buckets; six typists describe more", modelled)
	}
}

// TestPopulationRoundEncryptedAndPrivate runs a population round and a training round with
// threshold encryption, device signatures and differential privacy, and checks that both are
// charged to one ledger, the population round with every device asked (q = 1) at its own z and
// clip norm.
func TestPopulationRoundEncryptedAndPrivate(t *testing.T) {
	// Eight devices' statistics survive only little noise (see TestPopulationWaitsForAFleet):
	// z = 0.1 is a test of the mechanism, not a budget anyone would choose.
	const devices, z = 8, 0.1
	stats := populationStats(t, 30)
	state := t.TempDir()
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: devices, MinUpdates: 3, MinEnrolled: devices,
		RoundTimeout: 60 * time.Second, StateDir: state,
		Privacy:     coordinator.Privacy{ClipNorm: 1, NoiseMultiplier: 1, Budget: dp.Budget{Epsilon: 1000, Delta: 1e-5}},
		Populations: []*coordinator.PopulationRounds{{Stats: stats, Window: 50, NoiseMultiplier: z}}}, true)
	var cfgs []client.Config
	for i := range devices {
		id := fmt.Sprintf("dev-%d", i)
		keys, err := client.NewSignedKeys(f.api, f.keys.RootEnvelope, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := typistData{rows: typistRows(t, uint64(i+1), 20), windows: typistWindows(t, uint64(i+1), 5)}
		cfgs = append(cfgs, client.Config{DeviceID: id, Coordinator: f.api, Data: d, Identity: f.identity(t, id),
			Sealer: client.NewThresholdSealer(id, keys), FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i)})
	}
	stop := runDevices(t, f.coord, cfgs)
	err := f.coord.Run(context.Background())
	stop()
	if err != nil {
		t.Fatal(err)
	}
	pop := f.coord.Population()
	if pop.Meta.Round != 1 || f.coord.Global().Meta.Round != 2 {
		t.Fatalf("population from round %d, global from round %d; want 1 and 2", pop.Meta.Round, f.coord.Global().Meta.Round)
	}
	if p := pop.Meta.Privacy; p == nil || !p.DifferentialPrivacy || p.NoiseMultiplier != z || p.ClipNorm != 30 || p.SamplingRate != 1 || p.MinParticipants != devices {
		t.Fatalf("population privacy %+v; want z %v, C 30, q 1, m_min %d", p, z, devices)
	}
	if _, err := models.DecodePopulation(stats.Layout(), pop.Population); err != nil {
		t.Fatal(err)
	}
	snap, err := dp.ReadLedger(filepath.Join(state, "model.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Entries) != 2 {
		t.Fatalf("ledger has %d entries, want one per round", len(snap.Entries))
	}
	e := snap.Entries[0]
	if e.Round != 1 || e.SamplingRate != 1 || e.NoiseMultiplier != z || e.ModelSHA256 != pop.Meta.ParamsSHA256 {
		t.Fatalf("population round's ledger entry %+v", e)
	}
	// Composition is the ledger's: the total is more than either round alone.
	total, _ := snap.Spent()
	if !(total > e.Epsilon) {
		t.Fatalf("ledger total epsilon %v, population round alone %v", total, e.Epsilon)
	}
}

// TestPopulationWaitsForAFleet checks that a fleet too small for the population rounds' noise
// trains without them: four devices' statistics under z = 2 would model no bucket, so the
// budget is not spent on them.
func TestPopulationWaitsForAFleet(t *testing.T) {
	const devices = 4
	f := start(t, coordinator.Config{Rounds: 2, DevicesPerRound: devices, MinUpdates: 3, MinEnrolled: devices, RoundTimeout: 30 * time.Second,
		InitSeed: 1, StateDir: t.TempDir(),
		Privacy:     coordinator.Privacy{ClipNorm: 1, NoiseMultiplier: 1, Budget: dp.Budget{Epsilon: 100, Delta: 1e-5}},
		Populations: []*coordinator.PopulationRounds{{Stats: populationStats(t, 30), Window: 50, NoiseMultiplier: 2}}})
	var cfgs []client.Config
	for i := range devices {
		d := typistData{rows: typistRows(t, uint64(i+1), 20), windows: typistWindows(t, uint64(i+1), 5)}
		cfgs = append(cfgs, client.Config{DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: f.api, Data: d,
			Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i)})
	}
	stop := runDevices(t, f.coord, cfgs)
	err := f.coord.Run(context.Background())
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if v := f.coord.Population().Meta.Version; v != 0 || f.coord.Global().Meta.Round != 2 {
		t.Fatalf("population v%d, global from round %d; want no population and training rounds 1 and 2", v, f.coord.Global().Meta.Round)
	}
}

// TestRestartResumesPopulationRound stops the coordinator after two of three devices'
// population statistics were acknowledged: the restarted one resumes the population round
// (its kind, length and m_min come from the state file), takes the third, and releases exactly
// the population the three contributions decode to.
func TestRestartResumesPopulationRound(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	ctx := context.Background()
	stats := populationStats(t, 30)
	devices := []string{"a", "b", "c"}
	contrib := map[string][]float64{}
	exact := make([]float64, stats.Len())
	for i, d := range devices {
		v, err := stats.Contribute(typistWindows(t, uint64(i+1), 5))
		if err != nil {
			t.Fatal(err)
		}
		contrib[d] = v
		for j := range v {
			exact[j] += v[j]
		}
	}
	submit := func(api vigilv1.CoordinatorClient, tk *vigilv1.Task, d string) error {
		if tk.GetKind() != vigilv1.TaskKind_TASK_KIND_POPULATION_STATS || tk.GetPrivacy().GetClipNorm() != stats.Clip() {
			t.Fatalf("%s's task %v: want a population task at C = %v", d, tk, stats.Clip())
		}
		_, err := api.SubmitUpdate(ctx, &vigilv1.SubmitUpdateRequest{DeviceId: d, Round: tk.GetRound(), Nonce: tk.GetNonce(), BaseVersion: tk.GetBaseVersion(),
			Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: uint64(stats.Len()), Values: contrib[d]}})
		return err
	}

	api, _, stop := serveWith(t, storeDir, stateDir, &coordinator.PopulationRounds{Stats: stats, Window: 50})
	enrol(t, api, devices...)
	ta, tb, tc := waitTask(t, api, "a"), waitTask(t, api, "b"), waitTask(t, api, "c")
	for d, tk := range map[string]*vigilv1.Task{"a": ta, "b": tb} {
		if err := submit(api, tk, d); err != nil {
			t.Fatal(err)
		}
	}
	stop()

	api, c, _ := serveWith(t, storeDir, stateDir, &coordinator.PopulationRounds{Stats: stats, Window: 50})
	tc2 := waitTask(t, api, "c")
	if tc2.GetRound() != tc.GetRound() || string(tc2.GetNonce()) != string(tc.GetNonce()) {
		t.Fatalf("after the restart c's task is round %d, want the resumed round %d with the same nonce", tc2.GetRound(), tc.GetRound())
	}
	if err := submit(api, tc2, "c"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Population().Meta.Version == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the resumed population round was not released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := models.DecodePopulation(stats.Layout(), c.Population().Population)
	if err != nil {
		t.Fatal(err)
	}
	want, err := stats.Decode(exact, 0)
	if err != nil {
		t.Fatal(err)
	}
	for b := range want.Mean {
		if math.IsNaN(want.Mean[b]) != math.IsNaN(got.Mean[b]) || !math.IsNaN(want.Mean[b]) && math.Abs(want.Mean[b]-got.Mean[b]) > 1e-9 {
			t.Fatalf("bucket %d: released mean %v, the three contributions decode to %v", b, got.Mean[b], want.Mean[b])
		}
	}
}
