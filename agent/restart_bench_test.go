package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// BenchmarkRestart8Users measures agent.New on a directory with 8 enrolled users: the start-up
// of an agent on a shared host, which fits every user's model again from their stored
// enrolment before it serves.
func BenchmarkRestart8Users(b *testing.B) {
	dir := b.TempDir()
	r := startAgent(b, dir, "", false)
	app := as(context.Background(), r.secret)
	for i := range 8 {
		user, session := fmt.Sprintf("user%d", i), fmt.Sprintf("s%d", i)
		if _, err := r.grpc.StartSession(app, &vigilv1.StartSessionRequest{Session: session, User: user}); err != nil {
			b.Fatal(err)
		}
		sendTyping(b, r.grpc, app, session, keyTimings(keystroke.NewTypist(uint64(10+i)).Type(300), time.Now()))
	}
	r.a.WaitEnrolments()
	for i := range 8 {
		if u := fmt.Sprintf("user%d", i); !r.a.Enrolled(u) {
			b.Fatalf("%s is not enrolled", u)
		}
	}
	if err := r.stop(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		a, err := agent.New(agent.Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := a.Run(ctx); err != nil { // closes the log and saves, as a shutdown does
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
