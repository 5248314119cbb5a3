package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/store"
)

// GlobalModel is one version of the global model with what is known of how it was made.
type GlobalModel struct {
	Meta   models.Meta
	Params []float64
	// Participants is the number of updates in the round that made this version, kept in
	// memory for the operator; it is neither stored nor published (zero once loaded).
	Participants int
	// Population is a population model's decoded population (models.EncodePopulation), stored
	// and released as population.f64; nil for the global autoencoder.
	Population []byte
}

// Store keys: models/<name>/v<version, 10 digits>/params.f64 (little-endian float64s) and
// .../meta.json, written in that order so that a version whose meta exists is complete.
func versionPrefix(name string, v uint64) string { return fmt.Sprintf("models/%s/v%010d/", name, v) }

// saveModel stores m, filling in m.Meta's digest and parameter count, so that the model kept in
// memory is the one a restart would load. A version number a crash left incomplete (files
// written, no meta.json) is skipped: its files are write-once, and the round that left them
// was never released, so m is stored as the next free version and m.Meta.Version says which.
// Before, such leftovers made every later round fail to store its model after it was charged.
func saveModel(ctx context.Context, st store.Store, m *GlobalModel) error {
	for {
		keys, err := st.List(ctx, versionPrefix(m.Meta.Name, m.Meta.Version))
		if err != nil {
			return fmt.Errorf("coordinator: save %s v%d: %w", m.Meta.Name, m.Meta.Version, err)
		}
		if len(keys) == 0 || slices.Contains(keys, versionPrefix(m.Meta.Name, m.Meta.Version)+models.ArtifactMeta) {
			break // free, or a complete version, which Create refuses below
		}
		m.Meta.Version++
	}
	raw := models.EncodeParams(m.Params)
	sum := sha256.Sum256(raw)
	m.Meta.ParamsSHA256 = hex.EncodeToString(sum[:])
	m.Meta.NumParams = len(m.Params)
	if m.Population != nil {
		pop := sha256.Sum256(m.Population)
		m.Meta.PopulationSHA256 = hex.EncodeToString(pop[:])
	}
	meta, err := json.MarshalIndent(m.Meta, "", "  ")
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	prefix := versionPrefix(m.Meta.Name, m.Meta.Version)
	// Create, not Put: a version once written is never replaced.
	if m.Population != nil {
		if err := st.Create(ctx, prefix+models.ArtifactPopulation, m.Population); err != nil {
			return fmt.Errorf("coordinator: save %s v%d: %w", m.Meta.Name, m.Meta.Version, err)
		}
	}
	if err := st.Create(ctx, prefix+models.ArtifactParams, raw); err != nil {
		return fmt.Errorf("coordinator: save model v%d: %w", m.Meta.Version, err)
	}
	if err := st.Create(ctx, prefix+models.ArtifactMeta, meta); err != nil {
		return fmt.Errorf("coordinator: save model v%d: %w", m.Meta.Version, err)
	}
	return nil
}

func loadModel(ctx context.Context, st store.Store, name string, v uint64) (GlobalModel, error) {
	prefix := versionPrefix(name, v)
	metaRaw, err := st.Get(ctx, prefix+models.ArtifactMeta)
	if err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	var m GlobalModel
	if m.Meta, err = models.DecodeMeta(metaRaw); err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	raw, err := st.Get(ctx, prefix+models.ArtifactParams)
	if err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != m.Meta.ParamsSHA256 {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: parameters do not match their recorded SHA-256", v)
	}
	if m.Params, err = models.DecodeParams(raw); err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	if err := m.Meta.CheckParams(m.Params); err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	if m.Meta.Kind == models.KindPopulation {
		if m.Population, err = st.Get(ctx, prefix+models.ArtifactPopulation); err != nil {
			return GlobalModel{}, fmt.Errorf("coordinator: %s v%d: %w", name, v, err)
		}
		// A population swapped in the store would otherwise be signed and published again.
		if sum := sha256.Sum256(m.Population); hex.EncodeToString(sum[:]) != m.Meta.PopulationSHA256 {
			return GlobalModel{}, fmt.Errorf("coordinator: %s v%d: %s does not match its recorded SHA-256", name, v, models.ArtifactPopulation)
		}
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

// ListVersions returns the metadata of every stored version of the named model, oldest first,
// including versions whose parameters retention deleted (their metadata is kept; see
// pruneModels), so that the privacy report still checks every released round by its hash.
func ListVersions(ctx context.Context, st store.Store, name string) ([]models.Meta, error) {
	latest, err := latestVersion(ctx, st, name)
	if err != nil {
		return nil, err
	}
	var metas []models.Meta
	for v := uint64(1); v <= latest; v++ {
		m, err := loadModel(ctx, st, name, v)
		if errors.Is(err, store.ErrNotFound) {
			if meta, merr := loadMeta(ctx, st, name, v); merr == nil {
				metas = append(metas, meta) // pruned: the parameters are gone, the record stays
			} else if !errors.Is(merr, store.ErrNotFound) {
				return nil, merr
			}
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
