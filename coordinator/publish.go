package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/models"
)

// Publisher hands released global models to the fleet: it signs them and puts them where
// devices look. Publish must have made r durable when it returns nil (publication itself may
// happen later, with retries), so that a released version is never lost.
type Publisher interface {
	Publish(ctx context.Context, r Release) error
}

// Release is a global model version ready to be signed and published.
type Release struct {
	Model   string
	Version uint64
	Parent  uint64
	Created time.Time
	// Files are the release's artifacts by name: "params.f64" (the parameters as little-endian
	// float64s), "meta.json" (the version's models.Meta), and for a population model
	// "population.f64" (models.EncodePopulation).
	Files map[string][]byte
	// Training facts: the round, the devices in it, and the privacy spent so far by the model.
	Round   uint64
	Devices int
	Epsilon float64
	Delta   float64
	// Eval holds evaluation figures by name, if any.
	Eval map[string]float64
}

func (c *Coordinator) publish(ctx context.Context, m GlobalModel, epsilon, delta float64) error {
	if c.cfg.Publisher == nil {
		return nil
	}
	meta, err := json.MarshalIndent(m.Meta, "", "  ")
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	r := Release{
		Model: m.Meta.Name, Version: m.Meta.Version, Parent: m.Meta.Parent, Created: m.Meta.Created,
		Files: map[string][]byte{models.ArtifactParams: models.EncodeParams(m.Params), models.ArtifactMeta: meta},
		// Devices stays 0: a round's participant count is not published (see models.PrivacyMeta).
		Round: m.Meta.Round, Epsilon: epsilon, Delta: delta,
	}
	if m.Population != nil {
		r.Files[models.ArtifactPopulation] = m.Population
	}
	if err := c.cfg.Publisher.Publish(ctx, r); err != nil {
		return fmt.Errorf("coordinator: publish v%d: %w", m.Meta.Version, err)
	}
	return nil
}
