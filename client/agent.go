package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/models"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// LocalData supplies the device's recent behaviour as feature vectors for local training.
type LocalData interface {
	Features() [][]float64
}

// WindowData is LocalData that also keeps the windows of the device's enrolment (feature
// summaries and per-bucket timings, never raw events): what a population statistics task needs.
type WindowData interface {
	LocalData
	Windows() []models.Window
}

// Rows is LocalData held in memory.
type Rows [][]float64

// Features implements LocalData.
func (r Rows) Features() [][]float64 { return r }

// Bounds on what a task may ask of the device, so that a faulty or hostile coordinator cannot
// make it train without end.
const (
	maxLocalEpochs = 200
	maxBatchSize   = 4096
)

// Config configures an Agent.
type Config struct {
	DeviceID string
	Region   string
	// Identity is the device's enrolment (Enrol): Enroll presents its device record, and its
	// signing key signs every encrypted update. Nil only against a coordinator that checks no
	// records (tests, plaintext debugging).
	Identity *Identity
	// FeatureSet is the feature extractor the device's data comes from; the agent refuses a
	// model built for another.
	FeatureSet  string
	Coordinator vigilv1.CoordinatorClient
	// Frontends are aggregation frontends of the coordinator's tier (vigil coordinator
	// --frontend), which take updates only: SubmitUpdate goes to these, starting at one chosen
	// by the device ID so that a fleet spreads over them, moving to the next on Unavailable,
	// DeadlineExceeded or a broken connection, and to Coordinator last (see SubmitUpdate).
	// Every other call goes to Coordinator. Optional.
	Frontends []vigilv1.CoordinatorClient
	Data      LocalData
	// Sealer protects updates for the wire. Required.
	Sealer Sealer
	// Seed makes local training reproducible; each round derives its own seed from it.
	Seed uint64
	// Ledger, if set, is the device's own privacy ledger: the device refuses tasks that would
	// take it past its budget.
	Ledger *dp.Ledger
	// MinNoiseMultiplier refuses tasks asking for less noise than the device's policy.
	MinNoiseMultiplier float64
	// Policy, if set, holds every task to the privacy policy signed under the device's root of
	// trust (see PolicyGuard). Deployed devices always set it.
	Policy *PolicyGuard
	// Installed, if set, says which release of each model the device runs (model name ->
	// version; see vigilv1.ValidInstalled), sent with every GetTask so the operator sees which
	// versions the fleet runs. Only versions: shadow-scoring results are derived from the
	// user's behaviour and stay on the device.
	Installed func() map[string]uint64
	// Population, if set, is the population statistics encoder to share with other agents in
	// the process (default: the agent's own).
	Population *PopulationEncoder
	// Rand supplies the noise; it must be a cryptographic source (default crypto/rand).
	Rand   io.Reader
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if err := vigilv1.ValidID("device ID", c.DeviceID); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if c.Coordinator == nil || c.Data == nil || c.Sealer == nil {
		return errors.New("client: Coordinator, Data and Sealer are required")
	}
	if c.Identity != nil {
		if c.Identity.DeviceID != c.DeviceID || c.Identity.SigningKey == nil || len(c.Identity.Record) == 0 {
			return fmt.Errorf("client: the identity is for %q or lacks its signing key or record; the agent runs %q", c.Identity.DeviceID, c.DeviceID)
		}
		if c.Region == "" {
			c.Region = c.Identity.Region
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return nil
}

// Agent takes part in federated rounds for one device. It is not safe for concurrent use.
type Agent struct {
	cfg        Config
	spec       models.Spec
	enrolled   bool
	population *PopulationEncoder
	base       struct {
		version uint64
		params  []float64
	}
	// handedIn is the last task whose update is in. A coordinator tier acknowledges an update
	// before its leader has added it, and until then hands out the same task again: doing it
	// again would cost the device a training, fresh noise and an encryption for nothing.
	handedIn struct {
		round uint64
		nonce []byte
	}
	// sent is the last update charged to the ledger and sent, kept to be sent again as it
	// is if the same task comes back (its answer lost): a round is charged once, so the
	// device never sends it a second, freshly noised update.
	sent *vigilv1.SubmitUpdateRequest
}

// handedInRetry is how long a device waits before asking again for a task it already did.
const handedInRetry = 500 * time.Millisecond

// New returns an Agent; it enrols on first use.
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	population := cfg.Population
	if population == nil {
		population = new(PopulationEncoder)
	}
	return &Agent{cfg: cfg, population: population}, nil
}

// Enroll presents the device to the coordinator and learns the model it will train. The
// coordinator takes the device into its registry with the device's next call (Poll's GetTask).
func (a *Agent) Enroll(ctx context.Context) error {
	req := &vigilv1.EnrollRequest{DeviceId: a.cfg.DeviceID, Region: a.cfg.Region}
	if id := a.cfg.Identity; id != nil {
		// Already certified: the proof covers an empty certificate request.
		proof, err := enrolment.ProveRecord(id.SigningKey, a.cfg.DeviceID, nil)
		if err != nil {
			return fmt.Errorf("client: enrol: %w", err)
		}
		req.DeviceRecord, req.RecordProof = id.Record, proof
	}
	resp, err := a.cfg.Coordinator.Enroll(ctx, req)
	if err != nil {
		return fmt.Errorf("client: enrol: %w", err)
	}
	spec, err := specFromProto(resp.GetModel())
	if err != nil {
		return fmt.Errorf("client: enrol: %w", err)
	}
	if a.cfg.FeatureSet != "" && resp.GetModel().GetFeatureSet() != a.cfg.FeatureSet {
		return fmt.Errorf("client: the coordinator's model uses features %q, this device extracts %q",
			resp.GetModel().GetFeatureSet(), a.cfg.FeatureSet)
	}
	a.spec, a.enrolled = spec, true
	a.cfg.Logger.Info("enrolled", "device", a.cfg.DeviceID, "model", resp.GetModel().GetName(), "params", spec.NumParams())
	return nil
}

// Result says what one Poll did.
type Result struct {
	// Round is the round the device submitted to, or 0 if it had no task.
	Round uint64
	// Accepted is the round's accepted-update count after this device's update; 0 when a
	// frontend took it (a frontend stores updates, the round leader counts them).
	Accepted int
	// TrainLoss is the mean reconstruction loss of the last local epoch: NaN when the device
	// had no rows and sent the zero update, 0 when it sent a round's update again.
	TrainLoss float64
	// RetryAfter is when the coordinator asked to be polled again, if there was no task.
	RetryAfter time.Duration
}

// Poll asks for a task once and, if there is one, trains and submits the update.
func (a *Agent) Poll(ctx context.Context) (Result, error) {
	if !a.enrolled {
		if err := a.Enroll(ctx); err != nil {
			return Result{}, err
		}
	}
	resp, err := a.cfg.Coordinator.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: a.cfg.DeviceID, Installed: a.installed()})
	if status.Code(err) == codes.NotFound {
		a.enrolled = false // the coordinator forgot us (e.g. restarted): enrol again next time
	}
	if err != nil {
		return Result{}, fmt.Errorf("client: get task: %w", err)
	}
	t := resp.GetTask()
	if t == nil {
		return Result{RetryAfter: time.Duration(resp.GetRetryAfterMillis()) * time.Millisecond}, nil
	}
	if t.GetRound() == a.handedIn.round && bytes.Equal(t.GetNonce(), a.handedIn.nonce) {
		return Result{RetryAfter: handedInRetry}, nil
	}
	res, err := a.do(ctx, t)
	if err == nil {
		a.handedIn.round, a.handedIn.nonce = t.GetRound(), t.GetNonce()
	}
	return res, err
}

