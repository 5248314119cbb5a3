package audit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The log used by the tamper tests: 20 decisions, a checkpoint after every 5, so records are
// 1-5 decisions, 6 checkpoint, 7-11 decisions, 12 checkpoint, ... 24 checkpoint.
const (
	tamperDecisions = 20
	tamperEvery     = 5
)

func TestVerifyIntactLog(t *testing.T) {
	s := testSigner(t, "a")
	lines := writeLog(t, s, tamperDecisions, tamperEvery)
	rep, err := Verify(bytes.NewReader(joinLines(lines)), s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 24 || rep.Decisions != 20 || rep.Checkpoints != 4 || rep.LastSigned != 23 || rep.Unsigned() != 1 {
		// The final checkpoint is record 24 and covers 23; the checkpoint itself is the one
		// record after it.
		t.Fatalf("report %+v", rep)
	}
	if rep.Head.Seq != 24 {
		t.Fatalf("head %d", rep.Head.Seq)
	}
	empty, err := Verify(strings.NewReader(""), s.Public())
	if err != nil || empty.Records != 0 {
		t.Fatalf("empty log: %+v, %v", empty, err)
	}
}

func TestVerifyNamesFirstProblem(t *testing.T) {
	s := testSigner(t, "a")
	other := testSigner(t, "mallory")
	base := writeLog(t, s, tamperDecisions, tamperEvery)

	clone := func() [][]byte {
		out := make([][]byte, len(base))
		for i, l := range base {
			out[i] = append([]byte(nil), l...)
		}
		return out
	}
	cases := []struct {
		name    string
		mutate  func([][]byte) [][]byte
		want    error
		seq     uint64
		line    int
		inError string
	}{
		{
			name: "field edited",
			mutate: func(l [][]byte) [][]byte {
				l[8] = bytes.Replace(l[8], []byte(`"allow":true`), []byte(`"allow":false`), 1)
				return l
			},
			want: ErrTampered, seq: 9, line: 9,
		},
		{
			name: "record rewritten with a fresh hash",
			mutate: func(l [][]byte) [][]byte {
				r := mustDecode(t, l[7])
				r.Decision.Allow = !r.Decision.Allow
				l[7] = rehash(t, r)
				return l
			},
			want: ErrTampered, seq: 8, line: 9,
		},
		{
			name:   "two records swapped",
			mutate: func(l [][]byte) [][]byte { l[2], l[3] = l[3], l[2]; return l },
			want:   ErrReordered, seq: 3, line: 3, inError: "line 4",
		},
		{
			name:   "record moved to the end",
			mutate: func(l [][]byte) [][]byte { return append(append(l[:4:4], l[5:]...), l[4]) },
			want:   ErrReordered, seq: 5, line: 5,
		},
		{
			name:   "record deleted",
			mutate: func(l [][]byte) [][]byte { return append(l[:9:9], l[10:]...) },
			want:   ErrMissing, seq: 10, line: 10, inError: "record 10 is missing",
		},
		{
			name:   "range deleted",
			mutate: func(l [][]byte) [][]byte { return append(l[:9:9], l[13:]...) },
			want:   ErrMissing, seq: 10, line: 10, inError: "records 10..13",
		},
		{
			name:   "record duplicated",
			mutate: func(l [][]byte) [][]byte { return append(l[:4:4], append([][]byte{l[3]}, l[4:]...)...) },
			want:   ErrReordered, seq: 5, line: 5,
		},
		{
			name: "cut mid-record",
			mutate: func(l [][]byte) [][]byte {
				l[15] = l[15][:len(l[15])/2]
				return l[:16]
			},
			want: ErrTruncated, seq: 16, line: 16,
		},
		{
			name: "line garbled",
			mutate: func(l [][]byte) [][]byte {
				l[0] = []byte("{\"seq\":1,\n")
				return l
			},
			want: ErrMalformed, seq: 1, line: 1,
		},
		{
			name: "chain rewritten from record 8 on",
			mutate: func(l [][]byte) [][]byte {
				// An attacker who knows the format rewrites record 8 and re-links every
				// record after it; only the checkpoint signatures can tell.
				var prev Hash
				for i := range l {
					r := mustDecode(t, l[i])
					if i == 7 {
						r.Decision.Allow = !r.Decision.Allow
					}
					if i >= 7 {
						r.Prev = prev
						if r.Checkpoint != nil {
							r.Checkpoint.Head = prev
						}
						l[i] = rehash(t, r)
						r = mustDecode(t, l[i])
					}
					prev = r.Hash
				}
				return l
			},
			want: ErrBadSignature, seq: 12, line: 12, inError: "records 6..11",
		},
		{
			name: "checkpoint re-signed by another key",
			mutate: func(l [][]byte) [][]byte {
				r := mustDecode(t, l[5])
				sig, err := other.Sign(CheckpointMessage(r.Checkpoint.Covers, r.Checkpoint.Head, r.Time))
				if err != nil {
					t.Fatal(err)
				}
				r.Checkpoint.Sig = sig
				r.Checkpoint.Key = KeyIDOf(other.Public().PublicKey())
				l[5] = rehash(t, r)
				// Re-link the rest so that only the signature is wrong.
				prev := mustDecode(t, l[5]).Hash
				for i := 6; i < len(l); i++ {
					r := mustDecode(t, l[i])
					r.Prev = prev
					if r.Checkpoint != nil {
						r.Checkpoint.Head = prev
					}
					l[i] = rehash(t, r)
					prev = mustDecode(t, l[i]).Hash
				}
				return l
			},
			want: ErrBadSignature, seq: 6, line: 6, inError: "not by the given key",
		},
		{
			name: "checkpoint signature forged under the right key ID",
			mutate: func(l [][]byte) [][]byte {
				r := mustDecode(t, l[11])
				sig, err := other.Sign(CheckpointMessage(r.Checkpoint.Covers, r.Checkpoint.Head, r.Time))
				if err != nil {
					t.Fatal(err)
				}
				r.Checkpoint.Sig = sig
				l[11] = rehash(t, r)
				return l[:12]
			},
			want: ErrBadSignature, seq: 12, line: 12, inError: "does not verify",
		},
		{
			name: "checkpoint signature bit flipped",
			mutate: func(l [][]byte) [][]byte {
				r := mustDecode(t, l[17])
				r.Checkpoint.Sig[100] ^= 1
				l[17] = rehash(t, r)
				return l[:18]
			},
			want: ErrBadSignature, seq: 18, line: 18,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := joinLines(c.mutate(clone()))
			if bytes.Equal(data, joinLines(base)) {
				t.Fatal("the mutation left the log unchanged")
			}
			_, err := Verify(bytes.NewReader(data), s.Public())
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			if !errors.Is(err, c.want) || ve.Seq != c.seq || ve.Line != c.line {
				t.Fatalf("Verify = %v (seq %d, line %d), want %v at record %d, line %d", err, ve.Seq, ve.Line, c.want, c.seq, c.line)
			}
			if !strings.Contains(err.Error(), c.inError) {
				t.Fatalf("error %q does not mention %q", err, c.inError)
			}
		})
	}
}

