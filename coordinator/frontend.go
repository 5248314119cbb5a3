package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/pki"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// FrontendConfig configures an aggregation frontend.
type FrontendConfig struct {
	// Tier is the coordinator tier the frontend stores updates in; its leader adds them.
	Tier *cluster.Tier
	// Key is the key epoch updates are encrypted under; nil takes plaintext updates, as a
	// leader with Insecure sealing does.
	Key *he.KeyEpoch
	// VerifySignatures checks each update's signature against its device's record, as a
	// leader with a root of trust does (Config.Root).
	VerifySignatures bool
	// RequireDevice refuses calls not made with the certificate of the device they name, as a
	// leader with an Enroller does (serve with pki's TLS configuration).
	RequireDevice bool
	// Now is the clock the deadline, and when to check the object store again, are read from
	// (default time.Now).
	Now func() time.Time
	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// Metrics registers the frontend's Prometheus metrics (default: a private registry).
	Metrics prometheus.Registerer
	// Trustees, if set, are the key epoch's trustees: the frontend keeps the updates it stored
	// and has the trustees verify them itself (trustee.Client.ExtendParts), a few at a time
	// while the round collects and the rest once the leader has sealed it and asks (Run), so
	// that the leader does not relay them. Without it the leader relays every update.
	Trustees *trustee.Client
	// HandOverEvery is how many updates the frontend keeps before it hands them to the
	// trustees while the round collects (default 32); the close waits for fewer than that.
	HandOverEvery int
	// ID names the frontend to the leader (cluster.ValidAcceptor; default: random).
	ID string
	// Dir holds the updates kept for the trustees (default: a temporary directory, removed by
	// Close).
	Dir string
}

// Frontend is a stateless aggregation frontend of a coordinator tier (intake.go): devices hand
// it their updates, which it checks as the round leader would (task, signature, the update's
// form, with a check sum of its own) and stores in the tier, acknowledging one
// only once the tier holds it inside the round. Any number of frontends serve one round; the
// tier accepts each device's update once. Enrolment, tasks and models stay with the leader.
type Frontend struct {
	vigilv1.UnimplementedCoordinatorServer

	cfg     FrontendConfig
	log     *slog.Logger
	sealing Sealing
	metrics *frontendMetrics

	mu     sync.Mutex
	round  uint64
	dim    int
	engine *round.Engine // the round's plan, for its checks; it never adds
	check  *checkSum
	part   *frontendPart // the round's updates kept for the trustees; nil without Trustees
	store  storeCheck

	id       string
	contribs *contributionLog // nil without Trustees
	tempDir  string           // removed by Close
	unlock   func()           // releases tempDir's lock (frontend_dir_unix.go)

	// Hand-overs to the trustees run under bg, which Close ends, and are counted in handings
	// under handMu, so that none starts once Close waits for them.
	bg       context.Context
	stopBg   context.CancelFunc
	handMu   sync.Mutex
	closed   bool
	handings sync.WaitGroup
}

// NewFrontend returns a frontend storing updates in cfg.Tier.
func NewFrontend(cfg FrontendConfig) (*Frontend, error) {
	if cfg.Tier == nil {
		return nil, errors.New("coordinator: a frontend needs a tier")
	}
	var sealing Sealing = Insecure{}
	if cfg.Key != nil {
		// Only the key's parameters are used: a frontend opens no sum.
		sealing = &ThresholdHE{key: cfg.Key}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.HandOverEvery <= 0 {
		cfg.HandOverEvery = 32
	}
	m, err := newFrontendMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("coordinator: frontend metrics: %w", err)
	}
	f := &Frontend{cfg: cfg, log: cfg.Logger, sealing: sealing, metrics: m, id: cfg.ID}
	f.bg, f.stopBg = context.WithCancel(context.Background())
	if f.id == "" {
		var b [6]byte
		rand.Read(b[:])
		f.id = "fe-" + hex.EncodeToString(b[:])
	}
	if !cluster.ValidAcceptor(f.id) {
		return nil, fmt.Errorf("coordinator: frontend name %q: want 1 to 64 letters, digits, '-' or '_'", f.id)
	}
	if cfg.Trustees != nil && cfg.Key != nil {
		dir := cfg.Dir
		if dir == "" {
			sweepTempDirs(f.log)
			if dir, f.unlock, err = newTempDir(); err != nil {
				return nil, fmt.Errorf("coordinator: frontend: %w", err)
			}
			f.tempDir = dir
		}
		f.contribs = newContributionLog(dir)
	}
	return f, nil
}