func (a *Agent) do(ctx context.Context, t *vigilv1.Task) (Result, error) {
	cfg, err := trainConfig(t, a.cfg.Seed)
	if err != nil {
		return Result{}, fmt.Errorf("client: round %d: %w", t.GetRound(), err)
	}
	if a.cfg.Policy != nil {
		if err := a.cfg.Policy.Check(t); err != nil {
			return Result{}, fmt.Errorf("client: round %d: %w", t.GetRound(), err)
		}
	}
	// Before the budget check: the round is charged already, and checking it again counted it
	// twice, so a device refused SERVER_BUSY near the end of its budget stopped for good (a
	// review of the demo saw 104 of 200 devices stop).
	if a.cfg.Ledger != nil && t.GetPrivacy().GetNoiseMultiplier() > 0 {
		if _, charged := a.cfg.Ledger.Entry(t.GetRound()); charged {
			if s := a.sent; s != nil && s.GetRound() == t.GetRound() && bytes.Equal(s.GetNonce(), t.GetNonce()) {
				return a.submit(ctx, s, 0)
			}
			// The ledger charges a round once: another update for it, with fresh noise,
			// would be privacy spent and never counted (a coordinator asking again under a
			// new nonce, or after this device restarted).
			return Result{}, fmt.Errorf("client: round %d: this device's update for the round was charged to its privacy ledger and sent already; it sends no other", t.GetRound())
		}
	}
	if err := a.checkPrivacy(t.GetPrivacy()); err != nil {
		return Result{}, fmt.Errorf("client: round %d: %w", t.GetRound(), err)
	}
	var delta []float64
	var loss float64
	switch t.GetKind() {
	case vigilv1.TaskKind_TASK_KIND_TRAIN:
		if delta, loss, err = a.train(ctx, t, cfg); err != nil {
			return Result{}, fmt.Errorf("client: round %d: %w", t.GetRound(), err)
		}
	case vigilv1.TaskKind_TASK_KIND_POPULATION_STATS, vigilv1.TaskKind_TASK_KIND_REFERENCE_STATS:
		if delta, err = a.population.contribute(t, a.cfg.Data); err != nil {
			return Result{}, fmt.Errorf("client: round %d: %s statistics: %w", t.GetRound(), kindWord(t.GetKind()), err)
		}
	default:
		return Result{}, fmt.Errorf("client: round %d: task of unknown kind %v; this device may need an update", t.GetRound(), t.GetKind())
	}
	if err := protect(delta, t.GetPrivacy(), a.cfg.Rand); err != nil {
		return Result{}, fmt.Errorf("client: round %d: %w", t.GetRound(), err)
	}
	u, err := a.cfg.Sealer.Seal(ctx, t, delta)
	if err != nil {
		return Result{}, fmt.Errorf("client: round %d: %w", t.GetRound(), err)
	}
	if a.cfg.Ledger != nil && t.GetPrivacy().GetNoiseMultiplier() > 0 {
		// Charged before the update leaves the device, so a lost answer never leaves it uncounted.
		if _, err := a.cfg.Ledger.Charge(t.GetRound(), privacyEvent(t.GetPrivacy())); err != nil {
			return Result{}, fmt.Errorf("client: round %d: privacy ledger: %w", t.GetRound(), err)
		}
	}
	req := &vigilv1.SubmitUpdateRequest{
		DeviceId: a.cfg.DeviceID, Round: t.GetRound(), Nonce: t.GetNonce(), BaseVersion: t.GetBaseVersion(),
		Update: u,
	}
	if a.cfg.Identity != nil && u.GetEncoding() == vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD {
		if req.Signature, err = SignUpdate(a.cfg.Identity.SigningKey, a.cfg.DeviceID, t, u); err != nil {
			return Result{}, fmt.Errorf("client: round %d: %w", t.GetRound(), err)
		}
	}
	a.sent = req
	return a.submit(ctx, req, loss)
}

