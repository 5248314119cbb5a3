package coordinator

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/aggregation"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// A round of the tier is summed where its updates arrive. Updates the leader took itself, or
// that a frontend without trustees stored, the leader reads from the round's stream and adds
// to its own sum, as before. The others a frontend keeps in its part (frontend_parts.go), and
// the leader follows only their headers: at close it adds each frontend's partial sum, and
// the trustees verify the frontend's updates from the frontend. What no part holds (a frontend
// died, or could not confirm a store the device then sent elsewhere) the leader reads from the
// stream, so a frontend that fails costs time, never updates.

// partedSum is the sum of a round of the tier: what the leader added itself, and the updates
// frontends hold (an Add without an update), which gatherParts adds at close.
type partedSum struct {
	aggregation.Accumulator
	held map[string]bool
}

func (s *partedSum) Add(from aggregation.Origin, u *vigilv1.Update) error {
	if u != nil {
		return s.Accumulator.Add(from, u)
	}
	if s.held[from.Device] {
		return fmt.Errorf("%w: device %q's update is held already", aggregation.ErrBadUpdate, from.Device)
	}
	s.held[from.Device] = true
	return nil
}

func (s *partedSum) Count() int { return s.Accumulator.Count() + len(s.held) }

// newRoundSum returns an empty sum for a round of dim parameters: a partedSum with a tier.
func (c *Coordinator) newRoundSum(dim int) (aggregation.Accumulator, error) {
	sum, err := c.sealing.NewSum(dim)
	if err != nil || c.cfg.Cluster == nil {
		return sum, err
	}
	return &partedSum{Accumulator: sum, held: map[string]bool{}}, nil
}

// partAsk bounds the wait for the frontends' parts: each streams its updates to every trustee
// meanwhile, as the leader would.
const partAsk = 2 * time.Minute

// gatherParts completes a sealed round's sum and returns it with its contributions as the
// trustees are to get them: to each trustee, the parts it took, and the updates no part it
// took holds. Parts whose updates the leader must read from the stream instead are read
// first, so that an update the tier cannot give back fails the round before it is charged.
func (c *Coordinator) gatherParts(ctx context.Context, round uint64, ps *partedSum) (aggregation.Accumulator, trustee.Contributions, error) {
	mine, ok := ps.Accumulator.(*aggregation.EncryptedAccumulator)
	if !ok {
		if len(ps.held) > 0 {
			return nil, nil, fmt.Errorf("coordinator: frontends hold %d updates of a %T", len(ps.held), ps.Accumulator)
		}
		return ps.Accumulator, nil, nil
	}
	in := c.intake
	in.mu.Lock()
	where := map[string]heldUpdate{}
	byAcceptor := map[string][]string{}
	for d := range ps.held {
		h, ok := in.held[d]
		if !ok || in.round != round {
			in.mu.Unlock()
			return nil, nil, fmt.Errorf("coordinator: round %d: where device %q's update is held is not known", round, d)
		}
		where[d] = h
		byAcceptor[h.acceptor] = append(byAcceptor[h.acceptor], d)
	}
	in.mu.Unlock()

	tasks, err := c.heldTasks(round)
	if err != nil {
		return nil, nil, err
	}
	parts := c.askParts(ctx, round, byAcceptor)
	// Parts that would count an update twice, with the leader's own sum or another part, are
	// not used: the leader reads their updates, and its replay check refuses the copy.
	seen := map[[32]byte]bool{}
	for _, a := range slices.Sorted(maps.Keys(parts)) {
		p := parts[a]
		for _, fp := range p.fps {
			if seen[fp] || mine.Seen(fp) {
				c.log.Warn("a frontend's part holds an update another part or the leader holds too; the leader reads its updates", "round", round, "frontend", a)
				delete(parts, a)
				break
			}
		}
		if parts[a] != nil {
			for _, fp := range p.fps {
				seen[fp] = true
			}
		}
	}
	// Read in the order the stream stored them, the same at every try (copies of another
	// update were refused as they were followed; one found here fails the round).
	var unheld []string
	for a, devices := range byAcceptor {
		for _, d := range devices {
			if p := parts[a]; p == nil || !p.holds[d] {
				unheld = append(unheld, d)
			}
		}
	}
	slices.SortFunc(unheld, func(x, y string) int { return cmp.Compare(where[x].seq, where[y].seq) })
	seqs := make([]uint64, len(unheld))
	for i, d := range unheld {
		seqs[i] = where[d].seq
	}
	i := 0
	for h, err := range readAhead(ctx, seqs, func(ctx context.Context, seq uint64) (heldRead, error) { return c.readHeld(ctx, tasks, seq) }) {
		if err == nil {
			err = c.addHeld(tasks, mine, seen, h)
		}
		if err != nil {
			d := unheld[i]
			return nil, nil, fmt.Errorf("coordinator: round %d: device %q's update, which frontend %s stored: %w", round, d, where[d].acceptor, err)
		}
		i++
	}
	read := len(unheld)
	logged := mine.Count()
	contribs, err := c.contribs.of(round, logged)
	if err != nil {
		return nil, nil, err
	}
	out := partedContributions{logged: contribs, all: logged, parts: map[string][][]byte{}, missing: map[string][]uint64{}}
	for _, a := range slices.Sorted(maps.Keys(parts)) {
		p := parts[a]
		if err := mine.Merge(p.sum); err != nil {
			return nil, nil, fmt.Errorf("coordinator: round %d: frontend %s's partial sum: %w", round, a, err)
		}
		out.all += len(p.holds)
		var seqs []uint64
		for _, d := range byAcceptor[a] {
			if p.holds[d] {
				seqs = append(seqs, where[d].seq)
			}
		}
		out.partSeqs = append(out.partSeqs, seqs...)
		for _, t := range c.trusteeIDs() {
			if id, ok := p.trustees[t]; ok {
				out.parts[t] = append(out.parts[t], id)
			} else {
				out.missing[t] = append(out.missing[t], seqs...)
			}
		}
	}
	out.fetch = func(seqs []uint64) iter.Seq2[heldRead, error] {
		return readAhead(ctx, seqs, func(ctx context.Context, seq uint64) (heldRead, error) { return c.readHeld(ctx, tasks, seq) })
	}
	if len(parts) > 0 {
		c.log.Info("frontends handed over their partial sums and had the trustees verify their updates", "round", round, "frontends", len(parts), "updates", out.all-logged)
	}
	if read > 0 {
		c.log.Warn("the leader read updates frontends stored but did not hand over from the tier", "round", round, "updates", read)
	}
	if mine.Count() != out.all {
		return nil, nil, fmt.Errorf("coordinator: round %d: the sum holds %d updates, %d were counted", round, mine.Count(), out.all)
	}
	return mine, out, nil
}

