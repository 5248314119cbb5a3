package updater_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// Example wires the two ends: the coordinator queues signed releases in an outbox that
// publishes them to the region's store, and a device updater pinned to the root of trust
// installs the first, shadows the second on live windows, and promotes it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "vigil-updater-example")
	defer os.RemoveAll(dir)

	// The organisation's root of trust; the device image pins its envelope.
	rootKey, _ := sig.GenerateKey(nil)
	releaseKey, _ := sig.GenerateKey(nil)
	timestampKey, _ := sig.GenerateKey(nil)
	root, _ := release.NewRoot(1, time.Now().AddDate(1, 0, 0), release.RootRoles{
		Root:      release.RoleSpec{Keys: []*sig.PublicKey{rootKey.Public()}, Threshold: 1},
		Release:   release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1},
		Timestamp: release.RoleSpec{Keys: []*sig.PublicKey{timestampKey.Public()}, Threshold: 1},
		// The roles these tests do not exercise share the release key.
		Trustees: release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1}, Enrolment: release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1}, Privacy: release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1},
	})
	pinned, _ := release.Sign(root, rootKey)

	// Coordinator side: one region, an outbox in front of it.
	region, _ := store.NewFS(filepath.Join(dir, "region-eu"))
	outbox, err := release.NewOutbox(release.OutboxConfig{
		Dir: filepath.Join(dir, "outbox"), Model: "keystroke-ae",
		Regions:    []release.Region{{Name: "eu", Store: region}},
		ReleaseKey: releaseKey, TimestampKey: timestampKey,
	})
	if err != nil {
		panic(err)
	}
	spec := models.Spec{Layers: []int{4, 3, 4}, Activation: models.Tanh}
	submit := func(version uint64, params []float64) {
		if err := outbox.Submit(ctx, release.Spec{Model: "keystroke-ae", Version: version, Parent: version - 1,
			Files: modelFiles(version, spec, params)}); err != nil {
			panic(err)
		}
		if err := outbox.Flush(ctx); err != nil { // a coordinator runs outbox.Run instead
			panic(err)
		}
	}

	// Device side.
	u, err := updater.New(updater.Config{
		Store: region, Model: "keystroke-ae", FeatureSet: "example-features", Dir: filepath.Join(dir, "device"),
		PinnedRoot: pinned, ShadowWindows: 3,
	})
	if err != nil {
		panic(err)
	}
	worse, _ := spec.InitParams(1)
	for i := len(worse) - 4; i < len(worse); i++ {
		worse[i] += 1 // output biases off by one
	}
	better, _ := spec.InitParams(1)
	submit(1, worse)
	ev, _ := u.Poll(ctx)
	fmt.Println(ev.Kind, ev.Version)
	submit(2, better)
	ev, _ = u.Poll(ctx)
	fmt.Println(ev.Kind, ev.Version)
	for _, w := range [][]float64{{0.1, 0, 0.2, 0}, {0, 0.1, 0, 0.2}, {0.2, 0.2, 0, 0}} {
		if ev, _ := u.Observe(w); ev.Kind != updater.NoChange {
			fmt.Println(ev.Kind, ev.Version, "replacing", ev.Replaced)
		}
	}
	// Output:
	// installed 1
	// staged 2
	// promoted 2 replacing 1
}

// modelFiles encodes a model as the coordinator publishes it.
func modelFiles(version uint64, spec models.Spec, params []float64) map[string][]byte {
	raw := make([]byte, 8*len(params))
	for i, v := range params {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	sum := sha256.Sum256(raw)
	meta, _ := json.Marshal(updater.Meta{
		Name: "keystroke-ae", Version: version, Created: time.Now().UTC(), FeatureSet: "example-features",
		Layers: spec.Layers, Activation: string(spec.Activation), NumParams: len(params), ParamsSHA256: hex.EncodeToString(sum[:]),
	})
	return map[string][]byte{models.ArtifactParams: raw, models.ArtifactMeta: meta}
}
