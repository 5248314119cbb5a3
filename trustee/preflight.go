package trustee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// ErrRoundServed reports that a trustee has already decrypted the round asked about, or a later
// one: no sum of that round number can ever be opened by it.
var ErrRoundServed = errors.New("trustee: round already served")

// Health is one trustee's answer to Ready.
type Health struct {
	// ID is the trustee's configured id (ClientConfig.IDs); without IDs, its id as it
	// answered, or "#i" (its position among the connections) if it did not answer.
	ID string
	// Reachable says whether Info answered within the probe timeout.
	Reachable bool
	// LastRound is the last round the trustee decrypted.
	LastRound uint64
	// Latency is how long Info took.
	Latency time.Duration
	// Problem says why the trustee cannot serve the round asked about, or "".
	Problem string
}

// Ready asks every trustee for Info and reports whether a quorum of them could commit to, and t
// of them decrypt, round's sum of contributors updates, before the coordinator charges the
// round or asks devices for anything. It returns every trustee's health, and an error wrapping
// ErrRoundServed if any trustee of the key has already decrypted round or a later one, or
// ErrNotEnoughTrustees if too few can serve it.
func (c *Client) Ready(ctx context.Context, round uint64, contributors int) ([]Health, error) {
	key := c.cfg.Key
	out := make([]Health, len(c.cfg.Trustees))
	var wg sync.WaitGroup
	for i, tc := range c.cfg.Trustees {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
			defer cancel()
			start := time.Now()
			info, err := tc.Info(pctx, &vigilv1.TrusteeInfoRequest{})
			h := Health{ID: c.cfg.name(i), Latency: time.Since(start)}
			if err != nil {
				h.Problem = err.Error()
				out[i] = h
				return
			}
			h.Reachable, h.LastRound = true, info.GetLastRound()
			switch {
			case c.cfg.IDs == nil:
				h.ID = info.GetTrusteeId()
			case info.GetTrusteeId() != h.ID:
				h.Problem = answersAs(info.GetTrusteeId())
				out[i] = h
				return
			}
			h.Problem = c.unready(info, round, contributors)
			out[i] = h
		})
	}
	wg.Wait()
	var served, why []string
	var fit []string
	for _, h := range out {
		switch {
		case h.Problem == "":
			if !slices.Contains(fit, h.ID) {
				fit = append(fit, h.ID)
			}
		case h.Reachable && h.LastRound >= round && h.Problem == servedProblem(h.LastRound):
			served = append(served, fmt.Sprintf("trustee %s decrypted round %d", h.ID, h.LastRound))
		default:
			why = append(why, fmt.Sprintf("trustee %s: %s", h.ID, h.Problem))
		}
	}
	if len(served) > 0 {
		return out, fmt.Errorf("%w: round %d is next, but %s", ErrRoundServed, round, strings.Join(served, ", "))
	}
	if need := c.cfg.need(); len(fit) < need {
		why = append(why, c.cfg.unconnectedReasons()...)
		return out, fmt.Errorf("%w: %d of the key's %d trustees can serve round %d, %d are needed (%s)",
			ErrNotEnoughTrustees, len(fit), len(key.Trustees), round, need, strings.Join(why, "; "))
	}
	return out, nil
}

// answersAs is the problem of a trustee that answered with another id than configured.
func answersAs(id string) string {
	return fmt.Sprintf("answers as trustee %q: its address is another trustee's", id)
}

// unconnectedReasons says which of the key's trustees have no connection at all, as reasons a
// round cannot be served: by id with IDs, else by count.
func (c *ClientConfig) unconnectedReasons() []string {
	if missing := c.unconnected(); len(missing) > 0 {
		return []string{fmt.Sprintf("no connection to %s", strings.Join(missing, ", "))}
	}
	if n := len(c.Key.Trustees); c.IDs == nil && len(c.Trustees) < n {
		return []string{fmt.Sprintf("connections to only %d of the key's %d trustees", len(c.Trustees), n)}
	}
	return nil
}

func servedProblem(last uint64) string { return fmt.Sprintf("has already decrypted round %d", last) }

// unready says why a trustee cannot serve round with contributors updates, or "".
func (c *Client) unready(info *vigilv1.TrusteeInfoResponse, round uint64, contributors int) string {
	key := c.cfg.Key
	switch {
	case info.GetParamsId() != key.Params().ID():
		return fmt.Sprintf("holds a share under parameters %q", info.GetParamsId())
	case info.GetKeyEpoch() != key.Epoch || !bytes.Equal(info.GetKeyDigest(), c.keyDigest[:]):
		return fmt.Sprintf("holds a share of another key (epoch %d, the coordinator's is %d)", info.GetKeyEpoch(), key.Epoch)
	case int(info.GetThreshold()) != key.Threshold:
		return fmt.Sprintf("has threshold %d, the key says %d", info.GetThreshold(), key.Threshold)
	case !slices.ContainsFunc(key.Trustees, func(t he.Trustee) bool {
		return t.Point == info.GetShamirIndex() && t.ID == info.GetTrusteeId()
	}):
		return fmt.Sprintf("is not trustee %q at point %d of the key", info.GetTrusteeId(), info.GetShamirIndex())
	case info.GetLastRound() >= round:
		return servedProblem(info.GetLastRound())
	case int(info.GetMinContributors()) > contributors:
		return fmt.Sprintf("requires %d contributors, the round has %d", info.GetMinContributors(), contributors)
	}
	return ""
}
