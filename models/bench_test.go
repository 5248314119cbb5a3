package models

import (
	"context"
	"testing"
)

func BenchmarkScorer(b *testing.B) {
	spec := Spec{Layers: []int{24, 16, 6, 16, 24}, Activation: Tanh}
	params, _ := spec.InitParams(1)
	s, _ := NewScorer(spec, params)
	x := testData(1, 24, 2)[0]
	b.ReportAllocs()
	for b.Loop() {
		s.Score(x)
	}
}

func BenchmarkGraphErrorsOneRow(b *testing.B) {
	spec := Spec{Layers: []int{24, 16, 6, 16, 24}, Activation: Tanh}
	params, _ := spec.InitParams(1)
	data := testData(1, 24, 2)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := GraphErrors(spec, params, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTrain(b *testing.B) {
	spec := Spec{Layers: []int{24, 16, 6, 16, 24}, Activation: Tanh}
	params, _ := spec.InitParams(1)
	data := testData(200, 24, 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Train(context.Background(), spec, params, data, TrainConfig{Epochs: 10, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
