package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/pki"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// Config configures a Coordinator. Zero values take the documented defaults.
type Config struct {
	// ModelName names the global model in the store (default "keystroke-ae").
	ModelName string
	// FeatureSet names the devices' feature extractor; devices refuse a model of another set.
	FeatureSet string
	// Spec is the global model's architecture. Required.
	Spec models.Spec
	// InitSeed seeds the first global model when the store holds none.
	InitSeed uint64

	// Rounds stops Run after this many completed training rounds (new versions of the global
	// model; population rounds come on top); 0 runs until the context ends.
	Rounds int
	// DevicesPerRound is the expected number of devices sampled per round (default 10).
	DevicesPerRound int
	// MinUpdates is the fewest updates a round may release (default 2).
	MinUpdates int
	// TargetUpdates closes a round early once this many updates are in (0: wait for all sampled
	// devices or the deadline). Refused with differential privacy: it breaks Poisson sampling.
	TargetUpdates int
	// RoundTimeout is how long a round collects updates (default 30s).
	RoundTimeout time.Duration
	// MinEnrolled is how many devices must be enrolled before the first round starts
	// (default MinUpdates).
	MinEnrolled int
	// RoundInterval is the shortest time from the start of one round to the start of the
	// next (0: the next round starts as soon as the previous one ends). It paces a run so
	// that the budget, the CPU and the stores are not spent as fast as devices can answer.
	RoundInterval time.Duration
	// FailureBackoff is how long the next round waits after a failed round or a failed
	// trustee check, doubled for every further failure in a row (default 5s).
	FailureBackoff time.Duration
	// MaxBackoff caps FailureBackoff's doubling (default 5m).
	MaxBackoff time.Duration

	// Populations, if set, also runs the rounds that learn each population model (see
	// PopulationRounds): first, in order, and again every PopulationRounds.Every rounds.
	Populations []*PopulationRounds

	// Training is what devices are told to do with their local data.
	Training Training
	// Privacy makes the rounds differentially private. Required: set a noise multiplier and a
	// budget, or InsecureNoDP.
	Privacy Privacy
	// PrivacyPolicy is the privacy office's signed policy (a release envelope under the root's
	// privacy role), handed to devices with every task: they refuse tasks outside it. The
	// coordinator cannot make one; it only passes it on.
	PrivacyPolicy []byte
	// Server applies the averaged update (default FedAvg with learning rate 1).
	Server aggregation.ServerOptimizer

	// Store keeps every global model version. Required.
	Store store.Store
	// KeepVersions is how many of the newest global versions keep their parameters in Store;
	// older ones keep only their metadata, which the privacy report checks (0: keep all).
	KeepVersions int
	// StateDir holds the coordinator's durable state (device registry, the open round and its
	// running sum). With it, an update is acknowledged only once it is on disk and a restart
	// resumes the round; without it nothing survives a restart.
	StateDir string
	// Root, if set, is the root of trust whose enrolment role signs device records: Enroll then
	// requires a device record that verifies under it, for the device and region enrolling, and
	// the device's proof that it holds the record's key, and the coordinator keeps the record's
	// key to check the device's update signatures. The enrolment authority, not the coordinator,
	// holds that role, so the coordinator cannot invent devices. Nil accepts devices without a
	// record (unit tests and plaintext debugging); `vigil coordinator` and `vigil demo` always
	// set it.
	Root *release.Root
	// Enroller, if set, issues device certificates at enrolment, and every other call must then
	// come from the certificate of the device it names. Serve the API with pki's TLS
	// configuration and guard (see package pki). It needs Root: a device's device record is
	// what authorises its certificate.
	Enroller *pki.Enroller
	// Revocations, if set, is the deployment's revocation list: a revoked device leaves the
	// registry before the next round is sampled, and RemoveDevice revokes the device it removes.
	Revocations Revocations
	// Cluster, if set, is the coordinator tier on JetStream this coordinator leads: updates
	// arrive through it, from this coordinator's SubmitUpdate or any Frontend's (intake.go).
	Cluster *cluster.Tier
	// Leading, if set, says whether this coordinator may still act as the round leader (its
	// lease in the tier, cluster.Lease.Valid). It is asked before every state write and before
	// a round is closed; an error stops Run, so that a leader frozen past its lease does not
	// write over its successor's state when it wakes.
	Leading func() error
	// Replicate, if set, is called after each write to the state directory or the store that a
	// successor must find (cluster.Replica.Sync), with what may have changed: the state
	// directory at each commit and before the trustees are asked to open a charged sum; both
	// once a version is stored, and at most once a second from Run for what is written outside
	// those (an outbox, a pause, a pruned version). An error stops Run as a failed state write
	// does.
	Replicate func(context.Context, ReplicateScope) error
	// Publisher, if set, receives every released version to sign and publish to the fleet.
	Publisher Publisher
	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// Metrics registers the coordinator's Prometheus metrics (default: a private registry).
	Metrics prometheus.Registerer
	// Events, if set, is called synchronously with every round event, e.g. to draw progress.
	Events func(Event)
	// Now and Rand replace the clock and the source of randomness in tests.
	Now  func() time.Time
	Rand io.Reader
	// TickInterval is how often Run checks deadlines (default 50ms).
	TickInterval time.Duration
	// CommitEvery is the shortest time between two writes of the state file (default 20ms).
	// Updates arriving in between are acknowledged together by the next write; a shorter
	// interval lowers latency, a longer one writes the running sum (1.7 MB for 100,000
	// encrypted parameters) less often.
	CommitEvery time.Duration
	// LongPoll is how long GetTask waits for a round to open before answering that there is no
	// task (default 10s).
	LongPoll time.Duration
}

