package coordinator_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/dp"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// keyLeakCiphertexts is what a compromised device sends instead of an encryption: c0 = 0 and
// c1 = k, a constant, in every ciphertext. It decrypts to k·s, a multiple of the collective
// secret key s; with k = 64 times the encoding scale (2^100), the decoded "update" is 64·s in
// units of the clip norm. The blobs are otherwise well formed (header of an honest ciphertext,
// every coefficient reduced), so nothing but the sum's plausibility can tell.
func keyLeakCiphertexts(t *testing.T, p he.Params, honest [][]byte) [][]byte {
	t.Helper()
	n, moduli := p.N(), p.Moduli()
	k := new(big.Int).Lsh(big.NewInt(64), 100)
	poly := 8 * n * len(moduli)
	out := make([][]byte, len(honest))
	for j, ct := range honest {
		b := append([]byte(nil), ct...)
		body := b[len(b)-2*poly:]
		clear(body) // c0 = 0 and c1 = 0
		c1 := body[poly:]
		for i, q := range moduli {
			r := new(big.Int).Mod(k, new(big.Int).SetUint64(q)).Uint64()
			binary.LittleEndian.PutUint64(c1[8*n*i:], r) // coefficient 0 of residue i
		}
		out[j] = b
	}
	return out
}

// TestAttackMaliciousDeviceLeaksKey is the review's attack 5, end to end: an enrolled device
// whose key the attacker holds signs a crafted ciphertext that decrypts to 64·s. The
// coordinator, the trustees and the device signature all accept it (it is a validly signed,
// well-formed blob); the decrypted sum is refused as implausible, the round fails, nothing is
// released, and rounds pause until an operator has retired the key epoch. The residual risk, a leak small enough to pass the check, is stated in the
// README and in aggregation.CheckSum.
func TestAttackMaliciousDeviceLeaksKey(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "model.ledger")
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: 3, MinUpdates: 3, RoundTimeout: time.Minute,
		Privacy: coordinator.Privacy{ClipNorm: 1, NoiseMultiplier: 1, Budget: dp.Budget{Epsilon: 100, Delta: 1e-5}, LedgerPath: ledger}}, true)
	for _, d := range []string{"a", "b", "mallory"} {
		f.enroll(t, d)
	}
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(context.Background()) }()
	n := spec.NumParams()
	honest := make([]float64, n)
	for i := range honest {
		honest[i] = 0.5 * math.Cos(float64(i)) / math.Sqrt(float64(n))
	}
	for _, d := range []string{"a", "b"} {
		if _, err := f.submitEncrypted(t, d, honest); err != nil {
			t.Fatal(err)
		}
	}
	tk := waitTask(t, f.api, "mallory")
	enc, err := he.NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	cts, err := enc.Encrypt(honest, 1, he.UpdateBinding(f.key.Epoch, tk.GetRound(), "mallory", tk.GetNonce()))
	if err != nil {
		t.Fatal(err)
	}
	req := &vigilv1.SubmitUpdateRequest{DeviceId: "mallory", Round: tk.GetRound(), Nonce: tk.GetNonce(), BaseVersion: tk.GetBaseVersion(),
		Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: uint64(n),
			ParamsId: f.key.Params().ID(), KeyEpoch: f.key.Epoch, Ciphertexts: keyLeakCiphertexts(t, f.key.Params(), cts)}}
	signUpdate(t, f.devices["mallory"], f.key, tk, req)
	if _, err := f.api.SubmitUpdate(context.Background(), req); err != nil {
		t.Fatalf("the crafted update was refused at submission (%v); the attack as stated gets it in", err)
	}
	var failed *coordinator.Event
	for failed == nil {
		select {
		case e := <-f.events:
			if e.Kind == coordinator.RoundFailed {
				failed = &e
			}
			if e.Kind == coordinator.RoundCompleted {
				t.Fatalf("round %d completed: the key leak was released as model v%d", e.Round, e.Version)
			}
		case err := <-done:
			t.Fatalf("coordinator stopped before the round ended: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("no round outcome within a minute")
		}
	}
	if !errors.Is(failed.Err, aggregation.ErrImplausibleSum) {
		t.Fatalf("round failed with %v, want ErrImplausibleSum", failed.Err)
	}
	if v := f.coord.Global().Meta.Version; v != 1 {
		t.Fatalf("global model is v%d after the refused round, want v1", v)
	}
	// The device could do the same in every round it is sampled for, each charged before the
	// sum is opened, until the budget is gone (found by review): rounds now stop until an
	// operator resumes them.
	if !f.coord.Status().GetPaused() {
		t.Fatal("rounds go on after an implausible sum: the same device drains the budget round by round")
	}
	t.Logf("refused: %v", failed.Err)
}