// receivedPart is a frontend's part as the leader uses it.
type receivedPart struct {
	holds    map[string]bool // its devices
	sum      *aggregation.EncryptedAccumulator
	fps      [][32]byte
	trustees map[string][]byte
}

// askParts asks each frontend for its part of round and returns those that hold only updates
// it stored (byAcceptor), by frontend.
func (c *Coordinator) askParts(ctx context.Context, round uint64, byAcceptor map[string][]string) map[string]*receivedPart {
	req, _ := proto.Marshal(&statev1.PartRequest{Round: round})
	actx, cancel := context.WithTimeout(ctx, partAsk)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		parts   = map[string]*receivedPart{}
		skipped []string
	)
	for acceptor, devices := range byAcceptor {
		wg.Go(func() {
			p, err := c.askPart(actx, acceptor, round, req, devices)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				skipped = append(skipped, err.Error())
				return
			}
			parts[acceptor] = p
		})
	}
	wg.Wait()
	if len(skipped) > 0 {
		c.log.Warn("the leader reads some frontends' updates from the tier itself", "round", round, "why", skipped)
	}
	return parts
}

// askPart asks one frontend for its part of round and checks that it holds only devices, each
// once. It may hold fewer: a store the frontend could not confirm (the tier was slow to answer)
// and the device then sent elsewhere is in the stream under the frontend's name, not in its
// part, and the leader reads it from the stream.
func (c *Coordinator) askPart(ctx context.Context, acceptor string, round uint64, req []byte, devices []string) (*receivedPart, error) {
	raw, err := c.intake.tier.AskPart(ctx, acceptor, req)
	if err != nil {
		return nil, err
	}
	var part statev1.FrontendPart
	if err := proto.Unmarshal(raw, &part); err != nil {
		return nil, fmt.Errorf("frontend %s: its answer does not decode: %w", acceptor, err)
	}
	switch {
	case part.GetError() != "":
		return nil, errors.New(part.GetError())
	case part.GetRound() != round:
		return nil, fmt.Errorf("frontend %s answered for round %d", acceptor, part.GetRound())
	case len(part.GetFingerprints()) != len(part.GetDevices()):
		return nil, fmt.Errorf("frontend %s's part has %d fingerprints for %d updates", acceptor, len(part.GetFingerprints()), len(part.GetDevices()))
	}
	stored := map[string]bool{}
	for _, d := range devices {
		stored[d] = true
	}
	holds := map[string]bool{}
	for _, d := range part.GetDevices() {
		if !stored[d] || holds[d] {
			return nil, fmt.Errorf("frontend %s's part holds device %q's update, which the round's stream does not say it stored, or twice", acceptor, d)
		}
		holds[d] = true
	}
	c.mu.Lock()
	dim := c.open.dim
	c.mu.Unlock()
	sum, err := c.sealing.RestoreSum(dim, part.GetSum())
	if err != nil {
		return nil, fmt.Errorf("frontend %s's partial sum: %w", acceptor, err)
	}
	enc, ok := sum.(*aggregation.EncryptedAccumulator)
	if !ok || enc.Count() != len(holds) {
		return nil, fmt.Errorf("frontend %s's partial sum holds %d updates, not its %d", acceptor, sum.Count(), len(holds))
	}
	p := &receivedPart{holds: holds, sum: enc, trustees: part.GetTrusteeParts()}
	for _, fp := range part.GetFingerprints() {
		if len(fp) != 32 {
			return nil, fmt.Errorf("frontend %s's part has a fingerprint of %d bytes", acceptor, len(fp))
		}
		p.fps = append(p.fps, [32]byte(fp))
	}
	return p, nil
}

