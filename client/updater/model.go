package updater

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/vigilauth/vigil/models"
)

// Meta is a release's meta.json; the format is models.Meta, which the coordinator writes.
type Meta = models.Meta

// Model is one installed (or candidate) global model version.
type Model struct {
	Version uint64
	Meta    Meta
	Spec    models.Spec
	// Params are the parameters; shared, do not modify.
	Params []float64

	manifest []byte // the verified manifest envelope
}

// NewScorer returns a scorer over the model's parameters.
func (m *Model) NewScorer() (*models.Scorer, error) { return models.NewScorer(m.Spec, m.Params) }

// parseModel checks that the files of release version of model make a model this device can
// run and returns it. Every failure wraps ErrIncompatible: the files are what was signed.
func parseModel(model string, version uint64, featureSet string, files map[string][]byte) (*Model, error) {
	fail := func(format string, a ...any) (*Model, error) {
		return nil, fmt.Errorf("%w: %s v%d: %s", ErrIncompatible, model, version, fmt.Sprintf(format, a...))
	}
	raw, ok := files[models.ArtifactParams]
	if !ok {
		return fail("no %s artifact", models.ArtifactParams)
	}
	metaRaw, ok := files[models.ArtifactMeta]
	if !ok {
		return fail("no %s artifact", models.ArtifactMeta)
	}
	meta, err := models.DecodeMeta(metaRaw)
	if err != nil {
		return fail("%v", err)
	}
	if meta.Name != model || meta.Version != version {
		return fail("%s describes %s v%d", models.ArtifactMeta, meta.Name, meta.Version)
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
			models.ArtifactMeta, meta.NumParams, models.ArtifactParams, len(raw), spec.NumParams())
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != meta.ParamsSHA256 {
		return fail("%s does not match the params_sha256 of %s", models.ArtifactParams, models.ArtifactMeta)
	}
	params, err := models.DecodeParams(raw)
	if err != nil {
		return fail("%v", err)
	}
	return &Model{Version: version, Meta: meta, Spec: spec, Params: params}, nil
}
