package he_test

import (
	"fmt"

	"github.com/vigilauth/vigil/crypto/he"
)

// One round end to end, everything in one process: the ceremony, three devices, the
// coordinator's running sum, and two of three trustees decrypting it.
func Example() {
	params := he.DefaultParams()
	shares, key, err := he.LocalCeremony(params, 1, []string{"privacy", "security", "audit"}, 2)
	if err != nil {
		panic(err)
	}
	const round, clip = 1, 1.0

	// Coordinator: a running sum for 4-parameter updates.
	acc, _ := he.NewAccumulator(params, key.Epoch, 4)

	// Devices: encrypt under the (signed, verified) key epoch, bound to round and device.
	enc, _ := he.NewEncryptor(key)
	for i, update := range [][]float64{{0.1, 0.2, 0.3, 0.4}, {0.5, -0.5, 0, 0}, {-0.25, 0, 0.25, 1}} {
		b := he.UpdateBinding(key.Epoch, round, fmt.Sprintf("device-%d", i), []byte("task nonce"))
		cts, _ := enc.Encrypt(update, clip, b)
		if err := acc.Add(cts, b); err != nil { // the coordinator recomputes b itself
			panic(err)
		}
	}
	sum, _ := acc.Seal(round)

	// Trustees 1 and 2 (points 1 and 2): each checks the sum and computes its share.
	active := []uint64{shares[0].Point, shares[1].Point}
	var answers [][][]byte
	for _, s := range shares[:2] {
		parsed, err := he.ParseSum(params, sum.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
		if err != nil {
			panic(err)
		}
		d, _ := he.NewDecryptor(s)
		a, err := d.Share(parsed, active)
		if err != nil {
			panic(err)
		}
		answers = append(answers, a)
	}

	// Coordinator: combine and decode.
	total, err := he.Combine(key, sum, answers, clip)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d contributors, %d ciphertext(s)\n", sum.Contributors, len(sum.Ciphertexts))
	for _, v := range total {
		fmt.Printf("%.4f ", v)
	}
	fmt.Println()
	// Output:
	// 3 contributors, 1 ciphertext(s)
	// 0.3500 -0.3000 0.5500 1.4000
}
