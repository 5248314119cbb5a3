package he

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// Binding ties a ciphertext or share to the context it was made for: one device's update in
// one round, one round's sum, or one active set of trustees for that sum. Every blob carries
// its binding in the clear and every decoder compares it with the binding it expects, so a
// ciphertext replayed into another round or presented as another device's is refused.
//
// A binding is not a signature: whoever can rewrite a message can rewrite its binding. It
// stops replays of honest messages, and with the device's signature over the update (which
// covers the binding) it stops forged ones too.
type Binding [32]byte

// String returns the binding in hex.
func (b Binding) String() string { return hex.EncodeToString(b[:]) }

// UpdateBinding is the binding of the update that device deviceID sends in round of key
// epoch epoch, answering the task that carried nonce.
func UpdateBinding(epoch, round uint64, deviceID string, nonce []byte) Binding {
	h := newBindingHash("vigil/he/binding/update/v1")
	h.u64(epoch)
	h.u64(round)
	h.bytes([]byte(deviceID))
	h.bytes(nonce)
	return h.sum()
}

// SumBinding is the binding of the sum of contributors updates of round in key epoch epoch.
// Trustees recompute it from the request, so a sum cannot be presented under another round
// or contributor count than the one it was sealed with.
func SumBinding(epoch, round uint64, contributors int) Binding {
	h := newBindingHash("vigil/he/binding/sum/v1")
	h.u64(epoch)
	h.u64(round)
	h.u64(uint64(contributors))
	return h.sum()
}

// shareBinding binds a decryption share to the sum it decrypts and to the active set of
// trustees whose Lagrange coefficients it was computed with: shares made for different
// active sets do not combine, and Combine refuses to try.
func shareBinding(sum Binding, active []uint64) Binding {
	h := newBindingHash("vigil/he/binding/share/v1")
	h.bytes(sum[:])
	sorted := slices.Clone(active)
	slices.Sort(sorted)
	h.u64(uint64(len(sorted)))
	for _, x := range sorted {
		h.u64(x)
	}
	return h.sum()
}

// bindingHash is SHA-256 over a domain string and length-prefixed fields, so that no two
// different field lists hash the same input.
type bindingHash struct{ buf []byte }

func newBindingHash(domain string) *bindingHash {
	b := &bindingHash{}
	b.bytes([]byte(domain))
	return b
}

func (b *bindingHash) u64(x uint64) { b.buf = binary.BigEndian.AppendUint64(b.buf, x) }

func (b *bindingHash) bytes(p []byte) {
	b.u64(uint64(len(p)))
	b.buf = append(b.buf, p...)
}

func (b *bindingHash) sum() Binding { return sha256.Sum256(b.buf) }
