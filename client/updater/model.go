package updater

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vigilauth/vigil/models"
)

// Artifact names of a model release (as the coordinator publishes them).
const (
	ArtifactParams = "params.f64"
	ArtifactMeta   = "meta.json"
)

// Meta is a release's meta.json: the coordinator's description of one global model version.
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
	Participants int       `json:"participants,omitempty"`
	// MeanTrainLoss is the mean of the round's reported local training losses.
	MeanTrainLoss float64 `json:"mean_train_loss,omitempty"`
}

// Spec returns the architecture the metadata names.
func (m Meta) Spec() models.Spec {
	return models.Spec{Layers: m.Layers, Activation: models.Activation(m.Activation)}
}

// DecodeMeta strictly decodes meta.json: unknown fields, trailing data and more than a bounded
// number of layers are refused.
func DecodeMeta(data []byte) (Meta, error) {
	var m Meta
	if len(data) > maxMetaBytes {
		return m, fmt.Errorf("%s is %d bytes, at most %d", ArtifactMeta, len(data), maxMetaBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%s: %w", ArtifactMeta, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, fmt.Errorf("%s: trailing data", ArtifactMeta)
	}
	if len(m.Layers) > maxLayers {
		return m, fmt.Errorf("%s lists %d layers, at most %d", ArtifactMeta, len(m.Layers), maxLayers)
	}
	return m, nil
}

// Model is one installed (or candidate) global model version.
type Model struct {
	Version uint64
	Meta    Meta
	Spec    models.Spec
	// Params are the parameters; shared, do not modify.
	Params []float64
}

// NewScorer returns a scorer over the model's parameters.
func (m *Model) NewScorer() (*models.Scorer, error) { return models.NewScorer(m.Spec, m.Params) }

// parseModel checks that the files of release version of model make a model this device can
// run and returns it. Every failure wraps ErrIncompatible: the files are what was signed.
func parseModel(model string, version uint64, featureSet string, files map[string][]byte) (*Model, error) {
	fail := func(format string, a ...any) (*Model, error) {
		return nil, fmt.Errorf("%w: %s v%d: %s", ErrIncompatible, model, version, fmt.Sprintf(format, a...))
	}
	raw, ok := files[ArtifactParams]
	if !ok {
		return fail("no %s artifact", ArtifactParams)
	}
	metaRaw, ok := files[ArtifactMeta]
	if !ok {
		return fail("no %s artifact", ArtifactMeta)
	}
	meta, err := DecodeMeta(metaRaw)
	if err != nil {
		return fail("%v", err)
	}
	if meta.Name != model || meta.Version != version {
		return fail("%s describes %s v%d", ArtifactMeta, meta.Name, meta.Version)
	}
	if meta.FeatureSet != featureSet {
		return fail("model reads features %q, this device extracts %q", meta.FeatureSet, featureSet)
	}
	spec := meta.Spec()
	if err := spec.Validate(); err != nil {
		return fail("%v", err)
	}
	if meta.NumParams != spec.NumParams() || len(raw) != 8*spec.NumParams() {
		return fail("%s records %d parameters and %s holds %d bytes; the architecture needs %d parameters",
			ArtifactMeta, meta.NumParams, ArtifactParams, len(raw), spec.NumParams())
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != meta.ParamsSHA256 {
		return fail("%s does not match the params_sha256 of %s", ArtifactParams, ArtifactMeta)
	}
	params, err := decodeParams(raw)
	if err != nil {
		return fail("%v", err)
	}
	return &Model{Version: version, Meta: meta, Spec: spec, Params: params}, nil
}

// decodeParams parses little-endian float64s, refusing a ragged length or non-finite values.
func decodeParams(b []byte) ([]float64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%s of %d bytes is not a whole number of float64s", ArtifactParams, len(b))
	}
	params := make([]float64, len(b)/8)
	for i := range params {
		params[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if !finite(params[i]) {
			return nil, fmt.Errorf("parameter %d is %v", i, params[i])
		}
	}
	return params, nil
}
