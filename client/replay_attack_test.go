package client

import (
	"context"
	"crypto/rand"
	"math"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/dp"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// roundAgainCoordinator hands out round 7 at every GetTask, each time under a fresh nonce
// unless sameNonce, and records what it is sent.
type roundAgainCoordinator struct {
	vigilv1.UnimplementedCoordinatorServer
	sameNonce bool
	noiseless bool // tasks without DP noise
	busy      int  // SubmitUpdate calls to refuse SERVER_BUSY first

	mu      sync.Mutex
	nonce   []byte
	updates [][]float64
}

var roundAgainSpec = &vigilv1.ModelSpec{Layers: []uint32{2, 1, 2}, Activation: "tanh", NumParams: 7}

func (r *roundAgainCoordinator) Enroll(context.Context, *vigilv1.EnrollRequest) (*vigilv1.EnrollResponse, error) {
	return &vigilv1.EnrollResponse{Model: roundAgainSpec, GlobalVersion: 1}, nil
}

func (r *roundAgainCoordinator) GetModel(context.Context, *vigilv1.GetModelRequest) (*vigilv1.GetModelResponse, error) {
	return &vigilv1.GetModelResponse{Version: 1, Spec: roundAgainSpec, Params: []float64{.1, .2, .3, .1, .2, .3, .1}}, nil
}

func (r *roundAgainCoordinator) GetTask(context.Context, *vigilv1.GetTaskRequest) (*vigilv1.GetTaskResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nonce == nil || !r.sameNonce {
		r.nonce = make([]byte, vigilv1.NonceSize)
		rand.Read(r.nonce)
	}
	z := 1.0
	if r.noiseless {
		z = 0
	}
	return &vigilv1.GetTaskResponse{Task: &vigilv1.Task{Round: 7, Nonce: r.nonce, BaseVersion: 1,
		Encryption: &vigilv1.EncryptionConfig{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT},
		Training:   &vigilv1.TrainingConfig{LocalEpochs: 1, LearningRate: 0.01, BatchSize: 4},
		Privacy:    &vigilv1.PrivacyConfig{ClipNorm: 1, NoiseMultiplier: z, MinParticipants: 5, ToleratedDevices: 1}}}, nil
}

func (r *roundAgainCoordinator) SubmitUpdate(_ context.Context, req *vigilv1.SubmitUpdateRequest) (*vigilv1.SubmitUpdateResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy > 0 {
		r.busy--
		return nil, vigilv1.Error(codes.Unavailable, "SERVER_BUSY", "the server has 64 uploads open, its limit; send this update again shortly", 0)
	}
	r.updates = append(r.updates, req.GetUpdate().GetValues())
	return &vigilv1.SubmitUpdateResponse{Accepted: 1}, nil
}

// TestAttackCoordinatorAsksARoundAgain: the device's ledger charges a round once, so a
// coordinator that hands out the same round again gets nothing more. Under new nonces it used
// to get a freshly noised update each time: ten updates of round 7 for one charge, epsilon
// 19.05 spent where the ledger said 4.73 (a review's measurement). The same task again (its
// answer lost) gets the same update, not new noise.
func TestAttackCoordinatorAsksARoundAgain(t *testing.T) {
	for _, sameNonce := range []bool{false, true} {
		name := map[bool]string{false: "new nonces", true: "the same task"}[sameNonce]
		t.Run(name, func(t *testing.T) {
			l, err := dp.OpenLedger(t.TempDir()+"/privacy.ledger", "d1", dp.Budget{Epsilon: 16, Delta: 1e-5})
			if err != nil {
				t.Fatal(err)
			}
			rogue := &roundAgainCoordinator{sameNonce: sameNonce}
			a, err := New(Config{DeviceID: "d1", Coordinator: serveRogue(t, rogue), Data: Rows{{0.1, 0.2}, {0.3, 0.4}},
				Sealer: InsecurePlaintext{}, Ledger: l, MinNoiseMultiplier: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Poll(t.Context()); err != nil {
				t.Fatal(err)
			}
			a.handedIn.round = 0 // as if the answer had been lost
			for range 9 {
				_, err := a.Poll(t.Context())
				switch {
				case sameNonce && err != nil:
					t.Fatalf("the same task again: %v", err)
				case !sameNonce && (err == nil || !strings.Contains(err.Error(), "charged to its privacy ledger and sent already")):
					t.Fatalf("round 7 under a new nonce: %v, want a refusal", err)
				}
				a.handedIn.round = 0
			}
			rogue.mu.Lock()
			defer rogue.mu.Unlock()
			want := map[bool]int{false: 1, true: 10}[sameNonce]
			if len(rogue.updates) != want {
				t.Fatalf("%d updates sent, want %d", len(rogue.updates), want)
			}
			for _, u := range rogue.updates[1:] {
				for i := range u {
					if u[i] != rogue.updates[0][i] {
						t.Fatal("a second update of round 7 carries fresh noise")
					}
				}
			}
			if n := len(l.Entries()); n != 1 {
				t.Fatalf("%d ledger entries, want 1", n)
			}
		})
	}
}

// TestDeviceWithoutDataAnswers: a device with no rows to train on sends the zero update with
// its noise, as the privacy analysis assumes of a device without its user's data (zero-out
// adjacency: still sampled, still answering). It used to fail the task and send nothing, so
// whether it answered told the coordinator whether it held data (a privacy review). A round
// without noise has no such analysis: there it still sends nothing rather than dilute the
// average with a zero.
func TestDeviceWithoutDataAnswers(t *testing.T) {
	for _, z := range []float64{0, 1} {
		rogue := &roundAgainCoordinator{noiseless: z == 0}
		a, err := New(Config{DeviceID: "d1", Coordinator: serveRogue(t, rogue), Data: Rows{}, Sealer: InsecurePlaintext{}, MinNoiseMultiplier: z})
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.Poll(t.Context())
		if z == 0 {
			if err == nil || len(rogue.updates) != 0 {
				t.Errorf("z = 0: %v, %d updates; want no update from a device without data", err, len(rogue.updates))
			}
			continue
		}
		if err != nil {
			t.Fatalf("z = %v: %v", z, err)
		}
		if !math.IsNaN(r.TrainLoss) {
			t.Errorf("z = %v: local loss %v of no data, want NaN", z, r.TrainLoss)
		}
		if len(rogue.updates) != 1 || len(rogue.updates[0]) != int(roundAgainSpec.GetNumParams()) {
			t.Fatalf("z = %v: updates %v, want one of %d values", z, rogue.updates, roundAgainSpec.GetNumParams())
		}
		var noisy bool
		for _, v := range rogue.updates[0] {
			noisy = noisy || v != 0
		}
		if !noisy {
			t.Errorf("z = %v: update %v, want the noise of z on zeros", z, rogue.updates[0])
		}
	}
}

// TestBusyServerDoesNotSpendTheBudgetTwice: a device charges a round to its ledger before
// sending the update; refused SERVER_BUSY, it sends the same update again. Asked for the round
// again, it checked its budget as if the round were not charged yet, counted it twice, found
// its budget spent and stopped taking part (104 of the demo's 200 devices, in a review).
func TestBusyServerDoesNotSpendTheBudgetTwice(t *testing.T) {
	// One round at z = 1 costs 4.73 at delta 1e-5; two would not fit in 6.
	l, err := dp.OpenLedger(t.TempDir()+"/privacy.ledger", "d1", dp.Budget{Epsilon: 6, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	rogue := &roundAgainCoordinator{sameNonce: true, busy: 2}
	a, err := New(Config{DeviceID: "d1", Coordinator: serveRogue(t, rogue), Data: Rows{{0.1, 0.2}, {0.3, 0.4}},
		Sealer: InsecurePlaintext{}, Ledger: l, MinNoiseMultiplier: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := a.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "uploads open") {
			t.Fatalf("poll %d against a busy server: %v", i+1, err)
		}
	}
	if _, err := a.Poll(t.Context()); err != nil {
		t.Fatalf("once the server takes it: %v", err)
	}
	rogue.mu.Lock()
	defer rogue.mu.Unlock()
	if len(rogue.updates) != 1 {
		t.Fatalf("%d updates taken, want 1", len(rogue.updates))
	}
	if n := len(l.Entries()); n != 1 {
		t.Fatalf("%d ledger entries, want 1", n)
	}
}
