package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// taskCounter is the coordinator's side of GetTask, recording when the device asked.
type taskCounter struct {
	vigilv1.CoordinatorClient
	asked chan time.Time
}

func (c *taskCounter) GetTask(context.Context, *vigilv1.GetTaskRequest, ...grpc.CallOption) (*vigilv1.GetTaskResponse, error) {
	c.asked <- time.Now()
	return &vigilv1.GetTaskResponse{}, nil
}

// The federated client asks for a task only once the device is idle: no task while nobody is
// enrolled, none while a session receives events, and one once the events have stopped for the
// quiet period, although the session is still open.
func TestWhenIdleHoldsTasksBack(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	ctx := as(context.Background(), r.secret)
	const quiet = time.Second
	coord := &taskCounter{asked: make(chan time.Time, 1)}
	c := r.a.WhenIdle(coord, quiet)

	short, cancel := context.WithTimeout(context.Background(), 2*quiet)
	_, err := c.GetTask(short, &vigilv1.GetTaskRequest{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a device without an enrolled user asked for a task: %v", err)
	}

	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s", User: "ida"}); err != nil {
		t.Fatal(err)
	}
	typing := keyTimings(keystroke.NewTypist(3).Type(600), time.Now())
	sendTyping(t, r.grpc, ctx, "s", typing[:300])
	r.a.WaitEnrolments()
	if !r.a.Enrolled("ida") {
		t.Fatal("not enrolled")
	}
	var last time.Time
	// The agent sees each batch between the time it is sent and the time sendTyping returns.
	type batch struct{ sent, seen time.Time }
	var batches []batch
	for i := 300; i < 600; i += 25 { // typing goes on for about 3 s
		last = time.Now() // the agent sees the events after this
		sendTyping(t, r.grpc, ctx, "s", typing[i:i+25])
		batches = append(batches, batch{last, time.Now()})
		if i == 300 {
			go c.GetTask(context.Background(), &vigilv1.GetTaskRequest{})
		}
		select {
		case at := <-coord.asked:
			// Asking sooner than quiet after events the agent had seen is asking while the
			// user types.
			var typed time.Time
			for _, b := range batches {
				if !b.seen.After(at) {
					typed = b.sent
				}
			}
			if at.Sub(typed) < quiet {
				t.Fatalf("asked for a task %v into the typing", at.Sub(typed))
			}
			// Otherwise this loop itself stalled for the quiet period (a loaded machine did
			// not run it for a second): the device was idle, and asking was right. Ask again.
			t.Logf("the typing stalled: asked %v after the last events; asking again", at.Sub(typed))
			go c.GetTask(context.Background(), &vigilv1.GetTaskRequest{})
		case <-time.After(quiet / 4):
		}
	}
	select {
	case at := <-coord.asked:
		if wait := at.Sub(last); wait < quiet {
			t.Fatalf("asked for a task %v after the last events, before the quiet period of %v", wait, quiet)
		}
	case <-time.After(5 * quiet):
		t.Fatal("no task asked for once the device was idle with the session open")
	}
}
