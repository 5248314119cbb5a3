package models

import (
	"encoding/binary"
	"fmt"
	"math"
)

// ArtifactPopulation holds a release's population model (see EncodePopulation): what the
// population statistics round (PopulationStats) produces, shipped beside the autoencoder's
// parameters so that devices judge their users against it.
const ArtifactPopulation = "population.f64"

// populationMagic starts a population artifact: the format's name and version.
const populationMagic = "vigil-population-v1\n"

// EncodePopulation serialises pop: the magic line, the layout's name (length-prefixed), the
// number of buckets, flags (1: FromStats, 2: a Reference follows), Users, then per bucket Mean,
// Within, Between and Freq, then with flag 2 per bucket the reference's centre and scale, all
// little-endian. A bucket without a model has Mean NaN and zero variances.
func EncodePopulation(pop *Population) []byte {
	name := pop.Layout.Name
	nb := pop.Layout.NumBuckets()
	out := make([]byte, 0, len(populationMagic)+4+len(name)+24+48*nb)
	out = append(out, populationMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(name)))
	out = append(out, name...)
	out = binary.LittleEndian.AppendUint64(out, uint64(nb))
	var flags uint64
	if pop.FromStats {
		flags |= 1
	}
	if pop.Reference != nil {
		flags |= 2
	}
	out = binary.LittleEndian.AppendUint64(out, flags)
	out = binary.LittleEndian.AppendUint64(out, math.Float64bits(pop.Users))
	for b := 0; b < nb; b++ {
		for _, v := range [4]float64{pop.Mean[b], pop.Within[b], pop.Between[b], pop.Freq[b]} {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		}
	}
	if r := pop.Reference; r != nil {
		for b := 0; b < nb; b++ {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(r.Center[b]))
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(r.Scale[b]))
		}
	}
	return out
}

// DecodePopulation strictly decodes a population artifact for layout l: the layout's name and
// bucket count must match, every modelled bucket needs positive finite variances, and nothing
// may follow.
func DecodePopulation(l *Layout, data []byte) (*Population, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadData, ArtifactPopulation, fmt.Sprintf(format, args...))
	}
	if len(data) < len(populationMagic) || string(data[:len(populationMagic)]) != populationMagic {
		return nil, bad("not a population artifact")
	}
	data = data[len(populationMagic):]
	if len(data) < 4 {
		return nil, bad("truncated")
	}
	n := int(binary.LittleEndian.Uint32(data))
	data = data[4:]
	if n > len(data) || n > 256 {
		return nil, bad("layout name of %d bytes", n)
	}
	if name := string(data[:n]); name != l.Name {
		return nil, fmt.Errorf("%w: population of %s used with layout %s", ErrBadLayout, name, l.Name)
	}
	data = data[n:]
	nb := l.NumBuckets()
	if len(data) < 24 {
		return nil, bad("truncated")
	}
	if got := binary.LittleEndian.Uint64(data); got != uint64(nb) {
		return nil, bad("%d buckets, layout %s has %d", got, l.Name, nb)
	}
	flags := binary.LittleEndian.Uint64(data[8:])
	if flags > 3 {
		return nil, bad("unknown flags %#x", flags)
	}
	want := 24 + 32*nb
	if flags&2 != 0 {
		want += 16 * nb
	}
	if len(data) != want {
		return nil, bad("%d bytes of statistics, layout %s needs %d", len(data), l.Name, want)
	}
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(data[16+8*i:])) }
	p := &Population{Layout: l, FromStats: flags&1 != 0, Users: f(0), Mean: make([]float64, nb), Within: make([]float64, nb), Between: make([]float64, nb), Freq: make([]float64, nb)}
	if !(p.Users >= 0) || math.IsInf(p.Users, 1) {
		return nil, bad("users %v", p.Users)
	}
	for b := 0; b < nb; b++ {
		p.Mean[b], p.Within[b], p.Between[b], p.Freq[b] = f(1+4*b), f(2+4*b), f(3+4*b), f(4+4*b)
		if !(p.Freq[b] >= 0) || math.IsInf(p.Freq[b], 1) {
			return nil, bad("bucket %d frequency %v", b, p.Freq[b])
		}
		if math.IsNaN(p.Mean[b]) {
			continue
		}
		if math.IsInf(p.Mean[b], 0) || !(p.Within[b] > 0) || math.IsInf(p.Within[b], 1) || !(p.Between[b] > 0) || math.IsInf(p.Between[b], 1) {
			return nil, bad("bucket %d: mean %v, within %v, between %v", b, p.Mean[b], p.Within[b], p.Between[b])
		}
	}
	if flags&2 != 0 {
		r := &Reference{Center: make([]float64, nb), Scale: make([]float64, nb)}
		for b := 0; b < nb; b++ {
			r.Center[b], r.Scale[b] = f(1+4*nb+2*b), f(2+4*nb+2*b)
			if math.IsInf(r.Center[b], 0) || !(r.Scale[b] > 0) || math.IsInf(r.Scale[b], 1) {
				return nil, bad("reference of bucket %d: centre %v, scale %v", b, r.Center[b], r.Scale[b])
			}
		}
		p.Reference = r
	}
	return p, nil
}
