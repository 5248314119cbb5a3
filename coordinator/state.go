package coordinator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/internal/atomicfile"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
)

// stateFormat is the version of the state file this code writes and reads.
const stateFormat = 1

// maxStateBytes bounds the state file: the registry plus one running sum.
const maxStateBytes = 256 << 20

// stateFile is the coordinator's durable state: one protobuf file replaced atomically.
type stateFile struct{ path string }

func newStateFile(dir string) (*stateFile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("coordinator: state directory: %w", err)
	}
	return &stateFile{path: filepath.Join(dir, "coordinator.state")}, nil
}

// load returns the saved state, or nil if none was ever saved.
func (f *stateFile) load() (*statev1.CoordinatorState, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	st, err := decodeState(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return st, nil
}

func decodeState(raw []byte) (*statev1.CoordinatorState, error) {
	if len(raw) > maxStateBytes {
		return nil, fmt.Errorf("coordinator: state file of %d bytes exceeds %d", len(raw), maxStateBytes)
	}
	var st statev1.CoordinatorState
	if err := proto.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("coordinator: corrupt state file: %w", err)
	}
	if len(st.ProtoReflect().GetUnknown()) > 0 {
		return nil, errors.New("coordinator: state file has fields this version does not know")
	}
	if st.GetFormat() != stateFormat {
		return nil, fmt.Errorf("coordinator: state file format %d, this version reads %d", st.GetFormat(), stateFormat)
	}
	return &st, nil
}

func (f *stateFile) save(st *statev1.CoordinatorState) error {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(st)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if err := atomicfile.Write(f.path, raw, 0o600); err != nil {
		return fmt.Errorf("coordinator: save state: %w", err)
	}
	return nil
}

// snapshotLocked captures the state to save. c.mu must be held.
func (c *Coordinator) snapshotLocked() (*statev1.CoordinatorState, error) {
	// The registry is not in it: its changes go to the registry log (registrylog.go).
	st := &statev1.CoordinatorState{Format: stateFormat, ModelName: c.cfg.ModelName, LastRound: c.engine.LastRound()}
	st.Removed = savedRemovals(c.removed)
	rs, ok := c.engine.State()
	if !ok {
		return st, nil
	}
	// With a tier, the round's updates are in its stream, which a leader that starts follows
	// from the first: the sum is left out (no longer megabytes written at every commit, and
	// copied to the tier by a Replica). The tasks' submissions stay, for read-only tools
	// (ReadStatus); restore does not count them.
	sum, inTier := c.engine.Sum(), c.intake != nil
	var raw []byte
	count := 0
	if !inTier {
		var err error
		if raw, err = sum.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("coordinator: encode the running sum: %w", err)
		}
		count = sum.Count()
	}
	r := &statev1.Round{
		Id: rs.Round, BaseVersion: rs.BaseVersion, Started: timestamppb.New(rs.Started), Deadline: timestamppb.New(rs.Deadline),
		Phase: statev1.Phase_PHASE_COLLECTING, Sum: raw, Count: uint32(count),
		SamplingRate: c.open.privacy.samplingRate, ExpectedParticipants: c.open.privacy.expected,
		Privacy: encodeRoundPrivacy(c.open.privacy), Kind: c.open.kind, Population: c.open.populationName(),
		Dimension: uint32(c.open.dim),
	}
	if plan, ok := c.engine.Plan(); ok {
		r.QuorumMin = uint32(plan.Quorum.Min)
	}
	if rs.Closed {
		r.Phase = statev1.Phase_PHASE_CLOSED
	}
	for _, t := range rs.Tasks {
		r.Tasks = append(r.Tasks, &statev1.Task{Device: t.Device, Nonce: t.Nonce, Submitted: t.Submitted})
	}
	st.Round = r
	return st, nil
}

