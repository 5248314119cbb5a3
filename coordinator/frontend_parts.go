package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/aggregation"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// A frontend with trustees (FrontendConfig.Trustees) keeps a partial sum of the updates it
// stored and what the trustees need of each (its contribution). It has the trustees verify
// those updates itself (trustee.Client.ExtendParts): every HandOverEvery updates while the
// round collects, each trustee extending the part it holds, and the last few once the leader
// has sealed the round and asks for the frontend's part; then it hands the leader its partial
// sum. The leader, which follows only the stream's headers for such updates, adds the partial
// sums, names the part to each trustee that took it and streams it only the updates no part
// holds (parts.go): decoding, adding and relaying every update was nearly all of a leader's
// CPU. Handing them over while the round collects, not all at its close, is what keeps the
// release from waiting on streaming the whole round to the trustees.

// frontendPart is the updates a frontend stored in one round.
type frontendPart struct {
	round  uint64
	dim    int
	minSum uint32
	// inflight counts submissions between partOf and their end; asked (under the frontend's
	// mutex) stops new ones counting, so the part is final once they are done.
	inflight sync.WaitGroup
	asked    bool

	mu      sync.Mutex
	devices []string
	sum     *aggregation.EncryptedAccumulator
	fps     [][]byte              // the updates' replay fingerprints
	broken  error                 // an update could not be kept: the part is incomplete
	answer  *statev1.FrontendPart // given once made, to the leader asking again

	// What each trustee holds of the part; handed is how many updates the last hand-over
	// sent, and handing is closed when the one under way ends (nil: none is).
	held    map[string]trustee.Held
	handed  int
	handing chan struct{}
}

// partOf returns the part of round that a submission in flight must count in, nil if the
// frontend keeps no parts or the leader asked for round's already (its stream is sealed). A
// part returned must be released with inflight.Done.
func (f *Frontend) partOf(round uint64) *frontendPart {
	if f.contribs == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.round != round || f.check == nil {
		return nil
	}
	if f.part == nil || f.part.round != round {
		f.part = &frontendPart{round: round, dim: f.dim, minSum: f.check.minSum}
	}
	if f.part.asked {
		return nil
	}
	f.part.inflight.Add(1)
	return f.part
}

// keep adds req, which the tier has just stored with replay fingerprint fp, to the part's sum,
// and its contribution c to log.
func (p *frontendPart) keep(log *contributionLog, sealing Sealing, req *vigilv1.SubmitUpdateRequest, c *vigilv1.Contribution, fp [32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return
	}
	p.broken = p.keepLocked(log, sealing, req, c, fp)
}

func (p *frontendPart) keepLocked(log *contributionLog, sealing Sealing, req *vigilv1.SubmitUpdateRequest, c *vigilv1.Contribution, fp [32]byte) error {
	if p.sum == nil {
		sum, err := sealing.NewSum(p.dim)
		if err != nil {
			return err
		}
		enc, ok := sum.(*aggregation.EncryptedAccumulator)
		if !ok {
			return fmt.Errorf("a %T cannot be handed over", sum)
		}
		p.sum = enc
	}
	from := aggregation.Origin{Round: req.GetRound(), Device: req.GetDeviceId(), Nonce: req.GetNonce()}
	if _, err := log.appendFor(p.round, c, nil); err != nil {
		return err
	}
	// Checked by the round's check sum before it was stored: it cannot be refused here.
	if err := p.sum.Add(from, req.GetUpdate()); err != nil {
		return err
	}
	p.devices = append(p.devices, req.GetDeviceId())
	p.fps = append(p.fps, fp[:])
	return nil
}

// handOverSoon starts handing p's updates to the trustees if HandOverEvery have been kept
// since the last hand-over and none is under way.
func (f *Frontend) handOverSoon(p *frontendPart) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handing != nil || p.broken != nil || p.answer != nil || len(p.devices)-p.handed < f.cfg.HandOverEvery {
		return
	}
	if !f.startHanding() {
		return
	}
	done := make(chan struct{})
	p.handing = done
	go func() {
		defer f.handings.Done()
		ctx, cancel := context.WithTimeout(f.bg, partAsk)
		defer cancel()
		f.handOver(ctx, p)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.handing = nil
		close(done)
	}()
}

// startHanding counts a hand-over about to start in f.handings, unless Close has begun.
func (f *Frontend) startHanding() bool {
	f.handMu.Lock()
	defer f.handMu.Unlock()
	if f.closed {
		return false
	}
	f.handings.Add(1)
	return true
}