// ID is the name the frontend stores updates under, which the leader asks for its part by.
func (f *Frontend) ID() string { return f.id }

// Close removes what the frontend kept for the trustees.
func (f *Frontend) Close() error {
	f.handMu.Lock()
	f.closed = true
	f.handMu.Unlock()
	f.stopBg()
	f.handings.Wait()
	if f.contribs != nil {
		f.contribs.close()
	}
	if f.tempDir != "" {
		defer f.unlock()
		return os.RemoveAll(f.tempDir)
	}
	return nil
}

// Register adds the frontend's service to s.
func (f *Frontend) Register(s *grpc.Server) { vigilv1.RegisterCoordinatorServer(s, f) }

// SubmitUpdate implements vigilv1.CoordinatorServer.
func (f *Frontend) SubmitUpdate(ctx context.Context, req *vigilv1.SubmitUpdateRequest) (*vigilv1.SubmitUpdateResponse, error) {
	err := f.submit(ctx, req)
	if err != nil {
		f.metrics.updates.WithLabelValues("rejected", Reason(err)).Inc()
		f.log.Info("update rejected", "device", req.GetDeviceId(), "round", req.GetRound(), "err", status.Convert(err).Message())
		return nil, err
	}
	f.metrics.updates.WithLabelValues("stored", "").Inc()
	return &vigilv1.SubmitUpdateResponse{}, nil
}

func (f *Frontend) submit(ctx context.Context, req *vigilv1.SubmitUpdateRequest) error {
	if f.cfg.RequireDevice {
		if err := pki.RequireDevice(ctx, req.GetDeviceId()); err != nil {
			return err
		}
	}
	if err := checkForm(req); err != nil {
		return err
	}
	engine, check, err := f.roundOf(ctx, req.GetRound())
	if err != nil {
		return err
	}
	if err := f.checkStore(ctx, req.GetRound()); err != nil {
		return err
	}
	f.mu.Lock()
	err = engine.Check(f.cfg.Now(), round.Submission{
		Device: req.GetDeviceId(), Round: req.GetRound(), Nonce: req.GetNonce(), BaseVersion: req.GetBaseVersion(), Update: req.GetUpdate(),
	})
	f.mu.Unlock()
	if err != nil {
		return lateResend(ctx, f.cfg.Tier, req, err)
	}
	raw, err := f.cfg.Tier.Device(ctx, req.GetDeviceId())
	if errors.Is(err, cluster.ErrNoDevice) {
		return reject(codes.NotFound, ReasonUnknownDevice, fmt.Sprintf("device %q is not enrolled", req.GetDeviceId()))
	}
	if err != nil {
		return reject(codes.Unavailable, ReasonNotDurable, "the registry cannot be read; send the update again: "+err.Error())
	}
	var rec statev1.Device
	if err := proto.Unmarshal(raw, &rec); err != nil {
		return status.Errorf(codes.Internal, "device %q's record in the tier: %v", req.GetDeviceId(), err)
	}
	var contrib *vigilv1.Contribution
	if th, ok := f.sealing.(*ThresholdHE); ok && req.GetUpdate().GetEncoding() == vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD {
		if contrib, err = th.contribution(req, device{region: rec.GetRegion(), record: rec.GetRecord()}, f.cfg.VerifySignatures, check.minSum); err != nil {
			return err
		}
	}
	fp, err := check.add(aggregation.Origin{Round: req.GetRound(), Device: req.GetDeviceId(), Nonce: req.GetNonce()}, req.GetUpdate())
	if err != nil {
		return submitStatus(err)
	}
	// The frontend's name goes with the update only if it keeps the update in its part: the
	// leader then follows only where the update is, and asks the frontend for it at close.
	var p *frontendPart
	stamp := cluster.Stamp{Record: rec.GetRecord()}
	if contrib != nil {
		if p = f.partOf(req.GetRound()); p != nil {
			defer p.inflight.Done()
			stamp.Acceptor, stamp.Fingerprint = f.id, fp[:]
		}
	}
	start := time.Now()
	err = storeUpdate(ctx, f.cfg.Tier, req, stamp)
	if err == nil && p != nil {
		p.keep(f.contribs, f.sealing, req, contrib, fp)
		f.handOverSoon(p)
	}
	result := "stored"
	if err != nil {
		result = Reason(err)
	}
	f.metrics.store.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return err
}

