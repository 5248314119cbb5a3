package agent

import (
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models/keystroke"
)

// The agent persists a user's enrolment summaries and seed, not the fitted model, and fits it
// again after a restart: the refit must be the same model, window for window.
func TestRefitIsTheSameModel(t *testing.T) {
	a := &Agent{layout: keystroke.NewLayout()}
	ty := keystroke.NewTypist(5)
	enrol, _, err := behaviour.KeystrokeEnrolment(ty.Type(300), behaviour.EnrolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seed := userSeed("hana")
	m1, err := a.fitOn(nil, enrol, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := a.fitOn(nil, enrol, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ex keystroke.TimingExtractor
	var tm keystroke.Timings
	probe := append(ty.Type(400), keystroke.NewTypist(6).Type(400)...)
	for i, w := range keystroke.Windows(probe, 50) {
		if ex.Extract(&tm, w) != nil {
			continue
		}
		s1, _ := m1.Score(tm.Window())
		s2, _ := m2.Score(tm.Window())
		if s1 != s2 {
			t.Fatalf("window %d: the refit scores %v, the original %v", i, s2, s1)
		}
	}
}

// refitAll fits the users' models on all cores at once; each must be the model fitting that
// user alone gives, window for window.
func TestRefitAllIsEachUsersOwnFit(t *testing.T) {
	a := &Agent{layout: keystroke.NewLayout(), scorers: behaviour.NewSource(), state: &State{Users: map[string]*UserState{}}}
	users := []string{"ada", "bo", "cy", "di", "ed"}
	for i, u := range users {
		enrol, _, err := behaviour.KeystrokeEnrolment(keystroke.NewTypist(uint64(20+i)).Type(300), behaviour.EnrolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		a.state.Users[u] = &UserState{Enrolment: enrol, Seed: userSeed(u), Enrolled: true}
	}
	if err := a.refitAll(); err != nil {
		t.Fatal(err)
	}
	probe := keystroke.NewTypist(99).Type(50)
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	w := make([]guard.KeystrokeEvent, len(probe))
	for i, k := range probe {
		p := start.Add(k.Press - probe[0].Press)
		w[i] = guard.KeystrokeEvent{Session: "s", Press: p, Release: p, Key: uint16(k.Code)}
		if h, ok := k.Hold(); ok {
			w[i].Release = p.Add(h)
		}
	}
	for _, u := range users {
		alone, err := a.fitOn(nil, a.state.Users[u].Enrolment, userSeed(u), nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := behaviour.NewScorer(alone)
		if err != nil {
			t.Fatal(err)
		}
		s1, err1 := a.scorers.Scorer(u).ScoreKeystrokes(w)
		s2, err2 := want.ScoreKeystrokes(w)
		if err1 != nil || err2 != nil || s1.Anomaly != s2.Anomaly {
			t.Fatalf("%s: fitted with the others %v (%v), alone %v (%v)", u, s1.Anomaly, err1, s2.Anomaly, err2)
		}
	}
}
