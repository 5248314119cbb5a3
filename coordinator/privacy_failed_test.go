package coordinator_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/dp"
)

// TestFailedRoundIsChargedAtInclusionRate: whether a round fails for too few answers depends on
// who answered, so among the rounds that succeed a device that always answers is in more of
// them than q says; the ledger charged only those and undercounted it (1.23-1.44 q in a
// review). A failed round is now charged too, and every round at the device's chance of being
// in a kept draw (dp.InclusionRate: draws below m_min are drawn again), not K/N.
func TestFailedRoundIsChargedAtInclusionRate(t *testing.T) {
	state := t.TempDir()
	cfg := privateConfig(t, t.TempDir(), state, 1)
	cfg.DevicesPerRound, cfg.MinUpdates, cfg.MinEnrolled = 3, 3, 4
	cfg.RoundTimeout = 300 * time.Millisecond
	// A quarter of the draws have fewer than m_min and are drawn again after a back-off.
	cfg.FailureBackoff, cfg.MaxBackoff = 10*time.Millisecond, 20*time.Millisecond
	api, c, _ := serveConfig(t, cfg)
	enrol(t, api, "a", "b", "c", "d")

	eventually(t, "the round to fail", func() bool { return c.Status().GetLastRound().GetOutcome() == "failed" })
	last := c.Status().GetLastRound()
	if r := last.GetReason(); !strings.Contains(r, "charged to the privacy ledger") {
		t.Errorf("failed round's reason %q does not say it was charged", r)
	}
	if eps := c.Status().GetPrivacy().GetEpsilonSpent(); !(eps > 0) {
		t.Errorf("a round that failed for want of answers spent epsilon %v", eps)
	}

	snap, err := dp.ReadLedger(filepath.Join(state, "model.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := dp.InclusionRate(3, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Entries) == 0 {
		t.Fatal("the failed round is not in the ledger")
	}
	e := snap.Entries[0]
	if e.Round != last.GetRound() || e.Participants != 0 || e.ModelSHA256 != "" || e.SamplingRate != want {
		t.Errorf("ledger entry %+v; want round %d, 0 participants, no model, q %v (K/N = 0.75)", e, last.GetRound(), want)
	}

	// The operator, who sees who has not answered, aborts the next round: charged too.
	var aborted uint64
	eventually(t, "a round to abort", func() bool {
		var err error
		aborted, err = c.Abort("")
		return err == nil
	})
	eventually(t, "the aborted round to end", func() bool { return c.Status().GetLastRound().GetRound() == aborted })
	if r := c.Status().GetLastRound().GetReason(); !strings.Contains(r, "aborted by the operator; charged") {
		t.Errorf("aborted round's reason %q does not say it was charged", r)
	}
	if snap, err = dp.ReadLedger(filepath.Join(state, "model.ledger")); err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Entries); n != 2 || snap.Entries[1].Round != aborted {
		t.Errorf("ledger holds %d entries (%+v), want the failed round's and the aborted round %d's", n, snap.Entries, aborted)
	}
}

// TestFailedRoundAtFullSamplingIsNotCharged: when every device is asked (q = 1, as in the
// population rounds), a released round is charged as if every device were in it, whichever
// rounds fail, so a failed one is not charged: population rounds, which need 90% of the fleet
// to answer, would otherwise spend the budget on every failure.
func TestFailedRoundAtFullSamplingIsNotCharged(t *testing.T) {
	cfg := privateConfig(t, t.TempDir(), t.TempDir(), 1) // K = N = 3
	cfg.RoundTimeout = 300 * time.Millisecond
	api, c, _ := serveConfig(t, cfg)
	enrol(t, api, "a", "b", "c")
	eventually(t, "the round to fail", func() bool { return c.Status().GetLastRound().GetOutcome() == "failed" })
	if eps := c.Status().GetPrivacy().GetEpsilonSpent(); eps != 0 {
		t.Errorf("a failed round that asked every device spent epsilon %v", eps)
	}
	if r := c.Status().GetLastRound().GetReason(); !strings.Contains(r, "every device was asked") {
		t.Errorf("failed round's reason %q", r)
	}
}
