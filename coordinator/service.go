package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/models"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// ServerOptions are the gRPC server options the coordinator's API needs: message size bounds,
// and read buffers and flow-control windows sized for updates of megabytes rather than the
// defaults' kilobytes.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(vigilv1.MaxMessageBytes),
		grpc.MaxSendMsgSize(vigilv1.MaxMessageBytes),
		grpc.ReadBufferSize(256 << 10),
		grpc.InitialWindowSize(4 << 20),
		grpc.InitialConnWindowSize(16 << 20),
	}
}

// MaxUpdateBytes is the largest SubmitUpdateRequest a round of this coordinator can take: an
// update of its longest round, as its sealing encodes it, with room for the envelope. A server
// refuses a larger request without decoding it (pki.RequestLimits): vigilv1.MaxMessageBytes,
// 40 MiB, bounds an update of any model, and a compromised device's 40 MiB requests were
// decoded, two more copies of them, before being refused.
func (c *Coordinator) MaxUpdateBytes() int {
	c.mu.Lock()
	dim := len(c.global.Params)
	for _, p := range c.pops {
		s, err := p.cfg.statsShape()
		if err != nil { // New checked it: cannot happen
			c.mu.Unlock()
			return vigilv1.MaxMessageBytes
		}
		dim = max(dim, s.Len())
		if p.cfg.Reference != nil {
			dim = max(dim, p.cfg.Reference.Len())
		}
	}
	c.mu.Unlock()
	size := 9 * dim // plain values, packed
	if th, ok := c.sealing.(*ThresholdHE); ok {
		size = max(size, th.key.Params().UpdateBytes(dim))
	}
	return min(vigilv1.MaxMessageBytes, size+updateEnvelopeBytes)
}

// updateEnvelopeBytes bounds what a SubmitUpdateRequest holds besides its values or
// ciphertexts: identifiers, the nonce, the device's ML-DSA-65 signature (3,309 bytes).
const updateEnvelopeBytes = 64 << 10

// Register serves the coordinator's API on s.
func (c *Coordinator) Register(s *grpc.Server) { vigilv1.RegisterCoordinatorServer(s, c) }

// Reasons attached to rejections, as google.rpc.ErrorInfo reasons in the "vigil" domain.
const (
	ReasonInvalidArgument = "INVALID_ARGUMENT"
	ReasonUnknownDevice   = "UNKNOWN_DEVICE"
	ReasonUnknownRound    = "UNKNOWN_ROUND"
	ReasonNotSelected     = "NOT_SELECTED"
	ReasonDuplicate       = "DUPLICATE_UPDATE"
	ReasonBadNonce        = "NONCE_MISMATCH"
	ReasonStaleBase       = "STALE_BASE_VERSION"
	ReasonDeadline        = "DEADLINE_PASSED"
	ReasonRoundClosed     = "ROUND_CLOSED"
	ReasonBadUpdate       = "INVALID_UPDATE"
	ReasonUnknownVersion  = "UNKNOWN_MODEL_VERSION"
	ReasonNotDurable      = "NOT_DURABLE"
	ReasonNoKeyEpoch      = "NO_KEY_EPOCH"
	// ReasonTooManyEnrolments: ResourceExhausted: maxPendingEnrolments enrolments are waiting
	// for their devices' first call.
	ReasonTooManyEnrolments = "TOO_MANY_PENDING_ENROLMENTS"
	// Enrolment with a root of trust (Config.Root).
	ReasonNoRecord       = "NO_DEVICE_RECORD"    // Unauthenticated: no device record
	ReasonBadRecord      = "BAD_DEVICE_RECORD"   // Unauthenticated: not signed by the enrolment role, expired or malformed
	ReasonRecordMismatch = "RECORD_MISMATCH"     // PermissionDenied: the record names another device or region
	ReasonBadRecordProof = "BAD_RECORD_PROOF"    // Unauthenticated: the caller did not prove it holds the record's key
	ReasonStaleRecord    = "STALE_DEVICE_RECORD" // FailedPrecondition: older than the record the device enrolled with
	// ReasonBadSignature: PermissionDenied: with a root of trust, an update without the
	// device's valid signature over its statement (he.UpdateStatement) is refused.
	ReasonBadSignature = "BAD_UPDATE_SIGNATURE"
)

func reject(code codes.Code, reason, msg string) error { return vigilv1.Error(code, reason, msg, 0) }

