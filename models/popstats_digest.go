package models

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
)

// Digest identifies the encoding: the layout, the reference's centres and scales, and every
// setting. A population round's task names it, so that a device refuses to contribute under an
// encoding other than the one its own code computes, and the coordinator never decodes a sum of
// contributions made under different ones.
func (s *PopulationStats) Digest() [32]byte {
	h := sha256.New()
	var b [8]byte
	put := func(v float64) {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	h.Write([]byte("vigil-population-stats-v1\n"))
	h.Write([]byte(s.layout.Name))
	h.Write([]byte{0})
	binary.LittleEndian.PutUint64(b[:], uint64(s.layout.NumBuckets()))
	h.Write(b[:])
	for i := range s.center {
		put(s.center[i])
		put(s.scale[i])
	}
	c := s.cfg
	for _, v := range []float64{c.Clip, c.MaxDev, c.MaxVar, c.Relevance, c.MinUsers, c.NoiseMargin} {
		put(v)
	}
	for _, v := range c.Weight {
		put(v)
	}
	var flags float64
	if c.PoolByRoot {
		flags++
	}
	if c.Backoff {
		flags += 2
	}
	put(flags)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// CanModel reports whether the sum of n devices' contributions, each entry carrying Gaussian
// noise of standard deviation noiseStd, can model any bucket at all: even a bucket that every
// device describes with its full weight needs MinUsers plus NoiseMargin standard deviations of
// the noise (see Decode). A round that cannot is privacy spent for a population of nothing.
func (s *PopulationStats) CanModel(n int, noiseStd float64) bool {
	return float64(n)*s.cfg.Weight[psUsers] >= s.cfg.MinUsers+s.cfg.NoiseMargin*noiseStd
}

// Layout is the layout the encoding describes.
func (s *PopulationStats) Layout() *Layout { return s.layout }
