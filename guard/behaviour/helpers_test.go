package behaviour_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
)

// The tests use synthetic typists (keystroke.NewTypist): different seeds type measurably
// differently, so a model enrolled on one tells it from another. Typists 100..129 form the
// fleet whose enrolments train the federation (models/eval's simulation, kept small).

var (
	fleetOnce   sync.Once
	fleetLayout *models.Layout
	fleetGlobal *models.Global
	fleetErr    error
)

func testFleet(tb testing.TB) (*models.Layout, *models.Global) {
	tb.Helper()
	fleetOnce.Do(func() {
		fleetLayout = keystroke.NewLayout()
		var ids []string
		var enrol []models.Enrolment
		for s := uint64(100); s < 130; s++ {
			e, _, err := behaviour.KeystrokeEnrolment(keystroke.NewTypist(s).Type(300), behaviour.EnrolConfig{})
			if err != nil {
				fleetErr = err
				return
			}
			ids, enrol = append(ids, "fleet"), append(enrol, e)
		}
		fleetGlobal, fleetErr = eval.Federate(context.Background(), fleetLayout, ids, enrol, models.UserModelConfig{},
			eval.FedConfig{Rounds: 2, PerRound: 10, LocalEpochs: 2}, 1, 0, nil)
	})
	if fleetErr != nil {
		tb.Fatal(fleetErr)
	}
	return fleetLayout, fleetGlobal
}

// enrolled returns the model of typist seed, enrolled on their first 300 keystrokes, and the
// typist to type on.
func enrolled(tb testing.TB, seed uint64) (*models.UserModel, *keystroke.Typist) {
	tb.Helper()
	l, g := testFleet(tb)
	ty := keystroke.NewTypist(seed)
	e, _, err := behaviour.KeystrokeEnrolment(ty.Type(300), behaviour.EnrolConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	m, err := behaviour.FitKeystrokes(context.Background(), l, g, e, models.UserModelConfig{Train: models.TrainConfig{Seed: seed}})
	if err != nil {
		tb.Fatal(err)
	}
	return m, ty
}

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// guardEvents turns keystrokes into guard events of session, the first press at start.
func guardEvents(session string, ks []keystroke.Keystroke, start time.Time) []guard.KeystrokeEvent {
	out := make([]guard.KeystrokeEvent, len(ks))
	for i, k := range ks {
		p := start.Add(k.Press - ks[0].Press)
		out[i] = guard.KeystrokeEvent{Session: session, Press: p, Release: p, Key: uint16(k.Code)}
		if h, ok := k.Hold(); ok {
			out[i].Release = p.Add(h)
		}
	}
	return out
}

// windowsOf cuts events into windows of 50 every 25, as the guard hands them out.
func windowsOf(evs []guard.KeystrokeEvent) [][]guard.KeystrokeEvent {
	var out [][]guard.KeystrokeEvent
	for i := 0; i+50 <= len(evs); i += 25 {
		out = append(out, evs[i:i+50])
	}
	return out
}
