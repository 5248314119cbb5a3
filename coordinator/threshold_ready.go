package coordinator

import (
	"context"

	"github.com/vigilauth/vigil/trustee"
)

var _ readiness = (*ThresholdHE)(nil)

// Ready implements readiness: it asks every trustee whether it could serve round.
func (t *ThresholdHE) Ready(ctx context.Context, round uint64, contributors int) ([]trustee.Health, error) {
	return t.trustees.Ready(ctx, round, contributors)
}
