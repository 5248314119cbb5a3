package coordinator

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// partAsk bounds the wait for a frontend's part: the frontend streams its updates to every
// trustee meanwhile, as the leader would.
const partAsk = 2 * time.Minute

// withParts asks each frontend that stored updates of the sealed round for its part (see
// frontend_parts.go) and returns the round's contributions as the trustees are to get them:
// to each trustee, the parts it took, and the updates no part it took holds. A part is used
// only if its devices are exactly those of the round's participants the frontend stored; a
// frontend that does not answer (it died, or keeps no parts) costs only the relaying it
// would have saved.
func (c *Coordinator) withParts(ctx context.Context, round uint64, participants []string, contribs trustee.Contributions) trustee.Contributions {
	in := c.intake
	if in == nil {
		return contribs
	}
	in.mu.Lock()
	byAcceptor := map[string][]string{}
	acceptorOf := map[string]string{}
	if in.round == round {
		for _, d := range participants {
			if a := in.acceptors[d]; a != "" {
				byAcceptor[a] = append(byAcceptor[a], d)
				acceptorOf[d] = a
			}
		}
	}
	in.mu.Unlock()
	if len(byAcceptor) == 0 {
		return contribs
	}
	req, err := proto.Marshal(&statev1.PartRequest{Round: round})
	if err != nil {
		return contribs
	}
	actx, cancel := context.WithTimeout(ctx, partAsk)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		p       = partedContributions{Contributions: contribs, parts: map[string][][]byte{}, covered: map[string]map[string]bool{}, acceptorOf: acceptorOf}
		used    int
		skipped []string
	)
	for acceptor, devices := range byAcceptor {
		wg.Go(func() {
			part, err := c.askPart(actx, acceptor, round, req, devices)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				skipped = append(skipped, err.Error())
				return
			}
			used++
			for t, id := range part.GetTrusteeParts() {
				p.parts[t] = append(p.parts[t], id)
				if p.covered[t] == nil {
					p.covered[t] = map[string]bool{}
				}
				p.covered[t][acceptor] = true
			}
		})
	}
	wg.Wait()
	if len(skipped) > 0 {
		c.log.Warn("the leader streams some frontends' updates to the trustees itself", "round", round, "why", skipped)
	}
	if used == 0 {
		return contribs
	}
	c.log.Info("frontends had the trustees verify their updates", "round", round, "frontends", used)
	return p
}

// askPart asks one frontend for its part of round and checks it holds exactly devices.
func (c *Coordinator) askPart(ctx context.Context, acceptor string, round uint64, req []byte, devices []string) (*statev1.FrontendPart, error) {
	raw, err := c.intake.tier.AskPart(ctx, acceptor, req)
	if err != nil {
		return nil, err
	}
	var part statev1.FrontendPart
	if err := proto.Unmarshal(raw, &part); err != nil {
		return nil, errors.New("frontend " + acceptor + ": its answer does not decode: " + err.Error())
	}
	switch {
	case part.GetError() != "":
		return nil, errors.New(part.GetError())
	case part.GetRound() != round:
		return nil, errors.New("frontend " + acceptor + " answered for another round")
	case !slices.Equal(part.GetDevices(), slices.Sorted(slices.Values(devices))):
		// A store it could not confirm, say, that the device then sent elsewhere: the part is
		// not the updates the round's stream says it stored.
		return nil, errors.New("frontend " + acceptor + "'s part is not the updates it stored in the round's stream")
	}
	return &part, nil
}

// partedContributions are a round's contributions with the parts the trustees took
// (trustee.Parted).
type partedContributions struct {
	trustee.Contributions
	parts map[string][][]byte // by trustee
	// covered are the frontends whose part each trustee took, and acceptorOf the frontend
	// that stored each device's update.
	covered    map[string]map[string]bool
	acceptorOf map[string]string
}

// For implements trustee.Parted.
func (p partedContributions) For(t string) ([][]byte, trustee.Contributions) {
	covered := p.covered[t]
	if len(covered) == 0 {
		return nil, p.Contributions
	}
	n := 0
	for _, a := range p.acceptorOf {
		if covered[a] {
			n++
		}
	}
	skip := func(device string) bool { return covered[p.acceptorOf[device]] }
	if f, ok := p.Contributions.(fileContributions); ok {
		f.skip, f.skipped = skip, n
		return p.parts[t], f
	}
	return p.parts[t], filtered{all: p.Contributions, skip: skip, n: p.Contributions.Len() - n}
}

// filtered are contributions without those of the devices skip names.
type filtered struct {
	all  trustee.Contributions
	skip func(device string) bool
	n    int
}

func (f filtered) Len() int { return f.n }

func (f filtered) All() iter.Seq2[*vigilv1.Contribution, error] {
	return func(yield func(*vigilv1.Contribution, error) bool) {
		for c, err := range f.all.All() {
			if err == nil && f.skip(c.GetDeviceId()) {
				continue
			}
			if !yield(c, err) {
				return
			}
		}
	}
}
