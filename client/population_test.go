package client

import (
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

type windowRows []models.Window

func (w windowRows) Features() [][]float64    { return nil }
func (w windowRows) Windows() []models.Window { return w }

// TestAttackPopulationTaskSteersEncoding performs what a coordinator could try with a
// population task: name an encoding other than the one the device computes (to choose what the
// device describes, or how finely), another feature set, or none. The device refuses each, and
// contributes only under its own encoding, within the task's clip norm; with no windows it sends
// zeros.
func TestAttackPopulationTaskSteersEncoding(t *testing.T) {
	windows := windowRows(keystroke.TimingWindows(keystroke.NewTypist(3).Type(500), 50))
	var e PopulationEncoder
	own, err := e.encoding(populationKey{keystroke.TimingFeatureSet, 50, 30})
	if err != nil {
		t.Fatal(err)
	}
	digest := own.Digest()
	task := func(featureSet string, window uint32, clip float64, d []byte) *vigilv1.Task {
		return &vigilv1.Task{Kind: vigilv1.TaskKind_TASK_KIND_POPULATION_STATS, Privacy: &vigilv1.PrivacyConfig{ClipNorm: clip},
			Population: &vigilv1.PopulationTask{FeatureSet: featureSet, Window: window, EncodingSha256: d}}
	}
	other := digest
	other[0] ^= 1
	for _, tc := range []struct {
		name string
		task *vigilv1.Task
		want string
	}{
		{"another encoding's digest", task(keystroke.TimingFeatureSet, 50, 30, other[:]), "digest"},
		{"its own digest with another clip", task(keystroke.TimingFeatureSet, 50, 60, digest[:]), "digest"},
		{"another window", task(keystroke.TimingFeatureSet, 40, 30, digest[:]), "digest"},
		{"another feature set", task("mouse-v1", 50, 30, digest[:]), "feature set"},
		{"no encoding", &vigilv1.Task{Kind: vigilv1.TaskKind_TASK_KIND_POPULATION_STATS}, "names no encoding"},
	} {
		if _, err := e.contribute(tc.task, windows); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal mentioning %q", tc.name, err, tc.want)
		}
	}
	v, err := e.contribute(task(keystroke.TimingFeatureSet, 50, 30, digest[:]), windows)
	if err != nil {
		t.Fatal(err)
	}
	var norm, nonzero float64
	for _, x := range v {
		norm += x * x
		if x != 0 {
			nonzero++
		}
	}
	if norm > 30*30 || nonzero == 0 {
		t.Fatalf("own encoding: norm^2 %v (clip 30), %v entries set", norm, nonzero)
	}
	zeros, err := e.contribute(task(keystroke.TimingFeatureSet, 50, 30, digest[:]), windowRows(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range zeros {
		if x != 0 {
			t.Fatalf("no windows: entry %d is %v, want zeros", i, x)
		}
	}
}
