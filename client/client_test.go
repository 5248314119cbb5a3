package client

import (
	"crypto/rand"
	"math"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/dp"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

func TestTrainConfigBounds(t *testing.T) {
	good := &vigilv1.TrainingConfig{LocalEpochs: 5, LearningRate: 0.01, BatchSize: 16}
	for _, tc := range []struct {
		name string
		tr   *vigilv1.TrainingConfig
		want string
	}{
		{"good", good, ""},
		{"missing", nil, "no training settings"},
		{"no epochs", &vigilv1.TrainingConfig{LocalEpochs: 0, LearningRate: 0.01, BatchSize: 16}, "0 local epochs"},
		{"endless", &vigilv1.TrainingConfig{LocalEpochs: 1e6, LearningRate: 0.01, BatchSize: 16}, "1000000 local epochs"},
		{"batch", &vigilv1.TrainingConfig{LocalEpochs: 5, LearningRate: 0.01, BatchSize: 1 << 20}, "batch size"},
		{"rate", &vigilv1.TrainingConfig{LocalEpochs: 5, LearningRate: math.NaN(), BatchSize: 16}, "learning rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trainConfig(&vigilv1.Task{Training: tc.tr}, 1)
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("trainConfig = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckPrivacy(t *testing.T) {
	ledger, err := dp.OpenLedger(t.TempDir()+"/device.ledger", "dev", dp.Budget{Epsilon: 1, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{MinNoiseMultiplier: 0.5, Ledger: ledger}}
	for _, tc := range []struct {
		name string
		p    *vigilv1.PrivacyConfig
		want string
	}{
		{"private enough", &vigilv1.PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 20, MinParticipants: 5}, ""},
		{"weaker than policy", &vigilv1.PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 0.1, MinParticipants: 5}, "at least 0.5"},
		{"no privacy", &vigilv1.PrivacyConfig{}, "at least 0.5"},
		{"noise without clip", &vigilv1.PrivacyConfig{NoiseMultiplier: 1, MinParticipants: 5}, "without a clip norm"},
		{"no m_min", &vigilv1.PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 1}, "minimum number of participants"},
		{"negative", &vigilv1.PrivacyConfig{ClipNorm: -1, NoiseMultiplier: 1, MinParticipants: 5}, "negative"},
		{"no noise on a device with a ledger", &vigilv1.PrivacyConfig{ClipNorm: 1}, "at least 0.5"},
		{"t_dev leaves no honest device", &vigilv1.PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 20, MinParticipants: 5, ToleratedDevices: 5}, "t_dev"},
		{"over the device budget", &vigilv1.PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 1, MinParticipants: 5}, "privacy budget is spent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.checkPrivacy(tc.p)
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkPrivacy = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestProtect checks the device's clipping and its share of the noise: the clipped delta has
// norm C, and the noise has the standard deviation z·C/sqrt(m_min - t_dev).
func TestProtect(t *testing.T) {
	const n = 20000
	delta := make([]float64, n)
	for i := range delta {
		delta[i] = 1
	}
	if err := protect(delta, &vigilv1.PrivacyConfig{ClipNorm: 2}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	var norm float64
	for _, v := range delta {
		norm += v * v
	}
	if math.Abs(math.Sqrt(norm)-2) > 1e-9 {
		t.Fatalf("clipped norm %v, want 2", math.Sqrt(norm))
	}
	zero := make([]float64, n)
	if err := protect(zero, &vigilv1.PrivacyConfig{ClipNorm: 2, NoiseMultiplier: 1.5, MinParticipants: 10, ToleratedDevices: 1}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	var ss float64
	for _, v := range zero {
		ss += v * v
	}
	sd, want := math.Sqrt(ss/n), 1.5*2/3.0
	if math.Abs(sd-want)/want > 0.03 {
		t.Fatalf("noise standard deviation %v, want %v", sd, want)
	}
}

func TestPlaintextSealerRefusesEncryptedTasks(t *testing.T) {
	task := &vigilv1.Task{Encryption: &vigilv1.EncryptionConfig{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD}}
	if _, err := (InsecurePlaintext{}).Seal(t.Context(), task, []float64{1}); err == nil {
		t.Fatal("plaintext sealer sent an update the task wanted encrypted")
	}
}