// restore applies saved state to a new coordinator. A round saved while collecting resumes with
// exactly the acknowledged updates; a round saved after it closed is given up (giveUp), unless
// the store shows that it was released.
func (c *Coordinator) restore(st *statev1.CoordinatorState) error {
	if st.GetModelName() != c.cfg.ModelName {
		return fmt.Errorf("coordinator: state file belongs to model %q, configured is %q", st.GetModelName(), c.cfg.ModelName)
	}
	// The devices, including those of a state file from before the registry log, are restored
	// by openRegistry.
	for _, r := range st.GetRemoved() {
		c.removed[r.GetId()] = removal{at: r.GetAt().AsTime(), reason: r.GetReason()}
	}
	c.engine.SetLastRound(st.GetLastRound())
	r := st.GetRound()
	if r == nil {
		return nil
	}
	switch {
	case r.GetId() <= c.lastReleased():
		c.log.Info("saved round was released before the restart", "round", r.GetId(), "version", c.global.Meta.Version)
		return nil
	case r.GetPhase() == statev1.Phase_PHASE_CLOSED:
		c.giveUp(r)
		return nil
	case r.GetBaseVersion() != c.global.Meta.Version:
		return fmt.Errorf("coordinator: saved round %d trains version %d but the store's newest is %d", r.GetId(), r.GetBaseVersion(), c.global.Meta.Version)
	}
	saved := decodeRoundPrivacy(r)
	var pop *population
	if isPopulationKind(r.GetKind()) {
		name := r.GetPopulation()
		if name == "" && len(c.pops) > 0 {
			name = c.pops[0].cfg.ModelName // saved before rounds named their population
		}
		if pop = c.populationByName(name); pop != nil && r.GetKind() == statev1.RoundKind_ROUND_KIND_POPULATION_STATS && pop.stats == nil {
			return fmt.Errorf("%w: round %d: a statistics round of %q, whose reference the store does not hold", ErrRoundSettingsChanged, r.GetId(), name)
		}
	}
	configured := c.configuredPrivacy(r.GetKind(), pop, saved)
	if d := saved.diff(configured); d != "" {
		// Devices have already noised for the saved settings; charging the configured ones
		// would record a privacy loss the round did not have.
		return fmt.Errorf("%w: round %d: %s; restart with the round's settings to finish it", ErrRoundSettingsChanged, r.GetId(), d)
	}
	dim, plan := len(c.global.Params), round.Plan{}
	if pop != nil {
		dim, _, _ = pop.encoding(r.GetKind())
		plan = round.Plan{Expected: len(r.GetTasks()), Quorum: aggregation.Quorum{Min: int(r.GetQuorumMin())}}
	}
	var sum aggregation.Accumulator
	var err error
	switch {
	case len(r.GetSum()) > 0:
		sum, err = c.sealing.RestoreSum(dim, r.GetSum())
	case c.cfg.Cluster == nil:
		return fmt.Errorf("coordinator: round %d was collected through the tier, which holds its updates: start with the tier (--nats) to finish it", r.GetId())
	default:
		sum, err = c.newRoundSum(dim) // refilled from the round's stream
	}
	if err != nil {
		return fmt.Errorf("coordinator: round %d: %w", r.GetId(), err)
	}
	rs := round.State{Round: r.GetId(), BaseVersion: r.GetBaseVersion(), Started: r.GetStarted().AsTime(), Deadline: r.GetDeadline().AsTime(), Plan: plan}
	for _, t := range r.GetTasks() {
		// A round of the tier starts again from an empty sum: its submissions come back as
		// the leader follows the round's stream.
		submitted := t.GetSubmitted() && len(r.GetSum()) > 0
		rs.Tasks = append(rs.Tasks, round.TaskState{Device: t.GetDevice(), Nonce: t.GetNonce(), Submitted: submitted})
	}
	if err := c.engine.Restore(rs, sum); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	c.open = openRound{round: r.GetId(), privacy: saved, kind: r.GetKind(), population: pop, dim: dim}
	c.servable = r.GetId() // no one waits yet: New has not returned
	c.log.Info("resumed round", "round", r.GetId(), "updates", sum.Count(), "deadline", rs.Deadline.Format(time.RFC3339))
	return nil
}

// lastReleased is the round of the newest model the store holds, of the global model or a
// population's: the state names a round after it only while that round has not ended.
func (c *Coordinator) lastReleased() uint64 {
	last := c.global.Meta.Round
	for _, p := range c.pops {
		last = max(last, p.model.Meta.Round, p.reference.Meta.Round)
	}
	return last
}

// giveUp fails r, a round the state file says was closing when the coordinator stopped, and
// records it for the status, the log and Run's event. It is not finished: its sum may have been
// opened already, and a trustee decrypts a round once (a later request gets its share only if
// byte-identical to the first, whose commitments and active set were not kept), so finishing it
// would need other trustees to decrypt the same sum again; and the state does not say whether
// the round was closing to be released or had failed or been aborted. Whatever was charged for
// it stays charged; its acknowledged updates are discarded.
func (c *Coordinator) giveUp(r *statev1.Round) {
	submitted := 0
	for _, t := range r.GetTasks() {
		if t.GetSubmitted() {
			submitted++
		}
	}
	charged := false
	if c.ledger != nil {
		_, charged = c.ledger.Entry(r.GetId())
	}
	what := "nothing charged or released"
	if charged {
		what = "charged to the privacy ledger, nothing released"
	}
	now := c.cfg.Now()
	sum := roundSummary{
		Round: r.GetId(), Outcome: "failed", Selected: len(r.GetTasks()), Participants: submitted, Ended: now,
		Duration: now.Sub(r.GetStarted().AsTime()),
		Reason: fmt.Sprintf("the coordinator stopped while the round was closing; given up at the restart (its sum may have been opened already, and is never opened again): %s; its %d acknowledged updates are discarded",
			what, submitted),
	}
	c.log.Warn("round was closing when the coordinator stopped; it is given up", "round", sum.Round, "charged", charged,
		"updates_discarded", submitted, "reason", sum.Reason)
	c.abandoned = sum
	c.lastRound = sum
	// Saved before a crash that left the state file as it was, it is given up once more:
	// once in the status.
	c.recentRounds = slices.DeleteFunc(c.recentRounds, func(s roundSummary) bool { return s.Round == sum.Round })
	c.rememberRoundLocked(sum)
	c.dirty = true // the next commit writes the state without the round
}

