package trustee

import (
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

const testMinContributors = 3

// testKey is a key epoch with its shares, the trustees' commitment keys, and a root of trust
// whose trustees role holds those keys and whose enrolment key signs device records.
type testKey struct {
	params  he.Params
	key     *he.KeyEpoch
	shares  []*he.SecretShare
	signers []*sig.PrivateKey
	keys    *release.KeySet
	root    *release.Root
	// minSum is the m_min the devices' tasks gave them, which they sign; 0 for testPrivacy's.
	minSum uint32
}

func newTestKey(t testing.TB, n, threshold int) *testKey {
	t.Helper()
	p := he.DefaultParams()
	ids := []string{"privacy-office", "security", "audit", "legal", "board"}[:n]
	shares, key, err := he.LocalCeremony(p, 1, ids, threshold)
	if err != nil {
		t.Fatal(err)
	}
	k := &testKey{params: p, key: key, shares: shares}
	for range n {
		s, err := sig.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.signers = append(k.signers, s)
	}
	if k.keys, err = release.NewKeySetWithTrustees(rand.Reader, time.Now().Add(24*time.Hour), k.signers, threshold); err != nil {
		t.Fatal(err)
	}
	if k.root, err = release.ParseTrustedRoot(k.keys.RootEnvelope); err != nil {
		t.Fatal(err)
	}
	return k
}

func startCluster(t testing.TB, k *testKey, dir string) *LocalCluster {
	t.Helper()
	c, err := StartLocal(LocalConfig{Shares: k.shares, Signers: k.signers, Root: k.root, MinContributors: testMinContributors, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// device is an enrolled device: its update-signing key and its record signed by the
// enrolment role (or, for a Sybil, by whatever key made it).
type device struct {
	id     string
	key    *sig.PrivateKey
	record []byte
}

func newDevice(t testing.TB, id string, signer release.Signer) device {
	t.Helper()
	key, err := sig.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec, err := release.Sign(release.NewDeviceRecord(id, "eu", key.Public(), now.Add(-time.Minute), now.Add(time.Hour)), signer)
	if err != nil {
		t.Fatal(err)
	}
	return device{id: id, key: key, record: rec}
}

func (k *testKey) devices(t testing.TB, n int) []device {
	t.Helper()
	out := make([]device, n)
	for i := range out {
		out[i] = newDevice(t, fmt.Sprintf("dev-%d", i), k.keys.Enrolment)
	}
	return out
}

// nonce is the task nonce of device d in round.
func nonce(round uint64, d string) []byte {
	n := make([]byte, vigilv1.NonceSize)
	copy(n, fmt.Sprintf("%d/%s", round, d))
	return n
}

// testPrivacy is what the test devices' tasks promised: the m_min they sign.
var testPrivacy = RoundPrivacy{ClipNorm: 1, MinParticipants: 2}

// signedUpdate encrypts u as d's update for round and signs it as a device does: the
// statement over binding, base version, header-and-c0 digests and c1 polynomials.
func (k *testKey) signedUpdate(t testing.TB, enc *he.Encryptor, d device, round uint64, u []float64) ([][]byte, *vigilv1.Contribution) {
	t.Helper()
	b := he.UpdateBinding(k.key.Epoch, round, d.id, nonce(round, d.id))
	cts, err := enc.Encrypt(u, 1, b)
	if err != nil {
		t.Fatal(err)
	}
	return cts, k.sign(t, d, round, 1, cts)
}

// sign makes d's contribution for ciphertexts cts of round with base version base.
func (k *testKey) sign(t testing.TB, d device, round, base uint64, cts [][]byte) *vigilv1.Contribution {
	t.Helper()
	heads, c1, err := he.UpdateParts(k.params, cts)
	if err != nil {
		t.Fatal(err)
	}
	minSum := k.minSum
	if minSum == 0 {
		minSum = testPrivacy.MinParticipants
	}
	stmt, err := he.UpdateStatement(k.params, he.UpdateBinding(k.key.Epoch, round, d.id, nonce(round, d.id)), base, minSum, heads, c1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.key.Sign(stmt[:], he.UpdateContext)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewContribution(k.params, d.record, d.id, nonce(round, d.id), base, cts, s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testRound is one round as the coordinator holds it at close: its sealed sum, the
// contributions, and the plaintext sum the decryption must give.
type testRound struct {
	sum      *he.Sum
	contribs SliceContributions
	want     []float64
}

// sealedRound has devs encrypt and sign random updates of dim parameters for round and seals
// their sum as the coordinator does.
func (k *testKey) sealedRound(t testing.TB, devs []device, round uint64, dim int) testRound {
	t.Helper()
	enc, err := he.NewEncryptor(k.key)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := he.NewAccumulator(k.params, k.key.Epoch, dim)
	if err != nil {
		t.Fatal(err)
	}
	rng := mrand.New(mrand.NewPCG(round, uint64(len(devs))))
	r := testRound{want: make([]float64, dim)}
	for _, d := range devs {
		u := make([]float64, dim)
		for i := range u {
			u[i] = rng.NormFloat64() / math.Sqrt(float64(dim))
			r.want[i] += u[i]
		}
		cts, c := k.signedUpdate(t, enc, d, round, u)
		if err := acc.Add(cts, he.UpdateBinding(k.key.Epoch, round, d.id, nonce(round, d.id))); err != nil {
			t.Fatal(err)
		}
		r.contribs = append(r.contribs, c)
	}
	if r.sum, err = acc.Seal(round); err != nil {
		t.Fatal(err)
	}
	return r
}

func newClient(t testing.TB, k *testKey, c *LocalCluster) *Client {
	t.Helper()
	// A generous probe timeout: the tests run on a loaded shared machine.
	cl, err := NewClient(ClientConfig{Key: k.key, Trustees: c.Clients, ProbeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func checkClose(t testing.TB, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Fatalf("value %d: %v, want %v", i, got[i], want[i])
		}
	}
}
