package client

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// PopulationEncoder builds the device's population statistics encoding for a task and keeps it
// for the next task that names the same one: the public reference takes about 0.1 s of CPU to
// compute. It is safe for concurrent use, so that simulated fleets of many devices in one
// process (vigil demo, vigil loadtest) compute it once; its zero value is ready to use.
type PopulationEncoder struct {
	mu    sync.Mutex
	key   populationKey
	stats *models.PopulationStats
}

type populationKey struct {
	featureSet string
	window     uint32
	clip       float64
}

// contribute returns the device's population statistics for task t over its enrolment windows.
// The encoding is the device's own, computed from its code: the task only names it, and a task
// naming another (another reference, other settings) is refused, so that a coordinator cannot
// steer which of the device's statistics it sends.
func (e *PopulationEncoder) contribute(t *vigilv1.Task, data LocalData) ([]float64, error) {
	pt := t.GetPopulation()
	if pt == nil {
		return nil, errors.New("the task names no encoding")
	}
	src, ok := data.(WindowData)
	if !ok {
		return nil, errors.New("this device keeps no enrolment windows to describe")
	}
	stats, err := e.encoding(populationKey{pt.GetFeatureSet(), pt.GetWindow(), t.GetPrivacy().GetClipNorm()})
	if err != nil {
		return nil, err
	}
	if d := stats.Digest(); !bytes.Equal(d[:], pt.GetEncodingSha256()) {
		return nil, fmt.Errorf("the task's encoding has digest %x, this device's %x", pt.GetEncodingSha256(), d)
	}
	// A device with nothing to describe yet sends zeros, noised like any contribution: the
	// decoder weighs each device's description by its own weight entries, so zeros move no
	// mean, and the round, which needs most devices to answer, is not held up.
	return stats.Contribute(src.Windows())
}

func (e *PopulationEncoder) encoding(k populationKey) (*models.PopulationStats, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stats != nil && e.key == k {
		return e.stats, nil
	}
	if k.featureSet != keystroke.TimingFeatureSet {
		return nil, fmt.Errorf("statistics over feature set %q; this device describes %q", k.featureSet, keystroke.TimingFeatureSet)
	}
	if k.window < 2 || k.window > 10000 {
		return nil, fmt.Errorf("a reference over windows of %d keystrokes", k.window)
	}
	if !(k.clip > 0) {
		return nil, errors.New("population statistics need the task's clip norm")
	}
	layout := keystroke.NewLayout()
	ref, err := keystroke.Reference(layout, int(k.window))
	if err != nil {
		return nil, err
	}
	stats, err := models.NewPopulationStats(layout, ref, models.PopulationStatsConfig{Clip: k.clip})
	if err != nil {
		return nil, err
	}
	e.key, e.stats = k, stats
	return stats, nil
}
