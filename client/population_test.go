package client

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/modelstest"
	"github.com/vigilauth/vigil/models/mouse"
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
	own, err := e.encoding(vigilv1.TaskKind_TASK_KIND_POPULATION_STATS, &vigilv1.PopulationTask{FeatureSet: keystroke.TimingFeatureSet, Window: 50}, 30)
	if err != nil {
		t.Fatal(err)
	}
	digest := own.digest
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
		{"another feature set", task("pen-v1", 50, 30, digest[:]), "feature set"},
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

// mouseRows is a device's typing and mouse enrolments.
type mouseRows struct{ typing, mouse []models.Window }

func (m mouseRows) Features() [][]float64 { return nil }
func (m mouseRows) WindowsOf(featureSet string) []models.Window {
	if featureSet == mouse.FeatureSet {
		return m.mouse
	}
	return m.typing
}

// TestAttackMouseTaskSteersReference performs what a coordinator could try with mouse tasks,
// whose reference it learns and sends: a reference outside what the reference round's encoding
// allows (to widen the bounds the device's own population check uses, or to make every
// deviation clamp), a reference task carrying a reference, another clip, or a statistics task
// with none. The device refuses each; under the honest reference it describes its mouse
// windows, and a device without them sends zeros.
func TestAttackMouseTaskSteersReference(t *testing.T) {
	dev := mouseRows{mouse: mouse.NewMover(4).Windows(150)}
	rs, err := models.NewReferenceStats(mouse.NewLayout())
	if err != nil {
		t.Fatal(err)
	}
	// The honest reference: decoded from the exact sum of a few synthetic users' reference
	// statistics.
	var seeds []uint64
	for u := range uint64(20) {
		seeds = append(seeds, 100+u)
	}
	honest, err := rs.Decode(modelstest.Sum(t, rs.Len(), rs.Contribute, modelstest.MouseUsers(100, seeds...)), 0)
	if err != nil {
		t.Fatal(err)
	}
	const clip = 100
	stats, err := models.NewPopulationStats(rs.Layout(), honest, models.PopulationStatsConfig{Clip: clip})
	if err != nil {
		t.Fatal(err)
	}
	sd, rd := stats.Digest(), rs.Digest()
	statsTask := func(ref models.Reference, d []byte) *vigilv1.Task {
		return &vigilv1.Task{Kind: vigilv1.TaskKind_TASK_KIND_POPULATION_STATS, Privacy: &vigilv1.PrivacyConfig{ClipNorm: clip},
			Population: &vigilv1.PopulationTask{FeatureSet: mouse.FeatureSet, EncodingSha256: d,
				Reference: &vigilv1.Reference{Center: ref.Center, Scale: ref.Scale}}}
	}
	refTask := func(c float64, withRef bool) *vigilv1.Task {
		task := &vigilv1.Task{Kind: vigilv1.TaskKind_TASK_KIND_REFERENCE_STATS, Privacy: &vigilv1.PrivacyConfig{ClipNorm: c},
			Population: &vigilv1.PopulationTask{FeatureSet: mouse.FeatureSet, EncodingSha256: rd[:]}}
		if withRef {
			task.Population.Reference = &vigilv1.Reference{Center: honest.Center, Scale: honest.Scale}
		}
		return task
	}
	wide := models.Reference{Center: honest.Center, Scale: slices.Clone(honest.Scale)}
	for b := range wide.Scale {
		wide.Scale[b] *= 100
	}
	far := models.Reference{Center: slices.Clone(honest.Center), Scale: honest.Scale}
	far.Center[0] = 1e4
	var e PopulationEncoder
	for _, tc := range []struct {
		name string
		task *vigilv1.Task
		want string
	}{
		{"scales a hundredfold, with the digest they give", statsTask(wide, digestOf(t, rs, wide, clip)), "outside what the encoding allows"},
		{"a centre far away, with the digest it gives", statsTask(far, digestOf(t, rs, far, clip)), "outside what the encoding allows"},
		{"the honest reference under another digest", statsTask(honest, rd[:]), "digest"},
		{"a statistics task without a reference", &vigilv1.Task{Kind: vigilv1.TaskKind_TASK_KIND_POPULATION_STATS, Privacy: &vigilv1.PrivacyConfig{ClipNorm: clip},
			Population: &vigilv1.PopulationTask{FeatureSet: mouse.FeatureSet, EncodingSha256: sd[:]}}, "without the reference"},
		{"a reference task with a reference", refTask(rs.Clip(), true), "brings a reference"},
		{"a reference task at another clip", refTask(2*rs.Clip(), false), "clip norm"},
	} {
		if _, err := e.contribute(tc.task, dev); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal mentioning %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		task *vigilv1.Task
		clip float64
	}{{"reference", refTask(rs.Clip(), false), rs.Clip()}, {"statistics", statsTask(honest, sd[:]), clip}} {
		v, err := e.contribute(tc.task, dev)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var norm float64
		nonzero := 0
		for _, x := range v {
			norm += x * x
			if x != 0 {
				nonzero++
			}
		}
		if norm > tc.clip*tc.clip*(1+1e-9) || nonzero == 0 {
			t.Errorf("%s: norm %v (clip %v), %d entries set", tc.name, math.Sqrt(norm), tc.clip, nonzero)
		}
		zeros, err := e.contribute(tc.task, windowRows(nil))
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(zeros, func(x float64) bool { return x != 0 }) {
			t.Errorf("%s: a device that keeps no mouse windows describes something", tc.name)
		}
	}
}

func digestOf(t *testing.T, rs *models.ReferenceStats, ref models.Reference, clip float64) []byte {
	t.Helper()
	s, err := models.NewPopulationStats(rs.Layout(), ref, models.PopulationStatsConfig{Clip: clip})
	if err != nil {
		t.Fatal(err)
	}
	d := s.Digest()
	return d[:]
}
