package main

import (
	"log/slog"

	"github.com/vigilauth/vigil/release"
)

// logPruned logs what --keep-versions did in a region after a publication. A release the
// region's object lock or the publisher's policy keeps is not a failure: it is said once a day
// per release, since the outbox tries it again only then.
func logPruned(logger *slog.Logger, e release.OutboxEvent) {
	if e.PruneErr != nil {
		logger.Warn("old releases not pruned; tried again after the next publication", "region", e.Region, "err", e.PruneErr)
	}
	if len(e.Pruned.Deleted) > 0 {
		logger.Info("old releases deleted", "region", e.Region, "versions", e.Pruned.Deleted)
	}
	if len(e.Pruned.Retained) > 0 {
		logger.Info("old releases kept: the region refused their deletion (object lock or the publisher's policy)",
			"region", e.Region, "versions", e.Pruned.Retained)
	}
}
