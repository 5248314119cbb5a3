package agent

import (
	"testing"

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