// Reason returns the ErrorInfo reason of a status error from the coordinator, or "".
func Reason(err error) string { return vigilv1.Reason(err) }

// Enroll implements vigilv1.CoordinatorServer. With a root of trust (Config.Root) it accepts
// only devices that present a device record signed by the enrolment authority, and keeps the
// record's key, which signs the device's updates; a newer record replaces an older one (a device
// that registered again), an older one is refused.
//
// A device not yet in the registry enters it only with its first GetTask, once it holds the
// certificate issued here: an enrolment whose answer was lost, or whose certificate the device
// refused, registers nothing, and the device retries with the same device record. Until then
// the enrolment waits in memory (see maxPendingEnrolments and pendingEnrolmentTTL).
func (c *Coordinator) Enroll(ctx context.Context, req *vigilv1.EnrollRequest) (*vigilv1.EnrollResponse, error) {
	if err := vigilv1.ValidID("device_id", req.GetDeviceId()); err != nil {
		return nil, reject(codes.InvalidArgument, ReasonInvalidArgument, err.Error())
	}
	if req.GetRegion() != "" {
		if err := vigilv1.ValidID("region", req.GetRegion()); err != nil {
			return nil, reject(codes.InvalidArgument, ReasonInvalidArgument, err.Error())
		}
	}
	if len(req.GetCertificateRequest()) > vigilv1.MaxCertificateBytes || len(req.GetDeviceRecord()) > vigilv1.MaxDeviceRecordBytes ||
		len(req.GetRecordProof()) > vigilv1.MaxDeviceRecordBytes {
		return nil, reject(codes.InvalidArgument, ReasonInvalidArgument, "certificate_request, device_record or record_proof exceeds its size limit")
	}
	now := c.cfg.Now()
	rec, err := c.checkRecord(req, now)
	if err != nil {
		return nil, err
	}
	id := req.GetDeviceId()
	// Checked before a certificate is issued, and again below: a certificate for an enrolment
	// that cannot wait would be wasted.
	c.mu.Lock()
	err = c.enrolmentRoomLocked(id, now)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	issued, err := c.certify(ctx, req, rec, now)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if err := c.enrolmentRoomLocked(id, now); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	d, known := c.devices[id]
	if !known {
		if p, waiting := c.enrolling[id]; waiting {
			d = p.dev
		} else {
			d = device{region: req.GetRegion()}
		}
	}
	changed := false
	if rec != nil && !bytes.Equal(req.GetDeviceRecord(), d.record) {
		if !d.issued.IsZero() && rec.Issued.Before(d.issued) {
			c.mu.Unlock()
			return nil, reject(codes.FailedPrecondition, ReasonStaleRecord, fmt.Sprintf(
				"the device record was issued at %s, before the one %q enrolled with (%s)", rec.Issued.Format(time.RFC3339), id, d.issued.Format(time.RFC3339)))
		}
		d.region, d.record, d.issued = rec.Region, req.GetDeviceRecord(), rec.Issued
		changed = true
	}
	if !known {
		// A retry replaces the waiting enrolment and restarts its expiry.
		c.enrolling[id] = pendingEnrolment{dev: d, expires: now.Add(pendingEnrolmentTTL)}
	} else if changed {
		c.devices[id] = d
		c.dirty = true
		c.registryChangedLocked(id)
	}
	g, cm := c.global, c.pending
	c.mu.Unlock()
	if known && changed {
		if err := c.durable(ctx, cm); err != nil {
			return nil, reject(codes.Unavailable, ReasonNotDurable, "enrolment could not be made durable: "+err.Error())
		}
		c.log.Info("device record replaced", "device", id, "region", d.region)
	}
	if !known {
		c.log.Debug("enrolment waits for the device's first call", "device", id, "region", d.region, "recorded", rec != nil)
	}
	resp := &vigilv1.EnrollResponse{Model: specProto(g.Meta), GlobalVersion: g.Meta.Version}
	if issued != nil {
		resp.Certificate, resp.CaCertificates = issued.Certificate, issued.CACertificates
	}
	return resp, nil
}

