package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/store"
)

// retryRetained is how long a version that object lock kept waits before it is tried again:
// S3 retention is set in days, and trying every old version after every round would cost one
// refused request per version each time.
const retryRetained = 24 * time.Hour

// pruneVersions applies Config.KeepVersions after a round released a version: the store keeps
// the parameters of the newest versions and of the open round's base version (the one devices
// train from), and only the metadata of older ones; the population model's versions likewise
// (no device trains from an old one). It runs between rounds on the Run goroutine; a failure is
// logged and tried again after the next round, never fatal.
func (c *Coordinator) pruneVersions(ctx context.Context) {
	if c.cfg.KeepVersions == 0 {
		return
	}
	c.mu.Lock()
	base := c.global.Meta.Version
	if rs, ok := c.engine.State(); ok {
		base = rs.BaseVersion
	}
	var populations []string
	for _, p := range c.pops {
		if p.model.Meta.Name != "" {
			populations = append(populations, p.model.Meta.Name)
		}
	}
	c.mu.Unlock()
	now := c.cfg.Now()
	need := func(v uint64) bool { return v == base }
	skip := func(v uint64) bool { return now.Before(c.retained[v]) }
	p, err := pruneModels(ctx, c.cfg.Store, c.cfg.ModelName, c.cfg.KeepVersions, need, skip)
	if c.retained == nil {
		c.retained = map[uint64]time.Time{}
	}
	for _, v := range p.retained {
		c.retained[v] = now.Add(retryRetained)
	}
	for _, v := range p.deleted {
		delete(c.retained, v)
	}
	if err != nil && ctx.Err() == nil {
		c.log.Warn("old model versions not pruned; tried again after the next round", "keep", c.cfg.KeepVersions, "err", err)
	}
	if len(p.deleted) > 0 {
		c.log.Info("old model versions pruned to their metadata", "versions", p.deleted, "keep", c.cfg.KeepVersions)
	}
	if len(p.retained) > 0 {
		c.log.Info("old model versions kept: the store's object lock refused their deletion; tried again in a day",
			"versions", p.retained, "retry_in", retryRetained)
	}
	// Population rounds are rare, so versions object lock keeps are simply tried again at the
	// next one. A learnt reference is kept whole: it is the base of every later population.
	none := func(uint64) bool { return false }
	for _, population := range populations {
		p, err := pruneModels(ctx, c.cfg.Store, population, c.cfg.KeepVersions, none, none)
		if err != nil {
			c.log.Warn("old population versions not pruned; tried again after the next round", "model", population, "keep", c.cfg.KeepVersions, "err", err)
		}
		if len(p.deleted) > 0 || len(p.retained) > 0 {
			c.log.Info("old population versions pruned to their metadata", "model", population, "versions", p.deleted, "kept_by_object_lock", p.retained)
		}
	}
}

// pruned is what pruneModels did.
type pruned struct {
	deleted, retained []uint64
}

// pruneModels deletes the artifacts of every stored version of the named model older than the
// newest keep, except the versions in need. It keeps each version's meta.json (a few hundred
// bytes: round, parameter hash, privacy settings), which the privacy report checks against the
// ledger; the parameters are what grows the store. skip names versions not to try this time.
// A delete that object lock refuses keeps the version and is no error.
func pruneModels(ctx context.Context, st store.Store, name string, keep int, need, skip func(uint64) bool) (pruned, error) {
	var p pruned
	keys, err := st.List(ctx, "models/"+name+"/")
	if err != nil {
		return p, fmt.Errorf("coordinator: prune: %w", err)
	}
	var versions []uint64
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, "models/"+name+"/v")
		if !ok || !strings.HasSuffix(rest, "/"+models.ArtifactParams) {
			continue
		}
		if v, err := strconv.ParseUint(strings.TrimSuffix(rest, "/"+models.ArtifactParams), 10, 64); err == nil {
			versions = append(versions, v)
		}
	}
	// Keys are listed in order and versions are zero-padded: versions are sorted.
	if keep < 1 || len(versions) <= keep {
		return p, nil
	}
	for _, v := range versions[:len(versions)-keep] {
		if need(v) || skip(v) {
			continue
		}
		err := deleteArtifacts(ctx, st, keys, versionPrefix(name, v))
		switch {
		case errors.Is(err, store.ErrRetained):
			p.retained = append(p.retained, v)
		case err != nil:
			return p, fmt.Errorf("coordinator: prune model v%d: %w", v, err)
		default:
			p.deleted = append(p.deleted, v)
		}
	}
	return p, nil
}

// deleteArtifacts deletes every key of keys under prefix but the metadata, going on past
// retained ones.
func deleteArtifacts(ctx context.Context, st store.Store, keys []string, prefix string) error {
	var retained error
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k == prefix+models.ArtifactMeta {
			continue
		}
		err := store.Delete(ctx, st, k)
		if errors.Is(err, store.ErrRetained) {
			retained = err
			continue
		}
		if err != nil {
			return err
		}
	}
	return retained
}

func loadMeta(ctx context.Context, st store.Store, name string, v uint64) (models.Meta, error) {
	raw, err := st.Get(ctx, versionPrefix(name, v)+models.ArtifactMeta)
	if err != nil {
		return models.Meta{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	meta, err := models.DecodeMeta(raw)
	if err != nil {
		return models.Meta{}, fmt.Errorf("coordinator: model v%d: %w", v, err)
	}
	return meta, nil
}
