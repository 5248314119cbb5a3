package coordinator

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/crypto/he"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// With Config.Cluster set the coordinator is the round leader of a tier on JetStream (package
// cluster). Updates reach the round through the tier's replicated stream instead of straight
// into the sum: SubmitUpdate, here or at any Frontend, checks an update completely and stores
// it in the stream, exactly once per round and device, and acknowledges it once it is stored.
// The leader follows the stream: the updates it took, or that a frontend without trustees
// took, into the round's sum and contribution log; of those a frontend keeps in its part
// (parts.go), only where they are. It closes the round by sealing its stream, so that the
// participant set is exactly the updates stored before the seal. A leader that restarts
// replays the open round from the stream: what it counted already comes back as duplicates.

// intake is the leader's side of the tier for the open round.
type intake struct {
	tier *cluster.Tier

	mu      sync.Mutex
	round   uint64
	drained chan struct{} // closed when the follower has added every update of the sealed round
	stop    context.CancelFunc
	check   *checkSum
	changed map[string]struct{} // devices whose record the tier must learn or forget
	// held are the open round's updates frontends keep in their parts, by device: the leader
	// follows only their headers, and asks the frontends for their parts at close (parts.go).
	held map[string]heldUpdate
	// fps are the open round's updates' replay fingerprints, and whose each is (refuseCopy).
	fps map[[32]byte]string
}

// heldUpdate is where an update a frontend holds is: the frontend, and its place in the
// round's stream, for when the frontend does not hand its part over.
type heldUpdate struct {
	acceptor string
	seq      uint64
}

// checkSum checks an update completely before it is acknowledged, so that what the leader or
// a frontend later adds to a round's sum cannot be refused, and refuses one whose ciphertexts
// it already checked for another device (a copy). Under threshold HE it keeps no sum
// (aggregation.NewEncryptedChecker): the round's sums are the leader's and the frontends'.
type checkSum struct {
	mu  sync.Mutex
	sum aggregation.Accumulator
	// minSum is the round's m_min, which each device signed with its update.
	minSum uint32
	// added holds the devices with an update in sum, and fresh makes an empty one: a device's
	// later updates are checked each in one of its own, so that a device sending many signed
	// updates (the tier keeps one) cannot fill sum, which counts at most he.MaxContributors,
	// and have every honest update after it refused.
	added map[string]bool
	fresh func() (aggregation.Accumulator, error)
	// fps is whose each checked update's fingerprint is, whichever sum checked it: a copy of
	// another device's ciphertexts is refused whether it comes before or after them.
	fps map[[32]byte]string
}

func newCheckSum(sealing Sealing, dim int, minSum uint32) (*checkSum, error) {
	fresh := func() (aggregation.Accumulator, error) { return sealing.NewSum(dim) }
	if th, ok := sealing.(*ThresholdHE); ok {
		fresh = func() (aggregation.Accumulator, error) { return aggregation.NewEncryptedChecker(th.key, dim) }
	}
	sum, err := fresh()
	if err != nil {
		return nil, err
	}
	return &checkSum{sum: sum, minSum: minSum, added: map[string]bool{}, fresh: fresh, fps: map[[32]byte]string{}}, nil
}

