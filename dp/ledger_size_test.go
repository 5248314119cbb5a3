package dp_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/dp"
)

// longestEntry is an entry whose encoding is as long as any entry's can be: every integer and
// float at its longest spelling (beyond what validation accepts), the longest mechanism, a time
// and a hash.
func longestEntry(round uint64) dp.LedgerEntry {
	f := -2.2250738585072014e-308
	return dp.LedgerEntry{Round: round, Mechanism: dp.KnownParticipation.String(), SamplingRate: f, NoiseMultiplier: f, Steps: math.MinInt64,
		ClipNorm: f, MinParticipants: math.MinInt64, ToleratedDevices: math.MinInt64, Participants: math.MinInt64,
		Time: "2006-01-02T15:04:05Z", ModelSHA256: strings.Repeat("a", 64), Epsilon: f, Order: f}
}

// TestLedgerSizeBounds: a ledger holding MaxLedgerEntries of the longest entries, under the
// longest subject, fits in MaxLedgerBytes. The cap was 32 MiB, which a coordinator's ledger
// (about 348 bytes an entry) passed at about 96,400 rounds: the file was written, and the
// coordinator's next start called it corrupt.
func TestLedgerSizeBounds(t *testing.T) {
	key := make([]byte, dp.LedgerKeySize)
	size := func(n int) int {
		s := dp.LedgerSnapshot{Subject: strings.Repeat("<", dp.MaxSubjectLen), Budget: dp.Budget{Epsilon: -2.2250738585072014e-308, Delta: -2.2250738585072014e-308}}
		for i := range n {
			s.Entries = append(s.Entries, longestEntry(math.MaxUint64-uint64(i)))
		}
		b, err := s.Encode(key)
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	header, entry := size(0), size(2)-size(1)
	if full := header + dp.MaxLedgerEntries*entry; full > dp.MaxLedgerBytes {
		t.Errorf("%d entries of %d bytes and %d more take %d bytes, over MaxLedgerBytes = %d", dp.MaxLedgerEntries, entry, header, full, dp.MaxLedgerBytes)
	}
	t.Logf("longest entry %d bytes, header %d; MaxLedgerBytes %d", entry, header, dp.MaxLedgerBytes)
}

// TestLedgerOverCapReportsItsSize: a file over the cap is corrupt, and the error gives its size
// (it gave the length read, MaxLedgerBytes+1).
func TestLedgerOverCapReportsItsSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.ledger")
	if err := os.WriteFile(dp.LedgerKeyPath(path), make([]byte, dp.LedgerKeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(dp.MaxLedgerBytes + 142) // sparse
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := fmt.Sprintf("%d bytes, over the cap of %d", size, dp.MaxLedgerBytes)
	if _, err := dp.ReadLedger(path); !errors.Is(err, dp.ErrLedgerCorrupt) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadLedger: %v, want ErrLedgerCorrupt naming %s and %q", err, path, want)
	}
	if _, err := dp.OpenLedger(path, "m", testBudget); !errors.Is(err, dp.ErrLedgerCorrupt) || !strings.Contains(err.Error(), want) {
		t.Errorf("OpenLedger: %v, want ErrLedgerCorrupt and %q", err, want)
	}
}

// TestLedgerFullIsReadable: a ledger of MaxLedgerEntries long entries, the last charged and
// released through the API as the coordinator does, reads back, and the next round is
// ErrLedgerFull. The entries are rounds without differential privacy (no epsilon to compute,
// so the test is quick), at about 420 bytes each; on the 32 MiB cap the file could not be read.
func TestLedgerFullIsReadable(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads a ledger of some 40 MB")
	}
	path := filepath.Join(t.TempDir(), "model.ledger")
	key := make([]byte, dp.LedgerKeySize)
	rand.Read(key)
	if err := os.WriteFile(dp.LedgerKeyPath(path), key, 0o600); err != nil {
		t.Fatal(err)
	}
	base := uint64(math.MaxUint64 - dp.MaxLedgerEntries - 1)
	charge := func(i int) dp.RoundCharge {
		return dp.RoundCharge{Round: base + uint64(i), Unprotected: true, ClipNorm: 0.12345678901234566, MinParticipants: math.MaxInt64 - 1,
			ToleratedDevices: math.MaxInt64 - 2, Participants: math.MaxInt64, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	sum := strings.Repeat("0123456789abcdef", 4)
	snap := dp.LedgerSnapshot{Subject: "keystroke-ae", Budget: dp.Budget{Epsilon: 1, Delta: 1e-5}}
	for i := 1; i < dp.MaxLedgerEntries; i++ {
		c := charge(i)
		snap.Entries = append(snap.Entries, dp.LedgerEntry{Round: c.Round, Mechanism: dp.MechanismNone, ClipNorm: c.ClipNorm,
			MinParticipants: c.MinParticipants, ToleratedDevices: c.ToleratedDevices, Participants: c.Participants,
			Time: c.Time.Format(time.RFC3339), ModelSHA256: sum})
	}
	data, err := snap.Encode(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := dp.OpenLedger(path, snap.Subject, snap.Budget)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ChargeRound(charge(dp.MaxLedgerEntries)); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordRelease(charge(dp.MaxLedgerEntries).Round, sum); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	got, err := dp.ReadLedger(path)
	if err != nil || len(got.Entries) != dp.MaxLedgerEntries {
		t.Fatalf("a ledger of %d entries, %d bytes, does not read back: %v", dp.MaxLedgerEntries, st.Size(), err)
	}
	if _, err := l.ChargeRound(charge(dp.MaxLedgerEntries + 1)); !errors.Is(err, dp.ErrLedgerFull) {
		t.Errorf("round past the cap: %v, want ErrLedgerFull", err)
	}
	if _, err := dp.OpenLedger(path, snap.Subject, snap.Budget); err != nil {
		t.Errorf("reopening the full ledger: %v", err)
	}
	t.Logf("%d entries, %d bytes (MaxLedgerBytes %d)", dp.MaxLedgerEntries, st.Size(), dp.MaxLedgerBytes)
}
