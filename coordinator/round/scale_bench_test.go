package round

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

type discardSum struct{ n int }

func (s *discardSum) Add(aggregation.Origin, *vigilv1.Update) error { s.n++; return nil }
func (s *discardSum) Count() int                                    { return s.n }
func (s *discardSum) MarshalBinary() ([]byte, error)                { return nil, nil }

// BenchmarkStartPlan1M is the sampling part of starting a round at 1,000,000 enrolled devices
// (IDs given in order) with 10,000 expected: the IDs copied and sorted (already so), one
// cryptographic coin per device, a nonce per sampled device. docs/scale.md rests on it.
func BenchmarkStartPlan1M(b *testing.B) {
	const enrolled, expected = 1_000_000, 10_000
	ids := make([]string, enrolled)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%07d", i)
	}
	e, err := New(Config{ExpectedParticipants: expected, Quorum: aggregation.Quorum{Min: 1}, Timeout: time.Hour}, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.StartPlan(time.Now(), Plan{}, 1, ids, &discardSum{}, rand.Reader); err != nil {
			b.Fatal(err)
		}
		e.Finish()
	}
}
