package coordinator

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/internal/cputime"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/trustee"
)

// BenchmarkIngest100k is the coordinator's work per accepted 100,000-parameter update (13
// ciphertexts, 3.4 MB) beyond gRPC: verify the device's signature over the update statement
// (which hashes every ciphertext), add the update to the encrypted sum, and log its
// contribution (the 13 c1 polynomials, 1.7 MB) to the round's file, fsynced once per 16
// updates as the group commit does at load. Sub-benchmarks give each step; "all" is the sum.
// ingestFixture is devices' signed, encrypted 100,000-parameter updates for round 1 and what
// the coordinator checks them with.
type ingestFixture struct {
	key  *he.KeyEpoch
	th   *ThresholdHE
	reqs []*vigilv1.SubmitUpdateRequest
	devs []device
}

const ingestDim, ingestDevices = 100_000, 16

func newIngestFixture(b *testing.B) *ingestFixture {
	b.Helper()
	const dim, devices = ingestDim, ingestDevices
	shares, key, err := he.LocalCeremony(he.DefaultParams(), 1, []string{"a", "b", "c"}, 2)
	if err != nil || len(shares) != 3 {
		b.Fatal(err)
	}
	tc, err := trustee.NewClient(trustee.ClientConfig{Key: key, Trustees: make([]vigilv1.TrusteeClient, 3)})
	if err != nil {
		b.Fatal(err)
	}
	th, err := NewThresholdHE(key, []byte("document"), tc)
	if err != nil {
		b.Fatal(err)
	}
	ks, err := release.NewKeySet(rand.Reader, time.Now().Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := he.NewEncryptor(key)
	p := key.Params()
	rng := mrand.New(mrand.NewPCG(1, 2))
	reqs := make([]*vigilv1.SubmitUpdateRequest, devices)
	devs := make([]device, devices)
	for i := range reqs {
		k, _ := sig.GenerateKey(rand.Reader)
		id := fmt.Sprintf("dev-%d", i)
		rec, err := ks.SignDeviceRecord(release.NewDeviceRecord(id, "eu", k.Public(), time.Now(), time.Now().Add(365*24*time.Hour)))
		if err != nil {
			b.Fatal(err)
		}
		devs[i] = device{record: rec}
		u := make([]float64, dim)
		for j := range u {
			u[j] = rng.NormFloat64() / 1000
		}
		nonce := make([]byte, vigilv1.NonceSize)
		nonce[0] = byte(i)
		cts, err := enc.Encrypt(u, 1, he.UpdateBinding(key.Epoch, 1, id, nonce))
		if err != nil {
			b.Fatal(err)
		}
		heads, c1, _ := he.UpdateParts(p, cts)
		stmt, _ := he.UpdateStatement(p, he.UpdateBinding(key.Epoch, 1, id, nonce), 1, 2, heads, c1)
		s, _ := k.Sign(stmt[:], he.UpdateContext)
		reqs[i] = &vigilv1.SubmitUpdateRequest{DeviceId: id, Round: 1, Nonce: nonce, BaseVersion: 1, Signature: s,
			Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: dim,
				ParamsId: p.ID(), KeyEpoch: key.Epoch, Ciphertexts: cts}}
	}
	return &ingestFixture{key: key, th: th, reqs: reqs, devs: devs}
}

func BenchmarkIngest100k(b *testing.B) {
	const dim, devices = ingestDim, ingestDevices
	f := newIngestFixture(b)
	key, th, reqs, devs, p := f.key, f.th, f.reqs, f.devs, f.key.Params()
	verify := func(i int) *vigilv1.Contribution {
		c, err := th.contribution(reqs[i], devs[i], true, 2)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	var acc *he.Accumulator
	add := func(i int) {
		if i == 0 {
			acc, _ = he.NewAccumulator(p, key.Epoch, dim)
		}
		r := reqs[i]
		if err := acc.Add(r.GetUpdate().GetCiphertexts(), he.UpdateBinding(key.Epoch, 1, r.GetDeviceId(), r.GetNonce())); err != nil {
			b.Fatal(err)
		}
	}
	log := newContributionLog(b.TempDir())
	store := func(i int, c *vigilv1.Contribution) {
		if i == 0 {
			log.mu.Lock()
			log.begin(1)
			log.mu.Unlock()
		}
		rec, err := log.encode(c)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := log.appendFor(1, c, rec); err != nil {
			b.Fatal(err)
		}
		if i == devices-1 {
			if err := log.sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	contribs := make([]*vigilv1.Contribution, devices)
	for i := range contribs {
		contribs[i] = verify(i)
	}
	b.Run("verify", func(b *testing.B) {
		cputime.Report(b)
		i := 0
		for b.Loop() {
			verify(i % devices)
			i++
		}
	})
	b.Run("add", func(b *testing.B) {
		cputime.Report(b)
		i := 0
		for b.Loop() {
			add(i % devices)
			i++
		}
	})
	b.Run("log", func(b *testing.B) {
		cputime.Report(b)
		i := 0
		for b.Loop() {
			store(i%devices, contribs[i%devices])
			i++
		}
	})
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		cputime.Report(b)
		i := 0
		for b.Loop() {
			c := verify(i % devices)
			add(i % devices)
			store(i%devices, c)
			i++
		}
	})
}