// TestVerifyTailTruncation shows the limit of a log on its own: whole records cut off after the
// last checkpoint leave a valid log, which Report makes visible as unsigned or missing signature.
func TestVerifyTailTruncation(t *testing.T) {
	s := testSigner(t, "a")
	lines := writeLog(t, s, tamperDecisions, tamperEvery)
	rep, err := Verify(bytes.NewReader(joinLines(lines[:20])), s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Head.Seq != 20 || rep.LastSigned != 17 || rep.Unsigned() != 3 {
		t.Fatalf("report %+v, want head 20, last signed 17, 3 unsigned", rep)
	}
}

func TestVerifyReportsGaps(t *testing.T) {
	s := testSigner(t, "a")
	var buf bytes.Buffer
	l, err := New(&buf, Head{}, Config{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	l.AppendDecision(t0, testDecision(1))
	l.AppendGap(t0, 7)
	l.AppendDecision(t0, testDecision(2))
	if err := l.Close(t0); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(&buf, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0] != (GapAt{Seq: 2, Dropped: 7}) || rep.Dropped != 7 {
		t.Fatalf("gaps %+v", rep.Gaps)
	}
}

// TestVerifyReportsInvalidGaps: a gap says how many of its entries the log format refused,
// apart from those a full queue lost, and cannot claim more of them than it counts.
func TestVerifyReportsInvalidGaps(t *testing.T) {
	s := testSigner(t, "a")
	var buf bytes.Buffer
	l, err := New(&buf, Head{}, Config{Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	l.AppendGap(t0, 3)
	l.AppendGapOf(t0, Gap{Dropped: 2, Invalid: 2})
	if _, err := l.AppendGapOf(t0, Gap{Dropped: 1, Invalid: 2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a gap of 1 entry, 2 of them invalid: %v", err)
	}
	if err := l.Close(t0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"gap":{"dropped":3},`)) || !bytes.Contains(buf.Bytes(), []byte(`"gap":{"dropped":2,"invalid":2},`)) {
		t.Fatalf("gap records:\n%s", buf.Bytes())
	}
	rep, err := Verify(&buf, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	want := []GapAt{{Seq: 1, Dropped: 3}, {Seq: 2, Dropped: 2, Invalid: 2}}
	if len(rep.Gaps) != 2 || rep.Gaps[0] != want[0] || rep.Gaps[1] != want[1] || rep.Dropped != 5 || rep.Invalid != 2 {
		t.Fatalf("gaps %+v, dropped %d, invalid %d", rep.Gaps, rep.Dropped, rep.Invalid)
	}
}