// maxSavedRemovals bounds the removals the state file keeps for the status: every revoked or
// removed device would otherwise stay in it for good.
const maxSavedRemovals = 1000

// savedRemovals returns the newest maxSavedRemovals removals, sorted by device ID so that the
// state file is the same for the same registry.
func savedRemovals(removed map[string]removal) []*statev1.Removal {
	out := make([]*statev1.Removal, 0, len(removed))
	for id, r := range removed {
		out = append(out, &statev1.Removal{Id: id, At: timestamppb.New(r.at), Reason: r.reason})
	}
	if len(out) > maxSavedRemovals {
		sort.Slice(out, func(i, j int) bool { return out[i].GetAt().AsTime().After(out[j].GetAt().AsTime()) })
		out = out[:maxSavedRemovals]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetId() < out[j].GetId() })
	return out
}

func encodeRoundPrivacy(p roundPrivacy) *statev1.RoundPrivacy {
	return &statev1.RoundPrivacy{
		InsecureNoDp: p.insecureNoDP, NoiseMultiplier: p.noiseMultiplier, ClipNorm: p.clipNorm,
		MinParticipants: uint32(p.minParticipants), ToleratedDevices: uint32(p.toleratedDevices),
	}
}

func decodeRoundPrivacy(r *statev1.Round) roundPrivacy {
	p := r.GetPrivacy()
	return roundPrivacy{
		insecureNoDP: p.GetInsecureNoDp(), noiseMultiplier: p.GetNoiseMultiplier(), clipNorm: p.GetClipNorm(),
		minParticipants: int(p.GetMinParticipants()), toleratedDevices: int(p.GetToleratedDevices()),
		samplingRate: r.GetSamplingRate(), expected: r.GetExpectedParticipants(),
	}
}

// StateSummary is what a reviewer's tool reads from a coordinator's state directory.
type StateSummary struct {
	Model     string // the model the state belongs to
	Enrolled  int    // devices enrolled: the population N the sampling rate q = K/N is of
	LastRound uint64 // the highest round ever started
}

// ReadStateSummary reads the summary of the state saved in stateDir (Config.StateDir).
func ReadStateSummary(stateDir string) (StateSummary, error) {
	f := &stateFile{path: filepath.Join(stateDir, "coordinator.state")}
	st, err := f.load()
	if err != nil {
		return StateSummary{}, err
	}
	if st == nil {
		return StateSummary{}, fmt.Errorf("coordinator: no state in %s: %w", stateDir, fs.ErrNotExist)
	}
	devices, err := savedDevices(stateDir, st)
	if err != nil {
		return StateSummary{}, err
	}
	return StateSummary{Model: st.GetModelName(), Enrolled: len(devices), LastRound: st.GetLastRound()}, nil
}

// restoreDevice rebuilds a registry entry. The record was verified at enrolment and comes back
// from the coordinator's own state, so it is read (decodeRecordFields), not verified again: an
// expiry since then must not drop the device from a round it is in.
func restoreDevice(d *statev1.Device) (device, error) {
	dev := device{region: d.GetRegion(), enrolled: d.GetEnrolled().AsTime()}
	if len(d.GetRecord()) == 0 {
		return dev, nil
	}
	rec, err := decodeRecordFields(d.GetRecord())
	if err != nil || rec.DeviceID != d.GetId() {
		return device{}, fmt.Errorf("coordinator: state file: device %q: its record does not decode as its own (%v)", d.GetId(), err)
	}
	dev.record, dev.issued = d.GetRecord(), rec.Issued
	return dev, nil
}

// EnrolledDevices returns the IDs of the devices in the registry saved in stateDir
// (Config.StateDir), sorted.
func EnrolledDevices(stateDir string) ([]string, error) {
	f := &stateFile{path: filepath.Join(stateDir, "coordinator.state")}
	st, err := f.load()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("coordinator: no state in %s: %w", stateDir, fs.ErrNotExist)
	}
	devices, err := savedDevices(stateDir, st)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(devices))
	for _, d := range devices {
		ids = append(ids, d.GetId())
	}
	return ids, nil
}
