package he

import "encoding/binary"

// replayFilter remembers the fingerprints of the updates in a sum in fixed memory: a Bloom
// filter of 2^20 bits (128 KiB) with 12 hash functions taken from the 256-bit SHA-256
// fingerprint, 20 bits each. With MaxContributors = 10,000 entries its false-positive rate is
// (1 - e^(-12 * 10^4 / 2^20))^12 < 3e-12: an honest update is wrongly refused as a replay with
// probability below 3e-12, and no replayed body is ever accepted. It keeps the accumulator's
// memory independent of the number of devices, unlike a set of fingerprints.
type replayFilter struct {
	bits []uint64
}

const (
	replayFilterLogBits = 20
	replayFilterHashes  = 12
)

func newReplayFilter() *replayFilter {
	return &replayFilter{bits: make([]uint64, (1<<replayFilterLogBits)/64)}
}

// indices splits the fingerprint into replayFilterHashes bit positions.
func (f *replayFilter) indices(fp [32]byte) [replayFilterHashes]uint32 {
	var out [replayFilterHashes]uint32
	for i := range out {
		bit := i * replayFilterLogBits
		word := binary.LittleEndian.Uint32(fp[bit/8:])
		out[i] = (word >> (bit % 8)) & (1<<replayFilterLogBits - 1)
	}
	return out
}

// contains reports whether fp may have been added (never false for an added fingerprint).
func (f *replayFilter) contains(fp [32]byte) bool {
	for _, x := range f.indices(fp) {
		if f.bits[x/64]&(1<<(x%64)) == 0 {
			return false
		}
	}
	return true
}

func (f *replayFilter) add(fp [32]byte) {
	for _, x := range f.indices(fp) {
		f.bits[x/64] |= 1 << (x % 64)
	}
}

func (f *replayFilter) reset() { clear(f.bits) }
