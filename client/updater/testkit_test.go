package updater

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testModel    = "keystroke-ae"
	testFeatures = "test-features-v1"
)

var testSpec = models.Spec{Layers: []int{6, 4, 2, 4, 6}, Activation: models.Tanh}

// trust is a root of trust for tests.
type trust struct {
	root, release, timestamp *sig.PrivateKey
	rootDoc                  *release.Root
	rootEnv                  []byte
}

func newKey(t testing.TB) *sig.PrivateKey {
	t.Helper()
	k, err := sig.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTrust(t testing.TB) *trust {
	t.Helper()
	tr := &trust{root: newKey(t), release: newKey(t), timestamp: newKey(t)}
	tr.rootDoc, tr.rootEnv = makeRoot(t, 1, tr.root, tr.release, tr.timestamp, tr.root)
	return tr
}

func makeRoot(t testing.TB, version uint64, root, rel, ts *sig.PrivateKey, by ...*sig.PrivateKey) (*release.Root, []byte) {
	t.Helper()
	r, err := release.NewRoot(version, t0.AddDate(1, 0, 0), release.RootRoles{
		Root:      release.RoleSpec{Keys: []*sig.PublicKey{root.Public()}, Threshold: 1},
		Release:   release.RoleSpec{Keys: []*sig.PublicKey{rel.Public()}, Threshold: 1},
		Timestamp: release.RoleSpec{Keys: []*sig.PublicKey{ts.Public()}, Threshold: 1},
		// The roles these tests do not exercise share the release key.
		Trustees: release.RoleSpec{Keys: []*sig.PublicKey{rel.Public()}, Threshold: 1}, Enrolment: release.RoleSpec{Keys: []*sig.PublicKey{rel.Public()}, Threshold: 1}, Privacy: release.RoleSpec{Keys: []*sig.PublicKey{rel.Public()}, Threshold: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var signers []release.Signer
	for _, k := range by {
		signers = append(signers, k)
	}
	env, err := release.Sign(r, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return r, env
}

// modelFiles returns params.f64 and meta.json of a release as the coordinator writes them.
func modelFiles(t testing.TB, version uint64, spec models.Spec, params []float64, featureSet string) map[string][]byte {
	t.Helper()
	raw := make([]byte, 8*len(params))
	for i, v := range params {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	sum := sha256.Sum256(raw)
	meta, err := json.MarshalIndent(Meta{
		Name: testModel, Version: version, Parent: version - 1, Round: version - 1, Created: t0,
		FeatureSet: featureSet, Layers: spec.Layers, Activation: string(spec.Activation),
		NumParams: len(params), ParamsSHA256: hex.EncodeToString(sum[:]),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{models.ArtifactParams: raw, models.ArtifactMeta: meta}
}

// bundle builds a signed release of params as version.
func (tr *trust) bundle(t testing.TB, version uint64, files map[string][]byte) *release.Bundle {
	t.Helper()
	b, err := release.Build(release.Spec{
		Model: testModel, Version: version, Parent: version - 1, Created: t0, Expires: t0.AddDate(0, 1, 0),
		Training: release.Training{Rounds: version, Devices: 3, Epsilon: 1, Delta: 1e-5},
		Files:    files, LatestExpires: t0.Add(6 * time.Hour),
	}, tr.release, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publish(t testing.TB, st store.Store, b *release.Bundle) {
	t.Helper()
	p, err := release.NewPublisher(release.PublisherConfig{Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), []release.Region{{Name: "test", Store: st}}, b); err != nil {
		t.Fatal(err)
	}
}

// publishModel publishes params as version to st.
func (tr *trust) publishModel(t testing.TB, st store.Store, version uint64, params []float64) {
	t.Helper()
	publish(t, st, tr.bundle(t, version, modelFiles(t, version, testSpec, params, testFeatures)))
}

// shifted returns base with every output bias moved by d: reconstruction error grows with d.
func shifted(base []float64, d float64) []float64 {
	p := append([]float64(nil), base...)
	out := testSpec.Layers[len(testSpec.Layers)-1]
	for i := len(p) - out; i < len(p); i++ {
		p[i] += d
	}
	return p
}

func baseParams(t testing.TB) []float64 {
	t.Helper()
	p, err := testSpec.InitParams(1)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// windows returns n feature windows of the "user".
func windows(n int) [][]float64 {
	r := rand.New(rand.NewPCG(7, 7))
	out := make([][]float64, n)
	for i := range out {
		w := make([]float64, testSpec.InputDim())
		for j := range w {
			w[j] = 0.3 * r.NormFloat64()
		}
		out[i] = w
	}
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// device is an updater over a state directory that the test can reopen.
type device struct {
	t   testing.TB
	cfg Config
	clk *clock
}

func newDevice(t testing.TB, tr *trust, st store.Store) *device {
	t.Helper()
	clk := &clock{t: t0.Add(time.Hour)}
	return &device{t: t, clk: clk, cfg: Config{
		Store: st, Model: testModel, FeatureSet: testFeatures, Dir: t.TempDir(), PinnedRoot: tr.rootEnv,
		ShadowWindows: 10, Now: clk.now,
	}}
}

func (d *device) open() *Updater {
	d.t.Helper()
	u, err := New(d.cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	return u
}

func newFS(t testing.TB) *store.FS {
	t.Helper()
	s, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPoll(t testing.TB, u *Updater, want EventKind, version uint64) Event {
	t.Helper()
	ev, err := u.Poll(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	if ev.Kind != want || (version != 0 && ev.Version != version) {
		t.Fatalf("poll: %v v%d (reason %v), want %v v%d", ev.Kind, ev.Version, ev.Reason, want, version)
	}
	return ev
}

// observeAll feeds windows until an event other than NoChange, and returns it.
func observeAll(t testing.TB, u *Updater, ws [][]float64) Event {
	t.Helper()
	for _, w := range ws {
		ev, err := u.Observe(w)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != NoChange {
			return ev
		}
	}
	return Event{}
}

// storeFS is a filesystem store the test rewrites as an attacker would.
type storeFS struct{ *store.FS }

func (s *storeFS) put(t testing.TB, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, data); err != nil {
		t.Fatal(err)
	}
}

func (s *storeFS) rewrite(t testing.TB, key string, f func([]byte) []byte) {
	t.Helper()
	data, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	s.put(t, key, f(data))
}

// editManifest edits the payload of a published manifest, keeping its signatures.
func (s *storeFS) editManifest(t testing.TB, version uint64, edit func(map[string]any)) {
	t.Helper()
	s.rewrite(t, release.ManifestKey(testModel, version), func(data []byte) []byte {
		env, err := release.ParseEnvelope(data)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(env.Payload, &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc)
		if env.Payload, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
		out, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

func specOf(layers []int) models.Spec { return models.Spec{Layers: layers, Activation: models.Tanh} }