// Training is the local training devices run on their own data.
type Training struct {
	LocalEpochs  int     // default 5
	LearningRate float64 // default 5e-3
	BatchSize    int     // default 16
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("coordinator: no store configured")
	}
	if err := c.Spec.Validate(); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if c.ModelName == "" {
		c.ModelName = "keystroke-ae"
	}
	if err := store.ValidKey(c.ModelName); err != nil {
		return fmt.Errorf("coordinator: model name: %w", err)
	}
	if c.DevicesPerRound == 0 {
		c.DevicesPerRound = 10
	}
	if c.MinUpdates == 0 {
		c.MinUpdates = min(2, c.DevicesPerRound)
	}
	if c.MinEnrolled == 0 {
		c.MinEnrolled = c.MinUpdates
	}
	if c.RoundTimeout == 0 {
		c.RoundTimeout = 30 * time.Second
	}
	if c.FailureBackoff == 0 {
		c.FailureBackoff = 5 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.RoundInterval < 0 || c.FailureBackoff < 0 || c.MaxBackoff < c.FailureBackoff {
		return fmt.Errorf("coordinator: round interval %v, failure backoff %v and max backoff %v: none may be negative, and the max not below the backoff",
			c.RoundInterval, c.FailureBackoff, c.MaxBackoff)
	}
	if c.KeepVersions < 0 {
		return fmt.Errorf("coordinator: keep versions %d: want 0 (all) or more", c.KeepVersions)
	}
	if c.Rounds < 0 {
		return fmt.Errorf("coordinator: rounds %d is negative", c.Rounds)
	}
	if c.Training.LocalEpochs == 0 {
		c.Training.LocalEpochs = 5
	}
	if c.Training.LearningRate == 0 {
		c.Training.LearningRate = 5e-3
	}
	if c.Training.BatchSize == 0 {
		c.Training.BatchSize = 16
	}
	if c.Training.LocalEpochs < 0 || c.Training.LocalEpochs > 1000 || c.Training.BatchSize < 0 || !(c.Training.LearningRate > 0) {
		return fmt.Errorf("coordinator: training settings out of range: %+v", c.Training)
	}
	if err := c.validatePrivacy(); err != nil {
		return err
	}
	if err := c.validatePopulation(); err != nil {
		return err
	}
	if c.Server == nil {
		c.Server = aggregation.FedAvg{LearningRate: 1}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.TickInterval == 0 {
		c.TickInterval = 50 * time.Millisecond
	}
	if c.CommitEvery == 0 {
		c.CommitEvery = 20 * time.Millisecond
	}
	if c.LongPoll == 0 {
		c.LongPoll = 10 * time.Second
	}
	if c.Enroller != nil && c.Root == nil {
		return errors.New("coordinator: an Enroller issues certificates only to devices with a verified device record: set Root")
	}
	return nil
}

func (c *Config) roundConfig() round.Config {
	return round.Config{
		ExpectedParticipants: c.DevicesPerRound,
		Quorum:               aggregation.Quorum{Min: c.MinUpdates, Target: c.TargetUpdates},
		Timeout:              c.RoundTimeout,
	}
}

// ReplicateScope says what Config.Replicate is to copy.
type ReplicateScope int

const (
	// ReplicateState is the state directory.
	ReplicateState ReplicateScope = iota
	// ReplicateAll is the state directory and the model store.
	ReplicateAll
)
