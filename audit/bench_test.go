package audit

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// BenchmarkAppend measures the writer: encoding, hashing and writing one decision record, with
// an ML-DSA-65 checkpoint every DefaultCheckpointEvery records amortised in.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name  string
		every int
	}{{"checkpoint-every-256", DefaultCheckpointEvery}, {"checkpoint-every-1M", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := New(io.Discard, Head{}, Config{Signer: testSigner(b, "a"), CheckpointEvery: bc.every})
			if err != nil {
				b.Fatal(err)
			}
			d := testDecision(1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := l.AppendDecision(t0, d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkCheckpoint measures signing one checkpoint (ML-DSA-65, hedged).
func BenchmarkCheckpoint(b *testing.B) {
	l, err := New(io.Discard, Head{}, Config{Signer: testSigner(b, "a"), CheckpointEvery: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		l.AppendDecision(t0, testDecision(1))
		if err := l.Checkpoint(t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures verifying a log of 10,000 decisions with a checkpoint every 256.
func BenchmarkVerify(b *testing.B) {
	s := testSigner(b, "a")
	var buf bytes.Buffer
	l, _ := New(&buf, Head{}, Config{Signer: s})
	for i := 0; i < 10000; i++ {
		l.AppendDecision(t0.Add(time.Duration(i)), testDecision(i))
	}
	l.Close(t0.Add(time.Hour))
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Verify(bytes.NewReader(data), s.Public()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(10000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
