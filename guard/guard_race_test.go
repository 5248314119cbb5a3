package guard

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestOpenSessionWhileTheUserLearns opens sessions of a user while another of their sessions
// teaches the user's baseline: OpenSession read the user's maturity for its reason after
// letting go of the baseline's lock (a data race under -race), so the reason could name
// another maturity than the one the session started from.
func TestOpenSessionWhileTheUserLearns(t *testing.T) {
	g, err := New(Config{Context: ContextConfig{LearnAfterWindows: 1}, Trust: TrustConfig{MaturityWindows: 1000}}, mustPolicy(t, testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	must(t)(g.OpenSession("learner", "alice", base))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			g.ObserveBehaviour("learner", base.Add(time.Duration(i)*time.Second), 0, nil)
		}
	}()
	cfg := g.cfg.Trust
	for i := 0; i < 500; i++ {
		st, err := g.OpenSession(fmt.Sprint("s", i), "alice", base)
		if err != nil {
			t.Fatal(err)
		}
		var trust string
		var maturity int
		if _, err := fmt.Sscanf(st.Reasons[0].Text, "session opened at trust %s (%d consistent windows", &trust, &maturity); err != nil {
			t.Fatalf("reason %q: %v", st.Reasons[0].Text, err)
		}
		p := profile{maturity: maturity}
		if want := trustText(p.startTrust(&cfg)); trust != want || roundTrust(st.Trust) != roundTrust(p.startTrust(&cfg)) {
			t.Fatalf("session %d opened at trust %v, its reason says %q with %d windows known (which start at %s)", i, st.Trust, st.Reasons[0].Text, maturity, want)
		}
	}
	wg.Wait()
}
