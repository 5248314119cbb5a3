package trustee

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Parted are a round's contributions some of which trustees verified already, in parts an
// aggregation frontend sent them (CommitParts): DecryptSum names those parts to each trustee
// and streams it only the rest.
type Parted interface {
	Contributions
	// For returns the parts trustee holds and the contributions it must still be sent, which
	// together are all of them.
	For(trustee string) (parts [][]byte, rest Contributions)
}

// PartOf says which round's sum a part belongs to.
type PartOf struct {
	Round     uint64
	Dimension int
	// MinParticipants is the round's m_min, which every update of the part signed.
	MinParticipants uint32
}

// CommitParts has every trustee that is up verify contribs, a part of a round's contributions,
// and returns the part's id at each trustee that took it, by trustee id. A trustee that is down
// or refuses is left out, and the reasons returned: the round leader then streams it the
// part's contributions itself. Sending the same part again is safe.
func (c *Client) CommitParts(ctx context.Context, of PartOf, contribs Contributions) (map[string][]byte, []string, error) {
	if contribs.Len() == 0 {
		return nil, nil, errors.New("trustee: CommitParts: an empty part")
	}
	up, err := c.probe(ctx, of.Round, -1, 1)
	if err != nil {
		return nil, nil, err
	}
	key := c.cfg.Key
	hdr := &vigilv1.SumHeader{Round: of.Round, KeyEpoch: key.Epoch, ParamsId: key.Params().ID(),
		Dimension: uint64(of.Dimension), Contributors: uint32(contribs.Len()), MinParticipants: of.MinParticipants}
	receipts := make([]*vigilv1.PartReceipt, len(up))
	errs := make([]error, len(up))
	var wg sync.WaitGroup
	for i, a := range up {
		wg.Go(func() { receipts[i], errs[i] = c.commitPart(ctx, a, hdr, contribs) })
	}
	wg.Wait()
	ids := map[string][]byte{}
	var why []string
	for i, r := range receipts {
		if errs[i] != nil {
			why = append(why, errs[i].Error())
			continue
		}
		ids[up[i].info.GetTrusteeId()] = r.GetPartId()
	}
	if len(ids) == 0 {
		return nil, why, fmt.Errorf("trustee: no trustee took the part of round %d: %s", of.Round, strings.Join(why, "; "))
	}
	return ids, why, nil
}

func (c *Client) commitPart(ctx context.Context, a candidate, hdr *vigilv1.SumHeader, contribs Contributions) (*vigilv1.PartReceipt, error) {
	id := a.info.GetTrusteeId()
	var out *vigilv1.PartReceipt
	err := c.retry(ctx, func(ctx context.Context) error {
		stream, err := a.client.CommitPart(ctx, grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))
		if err != nil {
			return err
		}
		if err := sendContributions(stream.Send, hdr, contribs); err != nil && !errors.Is(err, errEnded) {
			return err
		}
		out, err = stream.CloseAndRecv()
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("trustee %s: %w", id, err)
	case out.GetTrusteeId() != id || out.GetRound() != hdr.GetRound() || out.GetContributors() != hdr.GetContributors() || len(out.GetPartId()) != 32:
		return nil, fmt.Errorf("trustee %s answered for another part (trustee %q, round %d, %d contributions)", id, out.GetTrusteeId(), out.GetRound(), out.GetContributors())
	}
	return out, nil
}