// handOver has the trustees hold every update p holds now. The caller set p.handing.
func (f *Frontend) handOver(ctx context.Context, p *frontendPart) []string {
	p.mu.Lock()
	n, held := len(p.devices), p.held
	p.mu.Unlock()
	var why []string
	contribs, err := f.contribs.of(p.round, n)
	if err == nil {
		held, why, err = f.cfg.Trustees.ExtendParts(ctx, trustee.PartOf{Round: p.round, Dimension: p.dim, MinParticipants: p.minSum}, held, contribs)
	}
	if err != nil {
		why = append(why, err.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held, p.handed = held, n
	if len(why) > 0 {
		f.log.Debug("not every trustee took the frontend's updates yet", "round", p.round, "updates", n, "why", strings.Join(why, "; "))
	}
	return why
}

// Run answers the leader's requests for the frontend's part of a sealed round until ctx ends.
// Without trustees it returns at once: the leader relays every update.
func (f *Frontend) Run(ctx context.Context) error {
	if f.contribs == nil {
		return nil
	}
	return f.cfg.Tier.ServeParts(ctx, f.id, func(ctx context.Context, raw []byte) []byte {
		var req statev1.PartRequest
		var out *statev1.FrontendPart
		if err := proto.Unmarshal(raw, &req); err != nil {
			out = &statev1.FrontendPart{Error: "a part request that does not decode: " + err.Error()}
		} else {
			out = f.givePart(ctx, req.GetRound())
		}
		answer, err := proto.Marshal(out)
		if err != nil {
			answer, _ = proto.Marshal(&statev1.FrontendPart{Round: req.GetRound(), Error: err.Error()})
		}
		return answer
	})
}

// givePart has the trustees verify the frontend's updates of round, once its stream is
// sealed, and says which parts they took.
func (f *Frontend) givePart(ctx context.Context, round uint64) *statev1.FrontendPart {
	f.mu.Lock()
	p := f.part
	if p != nil && p.round == round {
		p.asked = true
	}
	f.mu.Unlock()
	if p == nil || p.round != round {
		return &statev1.FrontendPart{Round: round, Error: fmt.Sprintf("frontend %s holds no updates of round %d", f.id, round)}
	}
	if !f.startHanding() {
		return &statev1.FrontendPart{Round: round, Error: fmt.Sprintf("frontend %s is stopping", f.id)}
	}
	defer f.handings.Done()
	// No longer than the leader waits for the answer, the hand-over under way included, nor
	// past Close.
	ctx, cancel := context.WithTimeout(ctx, partAsk)
	defer cancel()
	defer context.AfterFunc(f.bg, cancel)()
	p.inflight.Wait()
	p.mu.Lock()
	for p.handing != nil {
		handing := p.handing
		p.mu.Unlock()
		select {
		case <-handing:
		case <-ctx.Done():
			return &statev1.FrontendPart{Round: round, Error: fmt.Sprintf("frontend %s: the trustees are still taking its updates of round %d: %v", f.id, round, ctx.Err())}
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	if p.answer != nil {
		return p.answer
	}
	if p.broken != nil {
		return &statev1.FrontendPart{Round: round, Error: fmt.Sprintf("frontend %s could not keep every update of round %d: %v", f.id, round, p.broken)}
	}
	out := &statev1.FrontendPart{Round: round, Devices: slices.Sorted(slices.Values(p.devices))}
	if len(p.devices) == 0 {
		p.answer = out
		return out
	}
	out.Fingerprints = p.fps
	sum, err := p.sum.MarshalBinary()
	if err == nil {
		// The part is final (asked, and nothing in flight): the last hand-over is this one.
		done := make(chan struct{})
		p.handing = done
		p.mu.Unlock()
		why := f.handOver(ctx, p)
		p.mu.Lock()
		p.handing = nil
		close(done) // a second request waiting on it finds the answer once this one returns
		out.Sum, out.TrusteeParts = sum, map[string][]byte{}
		for t, h := range p.held {
			if h.Len == len(p.devices) {
				out.TrusteeParts[t] = h.ID
			}
		}
		if len(why) > 0 {
			f.log.Warn("trustees did not take the frontend's part; the leader streams it to them", "round", round, "why", strings.Join(why, "; "))
		}
		if len(out.TrusteeParts) == 0 {
			err = fmt.Errorf("no trustee took the part of round %d: %s", round, strings.Join(why, "; "))
		}
	}
	if err != nil {
		// Not kept: asked again, the frontend tries again.
		return &statev1.FrontendPart{Round: round, Error: fmt.Sprintf("frontend %s: %v", f.id, err)}
	}
	f.log.Info("the trustees verified the frontend's updates", "round", round, "updates", len(p.devices), "trustees", len(out.TrusteeParts))
	p.answer = out
	return out
}
