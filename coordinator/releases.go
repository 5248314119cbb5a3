package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
)

// ReleaseQueue is what ReleasePublisher needs of a *release.Outbox: a durable, idempotent queue
// of releases to sign and publish.
type ReleaseQueue interface {
	Submit(ctx context.Context, s release.Spec) error
}

var _ ReleaseQueue = (*release.Outbox)(nil)

// ReleasePublisherConfig configures a ReleasePublisher.
type ReleasePublisherConfig struct {
	// Every releases only versions made by a round whose number is a multiple of Every, and the
	// initial version (round 0); 0 or 1 releases every version. Versions in between are skipped
	// for good: the coordinator's final model is released only if its round is such a multiple.
	Every uint64
}

// ReleasePublisher is the coordinator's Publisher on top of a release outbox: Publish signs the
// release and queues it on disk (so it is durable when Publish returns), and the outbox's Run
// publishes it to every region with retries.
type ReleasePublisher struct {
	queue ReleaseQueue
	cfg   ReleasePublisherConfig
}

var _ Publisher = (*ReleasePublisher)(nil)

// PublishersByModel hands each release to the Publisher of its model. An outbox signs and
// publishes the pointers of one model, so a coordinator that releases the global model and the
// population model needs one for each.
type PublishersByModel map[string]Publisher

// Publish implements Publisher.
func (p PublishersByModel) Publish(ctx context.Context, r Release) error {
	pub, ok := p[r.Model]
	if !ok {
		return fmt.Errorf("coordinator: no publisher for model %q", r.Model)
	}
	return pub.Publish(ctx, r)
}

// NewReleasePublisher returns a Publisher that queues releases in q (normally a
// *release.Outbox whose Run the caller drives).
func NewReleasePublisher(q ReleaseQueue, cfg ReleasePublisherConfig) (*ReleasePublisher, error) {
	if q == nil {
		return nil, errors.New("coordinator: release publisher: no queue given")
	}
	return &ReleasePublisher{queue: q, cfg: cfg}, nil
}

// Publish implements Publisher. It is idempotent: the same model version with the same
// parameters is queued once however often it is handed over.
func (p *ReleasePublisher) Publish(ctx context.Context, r Release) error {
	if p.cfg.Every > 1 && r.Round != 0 && r.Round%p.cfg.Every != 0 {
		return nil
	}
	s, err := ReleaseSpec(r)
	if err != nil {
		return err
	}
	return p.queue.Submit(ctx, s)
}

// ReleaseSpec maps a coordinator release onto the release package's Spec. It checks the
// artifacts (parameters finite and of the size the metadata's architecture needs, metadata
// naming this model and version) and fills in the metadata's derived fields num_params and
// params_sha256, so that the same version is described by the same bytes however the
// coordinator came to hold it (just trained, or reloaded after a restart). Expiry times are
// left to the outbox.
func ReleaseSpec(r Release) (release.Spec, error) {
	fail := func(format string, a ...any) (release.Spec, error) {
		return release.Spec{}, fmt.Errorf("coordinator: release %s v%d: "+format, append([]any{r.Model, r.Version}, a...)...)
	}
	raw, ok := r.Files[models.ArtifactParams]
	if !ok {
		return fail("no %s", models.ArtifactParams)
	}
	metaRaw, ok := r.Files[models.ArtifactMeta]
	if !ok {
		return fail("no %s", models.ArtifactMeta)
	}
	var meta models.Meta
	dec := json.NewDecoder(bytes.NewReader(metaRaw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil {
		return fail("%s: %w", models.ArtifactMeta, err)
	}
	if meta.Name != r.Model || meta.Version != r.Version {
		return fail("%s describes %s v%d", models.ArtifactMeta, meta.Name, meta.Version)
	}
	params, err := models.DecodeParams(raw)
	if err != nil {
		return fail("%w", err)
	}
	switch meta.Kind {
	case "":
		if err := meta.Spec().Validate(); err != nil {
			return fail("%w", err)
		}
	case models.KindPopulation:
		if _, ok := r.Files[models.ArtifactPopulation]; !ok {
			return fail("a population model without %s", models.ArtifactPopulation)
		}
		if meta.NumParams == 0 {
			meta.NumParams = len(params)
		}
	}
	if err := meta.CheckParams(params); err != nil {
		return fail("%w", err)
	}
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	if meta.ParamsSHA256 != "" && meta.ParamsSHA256 != digest || meta.NumParams != 0 && meta.NumParams != len(params) {
		return fail("%s records %d parameters with sha256 %s, %s holds %d with %s",
			models.ArtifactMeta, meta.NumParams, meta.ParamsSHA256, models.ArtifactParams, len(params), digest)
	}
	meta.ParamsSHA256, meta.NumParams = digest, len(params)
	metaOut, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fail("%w", err)
	}
	if r.Devices < 0 {
		return fail("negative device count %d", r.Devices)
	}
	files := maps.Clone(r.Files)
	files[models.ArtifactMeta] = metaOut
	return release.Spec{
		Model:   r.Model,
		Version: r.Version,
		Parent:  r.Parent,
		Created: r.Created,
		Files:   files,
		Training: release.Training{
			Rounds: r.Round, Devices: uint64(r.Devices), Epsilon: r.Epsilon, Delta: r.Delta, Eval: maps.Clone(r.Eval),
		},
	}, nil
}