// roundOf returns the round's plan as an engine to check updates with, reading the plan from
// the tier the first time the round is named.
func (f *Frontend) roundOf(ctx context.Context, id uint64) (*round.Engine, *checkSum, error) {
	f.mu.Lock()
	if f.round == id && f.engine != nil {
		defer f.mu.Unlock()
		return f.engine, f.check, nil
	}
	cur := f.round
	f.mu.Unlock()
	if id < cur {
		return nil, nil, reject(codes.FailedPrecondition, ReasonUnknownRound, fmt.Sprintf("round %d is over; round %d is open", id, cur))
	}
	raw, err := f.cfg.Tier.Plan(ctx, id)
	if errors.Is(err, cluster.ErrNoPlan) {
		return nil, nil, reject(codes.FailedPrecondition, ReasonUnknownRound, fmt.Sprintf("round %d has not started", id))
	}
	if err != nil {
		return nil, nil, reject(codes.Unavailable, ReasonNotDurable, "the round's plan cannot be read; send the update again: "+err.Error())
	}
	var plan statev1.Round
	if err := proto.Unmarshal(raw, &plan); err != nil {
		return nil, nil, status.Errorf(codes.Internal, "round %d's plan: %v", id, err)
	}
	engine, check, err := f.planned(&plan)
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "round %d's plan: %v", id, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id > f.round {
		f.round, f.dim, f.engine, f.check = id, int(plan.GetDimension()), engine, check
	}
	if f.round != id {
		return nil, nil, reject(codes.FailedPrecondition, ReasonUnknownRound, fmt.Sprintf("round %d is over; round %d is open", id, f.round))
	}
	return f.engine, f.check, nil
}

func (f *Frontend) planned(plan *statev1.Round) (*round.Engine, *checkSum, error) {
	engine, err := round.New(round.Config{ExpectedParticipants: 1, Quorum: aggregation.Quorum{Min: 1}, Timeout: time.Hour}, plan.GetId()-1)
	if err != nil {
		return nil, nil, err
	}
	check, err := newCheckSum(f.sealing, int(plan.GetDimension()), plan.GetPrivacy().GetMinParticipants())
	if err != nil {
		return nil, nil, err
	}
	sum := check.sum
	s := round.State{Round: plan.GetId(), BaseVersion: plan.GetBaseVersion(), Started: plan.GetStarted().AsTime(), Deadline: plan.GetDeadline().AsTime()}
	for _, t := range plan.GetTasks() {
		s.Tasks = append(s.Tasks, round.TaskState{Device: t.GetDevice(), Nonce: t.GetNonce()})
	}
	if err := engine.Restore(s, sum); err != nil {
		return nil, nil, err
	}
	return engine, check, nil
}

