package dp

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func ledgerSeed(t testing.TB, entries []LedgerEntry) []byte {
	s := &LedgerSnapshot{Subject: "model/authnet", Budget: Budget{Epsilon: 8, Delta: 1e-6}, Entries: entries}
	acc, err := NewAccountant(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Entries {
		if err := acc.Compose(s.Entries[i].Event()); err != nil {
			t.Fatal(err)
		}
		s.Entries[i].Epsilon, s.Entries[i].Order, err = acc.Epsilon(s.Budget.Delta)
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzLedger feeds arbitrary bytes to the ledger decoder. A decoder must
// never panic, must fail only with ErrLedgerCorrupt or ErrLedgerMismatch,
// and must accept only canonical encodings (re-encoding an accepted file
// reproduces it byte for byte). Each input is also re-sealed with a valid
// checksum, so the fuzzer reaches the semantic checks behind the hash.
func FuzzLedger(f *testing.F) {
	valid := ledgerSeed(f, []LedgerEntry{
		{Round: 1, SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 1},
		{Round: 2, SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 1},
		{Round: 9, SamplingRate: 0.02, NoiseMultiplier: 0.9, Steps: 3},
	})
	f.Add(valid)
	f.Add(ledgerSeed(f, nil))
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.Replace(valid, []byte(`"round":2`), []byte(`"round":1`), 1))
	f.Add(bytes.Replace(valid, []byte(`"steps":3`), []byte(`"steps":-3`), 1))
	f.Add(bytes.Replace(valid, []byte(`"subject":"model/authnet"`), []byte(`"subject":""`), 1))
	f.Add([]byte("{}\n"))
	f.Add([]byte("null\n"))
	f.Add([]byte(`{"format":"vigil-privacy-ledger/v1","entries":[{"round":1e400}]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := DecodeLedger(data)
		switch {
		case err == nil:
			out, err := snap.Encode()
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
		resealed, err := encodeFile(lf.ledgerBody)
		if err != nil {
			return // non-finite numbers cannot be encoded
		}
		if _, err := DecodeLedger(resealed); err != nil && !errors.Is(err, ErrLedgerCorrupt) && !errors.Is(err, ErrLedgerMismatch) {
			t.Fatalf("resealed: unexpected error class: %v", err)
		}
	})
}

// TestLedgerSeedDecodes guards the fuzz seed itself: the valid seed must decode.
func TestLedgerSeedDecodes(t *testing.T) {
	s, err := DecodeLedger(ledgerSeed(t, []LedgerEntry{{Round: 3, SamplingRate: 0.5, NoiseMultiplier: 2, Steps: 1}}))
	if err != nil || len(s.Entries) != 1 {
		t.Fatalf("%v %v", s, err)
	}
}
