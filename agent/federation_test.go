package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// A federated release reaches the agent's users: SetGlobal refits each enrolled user's model
// on it from the stored summaries, and the owner stays trusted while another typist does not.
// The stored summaries are what the agent offers a federated client to train on.
func TestSetGlobalRefitsEnrolledUsers(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	ctx := as(context.Background(), r.secret)
	owner := keystroke.NewTypist(1)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "a", User: "erin"}); err != nil {
		t.Fatal(err)
	}
	sendTyping(t, r.grpc, ctx, "a", keyTimings(owner.Type(300), time.Now()))
	r.a.WaitEnrolments()
	rows := r.a.Features()
	if len(rows) < 5 || len(rows[0]) == 0 {
		t.Fatalf("%d feature rows to train on", len(rows))
	}

	// The federation: a small simulated fleet of other typists.
	l := keystroke.NewLayout()
	var ids []string
	var enrol []models.Enrolment
	for s := uint64(100); s < 120; s++ {
		e, _, err := behaviour.KeystrokeEnrolment(keystroke.NewTypist(s).Type(300), behaviour.EnrolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		ids, enrol = append(ids, "fleet"), append(enrol, e)
	}
	global, err := eval.Federate(context.Background(), l, ids, enrol, models.UserModelConfig{}, eval.FedConfig{Rounds: 2, PerRound: 10, LocalEpochs: 2}, 1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.a.SetGlobal(context.Background(), global); err != nil {
		t.Fatal(err)
	}
	if _, err := r.grpc.EndSession(ctx, &vigilv1.EndSessionRequest{Session: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "b", User: "erin"}); err != nil {
		t.Fatal(err)
	}
	typing := keyTimings(owner.Type(200), time.Now())
	own := sendTyping(t, r.grpc, ctx, "b", typing)
	last := time.UnixMilli(int64(typing[len(typing)-1].ReleaseMs)).Add(time.Second)
	other := sendTyping(t, r.grpc, ctx, "b", keyTimings(keystroke.NewTypist(2).Type(150), last))
	t.Logf("on the federated model: owner %.1f %s, then another typist %.1f %s", own.Trust, own.Tier, other.Trust, other.Tier)
	if own.Trust < 70 || other.Trust >= 60 {
		t.Fatalf("after SetGlobal: owner %.1f, another typist %.1f", own.Trust, other.Trust)
	}
}