// add checks u as from sent it and returns its replay fingerprint (he.Accumulator.Fingerprint;
// zero for a plaintext update, which has none).
func (s *checkSum) add(from aggregation.Origin, u *vigilv1.Update) ([32]byte, error) {
	s.mu.Lock()
	if !s.added[from.Device] {
		defer s.mu.Unlock()
		fp, err := admit(s.sum, from, u)
		if err != nil {
			return fp, err
		}
		s.added[from.Device] = true
		return fp, s.claim(fp, from.Device)
	}
	s.mu.Unlock()
	alone, err := s.fresh()
	if err != nil {
		return [32]byte{}, err
	}
	fp, err := admit(alone, from, u)
	if err != nil {
		return fp, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fp, s.claim(fp, from.Device)
}

// claim records fp as device's, refusing it if it is another device's. s.mu must be held.
func (s *checkSum) claim(fp [32]byte, device string) error {
	if fp == ([32]byte{}) {
		return nil // a plaintext update, which has no fingerprint
	}
	if d, ok := s.fps[fp]; ok && d != device {
		return errors.Join(aggregation.ErrBadUpdate, fmt.Errorf("%w: this update's ciphertexts were checked here for another device", he.ErrReplay))
	}
	s.fps[fp] = device
	return nil
}

func admit(sum aggregation.Accumulator, from aggregation.Origin, u *vigilv1.Update) ([32]byte, error) {
	if enc, ok := sum.(*aggregation.EncryptedAccumulator); ok {
		return enc.Admit(from, u)
	}
	return [32]byte{}, sum.Add(from, u)
}

// planLocked is the open round as frontends need it: its snapshot without the sum. c.mu must
// be held.
func (c *Coordinator) planLocked() ([]byte, error) {
	st, err := c.snapshotLocked()
	if err != nil {
		return nil, err
	}
	r := st.GetRound()
	if r == nil {
		return nil, ErrNoOpenRound
	}
	r.Sum, r.Count = nil, 0
	for _, t := range r.Tasks {
		t.Submitted = false
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(r)
}

// planAttempt bounds one attempt to publish a round's plan.
const planAttempt = 3 * time.Second

// serveIntake publishes the open round's plan and starts following its updates. It is called
// once the round's start is durable, and again for a round resumed at restart.
func (c *Coordinator) serveIntake(ctx context.Context) error {
	in := c.intake
	c.mu.Lock()
	id := c.engine.Current()
	plan, err := c.planLocked()
	dim := c.open.dim
	c.mu.Unlock()
	if err != nil {
		return err
	}
	// Bounded, and tried again by startIntake: a request sent to a server that hung is never
	// answered, and the connection moves to another only when its pings go unanswered.
	pctx, cancel := context.WithTimeout(ctx, planAttempt)
	err = in.tier.PublishPlan(pctx, id, plan)
	cancel()
	if err != nil {
		return err
	}
	check, err := newCheckSum(c.sealing, dim, 0)
	if err != nil {
		return err
	}
	fctx, stop := context.WithCancel(ctx)
	drained := make(chan struct{})
	in.mu.Lock()
	if in.stop != nil {
		in.stop()
	}
	in.round, in.drained, in.stop, in.check, in.held, in.fps = id, drained, stop, check, map[string]heldUpdate{}, map[[32]byte]string{}
	in.mu.Unlock()
	go c.follow(fctx, id, drained)
	return nil
}

// follow adds the round's stored updates to its sum until the round is closed, trying again
// from the start after an error (what it added already comes back as duplicates).
func (c *Coordinator) follow(ctx context.Context, id uint64, drained chan struct{}) {
	for {
		err := c.followOnce(ctx, id)
		if err == nil {
			close(drained)
			c.notify()
			return
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("following the round's updates failed; trying again", "round", id, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// followed is an update on its way from the tier into the sum.
type followed struct {
	u       cluster.Update
	req     *vigilv1.SubmitUpdateRequest
	contrib *vigilv1.Contribution
	rec     *record
	err     error
	unread  bool // the tier did not give the update back: the next pass reads it again
	ready   chan struct{}
}

// errUnread is an update the tier holds but did not give back when the leader read it.
var errUnread = errors.New("coordinator: an update could not be read from the tier")

// followOnce follows the round from its first update. Updates are decoded and checked on
// every core, as a leader's handlers would, and added in the order the tier stored them, so
// that the sum and the trustees' log hold the same updates in the same order.
func (c *Coordinator) followOnce(ctx context.Context, id uint64) error {
	// An update the tier holds but cannot give back now ends this pass, to be read again in
	// the next, rather than counted lost.
	ctx, unreadable := context.WithCancelCause(ctx)
	defer unreadable(nil)
	workers := runtime.GOMAXPROCS(0)
	queue := make(chan *followed, 2*workers)
	added := make(chan struct{})
	go func() {
		defer close(added)
		for f := range queue {
			<-f.ready
			if f.unread {
				continue
			}
			c.addFollowed(f)
		}
	}()
	busy := make(chan struct{}, workers)
	tier := c.intake.tier
	_, encrypted := c.sealing.(*ThresholdHE)
	err := tier.FollowHeaders(ctx, id, func(u cluster.Update) error {
		if !encrypted || len(u.Fingerprint) != 32 {
			u.Acceptor = "" // only an encrypted sum is handed over in parts, with fingerprints
		}
		f := &followed{u: u, ready: make(chan struct{})}
		if u.Acceptor != "" {
			// A frontend keeps it in its part: only where it is matters here.
			close(f.ready)
		} else {
			select {
			case busy <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			go func() {
				defer func() { <-busy; close(f.ready) }()
				whole, err := tier.Fetch(ctx, id, u.Seq)
				if lostBlob(err, c.cfg.Now().Sub(u.Stored)) {
					// Reading it again gives nothing more, and would hold the round for good.
					f.err = reject(codes.DataLoss, ReasonNotDurable, err.Error())
					return
				}
				if err != nil {
					f.unread = true
					unreadable(fmt.Errorf("%w: update %d: %w", errUnread, u.Seq, err))
					return
				}
				f.u = whole
				f.req, f.contrib, f.rec, f.err = c.prepareFollowed(whole)
			}()
		}
		select {
		case queue <- f:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(queue)
	<-added
	// Also when the stream delivered everything: the last update's read may have failed since.
	if cause := context.Cause(ctx); errors.Is(cause, errUnread) {
		return cause
	}
	return err
}

// missingBlobGrace is how long after an update was stored the leader goes on reading it again
// when the object store says it has no such object: a store replicating between sites, or
// reached before a mount, can say so for a while.
const missingBlobGrace = time.Minute

// lostBlob reports whether err, reading an update stored age ago, means its bytes are lost for
// good: other bytes than the round holds at once, none at all after missingBlobGrace.
func lostBlob(err error, age time.Duration) bool {
	return errors.Is(err, cluster.ErrBlobLost) && (!errors.Is(err, store.ErrNotFound) || age > missingBlobGrace)
}

// prepareFollowed decodes a stored update and builds its contribution; its signature was
// checked by whoever stored it.
func (c *Coordinator) prepareFollowed(u cluster.Update) (*vigilv1.SubmitUpdateRequest, *vigilv1.Contribution, *record, error) {
	req := new(vigilv1.SubmitUpdateRequest)
	if err := proto.Unmarshal(u.Data, req); err != nil {
		return nil, nil, nil, reject(codes.InvalidArgument, ReasonBadUpdate, err.Error())
	}
	if req.GetDeviceId() != u.Device {
		return nil, nil, nil, reject(codes.InvalidArgument, ReasonBadUpdate, fmt.Sprintf("stored under device %q, names %q", u.Device, req.GetDeviceId()))
	}
	contrib, rec, err := c.prepare(req, true, u.Record)
	return req, contrib, rec, err
}

// addFollowed adds one prepared update to the round. An update refused here was acknowledged
// to its device and is lost: that is logged as an error and counted.
func (c *Coordinator) addFollowed(f *followed) {
	err := f.err
	if err == nil {
		// The frontend checked the deadline when it stored the update; the close, not the
		// leader's clock, decides which updates are in.
		at := f.u.Stored
		c.mu.Lock()
		if deadline, ok := c.engine.Deadline(); ok && at.After(deadline) {
			at = deadline
		}
		c.mu.Unlock()
		req := f.req
		if f.u.Acceptor != "" {
			req = c.heldRequest(f.u)
		}
		if err == nil {
			err = c.refuseCopy(f)
		}
		var n int
		if err == nil {
			n, _, err = c.add(req, at, f.contrib, f.rec)
		}
		if err == nil {
			c.metrics.updates.WithLabelValues("accepted", "").Inc()
			c.emit(Event{Kind: UpdateAccepted, Round: req.GetRound(), Device: f.u.Device, Accepted: n})
			c.notify()
			return
		}
	}
	if Reason(err) == ReasonDuplicate {
		return // added before a restart or a retried follow
	}
	c.metrics.updates.WithLabelValues("lost", Reason(err)).Inc()
	c.log.Error("an update the tier acknowledged could not be added to the round", "device", f.u.Device, "seq", f.u.Seq, "err", err)
}

// refuseCopy refuses an update whose ciphertexts are, by their replay fingerprint, another
// device's update of the round, whoever took either: the sum's own replay check sees only the
// updates the leader adds itself, not those in frontends' parts (a compromised device could
// copy an honest device's update at another frontend and have it counted twice).
func (c *Coordinator) refuseCopy(f *followed) error {
	fp, ok := [32]byte{}, false
	switch {
	case f.u.Acceptor != "":
		fp, ok = [32]byte(f.u.Fingerprint), true
	case f.req != nil:
		c.mu.Lock()
		ps, parted := c.engine.Sum().(*partedSum)
		c.mu.Unlock()
		if !parted {
			return nil
		}
		if enc, encrypted := ps.Accumulator.(*aggregation.EncryptedAccumulator); encrypted {
			var err error
			fp, err = enc.Fingerprint(aggregation.Origin{Round: f.req.GetRound(), Device: f.req.GetDeviceId(), Nonce: f.req.GetNonce()}, f.req.GetUpdate())
			ok = err == nil // a malformed update the sum refuses
		}
	}
	if !ok {
		return nil
	}
	in := c.intake
	in.mu.Lock()
	defer in.mu.Unlock()
	if d, seen := in.fps[fp]; seen && d != f.u.Device {
		return reject(codes.InvalidArgument, ReasonBadUpdate, fmt.Sprintf("its ciphertexts are device %q's update's", d))
	}
	if in.fps != nil {
		in.fps[fp] = f.u.Device
	}
	return nil
}

// heldRequest is the submission of an update a frontend holds, as far as the round's tasks
// go: the frontend checked its nonce and base version against the task before it stored it,
// and its partial sum is bound to them. The update itself stays with the frontend; where it is
// is noted for the close (gatherParts).
func (c *Coordinator) heldRequest(u cluster.Update) *vigilv1.SubmitUpdateRequest {
	c.mu.Lock()
	task, ok := c.engine.Task(u.Device)
	c.mu.Unlock()
	in := c.intake
	in.mu.Lock()
	defer in.mu.Unlock()
	if !ok {
		// Not sampled, or added already (a retried follow): Submit says which.
		task = round.Task{Round: in.round}
	}
	if in.held != nil && in.round == task.Round {
		in.held[u.Device] = heldUpdate{acceptor: u.Acceptor, seq: u.Seq}
	}
	return &vigilv1.SubmitUpdateRequest{DeviceId: u.Device, Round: task.Round, Nonce: task.Nonce, BaseVersion: task.BaseVersion}
}

// intakeSealed reports whether the follower of round id has drained its stream: the round
// was sealed (by a leader before this one, which stopped before its state said so) and can
// take nothing more.
func (c *Coordinator) intakeSealed(id uint64) bool {
	in := c.intake
	in.mu.Lock()
	drained, ok := in.drained, in.round == id
	in.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-drained:
		return true
	default:
		return false
	}
}

// closeIntake seals the open round in the tier and waits until every update it holds is in
// the sum.
func (c *Coordinator) closeIntake(ctx context.Context, id uint64) error {
	in := c.intake
	in.mu.Lock()
	drained, ok := in.drained, in.round == id
	in.mu.Unlock()
	if !ok {
		return fmt.Errorf("coordinator: round %d is not being followed", id)
	}
	if _, err := in.tier.Close(ctx, id); err != nil {
		return err
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forgetIntake stops following the round and deletes it from the tier.
func (c *Coordinator) forgetIntake(ctx context.Context, id uint64) {
	in := c.intake
	in.mu.Lock()
	if in.round == id && in.stop != nil {
		in.stop()
		in.round, in.stop, in.check = 0, nil, nil
	}
	in.mu.Unlock()
	if err := in.tier.Forget(ctx, id); err != nil && ctx.Err() == nil {
		// Stopping, it is left to the next round's Forget, which deletes earlier rounds'
		// objects too.
		c.log.Warn("the tier keeps a finished round", "round", id, "err", err)
	}
}

// submitToIntake is SubmitUpdate for a leader with a tier: it checks the update as the round
// would and stores it in the tier, which the follower adds to the sum.
func (c *Coordinator) submitToIntake(ctx context.Context, req *vigilv1.SubmitUpdateRequest) (int, error) {
	_, d, err := c.verify(req, false, nil)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	err = c.engine.Check(c.cfg.Now(), round.Submission{
		Device: req.GetDeviceId(), Round: req.GetRound(), Nonce: req.GetNonce(), BaseVersion: req.GetBaseVersion(), Update: req.GetUpdate(),
	})
	n := 0
	if s := c.engine.Sum(); s != nil {
		n = s.Count()
	}
	c.mu.Unlock()
	if err != nil {
		return 0, lateResend(ctx, c.intake.tier, req, err)
	}
	c.intake.mu.Lock()
	check := c.intake.check
	if c.intake.round != req.GetRound() {
		check = nil
	}
	c.intake.mu.Unlock()
	if check == nil {
		return 0, reject(codes.FailedPrecondition, ReasonUnknownRound, fmt.Sprintf("round %d is not taking updates", req.GetRound()))
	}
	if _, err := check.add(aggregation.Origin{Round: req.GetRound(), Device: req.GetDeviceId(), Nonce: req.GetNonce()}, req.GetUpdate()); err != nil {
		return 0, submitStatus(err)
	}
	// What the leader has added so far, and this one: while it follows the stream, others
	// stored may not be counted yet.
	return n + 1, storeUpdate(ctx, c.intake.tier, req, cluster.Stamp{Record: d.record})
}

// lateResend is the status of req, which the round's tasks refused with err: DUPLICATE if err
// is the round's deadline or close and the tier holds the device's update (a device sending
// again, not having heard the answer, whose update is in though no one here added it yet).
func lateResend(ctx context.Context, tier *cluster.Tier, req *vigilv1.SubmitUpdateRequest, err error) error {
	if errors.Is(err, round.ErrDeadline) || errors.Is(err, round.ErrClosed) {
		if seq, ok, _ := tier.Stored(ctx, req.GetRound(), req.GetDeviceId()); ok {
			return reject(codes.AlreadyExists, ReasonDuplicate, fmt.Sprintf("device %q's update is in round %d (stored at %d)", req.GetDeviceId(), req.GetRound(), seq))
		}
	}
	return submitStatus(err)
}

// storeUpdate stores req, which a checkSum has checked, in the tier with stamp (the device
// record its signature was checked against, and the frontend keeping it, if any), mapping the
// tier's answers to the statuses devices act on. A device sending again after an answer it
// did not hear was checked on its own (checkSum.add): the tier says whether it holds the
// update.
func storeUpdate(ctx context.Context, tier *cluster.Tier, req *vigilv1.SubmitUpdateRequest, stamp cluster.Stamp) error {
	raw, err := proto.Marshal(req)
	if err != nil {
		return reject(codes.InvalidArgument, ReasonBadUpdate, err.Error())
	}
	_, err = tier.Accept(ctx, req.GetRound(), req.GetDeviceId(), raw, stamp)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrDuplicate):
		return reject(codes.AlreadyExists, ReasonDuplicate, err.Error())
	case errors.Is(err, cluster.ErrClosed):
		return reject(codes.FailedPrecondition, ReasonRoundClosed, err.Error())
	}
	return reject(codes.Unavailable, ReasonNotDurable, "the update could not be confirmed stored; send it again: "+err.Error())
}

// noteDeviceLocked marks the device's record for the tier. c.mu must be held.
func (c *Coordinator) noteDeviceLocked(id string) {
	if c.intake != nil {
		c.intake.mu.Lock()
		c.intake.changed[id] = struct{}{}
		c.intake.mu.Unlock()
	}
}

// syncDevices gives the tier the records of the devices admitted or removed since the last
// call; one that fails is tried again at the next.
func (c *Coordinator) syncDevices(ctx context.Context) {
	in := c.intake
	if in == nil {
		return
	}
	in.mu.Lock()
	ids := make([]string, 0, len(in.changed))
	for id := range in.changed {
		ids = append(ids, id)
	}
	clear(in.changed)
	in.mu.Unlock()
	for _, id := range ids {
		c.mu.Lock()
		d, ok := c.devices[id]
		c.mu.Unlock()
		var err error
		if ok {
			var raw []byte
			if raw, err = proto.Marshal(&statev1.Device{Id: id, Region: d.region, Record: d.record}); err == nil {
				err = in.tier.PutDevice(ctx, id, raw)
			}
		} else {
			err = in.tier.DeleteDevice(ctx, id)
		}
		if err != nil {
			c.log.Warn("the tier does not know the device's record yet; frontends refuse its updates meanwhile", "device", id, "err", err)
			in.mu.Lock()
			in.changed[id] = struct{}{}
			in.mu.Unlock()
		}
	}
}

// startIntake serves the open round through the tier, or aborts it: no device could hand in
// an update without its plan.
//
// A leader that just took over resumes the round while the tier's servers may still be
// electing leaders: while the tier does not answer it tries again, past the round's deadline
// too. The seal, not the deadline, decides which updates are in, and aborting would drop the
// round's stream with every update the tier acknowledged.
func (c *Coordinator) startIntake(ctx context.Context) {
	c.mu.Lock()
	id := c.engine.Current()
	c.mu.Unlock()
	err := c.serveIntake(ctx)
	for tries := 0; err != nil && cluster.Temporary(err) && ctx.Err() == nil; tries++ {
		if tries%10 == 0 {
			c.log.Warn("the tier does not answer; trying again every second", "round", id, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		err = c.serveIntake(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the round resumes at the next start
		}
		c.log.Error("the tier cannot take the round; aborting it", "err", err)
		c.mu.Lock()
		c.abort = "the tier could not take the round's plan: " + err.Error()
		c.mu.Unlock()
		c.notify()
	}
}
