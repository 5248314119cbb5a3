package keystroke

import (
	"fmt"
	"slices"

	"github.com/vigilauth/vigil/models"
)

// referenceTypists is how many synthetic typists the public reference is built from.
const referenceTypists = 50

// Reference returns the public reference the keystroke population statistics are centred on
// (models.PopulationStats): the timings of synthetic typists, which describe nobody, summarised
// by kind (models.ReferenceByKind) over windows of window keystrokes on layout l. It is a pure
// function of the code, so the coordinator and every device compute the same one, and a
// population round's task names its digest (models.Reference.Digest) for devices to check.
func Reference(l *models.Layout, window int) (models.Reference, error) {
	if l == nil || l.Name != TimingFeatureSet {
		return models.Reference{}, fmt.Errorf("keystroke: a reference for layout %v, want %s", l, TimingFeatureSet)
	}
	if window < 2 {
		return models.Reference{}, fmt.Errorf("keystroke: a reference over windows of %d keystrokes", window)
	}
	var windows []models.Window
	for seed := uint64(1); seed <= referenceTypists; seed++ {
		windows = append(windows, TimingWindows(NewTypist(seed).Type(20*window), window)...)
	}
	return models.ReferenceByKind(l, windows)
}

// TimingWindows returns the timings (TimingFeatureSet) of the disjoint windows of n keystrokes
// in ks that have any, as a user model's enrolment and population statistics take them.
func TimingWindows(ks []Keystroke, n int) []models.Window {
	var windows []models.Window
	var ex TimingExtractor
	var t Timings
	for _, w := range Windows(ks, n) {
		if ex.Extract(&t, w) != nil {
			continue
		}
		windows = append(windows, models.Window{Dense: slices.Clone(t.Summary), Events: slices.Clone(t.Events)})
	}
	return windows
}
