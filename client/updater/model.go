package updater

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
)

// Meta is a release's meta.json; the format is models.Meta, which the coordinator writes.
type Meta = models.Meta

// Model is one installed (or candidate) global model version.
type Model struct {
	Version uint64
	Meta    Meta
	Spec    models.Spec
	// Params are the parameters; shared, do not modify. For a population model, the round's
	// decrypted sum its population was decoded from.
	Params []float64
	// Population is the population model of an updater that follows one (Config.Population);
	// shared, do not modify. Nil for an autoencoder.
	Population *models.Population

	manifest []byte             // the verified manifest envelope
	ref      release.ReleaseRef // its version and manifest payload hash, as pointers name it
}

// setManifest records the verified manifest envelope of m.
func (m *Model) setManifest(envelope []byte) error {
	ref, err := manifestRef(m.Version, envelope)
	if err != nil {
		return err
	}
	m.manifest, m.ref = envelope, ref
	return nil
}

// manifestRef names the release of version whose manifest envelope is given, as its pointer
// does: by the SHA-256 of the manifest payload.
func manifestRef(version uint64, envelope []byte) (release.ReleaseRef, error) {
	env, err := release.ParseEnvelope(envelope)
	if err != nil {
		return release.ReleaseRef{}, err
	}
	return release.ReleaseRef{Version: version, ManifestSHA256: sha256Hex(env.Payload)}, nil
}

// NewScorer returns a scorer over the model's parameters.
func (m *Model) NewScorer() (*models.Scorer, error) { return models.NewScorer(m.Spec, m.Params) }

// keep returns the files of a version the updater keeps: those parseModel reads.
func keep(files map[string][]byte, population bool) map[string][]byte {
	out := map[string][]byte{models.ArtifactParams: files[models.ArtifactParams], models.ArtifactMeta: files[models.ArtifactMeta]}
	if population {
		out[models.ArtifactPopulation] = files[models.ArtifactPopulation]
	}
	return out
}

// parseModel checks that the files of release version of model make a model this device can
// run and returns it: an autoencoder, or with a population layout a population model. Every
// failure wraps ErrIncompatible: the files are what was signed.
func parseModel(model string, version uint64, featureSet string, population *models.Layout, files map[string][]byte) (*Model, error) {
	fail := func(format string, a ...any) (*Model, error) {
		return nil, fmt.Errorf("%w: %s v%d: %s", ErrIncompatible, model, version, fmt.Sprintf(format, a...))
	}
	if population != nil {
		return parsePopulation(model, version, featureSet, population, files, fail)
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

// parsePopulation checks the files of a population release: metadata of kind
// models.KindPopulation naming this model, version and feature set, the parameters it records
// (the round's decrypted sum, which the population was decoded from), and population.f64
// decoding strictly for the device's layout.
func parsePopulation(model string, version uint64, featureSet string, l *models.Layout, files map[string][]byte, fail func(string, ...any) (*Model, error)) (*Model, error) {
	raw, ok := files[models.ArtifactPopulation]
	if !ok {
		return fail("no %s artifact", models.ArtifactPopulation)
	}
	if l.Name != featureSet {
		return fail("population layout %q, this device extracts %q", l.Name, featureSet)
	}
	metaRaw, ok := files[models.ArtifactMeta]
	if !ok {
		return fail("no %s artifact", models.ArtifactMeta)
	}
	meta, err := models.DecodeMeta(metaRaw)
	if err != nil {
		return fail("%v", err)
	}
	switch {
	case meta.Kind != models.KindPopulation:
		return fail("%s describes a model of kind %q, not a population model", models.ArtifactMeta, meta.Kind)
	case meta.Name != model || meta.Version != version || meta.FeatureSet != featureSet:
		return fail("%s describes %s v%d over %q", models.ArtifactMeta, meta.Name, meta.Version, meta.FeatureSet)
	}
	params, ok := files[models.ArtifactParams]
	if !ok {
		return fail("no %s artifact", models.ArtifactParams)
	}
	if sum := sha256.Sum256(params); hex.EncodeToString(sum[:]) != meta.ParamsSHA256 {
		return fail("%s does not match the params_sha256 of %s", models.ArtifactParams, models.ArtifactMeta)
	}
	sum, err := models.DecodeParams(params)
	if err == nil {
		err = meta.CheckParams(sum)
	}
	if err != nil {
		return fail("%v", err)
	}
	pop, err := models.DecodePopulation(l, raw)
	if err != nil {
		return fail("%v", err)
	}
	return &Model{Version: version, Meta: meta, Params: sum, Population: pop}, nil
}