// submit sends req, the update of a task whose training loss was loss.
func (a *Agent) submit(ctx context.Context, req *vigilv1.SubmitUpdateRequest, loss float64) (Result, error) {
	sub, err := SubmitUpdate(ctx, a.cfg.Coordinator, a.cfg.Frontends, req)
	if status.Code(err) == codes.AlreadyExists {
		// An earlier attempt got through but its answer was lost: the update is in, once (the
		// tier holds one update per device and round, whichever frontend took it).
		a.cfg.Logger.Info("update was already accepted", "round", req.GetRound())
		return Result{Round: req.GetRound(), TrainLoss: loss}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("client: round %d: submit: %w", req.GetRound(), err)
	}
	a.cfg.Logger.Debug("update submitted", "round", req.GetRound(), "loss", loss, "accepted", sub.GetAccepted())
	return Result{Round: req.GetRound(), Accepted: int(sub.GetAccepted()), TrainLoss: loss}, nil
}

// train trains the global model of the task's base version on the device's feature rows and
// returns the change of its parameters and the last epoch's loss.
func (a *Agent) train(ctx context.Context, t *vigilv1.Task, cfg models.TrainConfig) ([]float64, float64, error) {
	base, err := a.model(ctx, t.GetBaseVersion())
	if err != nil {
		return nil, 0, err
	}
	rows := a.cfg.Data.Features()
	if len(rows) == 0 && t.GetPrivacy().GetNoiseMultiplier() > 0 {
		// The zero update, noised like any other: what the privacy analysis takes a device
		// without this user's data to send. Sending nothing instead made whether a device
		// answers depend on its data (found by a privacy review). No loss to report. A round
		// without noise has no such analysis, and a zero there would only dilute the average.
		return make([]float64, len(base)), math.NaN(), nil
	}
	res, err := models.Train(ctx, a.spec, base, rows, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("local training: %w", err)
	}
	delta := make([]float64, len(base))
	for i := range delta {
		delta[i] = res.Params[i] - base[i]
	}
	return delta, res.EpochLoss[len(res.EpochLoss)-1], nil
}

