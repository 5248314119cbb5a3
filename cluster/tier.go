package cluster

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors callers branch on.
var (
	// ErrDuplicate means the round has already accepted an update from the device.
	ErrDuplicate = errors.New("cluster: the round already holds an update from this device")
	// ErrClosed means the round leader froze the round's participant set before the update
	// was stored: the update is not in the round.
	ErrClosed = errors.New("cluster: the round is closed")
	// ErrNoPlan means no plan was published for the round.
	ErrNoPlan = errors.New("cluster: no plan for this round")
	// ErrNoDevice means the registry holds no record of the device.
	ErrNoDevice = errors.New("cluster: no such device")
)

// Stream and bucket names. One stream holds every coordinator's rounds, each under its model's
// subjects.
const (
	roundsStream  = "VIGIL_ROUNDS"
	roundsSubject = "vigil.rounds"
	devicesBucket = "vigil_devices"
)

// MaxUpdateBytes is the largest update message the tier stores; the servers' max_payload must
// allow it (StartEmbedded and the cluster configuration set 8 MiB).
const MaxUpdateBytes = 8 << 20

// Config says how the tier's stream and bucket are created.
type Config struct {
	// Model names the coordinator whose rounds these are: several models share a cluster.
	Model string
	// Replicas is how many servers hold each message: 3 in a cluster, 1 embedded.
	Replicas int
	// MaxBytes bounds the stream (0: unlimited); old rounds are purged by Forget.
	MaxBytes int64
}

// Tier is one coordinator tier's view of JetStream: the rounds' plans, the updates they
// accepted, their close markers, and the registry's device records.
//
// A round is one subject tree. The leader publishes the plan, frontends append updates,
// each under a subject of its own device, with a compare-and-set on that subject
// (exactly once per round and device, across any number of frontends), and the leader
// closes the round by appending a marker. The stream orders all of them: the round's
// participants are exactly the updates stored before its marker, and a frontend
// acknowledges an update only after seeing that it was.
type Tier struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	devices jetstream.KeyValue
	prefix  string
	model   string // hex-encoded, for the bucket's keys
}

// Open creates or updates the tier's stream and bucket on the servers nc is connected to.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Tier, error) {
	if cfg.Model == "" {
		return nil, errors.New("cluster: no model name")
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	maxBytes := cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        roundsStream,
		Description: "Vigil's federated rounds: plans, accepted updates and close markers",
		Subjects:    []string{roundsSubject + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxBytes:    maxBytes,
		MaxMsgSize:  MaxUpdateBytes,
		// A full stream refuses new updates rather than dropping accepted ones.
		Discard:    jetstream.DiscardNew,
		Duplicates: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: stream %s: %w", roundsStream, err)
	}
	devices, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      devicesBucket,
		Description: "Vigil's device registry: each enrolled device's signed record",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", devicesBucket, err)
	}
	return &Tier{js: js, stream: stream, devices: devices, prefix: roundsSubject + "." + token(cfg.Model), model: hex.EncodeToString([]byte(cfg.Model))}, nil
}

// token makes s one subject token. IDs may hold '.', the subjects' separator; those are
// hex-encoded behind a '~', which no ID holds, so two IDs never share a token.
func token(s string) string {
	if !strings.ContainsAny(s, ".*> \t\r\n") && !strings.HasPrefix(s, "~") {
		return s
	}
	return "~" + hex.EncodeToString([]byte(s))
}

func (t *Tier) roundSubject(round uint64) string {
	return t.prefix + "." + strconv.FormatUint(round, 10)
}
func (t *Tier) planSubject(round uint64) string   { return t.roundSubject(round) + ".plan" }
func (t *Tier) closedSubject(round uint64) string { return t.roundSubject(round) + ".closed" }
func (t *Tier) updateSubject(round uint64, device string) string {
	return t.roundSubject(round) + ".update." + token(device)
}

// PublishPlan stores the round's plan, once: publishing it again with the same bytes (a
// leader that restarted) succeeds, with other bytes fails.
func (t *Tier) PublishPlan(ctx context.Context, round uint64, plan []byte) error {
	subj := t.planSubject(round)
	_, err := t.js.Publish(ctx, subj, plan, jetstream.WithExpectLastSequencePerSubject(0))
	if err == nil {
		return nil
	}
	if !wrongLastSequence(err) {
		return fmt.Errorf("cluster: publish round %d's plan: %w", round, err)
	}
	have, gerr := t.Plan(ctx, round)
	if gerr != nil {
		return gerr
	}
	if string(have) != string(plan) {
		return fmt.Errorf("cluster: round %d already has another plan", round)
	}
	return nil
}

// Plan returns the round's plan.
func (t *Tier) Plan(ctx context.Context, round uint64) ([]byte, error) {
	m, err := t.stream.GetLastMsgForSubject(ctx, t.planSubject(round))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: round %d", ErrNoPlan, round)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: read round %d's plan: %w", round, err)
	}
	return m.Data, nil
}

