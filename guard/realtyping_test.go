package guard_test

// Real typing for the scenario tests and benchmarks: participants of the Aalto 136M Keystrokes
// data set (Dhakal et al., CHI 2018), scored by the real behavioural models through package
// guard/behaviour. The first backgroundUsers participants (file name order) stand in for the
// rest of the fleet: only their enrolment trains the federation's population model and global
// autoencoder (models/eval's simulated federation). Test typists come after them, enrol on
// their own first windows and are replayed on typing the models never saw.

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
)

// aaltoDir is ../shared/datasets relative to the repository root.
const aaltoDir = "../../shared/datasets/aalto-keystrokes"

const (
	backgroundUsers = 60
	enrolWindows    = 5
	windowSize      = 50
)

// fleet is the federation's models and the participants left for tests.
type fleet struct {
	layout *models.Layout
	global *models.Global
	test   []string // participant files not in the background
	// The background devices, and the deployable federation they make (built on first use).
	ids         []string
	enrol       []models.Enrolment
	privateOnce sync.Once
	private     *models.Global
	privateErr  error
}

// deployable returns the federation the deployable rounds give at epsilon 8 (the population
// model only, learnt under DP), built once.
func (f *fleet) deployable(tb testing.TB) *models.Global {
	tb.Helper()
	f.privateOnce.Do(func() {
		f.private, _, f.privateErr = eval.FederatePrivately(context.Background(), f.layout, f.ids, f.enrol, eval.PrivacyConfig{Epsilon: 8}, 1, 0)
	})
	if f.privateErr != nil {
		tb.Fatalf("the deployable federation: %v", f.privateErr)
	}
	return f.private
}

var (
	fleetOnce sync.Once
	fleetVal  *fleet
	fleetErr  error
)

// loadFleet builds the federation from the background participants, once per test binary.
func loadFleet(tb testing.TB) *fleet {
	tb.Helper()
	if _, err := os.Stat(aaltoDir); err != nil {
		tb.Skipf("Aalto keystroke data not found at %s: skipping the real-typing tests", aaltoDir)
	}
	fleetOnce.Do(func() {
		files, err := keystroke.AaltoFiles(aaltoDir)
		if err != nil || len(files) < backgroundUsers+20 {
			fleetErr = err
			if err == nil {
				fleetErr = os.ErrNotExist
			}
			return
		}
		f := &fleet{layout: keystroke.NewLayout(), test: files[backgroundUsers:]}
		var ids []string
		var enrol []models.Enrolment
		for _, path := range files[:backgroundUsers] {
			p, _, err := keystroke.ReadAaltoFile(path)
			if err != nil {
				fleetErr = err
				return
			}
			e, _, err := behaviour.KeystrokeEnrolment(p.Keystrokes(), behaviour.EnrolConfig{Window: windowSize, Windows: enrolWindows})
			if err != nil {
				continue // too little typing: this device does not take part
			}
			ids, enrol = append(ids, p.ID), append(enrol, e)
		}
		f.ids, f.enrol = ids, enrol
		f.global, fleetErr = eval.Federate(context.Background(), f.layout, ids, enrol, models.UserModelConfig{}, eval.FedConfig{}, 1, 0, nil)
		fleetVal = f
	})
	if fleetErr != nil {
		tb.Fatalf("building the federation from the Aalto data: %v", fleetErr)
	}
	return fleetVal
}

// typist is a test participant: a model enrolled on their first windows, and the typing after
// the enrolment, which no model saw.
type typist struct {
	id     string
	model  *models.UserModel
	unseen []keystroke.Keystroke
}

// newTypist enrols the n-th test participant.
func newTypist(tb testing.TB, f *fleet, n int) typist {
	tb.Helper()
	p, _, err := keystroke.ReadAaltoFile(f.test[n])
	if err != nil {
		tb.Fatal(err)
	}
	ks := p.Keystrokes()
	enrol, st, err := behaviour.KeystrokeEnrolment(ks, behaviour.EnrolConfig{Window: windowSize, Windows: enrolWindows})
	if err != nil {
		tb.Fatalf("participant %s: %v", p.ID, err)
	}
	m, err := behaviour.FitKeystrokes(context.Background(), f.layout, f.global, enrol, models.UserModelConfig{Train: models.TrainConfig{Seed: uint64(n)}})
	if err != nil {
		tb.Fatal(err)
	}
	return typist{id: p.ID, model: m, unseen: ks[st.Used:]}
}

// events turns keystrokes into guard events of session, shifted so that the first press is at
// start. Keystrokes the guard would reject (no key code, pressed before the previous one) are
// left out; an unknown or implausible release becomes the press (no hold time).
func events(session string, ks []keystroke.Keystroke, start time.Time) []guard.KeystrokeEvent {
	out := make([]guard.KeystrokeEvent, 0, len(ks))
	var last time.Duration
	for i, k := range ks {
		if k.Code <= 0 || k.Code > 0xffff || i > 0 && k.Press < last {
			continue
		}
		last = k.Press
		p := start.Add(k.Press - ks[0].Press)
		ev := guard.KeystrokeEvent{Session: session, Press: p, Release: p, Key: uint16(k.Code)}
		if h, ok := k.Hold(); ok && h <= guard.MaxKeyHold {
			ev.Release = p.Add(h)
		}
		out = append(out, ev)
	}
	return out
}
