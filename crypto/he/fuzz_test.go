package he

import (
	"bytes"
	"crypto/sha256"
	"sync"
	"testing"
)

// Every decoder of bytes that arrive from the network or disk is fuzzed. Seeds are valid
// encodings, so `go test` runs them; the properties are: no panic, and whatever parses
// re-encodes to exactly the same bytes.

var fuzzFixture = sync.OnceValue(func() *fixture {
	p := DefaultParams()
	shares, key, err := LocalCeremony(p, 7, []string{"a", "b"}, 2)
	if err != nil {
		panic(err)
	}
	return &fixture{params: p, key: key, shares: shares}
})

func FuzzCiphertext(f *testing.F) {
	fx := fuzzFixture()
	enc, err := NewEncryptor(fx.key)
	if err != nil {
		f.Fatal(err)
	}
	b := UpdateBinding(fx.key.Epoch, 1, "d", nil)
	cts, err := enc.Encrypt([]float64{1, -2, 3}, 4, b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cts[0])
	f.Add(cts[0][:blobHeaderSize])
	f.Add([]byte(blobMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		acc, err := NewAccumulator(fx.params, fx.key.Epoch, 3)
		if err != nil {
			t.Fatal(err)
		}
		before := bytes.Clone(data)
		if err := acc.Add([][]byte{data}, b); err == nil {
			if acc.Count() != 1 {
				t.Fatalf("accepted but Count = %d", acc.Count())
			}
			if _, err := acc.Seal(1); err != nil {
				t.Fatalf("accepted update does not seal: %v", err)
			}
		} else if acc.Count() != 0 {
			t.Fatalf("rejected update counted")
		}
		if !bytes.Equal(before, data) {
			t.Fatal("Add modified its input")
		}
		if s, err := ParseSum(fx.params, fx.key.Epoch, 1, 1, [][]byte{data}); err == nil {
			if _, err := NewDecryptor(fx.shares[0]); err != nil {
				t.Fatal(err)
			}
			_ = s.Fingerprint()
		}
	})
}

func FuzzSecretShare(f *testing.F) {
	fx := fuzzFixture()
	valid, err := fx.shares[0].MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid[:len(valid)-sha256.Size], true)
	f.Add(valid, false)
	f.Add([]byte(shareMagic), true)
	f.Fuzz(func(t *testing.T, data []byte, addChecksum bool) {
		// With addChecksum the fuzzer explores the parser behind the checksum.
		if addChecksum {
			sum := sha256.Sum256(data)
			data = append(bytes.Clone(data), sum[:]...)
		}
		s, err := ParseSecretShare(fx.params, data)
		if err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("parsed share does not re-encode to its input: %v", err)
		}
	})
}

func FuzzKeyEpoch(f *testing.F) {
	fx := fuzzFixture()
	valid, err := fx.key.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeyEpoch(fx.params, data)
		if err != nil {
			return
		}
		again, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("parsed key epoch does not re-encode to its input: %v", err)
		}
		if _, err := NewEncryptor(k); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzCeremonyMessages(f *testing.F) {
	p := DefaultParams()
	res, err := RunLocalCeremony(p, 1, []string{"a", "b"}, 2)
	if err != nil {
		f.Fatal(err)
	}
	a, roster := res.Identities[0], res.Roster
	d, c, err := Deal(roster, a)
	if err != nil {
		f.Fatal(err)
	}
	kc, err := NewKeyCheck(roster, res.Key, a)
	if err != nil {
		f.Fatal(err)
	}
	resp, err := Respond(roster, res.Key, res.Shares[1], res.Identities[1], kc.Challenge())
	if err != nil {
		f.Fatal(err)
	}
	rb, _ := roster.MarshalBinary()
	db, _ := d.MarshalBinary()
	ib, _ := a.MarshalBinary()
	pb, _ := a.Public().MarshalBinary()
	cb, _ := c.MarshalBinary()
	chb, _ := kc.Challenge().MarshalBinary()
	rsb, _ := resp.MarshalBinary()
	ab, _ := res.Approvals[0].MarshalBinary()
	for _, seed := range [][]byte{rb, db, ib, pb, cb, chb, rsb, ab} {
		for kind := range byte(8) {
			f.Add(kind, seed)
		}
	}
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		var again []byte
		var err error
		switch kind % 8 {
		case 0:
			var r *Roster
			if r, err = ParseRoster(p, data); err == nil {
				again, err = r.MarshalBinary()
			}
		case 1:
			var d *Dealing
			if d, err = ParseDealing(p, data); err == nil {
				again, err = d.MarshalBinary()
			}
		case 2:
			var id *Identity
			if id, err = ParseIdentity(data); err == nil {
				again, err = id.MarshalBinary()
			}
		case 3:
			var pi PublicIdentity
			if pi, err = ParsePublicIdentity(data); err == nil {
				again, err = pi.MarshalBinary()
			}
		case 4:
			var c *Commitment
			if c, err = ParseCommitment(p, data); err == nil {
				again, err = c.MarshalBinary()
			}
		case 5:
			var c *Challenge
			if c, err = ParseChallenge(p, data); err == nil {
				again, err = c.MarshalBinary()
			}
		case 6:
			var r *Response
			if r, err = ParseResponse(p, data); err == nil {
				again, err = r.MarshalBinary()
			}
		case 7:
			var a *Approval
			if a, err = ParseApproval(data); err == nil {
				again, err = a.MarshalBinary()
			}
		}
		if err == nil && !bytes.Equal(again, data) {
			t.Fatalf("kind %d: parsed message does not re-encode to its input", kind%8)
		}
	})
}

func FuzzAccumulatorState(f *testing.F) {
	fx := fuzzFixture()
	acc, err := NewAccumulator(fx.params, fx.key.Epoch, 10)
	if err != nil {
		f.Fatal(err)
	}
	valid, _ := acc.MarshalBinary()
	f.Add(valid[:len(valid)-sha256.Size], true)
	f.Add(valid, false)
	f.Add([]byte(accumulatorMagic), true)
	f.Fuzz(func(t *testing.T, data []byte, addChecksum bool) {
		if addChecksum {
			sum := sha256.Sum256(data)
			data = append(bytes.Clone(data), sum[:]...)
		}
		a, err := ParseAccumulator(fx.params, data)
		if err != nil {
			return
		}
		again, err := a.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("parsed accumulator does not re-encode to its input: %v", err)
		}
	})
}