// GetTask implements vigilv1.CoordinatorServer. When the device has no task it waits, up to
// Config.LongPoll, for the next round to open instead of answering at once, so that idle devices
// cost nothing and selected ones learn of their task without delay.
func (c *Coordinator) GetTask(ctx context.Context, req *vigilv1.GetTaskRequest) (*vigilv1.GetTaskResponse, error) {
	if err := vigilv1.ValidID("device_id", req.GetDeviceId()); err != nil {
		return nil, reject(codes.InvalidArgument, ReasonInvalidArgument, err.Error())
	}
	if err := vigilv1.ValidInstalled(req.GetInstalled()); err != nil {
		return nil, reject(codes.InvalidArgument, ReasonInvalidArgument, err.Error())
	}
	if err := c.requireDevice(ctx, req.GetDeviceId()); err != nil {
		return nil, err
	}
	admitted, err := c.admit(ctx, req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	c.seen(req.GetDeviceId())
	c.recordInstalled(req.GetDeviceId(), req.GetInstalled())
	if admitted {
		// Answered at once: the device was not in the registry when the open round, if any,
		// was sampled, so there is no task for it yet; its next poll waits for one.
		c.mu.Lock()
		version := c.global.Meta.Version
		c.mu.Unlock()
		return &vigilv1.GetTaskResponse{GlobalVersion: version}, nil
	}
	wait := time.NewTimer(c.cfg.LongPoll)
	defer wait.Stop()
	for waited := false; ; waited = true {
		c.mu.Lock()
		_, known := c.devices[req.GetDeviceId()]
		t, ok := c.engine.Task(req.GetDeviceId())
		ok = ok && t.Round == c.servable
		version, opened := c.global.Meta.Version, c.opened
		c.mu.Unlock()
		if !known {
			return nil, reject(codes.NotFound, ReasonUnknownDevice, fmt.Sprintf("device %q is not enrolled", req.GetDeviceId()))
		}
		if ok {
			return c.taskResponse(t, version), nil
		}
		if waited {
			return &vigilv1.GetTaskResponse{GlobalVersion: version}, nil
		}
		select {
		case <-opened:
		case <-wait.C:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-c.stopped:
			return &vigilv1.GetTaskResponse{GlobalVersion: version, RetryAfterMillis: 1000}, nil
		}
	}
}

func (c *Coordinator) taskResponse(t round.Task, version uint64) *vigilv1.GetTaskResponse {
	tr := c.cfg.Training
	task := &vigilv1.Task{
		Round: t.Round, Nonce: t.Nonce, BaseVersion: t.BaseVersion,
		Training:   &vigilv1.TrainingConfig{LocalEpochs: uint32(tr.LocalEpochs), LearningRate: tr.LearningRate, BatchSize: uint32(tr.BatchSize)},
		Privacy:    c.taskPrivacy(t.Round),
		Encryption: c.sealing.Encryption(),
		Deadline:   timestamppb.New(t.Deadline),
		Policy:     c.cfg.PrivacyPolicy,
	}
	c.mu.Lock()
	var (
		kind statev1.RoundKind
		pop  *population
	)
	if c.open.round == t.Round {
		kind, pop = c.open.kind, c.open.population
	}
	if pop != nil {
		task.Population = populationTask(pop, kind)
	}
	c.mu.Unlock()
	switch {
	case pop == nil:
	case kind == statev1.RoundKind_ROUND_KIND_REFERENCE_STATS:
		task.Kind = vigilv1.TaskKind_TASK_KIND_REFERENCE_STATS
	default:
		task.Kind = vigilv1.TaskKind_TASK_KIND_POPULATION_STATS
	}
	return &vigilv1.GetTaskResponse{GlobalVersion: version, Task: task}
}

// SubmitUpdate implements vigilv1.CoordinatorServer.
func (c *Coordinator) SubmitUpdate(ctx context.Context, req *vigilv1.SubmitUpdateRequest) (*vigilv1.SubmitUpdateResponse, error) {
	if err := c.requireDevice(ctx, req.GetDeviceId()); err != nil {
		c.metrics.updates.WithLabelValues("rejected", Reason(err)).Inc()
		return nil, err
	}
	if c.intake != nil {
		n, err := c.submitToIntake(ctx, req)
		if err != nil {
			return nil, c.rejected(req, err)
		}
		c.metrics.updates.WithLabelValues("stored", "").Inc()
		return &vigilv1.SubmitUpdateResponse{Accepted: uint32(n)}, nil
	}
	n, cm, err := c.submit(req)
	if err == nil {
		if derr := c.durable(ctx, cm); derr != nil {
			// The update is in the round's sum: it reaches the disk with the next write unless
			// that write fails (which stops Run). It is not counted as rejected, only as not
			// confirmed; a resend is answered DUPLICATE_UPDATE, which devices take as done.
			c.metrics.updates.WithLabelValues("unconfirmed", ReasonNotDurable).Inc()
			c.log.Info("update taken but its durability not confirmed to the device", "device", req.GetDeviceId(), "round", req.GetRound(), "err", derr)
			return nil, reject(codes.Unavailable, ReasonNotDurable, "the update could not be confirmed durable; send it again: "+derr.Error())
		}
	}
	if err != nil {
		return nil, c.rejected(req, err)
	}
	c.metrics.updates.WithLabelValues("accepted", "").Inc()
	c.emit(Event{Kind: UpdateAccepted, Round: req.GetRound(), Device: req.GetDeviceId(), Accepted: n})
	return &vigilv1.SubmitUpdateResponse{Accepted: uint32(n)}, nil
}

// rejected counts, logs and reports the update's refusal, and returns err.
func (c *Coordinator) rejected(req *vigilv1.SubmitUpdateRequest, err error) error {
	c.metrics.updates.WithLabelValues("rejected", Reason(err)).Inc()
	c.log.Info("update rejected", "device", req.GetDeviceId(), "round", req.GetRound(), "err", status.Convert(err).Message())
	c.emit(Event{Kind: UpdateRejected, Round: req.GetRound(), Device: req.GetDeviceId(), Err: err})
	return err
}

// submit adds the update to the round's sum and returns the commit that will make it durable.
func (c *Coordinator) submit(req *vigilv1.SubmitUpdateRequest) (int, *commit, error) {
	return c.submitAt(req, c.cfg.Now(), false)
}

// submitAt is submit at time now. stored says the update comes from the tier, whose
// frontends checked its signature before they stored it (the trustees check it again).
func (c *Coordinator) submitAt(req *vigilv1.SubmitUpdateRequest, now time.Time, stored bool) (int, *commit, error) {
	contrib, rec, err := c.prepare(req, stored, nil)
	if err != nil {
		return 0, nil, err
	}
	return c.add(req, now, contrib, rec)
}

// prepare verifies the update and encodes its contribution for the log; record, if given, is
// the device record its signature was checked against when the tier stored it.
func (c *Coordinator) prepare(req *vigilv1.SubmitUpdateRequest, signatureChecked bool, record []byte) (*vigilv1.Contribution, *record, error) {
	contrib, _, err := c.verify(req, signatureChecked, record)
	if err != nil || contrib == nil {
		return nil, nil, err
	}
	// Encoded outside the lock: marshalling the record's head is not free either.
	rec, err := c.contribs.encode(contrib)
	if err != nil {
		return nil, nil, status.Error(codes.Internal, err.Error())
	}
	return contrib, rec, nil
}

// add adds a verified update, with its contribution for the trustees, to the round's sum.
func (c *Coordinator) add(req *vigilv1.SubmitUpdateRequest, now time.Time, contrib *vigilv1.Contribution, rec *record) (int, *commit, error) {
	var err error
	c.mu.Lock()
	defer c.mu.Unlock()
	var undo func()
	if contrib != nil && req.GetRound() == c.engine.Current() {
		// Logged before it enters the sum, and taken out again if the round refuses it, so
		// that the log and the sum always hold the same updates in the same order.
		if undo, err = c.contribs.appendFor(req.GetRound(), contrib, rec); err != nil {
			return 0, nil, reject(codes.Unavailable, ReasonNotDurable, "the update could not be logged; send it again: "+err.Error())
		}
	}
	n, err := c.engine.Submit(now, round.Submission{
		Device: req.GetDeviceId(), Round: req.GetRound(), Nonce: req.GetNonce(), BaseVersion: req.GetBaseVersion(), Update: req.GetUpdate(),
	})
	if err != nil {
		if undo != nil {
			undo()
		}
		return 0, nil, submitStatus(err)
	}
	if c.intake != nil {
		c.followed = true
	} else {
		c.dirty = true
	}
	return n, c.pending, nil
}

// verify checks the update's form and signature and returns what the trustees need of it
// (nil for updates trustees do not open) and the device it checked it for. record, if given,
// is the device's record the signature was checked against already: the device may have
// enrolled again since, and the trustees must get the record that signature verifies under.
func (c *Coordinator) verify(req *vigilv1.SubmitUpdateRequest, signatureChecked bool, record []byte) (*vigilv1.Contribution, device, error) {
	if err := checkForm(req); err != nil {
		return nil, device{}, err
	}
	c.mu.Lock()
	d, ok := c.devices[req.GetDeviceId()]
	c.mu.Unlock()
	if !ok {
		return nil, device{}, reject(codes.NotFound, ReasonUnknownDevice, fmt.Sprintf("device %q is not enrolled", req.GetDeviceId()))
	}
	if record != nil {
		d.record = record
	}
	// The signature is checked outside the lock: it hashes the whole update.
	contrib, err := c.contribution(req, d, signatureChecked)
	return contrib, d, err
}

func submitStatus(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, round.ErrUnknownRound):
		return reject(codes.FailedPrecondition, ReasonUnknownRound, msg)
	case errors.Is(err, round.ErrNotSelected):
		return reject(codes.PermissionDenied, ReasonNotSelected, msg)
	case errors.Is(err, round.ErrDuplicate):
		return reject(codes.AlreadyExists, ReasonDuplicate, msg)
	case errors.Is(err, round.ErrBadNonce):
		return reject(codes.PermissionDenied, ReasonBadNonce, msg)
	case errors.Is(err, round.ErrStaleBase):
		return reject(codes.FailedPrecondition, ReasonStaleBase, msg)
	case errors.Is(err, round.ErrDeadline):
		return reject(codes.DeadlineExceeded, ReasonDeadline, msg)
	case errors.Is(err, round.ErrClosed):
		return reject(codes.FailedPrecondition, ReasonRoundClosed, msg)
	case errors.Is(err, aggregation.ErrBadUpdate):
		return reject(codes.InvalidArgument, ReasonBadUpdate, msg)
	}
	return status.Error(codes.Internal, msg)
}