// heldTasks is what a held update read back from the tier is checked against: the round's
// tasks and base version, as the follower's Submit checks the leader's own.
type heldTasks struct {
	round uint64
	base  uint64
	nonce map[string][]byte
}

func (c *Coordinator) heldTasks(round uint64) (heldTasks, error) {
	c.mu.Lock()
	st, ok := c.engine.State()
	c.mu.Unlock()
	if !ok || st.Round != round {
		return heldTasks{}, fmt.Errorf("coordinator: round %d is not open", round)
	}
	h := heldTasks{round: round, base: st.BaseVersion, nonce: map[string][]byte{}}
	for _, t := range st.Tasks {
		h.nonce[t.Device] = t.Nonce
	}
	return h, nil
}

// readHeld reads back from the tier an update a frontend stored at seq and did not hand over,
// and checks it against its task. Its signature was checked when it was stored, against the
// record stored with it: the device may have been removed since, and the round still counts
// what it sent before, as a leader that reads every update does.
func (c *Coordinator) readHeld(ctx context.Context, tasks heldTasks, seq uint64) (heldRead, error) {
	u, err := c.intake.tier.Fetch(ctx, tasks.round, seq)
	if err != nil {
		return heldRead{}, err
	}
	req := new(vigilv1.SubmitUpdateRequest)
	if err := proto.Unmarshal(u.Data, req); err != nil {
		return heldRead{}, fmt.Errorf("%w: %v", aggregation.ErrBadUpdate, err)
	}
	if err := checkForm(req); err != nil {
		return heldRead{}, err
	}
	nonce, sampled := tasks.nonce[u.Device]
	switch {
	case req.GetDeviceId() != u.Device:
		return heldRead{}, fmt.Errorf("%w: stored under device %q, names %q", aggregation.ErrBadUpdate, u.Device, req.GetDeviceId())
	case !sampled || req.GetRound() != tasks.round || !bytes.Equal(req.GetNonce(), nonce) || req.GetBaseVersion() != tasks.base:
		return heldRead{}, fmt.Errorf("%w: device %q's update does not answer its task of round %d", aggregation.ErrBadUpdate, u.Device, tasks.round)
	}
	d := device{record: u.Record}
	if u.Record == nil {
		c.mu.Lock()
		known, ok := c.devices[u.Device]
		c.mu.Unlock()
		if !ok {
			return heldRead{}, fmt.Errorf("device %q was stored without its record and is no longer enrolled", u.Device)
		}
		d = known
	}
	contrib, err := c.contribution(req, d, true)
	if err != nil {
		return heldRead{}, err
	}
	rec, err := c.contribs.encode(contrib)
	if err != nil {
		return heldRead{}, err
	}
	return heldRead{req: req, contrib: contrib, rec: rec}, nil
}

// heldRead is an update readHeld read back and checked, with its contribution.
type heldRead struct {
	req     *vigilv1.SubmitUpdateRequest
	contrib *vigilv1.Contribution
	rec     *record
}

