package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/store"
)

// GlobalModel is one version of the global model with what is known of how it was made.
type GlobalModel struct {
	Meta   ModelMeta
	Params []float64
}

// ModelMeta describes a stored global model version.
type ModelMeta struct {
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
	// MeanTrainLoss is the mean of the participants' reported local training losses.
	MeanTrainLoss float64 `json:"mean_train_loss,omitempty"`
}

// Spec returns the model architecture the metadata names.
func (m ModelMeta) Spec() models.Spec {
	return models.Spec{Layers: m.Layers, Activation: models.Activation(m.Activation)}
}

// Store keys: models/<name>/v<version, 10 digits>/params.f64 (little-endian float64s) and
// .../meta.json, written in that order so that a version whose meta exists is complete.
func versionPrefix(name string, v uint64) string { return fmt.Sprintf("models/%s/v%010d/", name, v) }

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
		return nil, fmt.Errorf("coordinator: parameter file of %d bytes is not a whole number of float64s", len(b))
	}
	params := make([]float64, len(b)/8)
	for i := range params {
		params[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if math.IsNaN(params[i]) || math.IsInf(params[i], 0) {
			return nil, fmt.Errorf("coordinator: parameter %d is %v", i, params[i])
		}
	}
	return params, nil
}

// saveModel stores m, filling in m.Meta's digest and parameter count, so that the model kept in
// memory is the one a restart would load.
func saveModel(ctx context.Context, st store.Store, m *GlobalModel) error {
	raw := EncodeParams(m.Params)
	sum := sha256.Sum256(raw)
	m.Meta.ParamsSHA256 = hex.EncodeToString(sum[:])
	m.Meta.NumParams = len(m.Params)
	meta, err := json.MarshalIndent(m.Meta, "", "  ")
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	prefix := versionPrefix(m.Meta.Name, m.Meta.Version)
	// Create, not Put: a version once written is never replaced.
	if err := st.Create(ctx, prefix+"params.f64", raw); err != nil {
		return fmt.Errorf("coordinator: save model v%d: %w", m.Meta.Version, err)
	}
	if err := st.Create(ctx, prefix+"meta.json", meta); err != nil {
		return fmt.Errorf("coordinator: save model v%d: %w", m.Meta.Version, err)
	}
	return nil
}

func loadModel(ctx context.Context, st store.Store, name string, v uint64) (GlobalModel, error) {
	prefix := versionPrefix(name, v)
	metaRaw, err := st.Get(ctx, prefix+"meta.json")
	if err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	var m GlobalModel
	dec := json.NewDecoder(bytes.NewReader(metaRaw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m.Meta); err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d meta: %w", v, err)
	}
	raw, err := st.Get(ctx, prefix+"params.f64")
	if err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != m.Meta.ParamsSHA256 {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: parameters do not match their recorded SHA-256", v)
	}
	if m.Params, err = DecodeParams(raw); err != nil {
		return GlobalModel{}, fmt.Errorf("model v%d: %w", v, err)
	}
	if err := m.Meta.Spec().CheckParams(m.Params); err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	return m, nil
}

// latestVersion returns the newest complete version of the named model, or 0 if there is none.
func latestVersion(ctx context.Context, st store.Store, name string) (uint64, error) {
	keys, err := st.List(ctx, "models/"+name+"/")
	if err != nil {
		return 0, fmt.Errorf("coordinator: %w", err)
	}
	var latest uint64
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, "models/"+name+"/v")
		if !ok || !strings.HasSuffix(rest, "/meta.json") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSuffix(rest, "/meta.json"), 10, 64)
		if err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}

// ListVersions returns the metadata of every stored version of the named model, oldest first.
func ListVersions(ctx context.Context, st store.Store, name string) ([]ModelMeta, error) {
	latest, err := latestVersion(ctx, st, name)
	if err != nil {
		return nil, err
	}
	var metas []ModelMeta
	for v := uint64(1); v <= latest; v++ {
		m, err := loadModel(ctx, st, name, v)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		metas = append(metas, m.Meta)
	}
	return metas, nil
}

// LoadModel returns a stored version of the named model; version 0 means the newest.
func LoadModel(ctx context.Context, st store.Store, name string, version uint64) (GlobalModel, error) {
	if version == 0 {
		v, err := latestVersion(ctx, st, name)
		if err != nil {
			return GlobalModel{}, err
		}
		if v == 0 {
			return GlobalModel{}, fmt.Errorf("coordinator: no versions of model %q: %w", name, store.ErrNotFound)
		}
		version = v
	}
	return loadModel(ctx, st, name, version)
}
