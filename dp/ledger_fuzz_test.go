package dp

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// fuzzKey is the MAC key of the fuzz seeds.
var fuzzKey = bytes.Repeat([]byte{7}, LedgerKeySize)

func ledgerSeed(t testing.TB, entries []LedgerEntry) []byte {
	s := &LedgerSnapshot{Subject: "model/authnet", Budget: Budget{Epsilon: 8, Delta: 1e-6}, Entries: entries}
	acc, err := NewAccountant(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Entries {
		if !s.Entries[i].Private() {
			s.Entries[i].Epsilon, s.Entries[i].Order = s.Entries[i-1].Epsilon, s.Entries[i-1].Order
			continue
		}
		if err := acc.Compose(s.Entries[i].Event()); err != nil {
			t.Fatal(err)
		}
		s.Entries[i].Epsilon, s.Entries[i].Order, err = acc.Epsilon(s.Budget.Delta)
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Encode(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzLedger feeds arbitrary bytes to the ledger decoder. A decoder must
// never panic, must fail only with ErrLedgerCorrupt or ErrLedgerMismatch,
// and must accept only canonical encodings (re-encoding an accepted file
// reproduces it byte for byte). Each input is also re-sealed with a valid
// MAC, so the fuzzer reaches the semantic checks behind it.
func FuzzLedger(f *testing.F) {
	valid := ledgerSeed(f, []LedgerEntry{
		{Round: 1, Mechanism: "poisson-hidden", SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 1},
		{Round: 2, Mechanism: "known-participation", SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 1, ClipNorm: 1, MinParticipants: 10, ToleratedDevices: 1, Participants: 12, Time: "2026-12-03T09:00:00Z"},
		{Round: 9, Mechanism: "poisson-hidden", SamplingRate: 0.02, NoiseMultiplier: 0.9, Steps: 3},
		{Round: 10, Mechanism: "none"},
	})
	f.Add(valid)
	f.Add(ledgerSeed(f, nil))
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.Replace(valid, []byte(`"round":2`), []byte(`"round":1`), 1))
	f.Add(bytes.Replace(valid, []byte(`"steps":3`), []byte(`"steps":-3`), 1))
	f.Add(bytes.Replace(valid, []byte(`"subject":"model/authnet"`), []byte(`"subject":""`), 1))
	f.Add([]byte("{}\n"))
	f.Add([]byte("null\n"))
	f.Add([]byte(`{"format":"vigil-privacy-ledger/v2","entries":[{"round":1e400}]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := DecodeLedger(data, fuzzKey)
		switch {
		case err == nil:
			out, err := snap.Encode(fuzzKey)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("accepted a non-canonical file:\n%q\nre-encodes to\n%q (%v)", data, out, err)
			}
		case !errors.Is(err, ErrLedgerCorrupt) && !errors.Is(err, ErrLedgerMismatch):
			t.Fatalf("unexpected error class: %v", err)
		}

		var lf ledgerFile
		if json.Unmarshal(data, &lf) != nil || lf.Entries == nil || len(lf.Entries) > 64 {
			return
		}
		resealed, err := (&LedgerSnapshot{Subject: lf.Subject, Budget: lf.Budget, Entries: lf.Entries}).Encode(fuzzKey)
		if err != nil || lf.Format != LedgerFormat || lf.Accounting != LedgerAccounting {
			return // non-finite numbers cannot be encoded
		}
		if _, err := DecodeLedger(resealed, fuzzKey); err != nil && !errors.Is(err, ErrLedgerCorrupt) && !errors.Is(err, ErrLedgerMismatch) {
			t.Fatalf("resealed: unexpected error class: %v", err)
		}
	})
}

// TestLedgerSeedDecodes guards the fuzz seed itself: the valid seed must decode.
func TestLedgerSeedDecodes(t *testing.T) {
	s, err := DecodeLedger(ledgerSeed(t, []LedgerEntry{{Round: 3, Mechanism: "known-participation", SamplingRate: 0.5, NoiseMultiplier: 2, Steps: 1}}), fuzzKey)
	if err != nil || len(s.Entries) != 1 {
		t.Fatalf("%v %v", s, err)
	}
}