// readAheadDepth is how many updates the leader reads from the tier at once when it reads them
// itself: one at a time, each waited for the tier's round trip (the object store's, with
// --tier-blobs) before the next began.
const readAheadDepth = 8

// readAhead yields read of each of seqs in order, reading up to readAheadDepth ahead on
// goroutines of their own. It stops at the first error, and ends with ctx's if ctx ends
// before every read was yielded; stopping early cancels the reads not taken.
func readAhead[T any](ctx context.Context, seqs []uint64, read func(context.Context, uint64) (T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type result struct {
			v   T
			err error
		}
		// In order; its capacity bounds the reads ahead of the one taken.
		pending := make(chan chan result, readAheadDepth)
		go func() {
			defer close(pending)
			for _, seq := range seqs {
				done := make(chan result, 1)
				select {
				case pending <- done:
				case <-ctx.Done():
					return
				}
				go func() {
					v, err := read(ctx, seq)
					done <- result{v, err}
				}()
			}
		}()
		n := 0
		for done := range pending {
			r := <-done
			if !yield(r.v, r.err) || r.err != nil {
				return
			}
			n++
		}
		if n < len(seqs) {
			// The feeder stopped because ctx ended: never a short read without an error.
			var zero T
			yield(zero, fmt.Errorf("read %d of %d: %w", n, len(seqs), context.Cause(ctx)))
		}
	}
}

// addHeld adds an update read back from the tier (readHeld) to sum and the round's
// contribution log, unless parts, the fingerprints of the parts to be merged into sum, or sum
// holds it already.
func (c *Coordinator) addHeld(tasks heldTasks, sum *aggregation.EncryptedAccumulator, parts map[[32]byte]bool, h heldRead) error {
	req, contrib, rec := h.req, h.contrib, h.rec
	from := aggregation.Origin{Round: req.GetRound(), Device: req.GetDeviceId(), Nonce: req.GetNonce()}
	fp, err := sum.Fingerprint(from, req.GetUpdate())
	if err != nil {
		return err
	}
	if parts[fp] || sum.Seen(fp) {
		return fmt.Errorf("%w: its ciphertexts are another update's, in the sum already", aggregation.ErrBadUpdate)
	}
	if _, err := c.contribs.appendFor(tasks.round, contrib, rec); err != nil {
		return err
	}
	return sum.Add(from, req.GetUpdate())
}

// trusteeIDs are the key epoch's trustees.
func (c *Coordinator) trusteeIDs() []string {
	th, ok := c.sealing.(*ThresholdHE)
	if !ok {
		return nil
	}
	var ids []string
	for _, t := range th.key.Trustees {
		ids = append(ids, t.ID)
	}
	return ids
}

// partedContributions are a round's contributions as gatherParts found them (trustee.Parted):
// those the leader logged, and the frontends' parts, which some trustees took.
type partedContributions struct {
	logged trustee.Contributions
	all    int
	parts  map[string][][]byte // by trustee: the parts it took
	// partSeqs are the stream positions of the parts' updates, and missing those of the
	// updates in parts a trustee did not take, by trustee; fetch reads theirs.
	partSeqs []uint64
	missing  map[string][]uint64
	fetch    func(seqs []uint64) iter.Seq2[heldRead, error]
}

// Len implements trustee.Contributions.
func (p partedContributions) Len() int { return p.all }

// All implements trustee.Contributions: the logged updates and every part's.
func (p partedContributions) All() iter.Seq2[*vigilv1.Contribution, error] { return p.with(p.partSeqs) }

// For implements trustee.Parted.
func (p partedContributions) For(t string) ([][]byte, trustee.Contributions) {
	return p.parts[t], seqContributions{p: p, seqs: p.missing[t]}
}

type seqContributions struct {
	p    partedContributions
	seqs []uint64
}

func (s seqContributions) Len() int { return s.p.logged.Len() + len(s.seqs) }

func (s seqContributions) All() iter.Seq2[*vigilv1.Contribution, error] { return s.p.with(s.seqs) }

// with yields the logged contributions and then those of the updates at seqs, read from the
// stream.
func (p partedContributions) with(seqs []uint64) iter.Seq2[*vigilv1.Contribution, error] {
	return func(yield func(*vigilv1.Contribution, error) bool) {
		for c, err := range p.logged.All() {
			if !yield(c, err) || err != nil {
				return
			}
		}
		for h, err := range p.fetch(seqs) {
			if !yield(h.contrib, err) || err != nil {
				return
			}
		}
	}
}