// GetModel implements vigilv1.CoordinatorServer.
func (c *Coordinator) GetModel(ctx context.Context, req *vigilv1.GetModelRequest) (*vigilv1.GetModelResponse, error) {
	c.mu.Lock()
	g := c.global
	c.mu.Unlock()
	if v := req.GetVersion(); v != 0 && v != g.Meta.Version {
		if v > g.Meta.Version {
			return nil, reject(codes.NotFound, ReasonUnknownVersion, fmt.Sprintf("model version %d does not exist; the newest is %d", v, g.Meta.Version))
		}
		old, err := LoadModel(ctx, c.cfg.Store, c.cfg.ModelName, v)
		if errors.Is(err, store.ErrNotFound) {
			return nil, reject(codes.NotFound, ReasonUnknownVersion, fmt.Sprintf("model version %d is not in the store", v))
		}
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		g = old
	}
	return &vigilv1.GetModelResponse{Version: g.Meta.Version, Spec: specProto(g.Meta), Params: g.Params}, nil
}

func specProto(m models.Meta) *vigilv1.ModelSpec {
	layers := make([]uint32, len(m.Layers))
	for i, w := range m.Layers {
		layers[i] = uint32(w)
	}
	return &vigilv1.ModelSpec{
		Name: m.Name, FeatureSet: m.FeatureSet, Layers: layers, Activation: m.Activation,
		NumParams: uint64(m.Spec().NumParams()),
	}
}

// GetKeyEpoch implements vigilv1.CoordinatorServer: the signed document of the key epoch
// devices must encrypt under, and the key.
func (c *Coordinator) GetKeyEpoch(ctx context.Context, req *vigilv1.GetKeyEpochRequest) (*vigilv1.GetKeyEpochResponse, error) {
	th, ok := c.sealing.(*ThresholdHE)
	if !ok {
		return nil, reject(codes.FailedPrecondition, ReasonNoKeyEpoch, "this coordinator takes plaintext updates: there is no key epoch")
	}
	if e := req.GetEpoch(); e != 0 && e != th.key.Epoch {
		return nil, reject(codes.NotFound, ReasonNoKeyEpoch, fmt.Sprintf("key epoch %d is not in use; the current one is %d", e, th.key.Epoch))
	}
	doc, pk := th.KeyEpoch()
	return &vigilv1.GetKeyEpochResponse{Document: doc, PublicKey: pk}, nil
}
