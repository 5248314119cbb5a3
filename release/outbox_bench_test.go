package release

import (
	"context"
	"math/rand/v2"
	"testing"
)

// BenchmarkOutboxSubmit measures what Publish costs the coordinator per release of a model
// of 100,650 parameters (805 kB): hashing, signing the manifest and the pointer (ML-DSA-65),
// and the synced write of the queued release. Publication to the stores is not included.
func BenchmarkOutboxSubmit(b *testing.B) {
	tr := newTrust(b, 1, 1)
	params := make([]byte, 8*100650)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range params {
		params[i] = byte(r.Uint32())
	}
	o := tr.outbox(b, b.TempDir(), &clock{t: t0}, Region{"eu", newFS(b)})
	b.SetBytes(int64(len(params)))
	b.ReportAllocs()
	v := uint64(0)
	for b.Loop() {
		v++
		s := tr.spec(v, map[string][]byte{"params.f64": params, "meta.json": []byte(`{"version":1}`)})
		if err := o.Submit(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
}
