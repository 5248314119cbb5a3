package release

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// trust is a root of trust for tests: its keys and signed root envelope.
type trust struct {
	rootKeys  []*sig.PrivateKey
	release   *sig.PrivateKey
	timestamp *sig.PrivateKey
	root      *Root
	rootEnv   []byte
}

func newKey(t testing.TB) *sig.PrivateKey {
	t.Helper()
	k, err := sig.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubs(keys ...*sig.PrivateKey) []*sig.PublicKey {
	var out []*sig.PublicKey
	for _, k := range keys {
		out = append(out, k.Public())
	}
	return out
}

func signers(keys ...*sig.PrivateKey) []Signer {
	var out []Signer
	for _, k := range keys {
		out = append(out, k)
	}
	return out
}

// newTrust makes root version 1 with nRoot root keys (threshold rootThreshold), one release key
// and one timestamp key, signed by all root keys.
func newTrust(t testing.TB, nRoot, rootThreshold int) *trust {
	t.Helper()
	tr := &trust{release: newKey(t), timestamp: newKey(t)}
	for i := 0; i < nRoot; i++ {
		tr.rootKeys = append(tr.rootKeys, newKey(t))
	}
	r, err := NewRoot(1, t0.Add(365*24*time.Hour), RootRoles{
		Root:      RoleSpec{Keys: pubs(tr.rootKeys...), Threshold: rootThreshold},
		Release:   RoleSpec{Keys: pubs(tr.release), Threshold: 1},
		Timestamp: RoleSpec{Keys: pubs(tr.timestamp), Threshold: 1},
		// The roles these tests do not exercise share the release key.
		Trustees: RoleSpec{Keys: pubs(tr.release), Threshold: 1}, Enrolment: RoleSpec{Keys: pubs(tr.release), Threshold: 1}, Privacy: RoleSpec{Keys: pubs(tr.release), Threshold: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.root = r
	tr.rootEnv, err = Sign(r, signers(tr.rootKeys...)...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (tr *trust) spec(version uint64, files map[string][]byte) Spec {
	return Spec{
		Model:   "vigil-ae",
		Version: version,
		Parent:  version - 1,
		Created: t0,
		Expires: t0.Add(30 * 24 * time.Hour),
		Training: Training{
			Delta: 1e-5, Devices: 40, Epsilon: 1.25, Rounds: version * 5,
			Eval: map[string]float64{"eer": 0.081, "auc": 0.97},
		},
		Files:         files,
		LatestExpires: t0.Add(6 * time.Hour),
	}
}

func (tr *trust) bundle(t testing.TB, version uint64) *Bundle {
	t.Helper()
	b, err := Build(tr.spec(version, map[string][]byte{
		"model.bin":  []byte(fmt.Sprintf("weights of version %d", version)),
		"scaler.bin": []byte("feature scaler"),
	}), tr.release, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (tr *trust) verifier(t testing.TB, installed uint64) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierConfig{Root: tr.rootEnv, Model: "vigil-ae", Version: installed})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newFS(t testing.TB) *store.FS {
	t.Helper()
	s, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// noSleep records requested backoffs without waiting.
type noSleep struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (n *noSleep) sleep(ctx context.Context, d time.Duration) error {
	n.mu.Lock()
	n.delays = append(n.delays, d)
	n.mu.Unlock()
	return ctx.Err()
}

func publisher(t testing.TB, attempts int) (*Publisher, *noSleep) {
	t.Helper()
	ns := &noSleep{}
	p, err := NewPublisher(PublisherConfig{Attempts: attempts, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Sleep: ns.sleep})
	if err != nil {
		t.Fatal(err)
	}
	return p, ns
}

// publishAll publishes the root and bundles to st.
func (tr *trust) publishAll(t testing.TB, st store.Store, bundles ...*Bundle) {
	t.Helper()
	p, _ := publisher(t, 1)
	regions := []Region{{Name: "test", Store: st}}
	if err := p.PublishRoot(context.Background(), regions, tr.rootEnv); err != nil {
		t.Fatal(err)
	}
	for _, b := range bundles {
		if err := p.Publish(context.Background(), regions, b); err != nil {
			t.Fatal(err)
		}
	}
}

// errDown is what faultyStore returns while it is "down".
var errDown = errors.New("injected: store unavailable")

// faultyStore wraps a store: writes succeed until okWrites writes have been done, and then
// every call fails while down is true (a crash or an outage).
type faultyStore struct {
	store.Store
	mu       sync.Mutex
	okWrites int
	writes   int
	down     bool
	failFor  int // when > 0, the store is down for this many calls, then up again
}

func (f *faultyStore) gate(write bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFor > 0 {
		f.failFor--
		return errDown
	}
	if f.down {
		return errDown
	}
	if write {
		if f.okWrites >= 0 && f.writes >= f.okWrites {
			f.down = true
			return errDown
		}
		f.writes++
	}
	return nil
}

func (f *faultyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := f.gate(false); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key)
}

func (f *faultyStore) Put(ctx context.Context, key string, data []byte) error {
	if err := f.gate(true); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, data)
}

func (f *faultyStore) Create(ctx context.Context, key string, data []byte) error {
	if err := f.gate(true); err != nil {
		return err
	}
	return f.Store.Create(ctx, key, data)
}
