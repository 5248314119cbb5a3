package trustee

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/internal/cputime"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// BenchmarkVerifyContribution100k is a trustee's work per device update at 100,000
// parameters (13 ciphertexts): the device record verified under the enrolment role, the
// statement recomputed (SHA-256 of the 13 c1 polynomials), the ML-DSA-65 signature verified,
// the c1 polynomials checked and added. Transfer is not included (see
// BenchmarkCommitSumRPC100k).
func BenchmarkVerifyContribution100k(b *testing.B) {
	k := newTestKey(b, 3, 2)
	const dim = 100_000
	devs := k.devices(b, 8)
	r := k.sealedRound(b, devs, 1, dim)
	hdr := header(k, 1, dim, he.MaxContributors)
	b.SetBytes(int64(len(r.contribs[0].GetC1()) * k.params.C1Bytes()))
	b.ReportAllocs()
	b.ResetTimer()
	cputime.Report(b)
	var v *sumVerifier
	i := 0
	for b.Loop() {
		if i%len(devs) == 0 {
			var err error
			if v, err = newSumVerifier(k.shares[0], testMinContributors, 0, k.root, time.Now(), hdr); err != nil {
				b.Fatal(err)
			}
		}
		if err := v.add(r.contribs[i%len(devs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCommitSumRPC100k: one trustee's CommitSum over loopback gRPC for a round of 8
// devices at 100,000 parameters, end to end (transfer of 8 x 13 c1 polynomials, verification,
// journal with the c1 sum written and fsynced). Reported per round; divide by 8 per device.
func BenchmarkCommitSumRPC100k(b *testing.B) {
	k := newTestKey(b, 3, 2)
	cluster := startCluster(b, k, b.TempDir())
	const dim, devices = 100_000, 8
	devs := k.devices(b, devices)
	round := uint64(0)
	for b.Loop() {
		b.StopTimer()
		round++
		r := k.sealedRound(b, devs, round, dim)
		b.StartTimer()
		if _, err := commitSum(cluster.Clients[0], header(k, round, dim, devices), r.contribs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptSum100k: the coordinator's whole decryption of a 100,000-parameter sum of
// 3 devices over loopback gRPC with 3 trustees, t = 2: Info to all, CommitSum to all three in
// parallel, two DecryptionShare calls in parallel, combine and decode.
func BenchmarkDecryptSum100k(b *testing.B) {
	k := newTestKey(b, 3, 2)
	cluster := startCluster(b, k, b.TempDir())
	client := newClient(b, k, cluster)
	devs := k.devices(b, testMinContributors)
	ctx := context.Background()
	round := uint64(0)
	for b.Loop() {
		b.StopTimer()
		round++
		r := k.sealedRound(b, devs, round, 100_000)
		b.StartTimer()
		if _, err := client.DecryptSum(ctx, r.sum, r.contribs, testPrivacy); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptionShareRPC100k: one trustee's DecryptionShare over loopback gRPC for a
// 100,000-parameter sum it has committed to: quorum of 3 commitments verified, the share of
// its c1 sum, the journal written and fsynced, the answer.
func BenchmarkDecryptionShareRPC100k(b *testing.B) {
	k := newTestKey(b, 3, 2)
	cluster := startCluster(b, k, b.TempDir())
	devs := k.devices(b, testMinContributors)
	ctx := context.Background()
	round := uint64(0)
	for b.Loop() {
		b.StopTimer()
		round++
		r := k.sealedRound(b, devs, round, 100_000)
		var cms []*vigilv1.SumCommitment
		for i := range cluster.Clients {
			cm, err := commitSum(cluster.Clients[i], header(k, round, 100_000, len(devs)), r.contribs)
			if err != nil {
				b.Fatal(fmt.Errorf("trustee %d: %w", i, err))
			}
			cms = append(cms, cm)
		}
		req := shareRequest(k, r, cms, 0, 1)
		b.StartTimer()
		if _, err := cluster.Clients[0].DecryptionShare(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
