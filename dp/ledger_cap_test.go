package dp

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestLedgerNeverWritesWhatItCannotRead: a round or a release that would take the file past the
// size a ledger is read at is ErrLedgerFull, and leaves the file and the ledger as they were.
// MaxLedgerBytes is chosen so that this cannot happen under MaxLedgerEntries; the test lowers
// the cap to reach it.
func TestLedgerNeverWritesWhatItCannotRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.ledger")
	l, err := OpenLedger(path, "m", Budget{Epsilon: 100, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{SamplingRate: 0.5, NoiseMultiplier: 5, Steps: 1, Mechanism: KnownParticipation}
	round := func(r uint64) RoundCharge {
		return RoundCharge{Round: r, Event: ev, ClipNorm: 1, MinParticipants: 10, ToleratedDevices: 1, Participants: 12}
	}
	for r := uint64(1); r <= 2; r++ {
		if _, err := l.ChargeRound(round(r)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := l.snap.Encode(l.key)
	if err != nil {
		t.Fatal(err)
	}
	defer func(c int) { ledgerWriteCap = c }(ledgerWriteCap)
	ledgerWriteCap = len(data) + 10 // room for neither another round nor a hash
	spent, _ := l.Spent()
	if _, err := l.ChargeRound(round(3)); !errors.Is(err, ErrLedgerFull) {
		t.Errorf("round over the cap: %v, want ErrLedgerFull", err)
	}
	if err := l.RecordRelease(2, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrLedgerFull) {
		t.Errorf("release over the cap: %v, want ErrLedgerFull", err)
	}
	got, err := ReadLedger(path)
	if err != nil || len(got.Entries) != 2 || len(l.Entries()) != 2 || got.Entries[1].ModelSHA256 != "" || l.Entries()[1].ModelSHA256 != "" {
		t.Fatalf("after refusals: file %+v (%v), ledger %+v", got, err, l.Entries())
	}
	if s, _ := l.Spent(); s != spent {
		t.Errorf("spent %v after a refused round, was %v", s, spent)
	}
	ledgerWriteCap = MaxLedgerBytes
	if _, err := l.ChargeRound(round(3)); err != nil {
		t.Errorf("round under the cap: %v", err)
	}
}
