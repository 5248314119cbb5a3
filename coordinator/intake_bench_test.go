package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/internal/cputime"
	"github.com/vigilauth/vigil/store"
)

// BenchmarkTier100k is what the coordinator tier adds per 100,000-parameter update (3.4 MB)
// on an embedded JetStream: "store" is a frontend's write (encode the request, store it with
// the compare-and-set, wait for the acknowledgement), "follow" the leader's read of it back
// (deliver and decode). Both include the server's work, which runs in this process. With
// "blobs-dir" the update's bytes go to a directory (--tier-blobs; written without a sync, as
// the product does, then read back and hashed) and the stream holds their hash.
func BenchmarkTier100k(b *testing.B) {
	f := newIngestFixture(b)
	ctx := context.Background()
	srv, err := cluster.StartEmbedded(ctx, b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	// tcp is how a frontend reaches the tier (without its TLS here); the leader beside an
	// embedded server connects in process.
	for _, conn := range []struct {
		name    string
		connect func() (*nats.Conn, error)
		blobs   bool
	}{
		{"tcp", func() (*nats.Conn, error) { return nats.Connect(srv.URL()) }, false},
		{"in-process", func() (*nats.Conn, error) { return srv.ConnectInProcess() }, false},
		{"tcp-blobs-dir", func() (*nats.Conn, error) { return nats.Connect(srv.URL()) }, true},
	} {
		b.Run(conn.name, func(b *testing.B) {
			nc, err := conn.connect()
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			cfg := cluster.Config{Model: "bench-" + conn.name, Replicas: 1}
			if conn.blobs {
				if cfg.Blobs, err = store.NewUnsyncedFS(b.TempDir()); err != nil {
					b.Fatal(err)
				}
			}
			tier, err := cluster.Open(ctx, nc, cfg)
			if err != nil {
				b.Fatal(err)
			}
			benchmarkTier(b, f, tier)
		})
	}
}

func benchmarkTier(b *testing.B, f *ingestFixture, tier *cluster.Tier) {
	ctx := context.Background()
	round := uint64(0)
	newRound := func() uint64 {
		round++
		if err := tier.PublishPlan(ctx, round, []byte("plan")); err != nil {
			b.Fatal(err)
		}
		return round
	}
	store := func(r uint64, i int) {
		raw, err := proto.Marshal(f.reqs[i%len(f.reqs)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tier.Accept(ctx, r, fmt.Sprintf("dev-%d", i), raw, cluster.Stamp{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		cputime.Report(b)
		r := newRound()
		i := 0
		for b.Loop() {
			store(r, i)
			i++
		}
		b.StopTimer()
		tier.Forget(ctx, r)
	})
	b.Run("follow", func(b *testing.B) {
		b.ReportAllocs()
		const perRound = 64
		r := newRound()
		for i := range perRound {
			store(r, i)
		}
		if _, err := tier.Close(ctx, r); err != nil {
			b.Fatal(err)
		}
		cputime.Report(b)
		n := 0
		for b.Loop() {
			err := tier.Follow(ctx, r, func(u cluster.Update) error {
				var req proto.Message = f.reqs[0].ProtoReflect().New().Interface()
				n++
				return proto.Unmarshal(u.Data, req)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		// Per update, not per round of perRound.
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/update")
		tier.Forget(ctx, r)
	})
}
