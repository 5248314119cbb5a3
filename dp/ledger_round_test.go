package dp_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/dp"
)

func TestLedgerRecordsRoundParameters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.ledger")
	l, err := dp.OpenLedger(path, "model/a", dp.Budget{Epsilon: 50, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 12, 3, 9, 0, 0, 5e8, time.UTC)
	rc := dp.RoundCharge{Round: 4, Event: dp.Event{SamplingRate: 0.25, NoiseMultiplier: 3, Steps: 1, Mechanism: dp.KnownParticipation},
		ClipNorm: 0.5, MinParticipants: 25, ToleratedDevices: 3, Participants: 31, Time: when}
	e, err := l.ChargeRound(rc)
	if err != nil {
		t.Fatal(err)
	}
	if e.Mechanism != "known-participation" || e.Time != "2026-12-03T09:00:00Z" || e.Participants != 31 || e.ToleratedDevices != 3 {
		t.Fatalf("entry %+v", e)
	}
	// A retry with another time is the same charge; other parameters are a conflict.
	rc.Time = when.Add(time.Hour)
	if _, err := l.ChargeRound(rc); err != nil {
		t.Fatal(err)
	}
	rc.Event.NoiseMultiplier = 1
	if _, err := l.ChargeRound(rc); !errors.Is(err, dp.ErrRoundConflict) {
		t.Fatalf("changed z: %v", err)
	}
	sum := strings.Repeat("ab", 32)
	if err := l.RecordRelease(4, sum); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordRelease(4, strings.Repeat("cd", 32)); !errors.Is(err, dp.ErrRoundConflict) {
		t.Fatalf("second hash: %v", err)
	}
	if err := l.RecordRelease(5, sum); !errors.Is(err, dp.ErrRoundConflict) {
		t.Fatalf("uncharged round: %v", err)
	}
	snap, err := dp.ReadLedger(path)
	if err != nil || snap.Entries[0].ModelSHA256 != sum {
		t.Fatalf("%+v %v", snap, err)
	}
}

// TestAttackLedgerHandEdit: a ledger edited by hand, even with its MAC
// recomputed as a plain hash would allow, or opened without its key, is
// refused.
func TestAttackLedgerHandEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.ledger")
	l, err := dp.OpenLedger(path, "model/a", testBudget)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(1, roundEvent); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	snap, err := dp.ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the round and re-seal with a key that is not the ledger's.
	snap.Entries = nil
	forged, err := snap.Encode(bytes.Repeat([]byte{9}, dp.LedgerKeySize))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dp.OpenLedger(path, "model/a", testBudget); !errors.Is(err, dp.ErrLedgerCorrupt) || !strings.Contains(err.Error(), "MAC") {
		t.Fatalf("forged ledger: %v", err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dp.LedgerKeyPath(path)); err != nil {
		t.Fatal(err)
	}
	if _, err := dp.OpenLedger(path, "model/a", testBudget); !errors.Is(err, dp.ErrLedgerCorrupt) || !strings.Contains(err.Error(), "key") {
		t.Fatalf("ledger without its key: %v", err)
	}
}

// TestLedgerUnprotectedRoundIsFinal: once a round is recorded without
// differential privacy, no private round can be charged: the subject's
// loss is unbounded and a later "epsilon" would be a lie.
func TestLedgerUnprotectedRoundIsFinal(t *testing.T) {
	l, err := dp.OpenLedger(filepath.Join(t.TempDir(), "l"), "model/a", testBudget)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ChargeRound(dp.RoundCharge{Round: 1, Unprotected: true, ClipNorm: 1, MinParticipants: 2, Participants: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(2, roundEvent); !errors.Is(err, dp.ErrNotPrivate) {
		t.Fatalf("private round after an unprotected one: %v", err)
	}
	if _, _, err := l.Check(roundEvent); !errors.Is(err, dp.ErrNotPrivate) {
		t.Fatalf("check: %v", err)
	}
	if got := l.Unprotected(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("unprotected %v", got)
	}
}