func trainConfig(t *vigilv1.Task, seed uint64) (models.TrainConfig, error) {
	tr := t.GetTraining()
	switch {
	case tr == nil:
		return models.TrainConfig{}, errors.New("task has no training settings")
	case tr.GetLocalEpochs() < 1 || tr.GetLocalEpochs() > maxLocalEpochs:
		return models.TrainConfig{}, fmt.Errorf("task asks for %d local epochs, the device allows 1..%d", tr.GetLocalEpochs(), maxLocalEpochs)
	case tr.GetBatchSize() < 1 || tr.GetBatchSize() > maxBatchSize:
		return models.TrainConfig{}, fmt.Errorf("task asks for batch size %d, the device allows 1..%d", tr.GetBatchSize(), maxBatchSize)
	case !(tr.GetLearningRate() > 0 && tr.GetLearningRate() <= 1):
		return models.TrainConfig{}, fmt.Errorf("task asks for learning rate %v, the device allows (0, 1]", tr.GetLearningRate())
	}
	return models.TrainConfig{
		Epochs: int(tr.GetLocalEpochs()), BatchSize: int(tr.GetBatchSize()), LearningRate: tr.GetLearningRate(),
		Seed: seed ^ t.GetRound()*0x9e3779b97f4a7c15,
	}, nil
}

// model returns the parameters of a global version, fetching them once.
func (a *Agent) model(ctx context.Context, version uint64) ([]float64, error) {
	if a.base.params != nil && a.base.version == version {
		return a.base.params, nil
	}
	resp, err := a.cfg.Coordinator.GetModel(ctx, &vigilv1.GetModelRequest{Version: version})
	if err != nil {
		return nil, fmt.Errorf("fetch model v%d: %w", version, err)
	}
	if resp.GetVersion() != version {
		return nil, fmt.Errorf("asked for model v%d, got v%d", version, resp.GetVersion())
	}
	spec, err := specFromProto(resp.GetSpec())
	if err != nil {
		return nil, fmt.Errorf("model v%d: %w", version, err)
	}
	if !sameSpec(spec, a.spec) {
		return nil, fmt.Errorf("model v%d has layers %v, enrolment promised %v", version, spec.Layers, a.spec.Layers)
	}
	if err := spec.CheckParams(resp.GetParams()); err != nil {
		return nil, fmt.Errorf("model v%d: %w", version, err)
	}
	a.base.version, a.base.params = version, resp.GetParams()
	return a.base.params, nil
}

// installed is Config.Installed's report, trimmed to what the coordinator accepts: models not
// installed (version 0) are left out, and a report the coordinator would refuse is not sent,
// so that a bad report costs the fleet view, not the device's part in rounds.
func (a *Agent) installed() map[string]uint64 {
	if a.cfg.Installed == nil {
		return nil
	}
	inst := maps.Clone(a.cfg.Installed()) // the caller's map is not ours to trim
	maps.DeleteFunc(inst, func(_ string, v uint64) bool { return v == 0 })
	if err := vigilv1.ValidInstalled(inst); err != nil {
		a.cfg.Logger.Warn("not reporting the installed models", "err", err)
		return nil
	}
	return inst
}

// kindWord names a population task's kind in errors.
func kindWord(k vigilv1.TaskKind) string {
	if k == vigilv1.TaskKind_TASK_KIND_REFERENCE_STATS {
		return "reference"
	}
	return "population"
}
