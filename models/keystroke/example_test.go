package keystroke_test

import (
	"context"
	"fmt"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// window turns keystrokes into the models' view of a window, copying the extractor's buffers.
func window(ex *keystroke.TimingExtractor, ks []keystroke.Keystroke) models.Window {
	var t keystroke.Timings
	if err := ex.Extract(&t, ks); err != nil {
		panic(err)
	}
	return models.Window{Dense: append([]float64(nil), t.Summary...), Events: append([]keystroke.Event(nil), t.Events...)}
}

// Example shows the life of a user model on a device: the federation supplies the population
// model (here from 40 synthetic typists), the device enrols its user on five windows, then
// scores live windows, explains them, and feeds back windows known to be the user's.
func Example() {
	ctx := context.Background()
	layout := keystroke.NewLayout()
	var ex keystroke.TimingExtractor

	// What every device contributes, and the federation sums.
	sum := make([]float64, models.ContributionLen(layout))
	for id := uint64(100); id < 140; id++ {
		ty := keystroke.NewTypist(id)
		var enrol []models.Window
		for i := 0; i < 5; i++ {
			enrol = append(enrol, window(&ex, ty.Type(50)))
		}
		c, err := models.Contribution(layout, enrol)
		if err != nil {
			panic(err)
		}
		for i, v := range c {
			sum[i] += v
		}
	}
	pop, err := models.NewPopulation(layout, sum, models.PopulationConfig{})
	if err != nil {
		panic(err)
	}

	// Enrolment of this device's user.
	owner := keystroke.NewTypist(1)
	var enrol models.Enrolment
	for i := 0; i < 5; i++ {
		enrol.Windows = append(enrol.Windows, window(&ex, owner.Type(50)))
	}
	m, err := models.FitUserModel(ctx, layout, &models.Global{Population: pop}, enrol, models.UserModelConfig{})
	if err != nil {
		panic(err)
	}

	// The live path: extract into reused buffers, score, read the explanation.
	var t keystroke.Timings
	if err := ex.Extract(&t, owner.Type(50)); err != nil {
		panic(err)
	}
	a, _ := m.Score(t.Window())
	fmt.Println("owner flagged:", a >= 0.5)

	if err := ex.Extract(&t, keystroke.NewTypist(2).Type(50)); err != nil {
		panic(err)
	}
	a, devs := m.Score(t.Window())
	fmt.Println("someone else flagged:", a >= 0.5, "explained:", len(devs) > 0)

	// After the owner passes a challenge, their window refines the baseline.
	if err := m.Feedback(window(&ex, owner.Type(50)), true); err != nil {
		panic(err)
	}
	// Output:
	// owner flagged: false
	// someone else flagged: true explained: true
}
