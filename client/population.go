package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/mouse"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// PopulationEncoder builds the device's population statistics encodings for tasks and keeps
// the last of each feature set for the next task that names the same one: keystroke's public
// reference takes about 0.1 s of CPU to compute. It is safe for concurrent use, so that
// simulated fleets of many devices in one process (vigil demo, vigil loadtest) compute it
// once; its zero value is ready to use.
type PopulationEncoder struct {
	mu   sync.Mutex
	last map[populationKey]encoding
}

// populationKey names an encoding: the task's kind, feature set, reference window (typing),
// clip norm and, for a learnt reference, the reference's digest.
type populationKey struct {
	kind       vigilv1.TaskKind
	featureSet string
	window     uint32
	clip       float64
	reference  [32]byte
}

// encoding is one encoding a task may name: its digest and how a device contributes to it.
type encoding struct {
	digest     [32]byte
	contribute func([]models.Window) ([]float64, error)
}

// FeatureWindows is LocalData that keeps the windows of more than one feature set's enrolment
// (typing and mouse): what population tasks over each need. A device whose data is only
// WindowData describes its typing and nothing else.
type FeatureWindows interface {
	WindowsOf(featureSet string) []models.Window
}

// contribute returns the device's population or reference statistics for task t over its
// enrolment windows. The encoding is the device's own, computed from its code: the task only
// names it, and a task naming another (another public reference, other settings) is refused,
// so that a coordinator cannot steer which of the device's statistics it sends. The one thing
// a task brings is the reference a feature set without a public one learnt in its reference
// round; the device checks it against the bounds of that round's encoding.
func (e *PopulationEncoder) contribute(t *vigilv1.Task, data LocalData) ([]float64, error) {
	pt := t.GetPopulation()
	if pt == nil {
		return nil, errors.New("the task names no encoding")
	}
	enc, err := e.encoding(t.GetKind(), pt, t.GetPrivacy().GetClipNorm())
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(enc.digest[:], pt.GetEncodingSha256()) {
		return nil, fmt.Errorf("the task's encoding has digest %x, this device's %x", pt.GetEncodingSha256(), enc.digest)
	}
	// A device with nothing to describe yet sends zeros, noised like any contribution: the
	// decoder weighs each device's description by its own weight entries, so zeros move no
	// mean, and the round, which needs most devices to answer, is not held up.
	var windows []models.Window
	switch src := data.(type) {
	case FeatureWindows:
		windows = src.WindowsOf(pt.GetFeatureSet())
	case WindowData:
		if pt.GetFeatureSet() == keystroke.TimingFeatureSet {
			windows = src.Windows()
		}
	}
	return enc.contribute(windows)
}

func (e *PopulationEncoder) encoding(kind vigilv1.TaskKind, pt *vigilv1.PopulationTask, clip float64) (encoding, error) {
	k := populationKey{kind: kind, featureSet: pt.GetFeatureSet(), window: pt.GetWindow(), clip: clip}
	var ref *models.Reference
	if r := pt.GetReference(); r != nil {
		ref = &models.Reference{Center: r.GetCenter(), Scale: r.GetScale()}
		k.reference = referenceDigest(*ref)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if enc, ok := e.last[k]; ok {
		return enc, nil
	}
	enc, err := newEncoding(k, ref)
	if err != nil {
		return encoding{}, err
	}
	if e.last == nil {
		e.last = map[populationKey]encoding{}
	}
	for old := range e.last {
		if old.featureSet == k.featureSet && old.kind == k.kind {
			delete(e.last, old) // one per feature set and kind: a fleet's tasks move on together
		}
	}
	e.last[k] = enc
	return enc, nil
}

// newEncoding is the encoding this device's code computes for k: typing's statistics around
// the public reference of synthetic typists; mouse's reference statistics, or its statistics
// around the reference the task brings, once that is within the bounds of the reference round.
func newEncoding(k populationKey, ref *models.Reference) (encoding, error) {
	if !(k.clip > 0) {
		return encoding{}, errors.New("population statistics need the task's clip norm")
	}
	var stats *models.PopulationStats
	switch {
	case k.featureSet == keystroke.TimingFeatureSet && k.kind == vigilv1.TaskKind_TASK_KIND_POPULATION_STATS:
		if ref != nil {
			return encoding{}, errors.New("the task brings a reference for typing, which has a public one")
		}
		if k.window < 2 || k.window > 10000 {
			return encoding{}, fmt.Errorf("a reference over windows of %d keystrokes", k.window)
		}
		layout := keystroke.NewLayout()
		public, err := keystroke.Reference(layout, int(k.window))
		if err != nil {
			return encoding{}, err
		}
		if stats, err = models.NewPopulationStats(layout, public, models.PopulationStatsConfig{Clip: k.clip}); err != nil {
			return encoding{}, err
		}
	case k.featureSet == mouse.FeatureSet:
		rs, err := models.NewReferenceStats(mouse.NewLayout())
		if err != nil {
			return encoding{}, err
		}
		if k.kind == vigilv1.TaskKind_TASK_KIND_REFERENCE_STATS {
			if ref != nil {
				return encoding{}, errors.New("a reference task brings a reference")
			}
			if math.Abs(k.clip-rs.Clip()) > 1e-9*rs.Clip() {
				return encoding{}, fmt.Errorf("a reference round at clip norm %v; its encoding's is %v", k.clip, rs.Clip())
			}
			return encoding{digest: rs.Digest(), contribute: rs.Contribute}, nil
		}
		if ref == nil {
			return encoding{}, errors.New("a mouse statistics task without the reference it is relative to")
		}
		if err := rs.CheckReference(*ref); err != nil {
			return encoding{}, fmt.Errorf("the task's reference: %w", err)
		}
		if stats, err = models.NewPopulationStats(rs.Layout(), *ref, models.PopulationStatsConfig{Clip: k.clip}); err != nil {
			return encoding{}, err
		}
	default:
		return encoding{}, fmt.Errorf("%v over feature set %q; this device describes %q and %q", k.kind, k.featureSet, keystroke.TimingFeatureSet, mouse.FeatureSet)
	}
	return encoding{digest: stats.Digest(), contribute: stats.Contribute}, nil
}

// referenceDigest identifies a reference by its contents.
func referenceDigest(r models.Reference) [32]byte {
	h := sha256.New()
	var b [8]byte
	for _, v := range append(slices.Clone(r.Center), r.Scale...) {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	binary.LittleEndian.PutUint64(b[:], uint64(len(r.Center)))
	h.Write(b[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
