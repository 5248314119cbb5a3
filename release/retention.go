package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigilauth/vigil/store"
)

// Pruned is what PruneReleases did in one region.
type Pruned struct {
	// Deleted are the versions whose manifest and artifacts were deleted.
	Deleted []uint64
	// Retained are the versions object lock or the credentials' policy kept (store.ErrRetained):
	// still complete and readable, to be tried again later.
	Retained []uint64
}

// PruneReleases deletes the releases of model in st that no device can be sent to any more:
// every version but the newest keep and the one the region's pointer names (devices fetch
// only what the pointer names, whatever version they run, so a device on an old version
// updates straight to it). skip, if set, names versions not to try this time (ones refused
// before). A refused delete (object lock, a publisher's policy) keeps the release and is no
// error.
// Nothing is deleted when the pointer cannot be read: then what devices need is not known.
// keep < 1 deletes nothing.
func PruneReleases(ctx context.Context, st store.Store, model string, keep int, skip func(uint64) bool) (Pruned, error) {
	var p Pruned
	if keep < 1 {
		return p, nil
	}
	ptr, err := store.GetLimit(ctx, st, LatestKey(model), MaxEnvelopeBytes)
	if err != nil {
		return p, fmt.Errorf("release: prune %s: %w", model, err)
	}
	_, doc, err := DecodeUnverified(ptr)
	latest, ok := doc.(*Latest)
	if err != nil || !ok || latest.Model != model {
		return p, fmt.Errorf("release: prune %s: %s is not a pointer to this model (%v)", model, LatestKey(model), err)
	}
	keys, err := st.List(ctx, ReleasePrefix(model))
	if err != nil {
		return p, fmt.Errorf("release: prune %s: %w", model, err)
	}
	byVersion := map[uint64][]string{}
	for _, k := range keys {
		head, _, ok := strings.Cut(strings.TrimPrefix(k, ReleasePrefix(model)), "/")
		if v, err := strconv.ParseUint(head, 10, 64); ok && err == nil {
			byVersion[v] = append(byVersion[v], k)
		}
	}
	versions := slices.Sorted(func(yield func(uint64) bool) {
		for v := range byVersion {
			if !yield(v) {
				return
			}
		}
	})
	if len(versions) <= keep {
		return p, nil
	}
	for _, v := range versions[:len(versions)-keep] {
		if v == latest.Version || skip != nil && skip(v) {
			continue
		}
		err := deleteRelease(ctx, st, ManifestKey(model, v), byVersion[v])
		switch {
		case errors.Is(err, store.ErrRetained):
			p.Retained = append(p.Retained, v)
		case err != nil:
			return p, fmt.Errorf("release: prune %s v%d: %w", model, v, err)
		default:
			p.Deleted = append(p.Deleted, v)
		}
	}
	return p, nil
}

// deleteRelease deletes the manifest first, so that a release cut short is never mistaken
// for a complete one, and stops if the manifest is retained, so that a locked release keeps
// its artifacts; an artifact that is retained does not stop the others.
func deleteRelease(ctx context.Context, st store.Store, manifest string, keys []string) error {
	if slices.Contains(keys, manifest) {
		if err := store.Delete(ctx, st, manifest); err != nil {
			return err
		}
	}
	var retained error
	for _, k := range keys {
		if k == manifest {
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
