package trustee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const testMinContributors = 3

type testKey struct {
	params he.Params
	key    *he.KeyEpoch
	shares []*he.SecretShare
}

func newTestKey(t testing.TB, n, threshold int) *testKey {
	t.Helper()
	p := he.DefaultParams()
	ids := []string{"privacy-office", "security", "audit", "legal", "board"}[:n]
	shares, key, err := he.LocalCeremony(p, 1, ids, threshold)
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{params: p, key: key, shares: shares}
}

func startCluster(t testing.TB, k *testKey, dir string) *LocalCluster {
	t.Helper()
	c, err := StartLocal(LocalConfig{Shares: k.shares, MinContributors: testMinContributors, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// sealedSum encrypts devices random updates of dim parameters and seals their sum as round.
func sealedSum(t testing.TB, k *testKey, round uint64, devices, dim int) (*he.Sum, []float64) {
	t.Helper()
	enc, err := he.NewEncryptor(k.key)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := he.NewAccumulator(k.params, k.key.Epoch, dim)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(round, uint64(devices)))
	want := make([]float64, dim)
	for d := range devices {
		u := make([]float64, dim)
		for i := range u {
			u[i] = rng.NormFloat64() / math.Sqrt(float64(dim))
			want[i] += u[i]
		}
		b := he.UpdateBinding(k.key.Epoch, round, fmt.Sprintf("dev-%d", d), []byte{byte(d)})
		cts, err := enc.Encrypt(u, 1, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(cts, b); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := acc.Seal(round)
	if err != nil {
		t.Fatal(err)
	}
	return sum, want
}

func newClient(t testing.TB, k *testKey, c *LocalCluster) *Client {
	t.Helper()
	cl, err := NewClient(ClientConfig{Key: k.key, Trustees: c.Clients})
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

// TestDecryptSumOverLoopback: t of n trustees over real loopback gRPC decrypt the sum; with
// n-t trustees offline the round still decrypts; with n-t+1 offline it cannot.
func TestDecryptSumOverLoopback(t *testing.T) {
	for _, c := range []struct{ n, t int }{{3, 2}, {5, 3}} {
		t.Run(fmt.Sprintf("%d-of-%d", c.t, c.n), func(t *testing.T) {
			k := newTestKey(t, c.n, c.t)
			cluster := startCluster(t, k, t.TempDir())
			client := newClient(t, k, cluster)
			ctx := context.Background()

			sum, want := sealedSum(t, k, 1, 4, 9000)
			res, err := client.DecryptSum(ctx, sum, 1)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, res.Sum, want)
			t.Logf("all up: decrypted by %v", res.Trustees)

			// n-t trustees down, among them one of the first active set.
			for i := 0; i < c.n-c.t; i++ {
				cluster.Stop(i)
			}
			sum, want = sealedSum(t, k, 2, 4, 9000)
			res, err = client.DecryptSum(ctx, sum, 1)
			if err != nil {
				t.Fatalf("%d of %d trustees down: %v", c.n-c.t, c.n, err)
			}
			checkClose(t, res.Sum, want)
			t.Logf("%d down: decrypted by %v", c.n-c.t, res.Trustees)

			cluster.Stop(c.n - c.t)
			sum, _ = sealedSum(t, k, 3, 4, 9000)
			if _, err := client.DecryptSum(ctx, sum, 1); !errors.Is(err, ErrNotEnoughTrustees) {
				t.Fatalf("%d of %d trustees down: %v, want ErrNotEnoughTrustees", c.n-c.t+1, c.n, err)
			}
		})
	}
}

// shareRequest builds a DecryptionShare request for sum with the given active trustees.
func shareRequest(k *testKey, sum *he.Sum, active ...int) *vigilv1.DecryptionShareRequest {
	var pts []uint64
	for _, a := range active {
		pts = append(pts, k.shares[a].Point)
	}
	return &vigilv1.DecryptionShareRequest{
		Round: sum.Round, KeyEpoch: sum.Epoch, ParamsId: k.params.ID(), Contributors: uint32(sum.Contributors),
		Ciphertexts: sum.Ciphertexts, ActiveShamirIndices: pts,
	}
}

// TestTrusteeRefuses exercises the trustee's policy over gRPC: every refusal comes with the
// status code the coordinator branches on, and nothing refused changes the trustee's state.
func TestTrusteeRefuses(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	tc := cluster.Clients[0]
	ctx := context.Background()

	sum5, _ := sealedSum(t, k, 5, 3, 100)
	first, err := tc.DecryptionShare(ctx, shareRequest(k, sum5, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	retry, err := tc.DecryptionShare(ctx, shareRequest(k, sum5, 0, 1))
	if err != nil {
		t.Fatalf("identical retry: %v", err)
	}
	if !slices.EqualFunc(first.Shares, retry.Shares, bytes.Equal) {
		t.Fatal("identical retry got a different share: the protocol ran twice")
	}

	few, _ := sealedSum(t, k, 6, testMinContributors-1, 100)
	sum4, _ := sealedSum(t, k, 4, 3, 100)
	sum7, _ := sealedSum(t, k, 7, 3, 100)
	// sum5's ciphertexts relabelled as round 8, as a coordinator that re-seals would.
	relabelled := shareRequest(k, sum5, 0, 1)
	relabelled.Round = 8
	relabelled.Ciphertexts = nil
	b8 := he.SumBinding(sum5.Epoch, 8, sum5.Contributors)
	for _, c := range sum5.Ciphertexts {
		c = bytes.Clone(c)
		copy(c[32:64], b8[:])
		relabelled.Ciphertexts = append(relabelled.Ciphertexts, c)
	}
	otherParams := shareRequest(k, sum7, 0, 1)
	otherParams.ParamsId = "ckks-other"
	otherEpoch := shareRequest(k, sum7, 0, 1)
	otherEpoch.KeyEpoch++
	damaged := shareRequest(k, sum7, 0, 1)
	damaged.Ciphertexts = [][]byte{sum7.Ciphertexts[0][:1000]}
	lying := shareRequest(k, sum7, 0, 1)
	lying.Contributors = 50

	cases := []struct {
		name string
		req  *vigilv1.DecryptionShareRequest
		want codes.Code
	}{
		{"same round, other active set", shareRequest(k, sum5, 0, 2), codes.AlreadyExists},
		{"earlier round", shareRequest(k, sum4, 0, 1), codes.AlreadyExists},
		{"decrypted sum under a new round", relabelled, codes.AlreadyExists},
		{"fewer than m_min contributors", shareRequest(k, few, 0, 1), codes.FailedPrecondition},
		{"other parameter set", otherParams, codes.FailedPrecondition},
		{"other key epoch", otherEpoch, codes.FailedPrecondition},
		{"truncated ciphertext", damaged, codes.InvalidArgument},
		{"contributor count not the sealed one", lying, codes.InvalidArgument},
		{"active set without this trustee", shareRequest(k, sum7, 1, 2), codes.InvalidArgument},
		{"active set too small", shareRequest(k, sum7, 0), codes.InvalidArgument},
	}
	for _, c := range cases {
		_, err := tc.DecryptionShare(ctx, c.req)
		if status.Code(err) != c.want {
			t.Errorf("%s: got %v, want code %v", c.name, err, c.want)
			continue
		}
		t.Logf("%s: %v", c.name, status.Convert(err).Message())
	}
	info, err := tc.Info(ctx, &vigilv1.TrusteeInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetLastRound() != 5 {
		t.Fatalf("last round %d after refusals, want 5", info.GetLastRound())
	}
	if _, err := tc.DecryptionShare(ctx, shareRequest(k, sum7, 0, 1)); err != nil {
		t.Fatalf("round 7 after the refusals: %v", err)
	}
}

// TestRestartKeepsRefusing: the decisions survive a restart of the trustees, and an identical
// retry after the restart still gets the saved answer.
func TestRestartKeepsRefusing(t *testing.T) {
	k := newTestKey(t, 3, 2)
	dir := t.TempDir()
	ctx := context.Background()
	sum, _ := sealedSum(t, k, 3, 3, 100)

	cluster := startCluster(t, k, dir)
	first, err := cluster.Clients[1].DecryptionShare(ctx, shareRequest(k, sum, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	cluster.Close()

	cluster = startCluster(t, k, dir)
	if _, err := cluster.Clients[1].DecryptionShare(ctx, shareRequest(k, sum, 1, 2)); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("after restart, round 3 with another active set: %v, want AlreadyExists", err)
	}
	again, err := cluster.Clients[1].DecryptionShare(ctx, shareRequest(k, sum, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(first.Shares, again.Shares, bytes.Equal) {
		t.Fatal("retry after restart got a new share")
	}
	// The coordinator's client sees trustee 1 has done round 3 and still finds t for round 4.
	sum4, want := sealedSum(t, k, 4, 3, 100)
	res, err := newClient(t, k, cluster).DecryptSum(ctx, sum4, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, res.Sum, want)
}

func TestConfigRejects(t *testing.T) {
	k := newTestKey(t, 2, 2)
	j := FileJournal{Path: t.TempDir() + "/j"}
	for _, cfg := range []Config{
		{MinContributors: 3, Journal: j},
		{Share: k.shares[0], MinContributors: 1, Journal: j},
		{Share: k.shares[0], MinContributors: 3},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("NewServer(%+v) accepted", cfg)
		}
	}
	if _, err := NewClient(ClientConfig{Key: k.key}); err == nil {
		t.Errorf("client without trustees accepted")
	}
}

// TestDeviceDropoutDoesNotBlock: of five devices in a round, one drops out halfway through
// its upload and one never sends; the round seals with the three complete updates and the
// trustees decrypt exactly their sum.
func TestDeviceDropoutDoesNotBlock(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	const dim, round = 9000, 1
	enc, _ := he.NewEncryptor(k.key)
	acc, _ := he.NewAccumulator(k.params, k.key.Epoch, dim)
	rng := rand.New(rand.NewPCG(7, 7))
	want := make([]float64, dim)
	for d := range 5 {
		u := make([]float64, dim)
		for i := range u {
			u[i] = rng.NormFloat64() / 100
		}
		b := he.UpdateBinding(k.key.Epoch, round, fmt.Sprintf("dev-%d", d), nil)
		cts, err := enc.Encrypt(u, 1, b)
		if err != nil {
			t.Fatal(err)
		}
		switch d {
		case 3: // connection lost after the first ciphertext
			if err := acc.Add(cts[:1], b); !errors.Is(err, he.ErrDimension) {
				t.Fatalf("partial upload: %v, want ErrDimension", err)
			}
		case 4: // never sends
		default:
			if err := acc.Add(cts, b); err != nil {
				t.Fatal(err)
			}
			for i := range u {
				want[i] += u[i]
			}
		}
	}
	sum, err := acc.Seal(round)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Contributors != 3 {
		t.Fatalf("%d contributors, want 3", sum.Contributors)
	}
	res, err := newClient(t, k, cluster).DecryptSum(context.Background(), sum, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, res.Sum, want)
}
