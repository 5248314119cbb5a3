package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackEndTwiceAndRestart signs one session out twice at once while a new session
// starts under its ID, again and again, and checks after each round that the agent and the
// guard agree on whether the ID is live, and that the token of a session that ended no longer
// authenticates. Before, the second EndSession closed the newer session in the guard and left
// it in the agent: a zombie whose page token outlived every later session of the ID.
func TestAttackEndTwiceAndRestart(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	ctx := as(context.Background(), r.secret)
	rounds := 3000
	if testing.Short() {
		rounds = 500
	}
	zombies := 0
	for i := range rounds {
		id := fmt.Sprintf("s%d", i%4)
		first, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: id, User: "u"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var newTok string
		wg.Add(3)
		for range 2 {
			go func() { defer wg.Done(); r.grpc.EndSession(ctx, &vigilv1.EndSessionRequest{Session: id}) }()
		}
		go func() {
			defer wg.Done()
			for range 50 {
				if st, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: id, User: "u"}); err == nil {
					newTok = st.SessionToken
					return
				}
			}
		}()
		wg.Wait()
		if _, err := r.grpc.SendEvents(as(context.Background(), first.SessionToken), &vigilv1.SendEventsRequest{Session: id}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("round %d: the ended session's token: %v, want Unauthenticated", i, err)
		}
		if newTok == "" {
			continue
		}
		_, err = r.grpc.SendEvents(as(context.Background(), newTok), &vigilv1.SendEventsRequest{Session: id})
		d, derr := r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: id, Resource: "profile.read"})
		if derr != nil {
			t.Fatal(derr)
		}
		agentHas, guardHas := err == nil || status.Code(err) != codes.Unauthenticated, d.Outcome != "unknown_session"
		if agentHas != guardHas {
			zombies++
			if zombies < 4 {
				t.Logf("round %d: session %s: in the agent %v (SendEvents: %v), in the guard %v (%s)", i, id, agentHas, err, guardHas, d.Outcome)
			}
		}
		r.grpc.EndSession(ctx, &vigilv1.EndSessionRequest{Session: id})
		if _, err := r.grpc.SendEvents(as(context.Background(), newTok), &vigilv1.SendEventsRequest{Session: id}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("round %d: the token of the restarted session after it ended: %v, want Unauthenticated", i, err)
		}
	}
	if zombies > 0 {
		t.Errorf("%d of %d restarted sessions were in the agent and not the guard, or the reverse", zombies, rounds)
	}
}
