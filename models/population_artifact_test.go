package models

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestPopulationArtifactRoundTrip(t *testing.T) {
	l := testLayout()
	pop := testPopulation(t, l, 50, 1)
	pop.FromStats = true
	data := EncodePopulation(pop)
	got, err := DecodePopulation(l, data)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b []float64) bool {
		return slices.EqualFunc(a, b, func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) })
	}
	if got.Users != pop.Users || !got.FromStats || !same(got.Mean, pop.Mean) || !same(got.Within, pop.Within) || !same(got.Between, pop.Between) || !same(got.Freq, pop.Freq) {
		t.Fatal("population changed through its artifact")
	}
	other := testLayout()
	other.Name = "other-v1"
	if _, err := DecodePopulation(other, data); !errors.Is(err, ErrBadLayout) {
		t.Errorf("another layout: %v", err)
	}
	corrupt := func(f func([]byte) []byte) []byte { return f(slices.Clone(data)) }
	mean0 := len(populationMagic) + 4 + len(l.Name) + 24 // bucket 0's mean
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic", corrupt(func(d []byte) []byte { d[0] = 'x'; return d })},
		{"truncated", data[:len(data)-1]},
		{"trailing", append(slices.Clone(data), 0)},
		{"negative within", corrupt(func(d []byte) []byte {
			copy(d[mean0+8:], []byte{0, 0, 0, 0, 0, 0, 0xf0, 0xbf}) // -1
			return d
		})},
	} {
		if _, err := DecodePopulation(l, tc.data); !errors.Is(err, ErrBadData) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func FuzzDecodePopulation(f *testing.F) {
	l := testLayout()
	f.Add(EncodePopulation(testPopulation(f, l, 20, 2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePopulation(l, data)
		if err != nil {
			return
		}
		if again := EncodePopulation(p); !slices.Equal(again, data) {
			t.Fatal("decode then encode changed the artifact")
		}
	})
}
