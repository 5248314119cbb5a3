package coordinator_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// stuckSealing is plaintext sealing whose Open, the trustees' decryption, never returns: it
// says when it was asked, then waits for its context, as the sum of a coordinator killed
// while the trustees decrypt.
type stuckSealing struct {
	coordinator.Insecure
	opening chan struct{}
}

func (s *stuckSealing) Open(ctx context.Context, _ uint64, _ aggregation.Accumulator, _ trustee.Contributions, _ trustee.RoundPrivacy) ([]float64, error) {
	close(s.opening)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestRoundClosingAtCrashIsReported: a coordinator stopped while a
// round closed (charged, the trustees decrypting) gave the round up at the restart, as it must
// (its sum may have been opened, and is never opened again), but said so only in one log line:
// the round, charged with nothing released and its acknowledged updates discarded, was in no
// status, and a restart dropped the last round's outcome from the status too. Now the round is
// the status's last round, failed, saying why, what was charged and how many updates were
// discarded, and the recent rounds survive later restarts, in ReadStatus too.
func TestRoundClosingAtCrashIsReported(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	cfg := privateConfig(t, storeDir, stateDir, 1)
	cfg.Rounds = 0
	stuck := &stuckSealing{opening: make(chan struct{})}
	c, err := coordinator.New(context.Background(), cfg, stuck)
	if err != nil {
		t.Fatal(err)
	}
	api := serveAPI(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(ran)
	}()
	enrol(t, api, "a", "b", "c")
	for _, d := range []string{"a", "b", "c"} {
		tk := waitTask(t, api, d)
		if _, err := api.SubmitUpdate(ctx, update(tk, d, 0.1)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-stuck.opening:
	case <-time.After(10 * time.Second):
		t.Fatal("the round's sum was never opened")
	}
	spent := c.Status().GetPrivacy().GetEpsilonSpent()
	if spent <= 0 {
		t.Fatalf("epsilon %v spent before the sum is opened, want the round's charge", spent)
	}
	cancel() // the coordinator stops with the sum being opened
	<-ran

	var logs syncBuffer
	restart := func() (*coordinator.Coordinator, func()) {
		t.Helper()
		cfg := privateConfig(t, storeDir, stateDir, 1)
		cfg.Rounds = 0
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() {
			c.Run(ctx)
			close(ran)
		}()
		return c, func() {
			cancel()
			<-ran
		}
	}
	check := func(when string, st *vigilv1.StatusResponse) {
		t.Helper()
		l := st.GetLastRound()
		if l.GetRound() != 1 || l.GetOutcome() != "failed" || l.GetSelected() != 3 || l.GetParticipants() != 3 {
			t.Fatalf("%s: last round %v, want round 1 failed, 3 of 3", when, l)
		}
		for _, want := range []string{"the coordinator stopped while the round was closing", "given up at the restart",
			"charged to the privacy ledger, nothing released", "its 3 acknowledged updates are discarded"} {
			if !strings.Contains(l.GetReason(), want) {
				t.Errorf("%s: last round's reason %q does not say %q", when, l.GetReason(), want)
			}
		}
		if r := st.GetRecentRounds(); len(r) != 1 || r[0].GetRound() != 1 || r[0].GetReason() != l.GetReason() {
			t.Errorf("%s: recent rounds %v, want round 1 once", when, r)
		}
	}

	c, stop := restart()
	check("after the restart", c.Status())
	if got := c.Status().GetPrivacy().GetEpsilonSpent(); got != spent {
		t.Errorf("epsilon %v spent after the restart, want %v: charged once", got, spent)
	}
	if !strings.Contains(logs.String(), "round was closing when the coordinator stopped; it is given up") ||
		!strings.Contains(logs.String(), "updates_discarded=3") {
		t.Errorf("the log does not say the round was given up and its updates discarded:\n%s", logs.String())
	}
	eventually(t, "the given-up round to leave the state file", func() bool {
		st, err := coordinator.ReadStatus(stateDir)
		return err == nil && st.GetOpenRound() == nil
	})
	stop()

	// A later restart keeps the recent rounds, and so does the state directory's status.
	c, stop = restart()
	check("after a second restart", c.Status())
	stop()
	st, err := coordinator.ReadStatus(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	check("ReadStatus", st)
}
