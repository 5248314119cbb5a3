package trustee

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/vigilauth/vigil/crypto/he"
	"google.golang.org/grpc"
)

// BenchmarkDecryptSum100k: the coordinator's whole decryption of a 100,000-parameter sum over
// loopback gRPC with 3 trustees, t = 2: Info to all, two DecryptionShare calls in parallel
// (each: check, share, journal fsync), combine and decode. Each iteration is a new round.
func BenchmarkDecryptSum100k(b *testing.B) {
	k := newTestKey(b, 3, 2)
	cluster := startCluster(b, k, b.TempDir())
	client := newClient(b, k, cluster)
	ctx := context.Background()
	round := uint64(0)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		round++
		sum, _ := sealedSum(b, k, round, testMinContributors, 100_000)
		b.StartTimer()
		if _, err := client.DecryptSum(ctx, sum, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRound100Devices: the HE work of one demo round with 100 devices and 3 trustees
// (t = 2) over loopback gRPC, beyond local training: 100 devices encrypt (as many at a time
// as there are CPUs, each with its own Encryptor), the coordinator adds the 100 updates, seals
// the sum, and decrypts it through the trustees. Not included: the devices' SubmitUpdate
// calls to the coordinator (the lead's service) and training.
func BenchmarkRound100Devices(b *testing.B) {
	for _, dim := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			const devices = 100
			k := newTestKey(b, 3, 2)
			cluster := startCluster(b, k, b.TempDir())
			client := newClient(b, k, cluster)
			workers := runtime.GOMAXPROCS(0)
			encs := make([]*he.Encryptor, workers)
			for i := range encs {
				encs[i], _ = he.NewEncryptor(k.key)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			updates := make([][]float64, devices)
			for d := range updates {
				updates[d] = make([]float64, dim)
				for i := range updates[d] {
					updates[d][i] = rng.NormFloat64() * 0.001
				}
			}
			round := uint64(0)
			b.ResetTimer()
			for b.Loop() {
				round++
				cts := make([][][]byte, devices)
				binds := make([]he.Binding, devices)
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for d := w; d < devices; d += workers {
							binds[d] = he.UpdateBinding(k.key.Epoch, round, fmt.Sprintf("dev-%d", d), nil)
							var err error
							if cts[d], err = encs[w].Encrypt(updates[d], 1, binds[d]); err != nil {
								panic(err)
							}
						}
					})
				}
				wg.Wait()
				acc, _ := he.NewAccumulator(k.params, k.key.Epoch, dim)
				for d := range cts {
					if err := acc.Add(cts[d], binds[d]); err != nil {
						b.Fatal(err)
					}
				}
				sum, err := acc.Seal(round)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := client.DecryptSum(context.Background(), sum, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecryptionShareRPC100k: one trustee's DecryptionShare over loopback gRPC for a
// 100,000-parameter sum, end to end: transfer of the 1.7 MB request, checks, request digest
// and sum fingerprint, the share itself, the journal written and fsynced, the 0.85 MB answer.
func BenchmarkDecryptionShareRPC100k(b *testing.B) {
	k := newTestKey(b, 3, 2)
	cluster := startCluster(b, k, b.TempDir())
	ctx := context.Background()
	round := uint64(0)
	for b.Loop() {
		b.StopTimer()
		round++
		sum, _ := sealedSum(b, k, round, testMinContributors, 100_000)
		req := shareRequest(k, sum, 0, 1)
		b.StartTimer()
		if _, err := cluster.Clients[0].DecryptionShare(ctx, req, grpc.MaxCallRecvMsgSize(MaxMessageBytes)); err != nil {
			b.Fatal(err)
		}
	}
}