// checkForm checks what an update must be before anything is looked up for it.
func checkForm(req *vigilv1.SubmitUpdateRequest) error {
	if err := vigilv1.ValidID("device_id", req.GetDeviceId()); err != nil {
		return reject(codes.InvalidArgument, ReasonInvalidArgument, err.Error())
	}
	if len(req.GetNonce()) != vigilv1.NonceSize {
		return reject(codes.InvalidArgument, ReasonInvalidArgument, fmt.Sprintf("nonce is %d bytes, want %d", len(req.GetNonce()), vigilv1.NonceSize))
	}
	u := req.GetUpdate()
	if u == nil {
		return reject(codes.InvalidArgument, ReasonBadUpdate, "update is missing")
	}
	if u.GetDimension() > vigilv1.MaxParams || len(u.GetValues()) > vigilv1.MaxParams || len(u.GetCiphertexts()) > vigilv1.MaxCiphertexts {
		return reject(codes.InvalidArgument, ReasonBadUpdate, "update exceeds the size limits")
	}
	return nil
}

// storeRecheck is how often a frontend checks its object store against the round leader's
// while a round collects: a standby given another store may take over and resume the round.
const storeRecheck = 10 * time.Second

// storeCheck is the frontend's last check of its object store against the round leader's
// (cluster.Tier.CheckBlobs). It is checked at start too (vigil coordinator --frontend), but a
// frontend may have started before any leader recorded its store, or a leader with another
// store may have taken over since: updates stored where the leader does not read them would
// be lost to the round.
type storeCheck struct {
	mu      sync.Mutex
	round   uint64        // the newest round checked for
	at      time.Time     // when
	err     error         // what it found
	running chan struct{} // closed when the check under way ends; nil when none is
}

// checkStore refuses an update of round if the frontend's object store is not the round
// leader's, checking when the frontend first meets a round and then at most every
// storeRecheck (every second while the store cannot be read). One check runs at a time;
// requests that arrive meanwhile wait for it, within their own deadlines, and take its answer.
func (f *Frontend) checkStore(ctx context.Context, round uint64) error {
	c := &f.store
	c.mu.Lock()
	for c.running != nil {
		running := c.running
		c.mu.Unlock()
		select {
		case <-running:
		case <-ctx.Done():
			return reject(codes.Unavailable, ReasonNotDurable, "this frontend is checking its object store against the round leader's; send the update again")
		}
		c.mu.Lock()
	}
	if now := f.cfg.Now(); round > c.round || now.Sub(c.at) >= storeRecheck {
		running := make(chan struct{})
		c.running = running
		c.mu.Unlock()
		// Not under the request's context: a device hanging up must not stand for the store.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeCheckWait)
		err := f.cfg.Tier.CheckBlobs(cctx)
		cancel()
		switch {
		case errors.Is(err, cluster.ErrOtherBlobs):
			f.log.Error("this frontend's object store is not the round leader's: it refuses updates until it is (give it the leader's --tier-blobs)", "round", round, "err", err)
		case err != nil:
			f.log.Warn("this frontend's object store cannot be checked against the round leader's", "round", round, "err", err)
			// Says nothing of whose the store is: checked again in a second, not in storeRecheck.
			now = now.Add(time.Second - storeRecheck)
		}
		c.mu.Lock()
		c.round, c.at, c.err, c.running = max(c.round, round), now, err, nil
		close(running)
	}
	err := c.err
	c.mu.Unlock()
	switch {
	case errors.Is(err, cluster.ErrOtherBlobs):
		return reject(codes.Unavailable, ReasonNotDurable, "this frontend cannot store updates where the round leader reads them; send the update to another: "+err.Error())
	case err != nil:
		return reject(codes.Unavailable, ReasonNotDurable, "this frontend cannot check its object store against the round leader's; send the update again: "+err.Error())
	}
	return nil
}

// storeCheckWait bounds one check of the object store.
const storeCheckWait = 5 * time.Second