// Accept stores the device's update for the round, at most once per round and device, and
// returns only when the update is stored (on a majority of the replicas) and inside the round:
// ErrDuplicate if the round already holds the device's update, ErrClosed if the leader closed
// the round first. Any other error leaves it unknown whether the update was stored; sending it
// again is safe and answers ErrDuplicate if it was.
func (t *Tier) Accept(ctx context.Context, round uint64, device string, update []byte) (seq uint64, err error) {
	// The per-subject compare-and-set makes the update the first and only one on its subject.
	ack, err := t.js.Publish(ctx, t.updateSubject(round, device), update, jetstream.WithExpectLastSequencePerSubject(0))
	if wrongLastSequence(err) {
		return 0, fmt.Errorf("%w: device %q, round %d", ErrDuplicate, device, round)
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: store device %q's update for round %d: %w", device, round, err)
	}
	// Read after the write was acknowledged: a marker stored before the update has a lower
	// sequence and is visible now; one stored later counts the update in.
	closedAt, err := t.closedAt(ctx, round)
	if err != nil {
		return 0, err
	}
	if closedAt != 0 && closedAt < ack.Sequence {
		return 0, fmt.Errorf("%w: round %d was closed before device %q's update was stored", ErrClosed, round, device)
	}
	return ack.Sequence, nil
}

// closedAt returns the sequence of the round's close marker, or 0 while it is open.
func (t *Tier) closedAt(ctx context.Context, round uint64) (uint64, error) {
	m, err := t.stream.GetLastMsgForSubject(ctx, t.closedSubject(round))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: read whether round %d is closed: %w", round, err)
	}
	return m.Sequence, nil
}

// Close freezes the round's participant set: updates stored before the marker it appends are
// in the round, later ones are refused. Closing a closed round returns the first marker's
// sequence.
func (t *Tier) Close(ctx context.Context, round uint64) (uint64, error) {
	ack, err := t.js.Publish(ctx, t.closedSubject(round), nil, jetstream.WithExpectLastSequencePerSubject(0))
	if wrongLastSequence(err) {
		return t.closedAt(ctx, round)
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: close round %d: %w", round, err)
	}
	return ack.Sequence, nil
}

// Update is an update a round accepted, as Follow delivers it.
type Update struct {
	Device string
	// Seq is the update's position in the stream; Stored is when the stream stored it.
	Seq    uint64
	Stored time.Time
	Data   []byte
}

// Follow calls fn with each update of the round, in the order the stream stored them,
// starting with the first, and returns nil once it has delivered every update stored before
// the round's close marker. It waits for updates and for the marker until ctx ends. An error
// from fn stops it and is returned.
func (t *Tier) Follow(ctx context.Context, round uint64, fn func(Update) error) error {
	prefix := t.roundSubject(round) + ".update."
	cons, err := t.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + "*", t.closedSubject(round)},
	})
	if err != nil {
		return fmt.Errorf("cluster: follow round %d: %w", round, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(16))
	if err != nil {
		return fmt.Errorf("cluster: follow round %d: %w", round, err)
	}
	defer it.Stop()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cluster: follow round %d: %w", round, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("cluster: follow round %d: %w", round, err)
		}
		subj := m.Subject()
		if subj == t.closedSubject(round) {
			return nil
		}
		device, err := untoken(strings.TrimPrefix(subj, prefix))
		if err != nil {
			return fmt.Errorf("cluster: follow round %d: subject %q: %w", round, subj, err)
		}
		if err := fn(Update{Device: device, Seq: meta.Sequence.Stream, Stored: meta.Timestamp, Data: m.Data()}); err != nil {
			return err
		}
	}
}

func untoken(s string) (string, error) {
	if !strings.HasPrefix(s, "~") {
		return s, nil
	}
	b, err := hex.DecodeString(s[1:])
	return string(b), err
}

// Forget deletes everything stored for the round, once it is released or given up.
func (t *Tier) Forget(ctx context.Context, round uint64) error {
	if err := t.stream.Purge(ctx, jetstream.WithPurgeSubject(t.roundSubject(round)+".>")); err != nil {
		return fmt.Errorf("cluster: forget round %d: %w", round, err)
	}
	return nil
}

// PutDevice stores the device's record, which frontends check its updates' signatures with.
func (t *Tier) PutDevice(ctx context.Context, id string, record []byte) error {
	if _, err := t.devices.Put(ctx, t.deviceKey(id), record); err != nil {
		return fmt.Errorf("cluster: store device %q: %w", id, err)
	}
	return nil
}

// Device returns the device's record.
func (t *Tier) Device(ctx context.Context, id string) ([]byte, error) {
	e, err := t.devices.Get(ctx, t.deviceKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNoDevice, id)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: read device %q: %w", id, err)
	}
	return e.Value(), nil
}

// DeleteDevice removes the device's record: its updates are refused from then on.
func (t *Tier) DeleteDevice(ctx context.Context, id string) error {
	if err := t.devices.Delete(ctx, t.deviceKey(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: delete device %q: %w", id, err)
	}
	return nil
}

// deviceKey is the device's key in the bucket: KV keys allow neither '~' nor every ID, so both
// the model and the device are hex-encoded.
func (t *Tier) deviceKey(id string) string {
	return t.model + "." + hex.EncodeToString([]byte(id))
}

// wrongLastSequence reports whether err is a compare-and-set conflict; replicated streams
// report it with a code of their own.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
