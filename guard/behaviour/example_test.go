package behaviour_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// A device enrols its user on their first typing, gives the model to the guard, and the guard
// scores every window of the session's typing with it.
func Example() {
	ctx := context.Background()
	alice := keystroke.NewTypist(1) // a synthetic typist standing in for the user

	enrol, _, err := behaviour.KeystrokeEnrolment(alice.Type(300), behaviour.EnrolConfig{})
	if err != nil {
		panic(err)
	}
	// No federation yet (nil): the device learns alone. With a federated release, pass its
	// *models.Global.
	model, err := behaviour.FitKeystrokes(ctx, nil, nil, enrol, models.UserModelConfig{})
	if err != nil {
		panic(err)
	}
	scorers := behaviour.NewSource()
	if err := scorers.SetModel("alice", model); err != nil {
		panic(err)
	}

	now := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	policy, _ := guard.ParsePolicy(strings.NewReader("docs.read 50\n"))
	g, err := guard.New(guard.Config{Scorers: scorers, Clock: func() time.Time { return now.Add(time.Hour) }}, policy)
	if err != nil {
		panic(err)
	}
	g.OpenSession("s-1", "alice", now)
	typing := func(ks []keystroke.Keystroke, start time.Time) guard.Status {
		var st guard.Status
		for _, k := range ks {
			press := start.Add(k.Press - ks[0].Press)
			st, _ = g.ObserveKeystroke(guard.KeystrokeEvent{Session: "s-1", Press: press, Release: press.Add(k.Release - k.Press), Key: uint16(k.Code)})
		}
		return st
	}
	fmt.Println("alice types:", typing(alice.Type(200), now.Add(time.Second)).Tier)
	fmt.Println("someone else types:", typing(keystroke.NewTypist(2).Type(100), now.Add(5*time.Minute)).Tier)
	// Output:
	// alice types: monitor
	// someone else types: hard_challenge
}
