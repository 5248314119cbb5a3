package coordinator_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/modelstest"
	"github.com/vigilauth/vigil/models/mouse"
)

// deviceData is a device's local data with typing and mouse enrolments.
type deviceData struct {
	typistData
	mouse []models.Window
}

func (d deviceData) WindowsOf(featureSet string) []models.Window {
	if featureSet == mouse.FeatureSet {
		return d.mouse
	}
	return d.windows
}

const mouseModel = "mouse-population"

// mouseRounds runs, over real gRPC in plaintext, the rounds of two populations (typing's around
// its public reference, then mouse's, which first learns its reference in a round of its own)
// and a training round, with a privacy ledger. It returns the configuration, the coordinator,
// the mouse reference encoding and the devices' mouse windows.
func mouseRounds(t *testing.T) (coordinator.Config, *fixture, *models.ReferenceStats, [][]models.Window) {
	t.Helper()
	const devices = 6
	typing := populationStats(t, 30)
	rs, err := models.NewReferenceStats(mouse.NewLayout())
	if err != nil {
		t.Fatal(err)
	}
	cfg := coordinator.Config{Rounds: 1, DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: devices, RoundTimeout: 30 * time.Second, InitSeed: 1,
		Populations: []*coordinator.PopulationRounds{
			{Stats: typing, Window: 50},
			{Reference: rs, StatsConfig: models.PopulationStatsConfig{Clip: 100}, ModelName: mouseModel},
		}}
	cfg.Privacy.LedgerPath = filepath.Join(t.TempDir(), "model.ledger")
	f := start(t, cfg)
	var cfgs []client.Config
	data := make([]deviceData, devices)
	for i := range devices {
		data[i] = deviceData{typistData{rows: typistRows(t, uint64(i+1), 20), windows: typistWindows(t, uint64(i+1), 5)}, mouse.NewMover(uint64(i + 1)).Windows(120)}
		cfgs = append(cfgs, client.Config{DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: f.api, Data: data[i],
			Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i)})
	}
	stop := runDevices(t, f.coord, cfgs)
	err = f.coord.Run(context.Background())
	stop()
	if err != nil {
		t.Fatal(err)
	}

	var mouseWindows [][]models.Window
	for _, d := range data {
		mouseWindows = append(mouseWindows, d.mouse)
	}
	return cfg, f, rs, mouseWindows
}

