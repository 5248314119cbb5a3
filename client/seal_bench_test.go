package client

import (
	crand "crypto/rand"
	"math/rand/v2"
	"testing"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
)

// BenchmarkDeviceUpdate100k is the device's whole cost of protecting one 100,000-parameter
// update for the wire: encrypt under the collective key, then sign the update statement with
// the enrolled ML-DSA-65 key. Run with
//
//	go test ./client -run '^$' -bench DeviceUpdate -benchmem
func BenchmarkDeviceUpdate100k(b *testing.B) {
	p := he.DefaultParams()
	_, key, err := he.LocalCeremony(p, 1, []string{"a", "b", "c"}, 2)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := he.NewEncryptor(key)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := sig.GenerateKey(crand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	update := make([]float64, 100_000)
	for i := range update {
		update[i] = rng.NormFloat64() / 300
	}
	nonce := make([]byte, 16)
	bind := he.UpdateBinding(key.Epoch, 1, "dev", nonce)
	for _, stage := range []string{"encrypt", "encrypt+sign"} {
		b.Run(stage, func(b *testing.B) {
			for b.Loop() {
				cts, err := enc.Encrypt(update, 1, bind)
				if err != nil {
					b.Fatal(err)
				}
				if stage == "encrypt" {
					continue
				}
				heads, c1, err := he.UpdateParts(p, cts)
				if err != nil {
					b.Fatal(err)
				}
				st, err := he.UpdateStatement(p, bind, 1, 2, heads, c1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := signer.Sign(st[:], he.UpdateContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
