package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAcceptDuringElectionIsNotClosed: while the servers elect a new leader for the round's
// stream (its leader was killed), a write gets no responder. Accept answered ErrClosed, which
// frontends tell devices as ROUND_CLOSED, final, though the round was open: in a review's 4
// runs, 7-9 devices' answers each. Only a stream that does not exist is a closed round; the
// rest is an error to send again after.
func TestAcceptDuringElectionIsNotClosed(t *testing.T) {
	c, nc := threeServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tier := roundOfOne(t, ctx, nc)
	killStreamLeader(t, ctx, c, tier, 1)
	attempts := 0
	for {
		attempts++
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := tier.Accept(actx, 1, "b", []byte("update of b"), Stamp{})
		acancel()
		if err == nil {
			break
		}
		if errors.Is(err, ErrClosed) {
			t.Fatalf("attempt %d: %v, while the round is open", attempts, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("not stored in 2 minutes: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("stored after %d attempts", attempts)
	// A round with no stream is closed once the servers can say so. Each attempt has its own
	// deadline: a request to the server that was killed, or made while the servers left elect
	// the cluster's meta leader, goes unanswered (in one CI run, a single call waited out the
	// whole test's 2 minutes), and the client sends the next one where it is heard.
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := tier.Accept(actx, 99, "b", []byte("update of b"), Stamp{})
		acancel()
		if errors.Is(err, ErrClosed) {
			break
		}
		if err == nil || ctx.Err() != nil {
			t.Fatalf("a round with no stream, attempt %d: %v, want ErrClosed", attempt, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