// TestMousePopulationRoundsAreTheDevicesSums runs, over real gRPC in plaintext, the rounds of two
// populations: typing's around its public reference, then mouse's, which first learns its
// reference in a round of its own; then a training round. The mouse population released is
// exactly what decoding the devices' sums gives, relative to the reference decoded from their
// reference statistics, and carries that reference: the live rounds and the evaluation's
// simulation (models/eval, privatePopulation) are one code path.
func TestMousePopulationRoundsAreTheDevicesSums(t *testing.T) {
	cfg, f, rs, mouseWindows := mouseRounds(t)
	want, _ := modelstest.MousePopulation(t, models.PopulationStatsConfig{Clip: 100}, mouseWindows)
	ref := *want.Reference
	stats, err := models.NewPopulationStats(rs.Layout(), ref, models.PopulationStatsConfig{Clip: 100})
	if err != nil {
		t.Fatal(err)
	}

	pop := f.coord.PopulationOf(mouseModel)
	if pop.Meta.Version != 1 || pop.Meta.Round != 3 || pop.Meta.FeatureSet != mouse.FeatureSet || f.coord.Population().Meta.Round != 1 || f.coord.Global().Meta.Round < 4 {
		t.Fatalf("mouse population %+v, typing's from round %d, global from round %d: want typing's population, mouse's reference, mouse's population, training",
			pop.Meta, f.coord.Population().Meta.Round, f.coord.Global().Meta.Round)
	}
	stored, err := coordinator.LoadModel(context.Background(), f.store, mouseModel, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := models.DecodePopulation(rs.Layout(), stored.Population)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reference == nil {
		t.Fatal("the mouse population does not carry its reference")
	}
	if err := rs.CheckReference(*got.Reference); err != nil {
		t.Fatal(err)
	}
	same := func(x, y float64) bool {
		return math.IsNaN(x) == math.IsNaN(y) && (math.IsNaN(x) || math.Abs(x-y) <= 1e-9*max(1, math.Abs(y)))
	}
	for b := range ref.Center {
		if !same(got.Reference.Center[b], ref.Center[b]) || !same(got.Reference.Scale[b], ref.Scale[b]) {
			t.Fatalf("bucket %d: released reference %v/%v, the exact sum decodes to %v/%v", b, got.Reference.Center[b], got.Reference.Scale[b], ref.Center[b], ref.Scale[b])
		}
	}
	modelled := 0
	for b := range want.Mean {
		if !same(got.Mean[b], want.Mean[b]) || !same(got.Within[b], want.Within[b]) {
			t.Fatalf("bucket %d: released %v/%v, the exact sum decodes to %v/%v", b, got.Mean[b], got.Within[b], want.Mean[b], want.Within[b])
		}
		if !math.IsNaN(want.Mean[b]) {
			modelled++
		}
	}
	if modelled < 50 {
		t.Fatalf("the mouse population models %d buckets", modelled)
	}
	if err := stats.CheckPopulation(got); err != nil {
		t.Fatalf("a device's check refuses the honest population: %v", err)
	}
	t.Logf("mouse population: %d of %d buckets from %d devices", modelled, rs.Layout().NumBuckets(), len(mouseWindows))

	// A restart finds the learnt reference in the store and goes on from it.
	cfg.Store, cfg.Spec, cfg.FeatureSet, cfg.Privacy.InsecureNoDP, cfg.Rounds = f.store, spec, keystroke.TimingFeatureSet, true, 2
	c2, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	if v := c2.PopulationOf(mouseModel).Meta.Version; v != 1 {
		t.Fatalf("after a restart the mouse population is v%d", v)
	}
}

// TestAttackMouseReferenceReplacedInStore performs what anyone writing to the coordinator's store
// could: replace the learnt mouse reference, scales widened tenfold (within the encoding's
// bounds, so that devices would take it), with parameters and metadata consistent with each
// other, so that the next statistics round is relative to it. The ledger's hash of the round
// that learnt the reference refuses the start.
func TestAttackMouseReferenceReplacedInStore(t *testing.T) {
	cfg, f, rs, mouseWindows := mouseRounds(t)
	want, _ := modelstest.MousePopulation(t, models.PopulationStatsConfig{Clip: 100}, mouseWindows)
	ref := *want.Reference
	cfg.Store, cfg.Spec, cfg.FeatureSet, cfg.Privacy.InsecureNoDP, cfg.Rounds = f.store, spec, keystroke.TimingFeatureSet, true, 2
	storedRef, err := coordinator.LoadModel(context.Background(), f.store, mouseModel+"-reference", 1)
	if err != nil {
		t.Fatal(err)
	}
	widened := models.Reference{Center: ref.Center, Scale: slices.Clone(ref.Scale)}
	for b := range widened.Scale {
		widened.Scale[b] = min(10*widened.Scale[b], 20)
	}
	if err := rs.CheckReference(widened); err != nil {
		t.Fatalf("the widened reference is outside the bounds a device checks: %v", err)
	}
	raw := models.EncodeParams(models.ReferenceParams(widened))
	sum := sha256.Sum256(raw)
	meta := storedRef.Meta
	meta.ParamsSHA256 = hex.EncodeToString(sum[:])
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("models/%s/v%010d/", meta.Name, meta.Version)
	for name, data := range map[string][]byte{models.ArtifactParams: raw, models.ArtifactMeta: metaJSON} {
		if err := f.store.Put(context.Background(), prefix+name, data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := coordinator.LoadModel(context.Background(), f.store, meta.Name, meta.Version); err != nil {
		t.Fatalf("the attack's reference is not self-consistent: %v", err)
	}
	if _, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{}); !errors.Is(err, coordinator.ErrLedgerBehind) {
		t.Fatalf("a coordinator started on a replaced reference: %v", err)
	}
}
