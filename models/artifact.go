package models

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// The files of a global model version, as the coordinator stores and releases them.
const (
	// ArtifactParams holds the parameters as little-endian float64s, in the order of Spec.
	ArtifactParams = "params.f64"
	// ArtifactMeta holds the version's Meta as JSON.
	ArtifactMeta = "meta.json"
)

// Bounds on a meta.json, so that a hostile file cannot make a reader allocate without limit.
const (
	maxMetaBytes = 64 << 10
	maxLayers    = 64
)

// Meta describes one version of a global model: what it is, how it was made, and the digest of
// its parameters.
type Meta struct {
	Name         string    `json:"name"`
	Version      uint64    `json:"version"`
	Parent       uint64    `json:"parent,omitempty"`
	Round        uint64    `json:"round,omitempty"`
	Created      time.Time `json:"created"`
	FeatureSet   string    `json:"feature_set"`
	Layers       []int     `json:"layers"`
	Activation   string    `json:"activation"`
	NumParams    int       `json:"num_params"`
	ParamsSHA256 string    `json:"params_sha256"`
	// Kind is empty for the global autoencoder and KindPopulation for a population model,
	// whose population.f64 has the digest PopulationSHA256.
	Kind             string `json:"kind,omitempty"`
	PopulationSHA256 string `json:"population_sha256,omitempty"`
	// Privacy says how the round that made this version protected its participants. Absent
	// only for the initial version, which no round made. Nothing else about the round (how
	// many took part, how well they trained) is published: every statistic in a release must be
	// one the privacy accountant covers.
	Privacy *PrivacyMeta `json:"privacy,omitempty"`
}

// PrivacyMeta is the privacy of the round that made a version: fixed, public settings and the
// epsilon the model's ledger records after it, no per-round counts.
type PrivacyMeta struct {
	// DifferentialPrivacy is false when the round was released without it (the coordinator's
	// explicit InsecureNoDP): then nothing below bounds what the version reveals.
	DifferentialPrivacy bool `json:"differential_privacy"`
	// Mechanism and Adjacency name the analysis (see package dp).
	Mechanism string `json:"mechanism,omitempty"`
	Adjacency string `json:"adjacency,omitempty"`
	// NoiseMultiplier z, ClipNorm C, MinParticipants m_min and ToleratedDevices t_dev: every
	// honest device added noise z·C/sqrt(m_min - t_dev).
	NoiseMultiplier  float64 `json:"noise_multiplier,omitempty"`
	ClipNorm         float64 `json:"clip_norm,omitempty"`
	MinParticipants  int     `json:"min_participants,omitempty"`
	ToleratedDevices int     `json:"tolerated_devices,omitempty"`
	// SamplingRate is q = K/N.
	SamplingRate float64 `json:"sampling_rate,omitempty"`
	// Epsilon is the model's total privacy loss after this round at Delta.
	Epsilon float64 `json:"epsilon,omitempty"`
	Delta   float64 `json:"delta,omitempty"`
}

// KindPopulation marks a population model's metadata (Meta.Kind): its params.f64 holds the
// noisy sum of the devices' population statistics (PopulationStats) that a round decrypted, and
// its population.f64 the population decoded from that sum. Publishing the sum costs no privacy
// (the population is a function of it) and lets anyone check the decoding.
const KindPopulation = "population-stats"

// KindReference marks a learnt reference's metadata (Meta.Kind): its params.f64 holds the
// reference as ReferenceParams encodes it (see ReferenceStats).
const KindReference = "population-reference"

// CheckParams checks params against the metadata: the architecture's parameter count for the
// global autoencoder, the recorded count for a population model or a reference, and finite
// values.
func (m Meta) CheckParams(params []float64) error {
	switch m.Kind {
	case "":
		return m.Spec().CheckParams(params)
	case KindPopulation:
		if len(m.Layers) != 0 || m.NumParams < 1 || len(params) != m.NumParams {
			return fmt.Errorf("%w: population model with %d layers, %d parameters recorded and %d given", ErrBadSpec, len(m.Layers), m.NumParams, len(params))
		}
		for i, v := range params {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: parameter %d is %v", ErrBadSpec, i, v)
			}
		}
		return nil
	case KindReference:
		if len(m.Layers) != 0 || m.NumParams < 3 || m.NumParams%3 != 0 || len(params) != m.NumParams {
			return fmt.Errorf("%w: reference with %d layers, %d parameters recorded and %d given", ErrBadSpec, len(m.Layers), m.NumParams, len(params))
		}
		for i, v := range params {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: parameter %d is %v", ErrBadSpec, i, v)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: unknown model kind %q", ErrBadSpec, m.Kind)
}

// Spec returns the architecture the metadata names.
func (m Meta) Spec() Spec {
	return Spec{Layers: m.Layers, Activation: Activation(m.Activation)}
}

// DecodeMeta strictly decodes a meta.json: unknown fields, trailing data and more than a
// bounded number of layers are refused.
func DecodeMeta(data []byte) (Meta, error) {
	var m Meta
	if len(data) > maxMetaBytes {
		return m, fmt.Errorf("models: %s is %d bytes, at most %d", ArtifactMeta, len(data), maxMetaBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("models: %s: %w", ArtifactMeta, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return m, fmt.Errorf("models: %s: trailing data", ArtifactMeta)
	}
	if len(m.Layers) > maxLayers {
		return m, fmt.Errorf("models: %s lists %d layers, at most %d", ArtifactMeta, len(m.Layers), maxLayers)
	}
	return m, nil
}

// EncodeParams returns params as little-endian float64s.
func EncodeParams(params []float64) []byte {
	b := make([]byte, 8*len(params))
	for i, v := range params {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return b
}

// DecodeParams parses little-endian float64s, refusing a ragged length or non-finite values.
func DecodeParams(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("models: %s of %d bytes is not a whole number of float64s", ArtifactParams, len(b))
	}
	params := make([]float64, len(b)/8)
	for i := range params {
		params[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if math.IsNaN(params[i]) || math.IsInf(params[i], 0) {
			return nil, fmt.Errorf("models: parameter %d is %v", i, params[i])
		}
	}
	return params, nil
}
