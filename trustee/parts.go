package trustee

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"google.golang.org/grpc"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Parts let the aggregation frontends of a coordinator tier hand a round's contributions to
// the trustees themselves (CommitPart), each frontend the updates it took, so that the round
// leader does not relay every update's c1 polynomials to every trustee. A CommitSum header
// then names the parts, and the leader streams only what no part holds. A part is verified
// exactly as a CommitSum stream is; merging it into a sum admits each of its devices as a
// streamed contribution is admitted, so no device counts twice whatever mix of parts and
// stream carries it, and the commitment names the whole set as before. Parts change who
// carries the bytes, not what a trustee checks or decrypts.

var (
	// ErrNoPart: a CommitSum header names a part this trustee does not hold (never sent,
	// or dropped for room or after a restart): the part's contributions must be streamed.
	ErrNoPart = errors.New("trustee: unknown part")
	// ErrPartsFull: the parts held fill the memory set aside for them.
	ErrPartsFull = errors.New("trustee: no room for another part")
)

// DefaultPartBytes is the memory a trustee sets aside for parts by default: about 300 parts
// of 100,000-parameter updates.
const DefaultPartBytes = 512 << 20

// part is a verified part of a round's contributions: only what a sum needs of them.
type part struct {
	id      [32]byte
	hdr     *vigilv1.SumHeader
	c1      *he.C1Sum
	members []member
	size    int64
	order   uint64 // when it was stored, among the store's parts
	// extended says a later part holds all of this one (SumHeader.extends): it is kept only
	// for a frontend resending that extension, is the first to make room, and is dropped when
	// the later part is extended in turn (prior names the part this one extends until then).
	extended bool
	prior    [32]byte
	hasPrior bool
}

// partStore holds verified parts in memory, within a budget of bytes. A part of a round
// before the last one the trustee decrypted is of no more use and is dropped; then parts a
// later part extends, and then the parts of other rounds, first stored first, make room for a
// new one (so that parts of rounds far ahead, which only a coordinator could send, cannot hold
// the room for good). A round's own current parts are never dropped for each other: a part
// that does not fit then is refused.
type partStore struct {
	mu     sync.Mutex
	budget int64
	used   int64
	parts  map[[32]byte]*part
	stored uint64 // how many parts were ever stored, to order them
}

func newPartStore(budget int64) *partStore {
	return &partStore{budget: budget, parts: map[[32]byte]*part{}}
}

// put stores p, which extends prior if that is not nil; lastRound is the last round the
// trustee decrypted.
func (s *partStore) put(p, prior *part, lastRound uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.parts[p.id]; ok {
		return nil // the same part sent again
	}
	round := p.hdr.GetRound()
	for _, q := range s.parts {
		if q.hdr.GetRound() < lastRound {
			s.dropLocked(q)
		}
	}
	for s.used+p.size > s.budget {
		var first *part
		spent := func(q *part) bool { return q.extended || q == prior }
		for _, q := range s.parts {
			if !spent(q) && q.hdr.GetRound() == round {
				continue
			}
			if first == nil || spent(q) && !spent(first) || spent(q) == spent(first) && q.order < first.order {
				first = q
			}
		}
		if first == nil {
			return fmt.Errorf("%w: round %d's parts take %d of the %d bytes set aside, this one needs %d", ErrPartsFull, round, s.used, s.budget, p.size)
		}
		s.dropLocked(first)
	}
	s.stored++
	p.order = s.stored
	s.parts[p.id] = p
	s.used += p.size
	if prior != nil {
		prior.extended = true
		if q, ok := s.parts[prior.prior]; ok && prior.hasPrior && q.extended {
			s.dropLocked(q)
		}
		// By value: a pointer into prior would keep its c1 sum in memory after it is dropped.
		prior.hasPrior = false
		p.prior, p.hasPrior = prior.id, true
	}
	return nil
}

func (s *partStore) dropLocked(p *part) {
	delete(s.parts, p.id)
	s.used -= p.size
}

func (s *partStore) get(id []byte) (*part, error) {
	if len(id) != sha256.Size {
		return nil, fmt.Errorf("%w: a part id of %d bytes", ErrNoPart, len(id))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parts[[32]byte(id)]
	if !ok {
		return nil, fmt.Errorf("%w: %x", ErrNoPart, id[:8])
	}
	return p, nil
}

// partID names a part by its set digest (setDigest), so the same part sent again is the same.
func partID(set [32]byte) [32]byte {
	return sha256.Sum256(append([]byte("vigil/trustee/part/v1"), set[:]...))
}

// partSize is what a part holds in memory, roughly: its c1 sum and its members.
func partSize(c1 *he.C1Sum, members []member) int64 {
	size := int64(c1.Size())
	for _, m := range members {
		size += int64(len(m.device)) + 64
	}
	return size
}

// CommitPart implements vigilv1.TrusteeServer.
func (s *Server) CommitPart(stream grpc.ClientStreamingServer[vigilv1.SumPart, vigilv1.PartReceipt]) error {
	ctx := stream.Context()
	r, hdr, err := s.commitPart(stream)
	log := s.cfg.Logger.With("round", hdr.GetRound(), "contributors", hdr.GetContributors())
	if err != nil {
		log.WarnContext(ctx, "part refused", "err", err)
		return toStatus(err)
	}
	log.DebugContext(ctx, "part verified", "part", fmt.Sprintf("%x", r.GetPartId()[:8]))
	return stream.SendAndClose(r)
}

func (s *Server) commitPart(stream grpc.ClientStreamingServer[vigilv1.SumPart, vigilv1.PartReceipt]) (*vigilv1.PartReceipt, *vigilv1.SumHeader, error) {
	hdr, last, err := s.header(stream)
	if err != nil {
		return nil, nil, err
	}
	v, err := newPartVerifier(s.cfg.Share, last, s.cfg.Root, s.cfg.Now(), hdr)
	if err != nil {
		return nil, hdr, err
	}
	var prior *part
	if len(hdr.GetExtends()) > 0 {
		if prior, err = s.parts.get(hdr.GetExtends()); err != nil {
			return nil, hdr, err
		}
		if err := v.merge(prior); err != nil {
			return nil, hdr, err
		}
	}
	if err := verifyStream(stream, v, runtime.GOMAXPROCS(0)); err != nil {
		return nil, hdr, err
	}
	set, err := v.finish()
	if err != nil {
		return nil, hdr, err
	}
	p := &part{id: partID(set), hdr: hdr, c1: v.c1, members: slices.Clip(v.members)}
	p.size = partSize(p.c1, p.members)
	if err := s.parts.put(p, prior, last); err != nil {
		return nil, hdr, err
	}
	return &vigilv1.PartReceipt{TrusteeId: s.cfg.Share.TrusteeID(), Round: hdr.GetRound(), PartId: p.id[:], Contributors: hdr.GetContributors()}, hdr, nil
}

// mergeParts merges the parts a CommitSum header names into v.
func (s *Server) mergeParts(v *sumVerifier, ids [][]byte) error {
	for _, id := range ids {
		p, err := s.parts.get(id)
		if err != nil {
			return err
		}
		if err := v.merge(p); err != nil {
			return err
		}
	}
	return nil
}
