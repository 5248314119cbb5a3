package coordinator_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/trustee"
)

// encrypted is a coordinator taking threshold-CKKS updates, with four trustees (t = 2, so a
// commit quorum of 3 and one trustee may be down) in this process over real gRPC on loopback,
// and the root of trust its key epoch is signed under. With signed set, the coordinator and
// the trustees hold the root: devices enrol with records signed by its enrolment role and
// sign their updates, and nothing else counts.
type encrypted struct {
	*fixture
	keys    *release.KeySet
	root    *release.Root
	key     *he.KeyEpoch
	cluster *trustee.LocalCluster
	sealing coordinator.Sealing
	signed  bool
	devices map[string]*sig.PrivateKey
}

func startEncrypted(t *testing.T, cfg coordinator.Config, signed bool) *encrypted {
	t.Helper()
	return startEncryptedWith(t, cfg, signed, nil)
}

// startEncryptedWith is startEncrypted with the trustees' configuration changed by trustees,
// if not nil.
func startEncryptedWith(t *testing.T, cfg coordinator.Config, signed bool, trustees func(*trustee.LocalConfig)) *encrypted {
	t.Helper()
	now := time.Now()
	var signers []*sig.PrivateKey
	for range 4 {
		k, err := sig.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, k)
	}
	keys, err := release.NewKeySetWithTrustees(rand.Reader, now.Add(24*time.Hour), signers, 2)
	if err != nil {
		t.Fatal(err)
	}
	root, err := release.ParseTrustedRoot(keys.RootEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	params := he.DefaultParams()
	shares, key, err := he.LocalCeremony(params, 1, []string{"privacy", "security", "audit", "legal"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The trustees always hold the root; signed says whether the coordinator does too (without
	// it, it takes unsigned updates, which the trustees would then refuse).
	lc := trustee.LocalConfig{Shares: shares, Signers: signers, Root: root, MinContributors: max(2, cfg.MinUpdates), StateDir: t.TempDir()}
	if signed {
		cfg.Root = root
	}
	if trustees != nil {
		trustees(&lc)
	}
	cluster, err := trustee.StartLocal(lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	tc, err := trustee.NewClient(trustee.ClientConfig{Key: key, Trustees: cluster.Clients})
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := key.MarshalBinary()
	doc, err := keys.SignKeyEpoch(1, params.ID(), pk, now, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sealing, err := coordinator.NewThresholdHE(key, doc, tc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Privacy.ClipNorm == 0 {
		cfg.Privacy.ClipNorm = 1
	}
	return &encrypted{fixture: startWith(t, cfg, sealing), keys: keys, root: root, key: key, cluster: cluster,
		sealing: sealing, signed: signed, devices: map[string]*sig.PrivateKey{}}
}

// enroll enrols device d; when signed, with a record from the enrolment authority for a key
// of its own, and the proof that it holds the key.
func (f *encrypted) enroll(t *testing.T, d string) {
	t.Helper()
	req := &vigilv1.EnrollRequest{DeviceId: d}
	if f.signed {
		key, err := sig.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		rec, err := f.keys.SignDeviceRecord(release.NewDeviceRecord(d, "eu", key.Public(), now.Add(-time.Minute), now.Add(30*24*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		proof, err := enrolment.ProveRecord(key, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Region, req.DeviceRecord, req.RecordProof = "eu", rec, proof
		f.devices[d] = key
	}
	if _, err := f.api.Enroll(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// The first call after enrolling takes the device into the registry.
	if _, err := f.api.GetTask(context.Background(), &vigilv1.GetTaskRequest{DeviceId: d}); err != nil {
		t.Fatal(err)
	}
}

// identity is device d's enrolment as the enrolment authority would give it: a key of its own
// and a record for it signed by the root's enrolment role.
func (f *encrypted) identity(t *testing.T, d string) *client.Identity {
	t.Helper()
	key, err := sig.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec, err := f.keys.SignDeviceRecord(release.NewDeviceRecord(d, "eu", key.Public(), now.Add(-time.Minute), now.Add(30*24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	return &client.Identity{DeviceID: d, Region: "eu", SigningKey: key, Record: rec}
}

// signUpdate is what a device does before it sends its update for task tk: it signs the
// statement over the update's binding, base version, the task's m_min and every ciphertext,
// with its record's key.
func signUpdate(t *testing.T, key *sig.PrivateKey, k *he.KeyEpoch, tk *vigilv1.Task, req *vigilv1.SubmitUpdateRequest) {
	t.Helper()
	p := k.Params()
	heads, c1, err := he.UpdateParts(p, req.GetUpdate().GetCiphertexts())
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := he.UpdateStatement(p, he.UpdateBinding(k.Epoch, req.GetRound(), req.GetDeviceId(), req.GetNonce()), req.GetBaseVersion(),
		tk.GetPrivacy().GetMinParticipants(), heads, c1)
	if err != nil {
		t.Fatal(err)
	}
	if req.Signature, err = key.Sign(stmt[:], he.UpdateContext); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptedRoundsOverGRPC trains with encrypted updates: devices verify the signed key
// epoch, encrypt, the coordinator adds ciphertexts, trustees decrypt the sum, and the global
// model improves as in the clear.
func TestEncryptedRoundsOverGRPC(t *testing.T) {
	const devices, rounds = 4, 3
	f := startEncrypted(t, coordinator.Config{Rounds: rounds, DevicesPerRound: devices, MinUpdates: 3, MinEnrolled: devices,
		RoundTimeout: 30 * time.Second, Privacy: coordinator.Privacy{ClipNorm: 1}}, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var heldOut [][]float64
	var wg sync.WaitGroup
	for i := range devices {
		rows := typistRows(t, uint64(i+1), 40)
		heldOut = append(heldOut, rows[30:]...)
		id := fmt.Sprintf("dev-%d", i)
		keys, err := client.NewSignedKeys(f.api, f.keys.RootEnvelope, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := client.New(client.Config{DeviceID: id, Coordinator: f.api, Data: client.Rows(rows[:30]), Identity: f.identity(t, id),
			Sealer: client.NewThresholdSealer(id, keys), FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	before := meanLoss(t, f.coord.Global().Params, heldOut)
	if err := f.coord.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	after := meanLoss(t, f.coord.Global().Params, heldOut)
	if f.coord.Completed() != rounds || !(after < 0.8*before) {
		t.Fatalf("%d rounds, held-out loss %.4f -> %.4f", f.coord.Completed(), before, after)
	}
	// The status times each round's stages, newest round first; without a publisher there is
	// no publishing stage.
	recent := f.coord.Status().GetRecentRounds()
	if len(recent) != rounds || recent[0].GetRound() != rounds {
		t.Fatalf("recent rounds %v, want rounds %d down to 1", recent, rounds)
	}
	want := []string{coordinator.StageCollecting, coordinator.StageCommitting, coordinator.StageDecrypting, coordinator.StageStoring}
	for _, r := range recent {
		var names []string
		for _, s := range r.GetStages() {
			names = append(names, s.GetName())
			if !(s.GetSeconds() > 0) || s.GetSeconds() > r.GetDurationSeconds() {
				t.Errorf("round %d: stage %s took %gs of the round's %gs", r.GetRound(), s.GetName(), s.GetSeconds(), r.GetDurationSeconds())
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("round %d: stages %v, want %v", r.GetRound(), names, want)
		}
	}
}

// submitEncrypted encrypts and signs vals as device d's answer to its task, as a device would.
func (f *encrypted) submitEncrypted(t *testing.T, d string, vals []float64) (*vigilv1.SubmitUpdateRequest, error) {
	t.Helper()
	return f.submitFor(t, waitTask(t, f.api, d), d, vals)
}

func (f *encrypted) submitFor(t *testing.T, tk *vigilv1.Task, d string, vals []float64) (*vigilv1.SubmitUpdateRequest, error) {
	t.Helper()
	req := f.sealedUpdate(t, tk, d, vals)
	_, err := f.api.SubmitUpdate(context.Background(), req)
	return req, err
}

// TestEncryptedSumIsExactAndRejectsMisfits submits known vectors: the released average matches
// the plaintext average to 1e-6 of the clip norm with one trustee offline; unsigned,
// plaintext, replayed or foreign ciphertexts are refused without disturbing the sum.
func TestEncryptedSumIsExactAndRejectsMisfits(t *testing.T) {
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: 3, MinUpdates: 3, RoundTimeout: time.Minute}, true)
	f.cluster.Stop(0) // n - q = 1 trustee offline
	ctx := context.Background()
	for _, d := range []string{"a", "b", "c"} {
		f.enroll(t, d)
	}
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	n := spec.NumParams()
	vec := func(scale float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = scale * math.Sin(float64(i)) / math.Sqrt(float64(n))
		}
		return v
	}
	reqA, err := f.submitEncrypted(t, "a", vec(0.9))
	if err != nil {
		t.Fatal(err)
	}
	tb := waitTask(t, f.api, "b")
	for _, tc := range []struct {
		name string
		req  *vigilv1.SubmitUpdateRequest
		want string
	}{
		{"plaintext", &vigilv1.SubmitUpdateRequest{DeviceId: "b", Round: tb.GetRound(), Nonce: tb.GetNonce(), BaseVersion: tb.GetBaseVersion(),
			Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: uint64(n), Values: vec(1)}}, "takes threshold CKKS"},
		{"a's ciphertexts as b's", &vigilv1.SubmitUpdateRequest{DeviceId: "b", Round: tb.GetRound(), Nonce: tb.GetNonce(), BaseVersion: tb.GetBaseVersion(),
			Update: reqA.Update}, "bound to another context"},
		{"other parameters", &vigilv1.SubmitUpdateRequest{DeviceId: "b", Round: tb.GetRound(), Nonce: tb.GetNonce(), BaseVersion: tb.GetBaseVersion(),
			Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: uint64(n), ParamsId: "other", KeyEpoch: 1, Ciphertexts: reqA.Update.Ciphertexts}}, "HE parameters"},
		{"other epoch", &vigilv1.SubmitUpdateRequest{DeviceId: "b", Round: tb.GetRound(), Nonce: tb.GetNonce(), BaseVersion: tb.GetBaseVersion(),
			Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: uint64(n), ParamsId: f.key.Params().ID(), KeyEpoch: 2, Ciphertexts: reqA.Update.Ciphertexts}}, "key epoch 2"},
		{"truncated", &vigilv1.SubmitUpdateRequest{DeviceId: "b", Round: tb.GetRound(), Nonce: tb.GetNonce(), BaseVersion: tb.GetBaseVersion(),
			Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: uint64(n), ParamsId: f.key.Params().ID(), KeyEpoch: 1,
				Ciphertexts: [][]byte{reqA.Update.Ciphertexts[0][:100]}}}, "malformed"},
	} {
		// Signed by b where it can be, so that what is refused is the misfit itself.
		if _, _, err := he.UpdateParts(f.key.Params(), tc.req.GetUpdate().GetCiphertexts()); err == nil {
			signUpdate(t, f.devices["b"], f.key, tb, tc.req)
		}
		_, err := f.api.SubmitUpdate(ctx, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument mentioning %q", tc.name, err, tc.want)
		}
	}
	vals := vec(-0.5)
	enc, _ := he.NewEncryptor(f.key)
	cts, err := enc.Encrypt(vals, 1, he.UpdateBinding(f.key.Epoch, tb.GetRound(), "b", tb.GetNonce()))
	if err != nil {
		t.Fatal(err)
	}
	unsigned := &vigilv1.SubmitUpdateRequest{DeviceId: "b", Round: tb.GetRound(), Nonce: tb.GetNonce(), BaseVersion: tb.GetBaseVersion(),
		Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: uint64(n), ParamsId: f.key.Params().ID(), KeyEpoch: 1, Ciphertexts: cts}}
	bySomeoneElse := proto.Clone(unsigned).(*vigilv1.SubmitUpdateRequest)
	signUpdate(t, f.devices["a"], f.key, tb, bySomeoneElse)
	for name, req := range map[string]*vigilv1.SubmitUpdateRequest{"unsigned": unsigned, "signed by device a": bySomeoneElse} {
		_, err := f.api.SubmitUpdate(ctx, req)
		if status.Code(err) != codes.PermissionDenied || coordinator.Reason(err) != coordinator.ReasonBadSignature {
			t.Errorf("%s update of b: %v, want PermissionDenied %s", name, err, coordinator.ReasonBadSignature)
		}
	}
	if _, err := f.submitEncrypted(t, "b", vec(-0.5)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.submitEncrypted(t, "c", vec(0.2)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	v1, _ := coordinator.LoadModel(ctx, f.store, "keystroke-ae", 1)
	g := f.coord.Global()
	want := vec((0.9 - 0.5 + 0.2) / 3)
	var worst float64
	for i := range want {
		worst = max(worst, math.Abs(g.Params[i]-v1.Params[i]-want[i]))
	}
	if g.Participants != 3 || worst > 1e-6 {
		t.Fatalf("%d participants, max error %.3g of the clip norm, want 3 and at most 1e-6", g.Participants, worst)
	}
	t.Logf("max absolute error of the decrypted average: %.3g (clip norm 1)", worst)
}

// TestDeviceRefusesUnsignedKey serves a key epoch signed by a key outside the device's root of
// trust: the device refuses to encrypt under it.
func TestDeviceRefusesUnsignedKey(t *testing.T) {
	f := startEncrypted(t, coordinator.Config{DevicesPerRound: 1, MinUpdates: 1}, false)
	other, err := release.NewKeySet(rand.Reader, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := client.NewSignedKeys(f.api, other.RootEnvelope, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.KeyEpoch(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("key signed outside the device's root: %v", err)
	}
	good, _ := client.NewSignedKeys(f.api, f.keys.RootEnvelope, nil)
	if _, err := good.KeyEpoch(context.Background(), 1); err != nil {
		t.Fatalf("properly signed key refused: %v", err)
	}
}
