package trustee

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Parted are a round's contributions some of which trustees verified already, in parts an
// aggregation frontend sent them (ExtendParts): DecryptSum names those parts to each trustee
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

// Held is what one trustee holds of a frontend's part: the part's id there, and how many of
// the part's first contributions it holds.
type Held struct {
	ID  []byte
	Len int
}

// PartContributions are a frontend's contributions to a round so far, which can be sent from
// any of them on.
type PartContributions interface {
	Contributions
	// From returns the contributions after the first n.
	From(n int) Contributions
}

// ExtendParts has every trustee that is up hold contribs, a frontend's part of a round so far.
// held is what each trustee holds of it already (nil: nothing): a trustee is sent only the
// contributions after those, as an extension of its part (SumHeader.extends), and one that no
// longer holds its part (it restarted, or needed the room) is sent them all. A frontend so
// hands its updates over a few at a time while the round collects, and the close waits only
// for the last few. It returns what each trustee holds afterwards; one that is down or refuses
// keeps what it held, and the reasons are returned (the round leader streams it the rest).
// Sending the same part again is safe.
func (c *Client) ExtendParts(ctx context.Context, of PartOf, held map[string]Held, contribs PartContributions) (map[string]Held, []string, error) {
	if contribs.Len() == 0 {
		return nil, nil, errors.New("trustee: ExtendParts: an empty part")
	}
	up, err := c.probe(ctx, of.Round, -1, 1)
	if err != nil {
		return maps.Clone(held), nil, err
	}
	key := c.cfg.Key
	hdr := &vigilv1.SumHeader{Round: of.Round, KeyEpoch: key.Epoch, ParamsId: key.Params().ID(),
		Dimension: uint64(of.Dimension), Contributors: uint32(contribs.Len()), MinParticipants: of.MinParticipants}
	now := make([]Held, len(up))
	errs := make([]error, len(up))
	var wg sync.WaitGroup
	for i, a := range up {
		had := held[a.info.GetTrusteeId()]
		if had.Len == contribs.Len() {
			now[i] = had
			continue
		}
		wg.Go(func() { now[i], errs[i] = c.extendPart(ctx, a, hdr, had, contribs) })
	}
	wg.Wait()
	out := maps.Clone(held)
	if out == nil {
		out = map[string]Held{}
	}
	var why []string
	for i, a := range up {
		if errs[i] != nil {
			why = append(why, errs[i].Error())
			continue
		}
		out[a.info.GetTrusteeId()] = now[i]
	}
	return out, why, nil
}

// extendPart sends one trustee the contributions after those it had, or all of them if it no
// longer holds its part.
func (c *Client) extendPart(ctx context.Context, a candidate, hdr *vigilv1.SumHeader, had Held, contribs PartContributions) (Held, error) {
	if had.Len > 0 {
		ext := proto.CloneOf(hdr)
		ext.Extends = had.ID
		r, err := c.commitPart(ctx, a, ext, contribs.From(had.Len))
		if status.Code(err) != codes.NotFound {
			return Held{ID: r.GetPartId(), Len: contribs.Len()}, err
		}
	}
	r, err := c.commitPart(ctx, a, hdr, contribs)
	return Held{ID: r.GetPartId(), Len: contribs.Len()}, err
}

func (c *Client) commitPart(ctx context.Context, a candidate, hdr *vigilv1.SumHeader, contribs Contributions) (*vigilv1.PartReceipt, error) {
	id := a.info.GetTrusteeId()
	var out *vigilv1.PartReceipt
	err := c.retry(ctx, func(ctx context.Context) error {
		stream, err := a.client.CommitPart(ctx, sumStreamOptions()...)
		if err != nil {
			return err
		}
		if err := sendContributions(stream, hdr, contribs); err != nil && !errors.Is(err, errEnded) {
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
