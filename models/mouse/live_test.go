package mouse

import (
	"context"
	"testing"

	"github.com/vigilauth/vigil/models"
)

// BenchmarkLiveAction measures the live path for one mouse action of the Balabit data: features,
// the models' window, and the user model's full score with explanation. The model learns from
// one training session, with a population model from the first three sessions (standing in
// for devices), and scores the actions of another session.
func BenchmarkLiveAction(b *testing.B) {
	sessions, err := BalabitSessions(balabitDir, "training_files")
	if err != nil {
		b.Skipf("Balabit data not available at %s", balabitDir)
	}
	l := NewLayout()
	var ex Extractor
	f := make([]float64, NumFeatures)
	load := func(s Session) ([]models.Window, []Action) {
		ev, _, err := ReadBalabitFile(s.Path)
		if err != nil {
			b.Fatal(err)
		}
		actions, _, err := Segment(ev, SegmentConfig{})
		if err != nil {
			b.Fatal(err)
		}
		var ws []models.Window
		var kept []Action
		for _, a := range actions {
			if ex.Extract(f, a) == nil {
				var w models.Window
				Window(&w, a.Type, f)
				ws, kept = append(ws, w), append(kept, a)
			}
		}
		return ws, kept
	}
	sum := make([]float64, models.ContributionLen(l))
	for _, s := range sessions[:3] {
		ws, _ := load(s)
		c, err := models.Contribution(l, ws)
		if err != nil {
			b.Fatal(err)
		}
		for i, v := range c {
			sum[i] += v
		}
	}
	pop, err := models.NewPopulation(l, sum, models.PopulationConfig{MinUsers: 2})
	if err != nil {
		b.Fatal(err)
	}
	enrol, _ := load(sessions[0])
	m, err := models.FitUserModel(context.Background(), l, &models.Global{Population: pop}, models.Enrolment{Windows: enrol}, models.UserModelConfig{Train: models.TrainConfig{Epochs: 2, BatchSize: 64}})
	if err != nil {
		b.Fatal(err)
	}
	_, test := load(sessions[1])
	var w models.Window
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := test[i%len(test)]
		if err := ex.Extract(f, a); err != nil {
			b.Fatal(err)
		}
		Window(&w, a.Type, f)
		m.Score(w)
		i++
	}
}
