package cluster

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

// Stream and bucket names. Each round is a stream of its own, so that closing it is sealing
// it: the stream refuses every later update atomically, in its replicated log.
const (
	roundsSubject = "vigil.rounds"
	devicesBucket = "vigil_devices"
)

// MaxUpdateBytes is the largest update message the tier stores; the servers' max_payload must
// allow it (StartEmbedded and the cluster configuration set 8 MiB).
const MaxUpdateBytes = 8 << 20

// followPoll is how long Follow waits for an update before it looks whether the round was
// sealed, at most every followRecheck (sooner when this Tier sealed it), and followStall how
// long its consumer may stay quiet while the stream's leader holds more.
const (
	followPoll    = 100 * time.Millisecond
	followRecheck = time.Second
	followStall   = 2 * time.Second
	// followAsk bounds one request to the stream's leader.
	followAsk = 2 * time.Second
)

// Config says how the tier's streams and bucket are created.
type Config struct {
	// Model names the coordinator whose rounds these are: several models share a cluster.
	Model string
	// Replicas is how many servers hold each message: 3 in a cluster, 1 embedded.
	Replicas int
	// Blobs, if not nil, keeps the bytes of the updates this Tier accepts, and the round's
	// stream only their hashes (see Blobs). Every process of the tier that reads updates
	// needs the same store; updates in the stream are read as before.
	Blobs Blobs
}

// Tier is one coordinator tier's view of JetStream: the rounds' plans, the updates they
// accepted, and the registry's device records.
//
// A round is a stream of its own. The leader creates it with the round's plan, frontends
// append updates, each under a subject of its own device with a compare-and-set on that
// subject (exactly once per round and device, across any number of frontends), and the
// leader closes the round by sealing the stream. The round's participants are exactly the
// updates stored before the seal, and a frontend acknowledges an update only once the stream
// stored it, which a sealed stream no longer does.
type Tier struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	devices  jetstream.KeyValue
	prefix   string
	model    string // hex-encoded, for the bucket's keys
	stream   string // prefix of the rounds' stream names
	replicas int
	blobs    Blobs

	// The round Fetch last read from, and its stream.
	fetchMu     sync.Mutex
	fetchRound  uint64
	fetchStream jetstream.Stream

	// Closed when Close has sealed the round, for its followers in this process.
	sealMu sync.Mutex
	sealed map[uint64]chan struct{}
}

// sealedHere returns a channel closed once this Tier has sealed round.
func (t *Tier) sealedHere(round uint64) chan struct{} {
	t.sealMu.Lock()
	defer t.sealMu.Unlock()
	if t.sealed == nil {
		t.sealed = map[uint64]chan struct{}{}
	}
	ch, ok := t.sealed[round]
	if !ok {
		for r := range t.sealed {
			if r < round {
				delete(t.sealed, r)
			}
		}
		ch = make(chan struct{})
		t.sealed[round] = ch
	}
	return ch
}

// Open creates or updates the tier's bucket on the servers nc is connected to. Like Close, it
// tries again a request the servers leave unanswered, which they do now and then while routes
// between them are still forming (in CI a creation waited for its caller's two minutes).
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
	var devices jetstream.KeyValue
	err = UntilAnswered(ctx, bucketAttempt, closeRetry, nil, func(ctx context.Context) (err error) {
		devices, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      devicesBucket,
			Description: "Vigil's device registry: each enrolled device's signed record",
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", devicesBucket, err)
	}
	model := hex.EncodeToString([]byte(cfg.Model))
	return &Tier{nc: nc, js: js, devices: devices, prefix: roundsSubject + "." + token(cfg.Model), model: model,
		stream: "VIGIL_ROUND_" + model + "_", replicas: cfg.Replicas, blobs: cfg.Blobs}, nil
}

// token makes s one subject token. IDs may hold '.', the subjects' separator; those are
// hex-encoded behind a '~', which no ID holds, so two IDs never share a token.
func token(s string) string {
	if !strings.ContainsAny(s, ".*> \t\r\n") && !strings.HasPrefix(s, "~") {
		return s
	}
	return "~" + hex.EncodeToString([]byte(s))
}

// StreamName is the name of the JetStream stream that holds the round, for operators.
func (t *Tier) StreamName(round uint64) string { return t.stream + strconv.FormatUint(round, 10) }

func (t *Tier) roundSubject(round uint64) string {
	return t.prefix + "." + strconv.FormatUint(round, 10)
}
func (t *Tier) planSubject(round uint64) string { return t.roundSubject(round) + ".plan" }
func (t *Tier) updateSubject(round uint64, device string) string {
	return t.roundSubject(round) + ".update." + token(device)
}

// PublishPlan creates the round's stream and stores its plan, once: publishing it again with
// the same bytes (a leader that restarted) succeeds, with other bytes fails.
func (t *Tier) PublishPlan(ctx context.Context, round uint64, plan []byte) error {
	_, err := t.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        t.StreamName(round),
		Description: "one of Vigil's federated rounds: its plan and the updates it accepted",
		Subjects:    []string{t.roundSubject(round) + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    t.replicas,
		MaxMsgSize:  MaxUpdateBytes,
		Discard:     jetstream.DiscardNew,
		// A direct get answers with the message as stored rather than base64 in JSON, which
		// costs a leader reading a 3.4 MB update several times as much (Fetch). Any replica
		// answers it, possibly one that lags, so only a stream of one replica allows it.
		AllowDirect: t.replicas == 1,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("cluster: create round %d's stream: %w", round, err)
	}
	_, err = t.js.Publish(ctx, t.planSubject(round), plan, jetstream.WithExpectLastSequencePerSubject(0))
	if err == nil {
		return nil
	}
	// A leader resuming a round its predecessor sealed finds the plan there and the stream
	// sealed: it goes on to close the round on what the stream holds.
	var apiErr *jetstream.APIError
	if !wrongLastSequence(err) && !(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstreamSealed) {
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
	s, err := t.js.Stream(ctx, t.StreamName(round))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: round %d", ErrNoPlan, round)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: read round %d's plan: %w", round, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, t.planSubject(round))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: round %d", ErrNoPlan, round)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: read round %d's plan: %w", round, err)
	}
	return m.Data, nil
}

// Stamp is what the writer of an update says of it, carried in the message's headers.
type Stamp struct {
	// Record is the device record the update's signature was checked against.
	Record []byte
	// Acceptor names the frontend keeping the update in its part (AskPart), and Fingerprint
	// is then the update's replay fingerprint: the leader, which follows only the headers of
	// such updates, checks it against the round's others.
	Acceptor    string
	Fingerprint []byte
}

// Accept stores the device's update for the round, at most once per round and device, and
// returns only when the update is stored (on a majority of the replicas) and so inside the
// round: ErrDuplicate if the round already holds the device's update, ErrClosed if the leader
// closed the round first. Any other error leaves it unknown whether the update was stored;
// sending it again is safe and answers ErrDuplicate if it was. stamp goes with the update
// (Update.Record, Update.Acceptor, Update.Fingerprint).
func (t *Tier) Accept(ctx context.Context, round uint64, device string, update []byte, stamp Stamp) (seq uint64, err error) {
	if stamp.Acceptor != "" && (!ValidAcceptor(stamp.Acceptor) || len(stamp.Fingerprint) != 32) {
		return 0, fmt.Errorf("cluster: store device %q's update: frontend name %q or fingerprint of %d bytes", device, stamp.Acceptor, len(stamp.Fingerprint))
	}
	msg := &nats.Msg{Subject: t.updateSubject(round, device), Data: update, Header: nats.Header{}}
	if stamp.Record != nil {
		msg.Header.Set(hdrRecord, base64.StdEncoding.EncodeToString(stamp.Record))
	}
	if stamp.Acceptor != "" {
		msg.Header.Set(hdrAcceptor, stamp.Acceptor)
		msg.Header.Set(hdrFingerprint, hex.EncodeToString(stamp.Fingerprint))
	}
	if t.blobs != nil {
		// The bytes first: once the stream names them, the round holds the update.
		name, perr := t.putBlob(ctx, round, device, update)
		if perr != nil {
			return 0, fmt.Errorf("cluster: store device %q's update for round %d: %w", device, round, perr)
		}
		msg.Header.Set(hdrBlob, name)
		msg.Data = nil
		defer func() {
			// An update the round will never hold leaves nothing behind, also when the round
			// was forgotten (its objects deleted) before this one was stored. The object is
			// the device's alone (blobKey), and a record of the device naming these bytes
			// would have made this a duplicate.
			if errors.Is(err, ErrClosed) {
				t.dropBlob(ctx, round, device, name)
			}
		}()
	}
	if len(msg.Header) == 0 {
		msg.Header = nil
	}
	// The per-subject compare-and-set makes the update the first and only one on its subject.
	ack, err := t.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(0))
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return ack.Sequence, nil
	case wrongLastSequence(err):
		// The round's update of the device is another, or this one: only the first leaves
		// an object behind that no record names.
		if name := msg.Header.Get(hdrBlob); name != "" {
			if m, serr := t.storedMsg(ctx, round, device); serr == nil && m != nil && m.Header.Get(hdrBlob) != name {
				t.dropBlob(ctx, round, device, name)
			}
		}
		return 0, fmt.Errorf("%w: device %q, round %d", ErrDuplicate, device, round)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstreamSealed:
		// A device sending again after the round closed with its update in hears that it is.
		seq, ok, serr := t.Stored(ctx, round, device)
		switch {
		case ok:
			return 0, fmt.Errorf("%w: device %q, round %d (stored at %d before the round closed)", ErrDuplicate, device, round, seq)
		case serr != nil:
			// Not ErrClosed: the round may hold this very update (and the object Accept
			// would then delete is the stored update's). The device sends it again.
			return 0, fmt.Errorf("cluster: store device %q's update for round %d: the round is closed, and whether it holds the update is unknown: %w", device, round, serr)
		}
		return 0, fmt.Errorf("%w: round %d was closed before device %q's update was stored", ErrClosed, round, device)
	case errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders):
		// No stream, or one whose servers are electing its leader (one of them just died):
		// only the first is the round's end.
		if _, serr := t.js.Stream(ctx, t.StreamName(round)); errors.Is(serr, jetstream.ErrStreamNotFound) {
			return 0, fmt.Errorf("%w: round %d is not open in the tier", ErrClosed, round)
		}
		return 0, fmt.Errorf("cluster: store device %q's update for round %d: the round's stream does not answer yet: %w", device, round, err)
	}
	return 0, fmt.Errorf("cluster: store device %q's update for round %d: %w", device, round, err)
}

// Stored reports whether round's stream holds device's update, and where: for a device that
// sends again after the round's deadline or close, which is told that its update is in.
func (t *Tier) Stored(ctx context.Context, round uint64, device string) (seq uint64, ok bool, err error) {
	m, err := t.storedMsg(ctx, round, device)
	if err != nil || m == nil {
		return 0, false, err
	}
	return m.Sequence, true, nil
}

// storedMsg returns the message of device's update in round's stream, nil if it holds none.
func (t *Tier) storedMsg(ctx context.Context, round uint64, device string) (*jetstream.RawStreamMsg, error) {
	s, err := t.js.Stream(ctx, t.StreamName(round))
	if err != nil {
		return nil, fmt.Errorf("cluster: round %d: %w", round, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, t.updateSubject(round, device))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("cluster: round %d, device %q: %w", round, device, err)
	}
	return m, nil
}

// jetstreamSealed is the server's error code for a write to a sealed stream.
const jetstreamSealed jetstream.ErrorCode = 10109

// Close freezes the round's participant set by sealing its stream, and returns the sequence
// of the last message in it. Closing a closed round changes nothing.
//
// A JetStream API request sent while the servers elect a leader (one of them just died) can go
// unanswered: each attempt is bounded by closeAttempt and tried again until ctx ends, which is
// safe since sealing is idempotent.
func (t *Tier) Close(ctx context.Context, round uint64) (seq uint64, err error) {
	err = UntilAnswered(ctx, closeAttempt, closeRetry, nil, func(ctx context.Context) (err error) {
		seq, err = t.close(ctx, round)
		return err
	})
	if err == nil {
		ch := t.sealedHere(round)
		t.sealMu.Lock()
		select {
		case <-ch:
		default:
			close(ch)
		}
		t.sealMu.Unlock()
	}
	return seq, err
}

// UntilAnswered calls fn until it succeeds, fails for another reason than the servers not
// answering (Temporary), or ctx ends, each attempt within attempt and pause apart, and tells
// waiting, if not nil, of each failure it tries again after. It returns fn's last error.
func UntilAnswered(ctx context.Context, attempt, pause time.Duration, waiting func(error), fn func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !Temporary(err) {
			return err
		}
		if waiting != nil {
			waiting(err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// closeAttempt bounds one attempt to seal a round's stream, and closeRetry is the pause
// between attempts.
const (
	closeAttempt = 10 * time.Second
	closeRetry   = 250 * time.Millisecond
)

// bucketAttempt bounds one attempt to create or update a bucket: a replicated one is created
// once its servers have elected the bucket's leader, which takes a few seconds after a death.
const bucketAttempt = 10 * time.Second

func (t *Tier) close(ctx context.Context, round uint64) (uint64, error) {
	s, err := t.js.Stream(ctx, t.StreamName(round))
	if err != nil {
		return 0, fmt.Errorf("cluster: close round %d: %w", round, err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.Sealed {
		cfg.Sealed = true
		if s, err = t.js.UpdateStream(ctx, cfg); err != nil {
			return 0, fmt.Errorf("cluster: close round %d: %w", round, err)
		}
	}
	return s.CachedInfo().State.LastSeq, nil
}

// Update is an update a round accepted, as Follow delivers it.
type Update struct {
	Device string
	// Seq is the update's position in the round's stream; Stored is when it was stored.
	Seq    uint64
	Stored time.Time
	Data   []byte
	// Record is the device record the update's signature was checked against when it was
	// stored, if the writer gave it: the device may have enrolled again since.
	Record []byte
	// Acceptor is the frontend that keeps the update in its part, if it said, and Fingerprint
	// the update's replay fingerprint it gave.
	Acceptor    string
	Fingerprint []byte
}

// The headers of an update's message: its device record (base64), the frontend keeping it,
// and its fingerprint (hex).
const (
	hdrRecord      = "Vigil-Record"
	hdrAcceptor    = "Vigil-Acceptor"
	hdrFingerprint = "Vigil-Fingerprint"
)

// updateOf is the update a message of the round's stream holds.
func updateOf(device string, seq uint64, stored time.Time, data []byte, h nats.Header) Update {
	fp, _ := hex.DecodeString(h.Get(hdrFingerprint))
	return Update{Device: device, Seq: seq, Stored: stored, Data: data, Record: recordOf(h), Acceptor: h.Get(hdrAcceptor), Fingerprint: fp}
}

// recordOf returns the record in h, nil if it holds none (Update.Record).
func recordOf(h nats.Header) []byte {
	v := h.Get(hdrRecord)
	if v == "" {
		return nil
	}
	r, _ := base64.StdEncoding.DecodeString(v)
	return r
}

// Follow calls fn with each update of the round, in the order the stream stored them,
// starting with the first, and returns nil once the round is closed and every update in it
// delivered. It waits for updates and for the close until ctx ends. An error from fn stops it
// and is returned.
//
// Updates come from a consumer, which may live on a replica that lags the stream's leader
// (for tens of seconds after a server restarts or freezes): when it has been quiet for
// followStall while the leader holds more, or the round is sealed, the rest is read from the
// leader.
func (t *Tier) Follow(ctx context.Context, round uint64, fn func(Update) error) error {
	return t.follow(ctx, round, false, fn)
}

// FollowHeaders is Follow delivering updates without their Data: a leader whose frontends keep
// partial sums needs only to know which updates the round holds, and where (Fetch reads one
// whole).
func (t *Tier) FollowHeaders(ctx context.Context, round uint64, fn func(Update) error) error {
	return t.follow(ctx, round, true, fn)
}

// Fetch returns the round's update stored at seq, whole.
func (t *Tier) Fetch(ctx context.Context, round, seq uint64) (Update, error) {
	var (
		out Update
		hdr nats.Header
	)
	err := UntilAnswered(ctx, followAsk, followPoll, nil, func(actx context.Context) error {
		s, err := t.roundStream(actx, round)
		if err != nil {
			return err
		}
		return t.readMsgs(actx, s, round, seq, seq, false, func(u Update, h nats.Header) error { out, hdr = u, h; return nil })
	})
	if err == nil && out.Seq != seq {
		err = fmt.Errorf("cluster: round %d holds no update at %d", round, seq)
	}
	if err == nil {
		// Not within followAsk, the bound of one request to the stream's leader: a 3.4 MB
		// read from the object store can take longer, and would be cut short every time.
		out, err = t.withBlob(ctx, round, out, hdr)
	}
	if err != nil {
		return Update{}, fmt.Errorf("cluster: fetch update %d of round %d: %w", seq, round, err)
	}
	return out, nil
}

// roundStream returns the round's stream, asking the servers for it once per round: Fetch is
// called for every update the leader reads.
func (t *Tier) roundStream(ctx context.Context, round uint64) (jetstream.Stream, error) {
	t.fetchMu.Lock()
	s := t.fetchStream
	if t.fetchRound != round {
		s = nil
	}
	t.fetchMu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := t.js.Stream(ctx, t.StreamName(round))
	if err != nil {
		return nil, err
	}
	t.fetchMu.Lock()
	t.fetchRound, t.fetchStream = round, s
	t.fetchMu.Unlock()
	return s, nil
}

func (t *Tier) follow(ctx context.Context, round uint64, headersOnly bool, fn func(Update) error) error {
	// Each request to the stream's leader is bounded by followAsk and tried again: one sent
	// while the servers elect a leader can go unanswered, and would hold the reader for as
	// long as ctx allows.
	var s jetstream.Stream
	err := UntilAnswered(ctx, followAsk, followPoll, nil, func(ctx context.Context) (err error) {
		s, err = t.js.Stream(ctx, t.StreamName(round))
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: follow round %d: %w", round, err)
	}
	prefix := t.roundSubject(round) + ".update."
	// Creating the consumer and reading it block well past any wait while the servers elect
	// a leader, or after the consumer's server went away (nats.go tries for 10 s at a time),
	// so that runs on a goroutine of its own and the clock also says when it is quiet.
	type next struct {
		m   jetstream.Msg
		err error
	}
	nexts, done := make(chan next), make(chan struct{})
	defer close(done)
	go func() {
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{prefix + "*"}, HeadersOnly: headersOnly})
		var it jetstream.MessagesContext
		if err == nil {
			// Four 3.4 MB updates in flight: a server drops a client with more than 64 MiB
			// pending to it as a slow consumer.
			it, err = cons.Messages(jetstream.PullMaxMessages(4))
		}
		if err != nil {
			select {
			case nexts <- next{err: err}:
			case <-done:
			}
			return
		}
		defer it.Stop()
		for {
			m, err := it.Next(jetstream.NextMaxWait(followPoll))
			select {
			case nexts <- next{m, err}:
			case <-done:
				return
			}
			if err != nil && !timedOut(err) {
				return
			}
		}
	}()
	quiet := time.NewTimer(followStall)
	defer quiet.Stop()
	var (
		read   uint64 // the stream sequence up to which updates were delivered
		active = time.Now()
		asked  time.Time // when the stream's leader was last asked whether it was sealed
		sealed = t.sealedHere(round)
	)
	catchUp := func(last uint64) error {
		if err := t.readStored(ctx, s, round, read+1, last, headersOnly, fn); err != nil {
			return err
		}
		read, active = last, time.Now()
		return nil
	}
	for {
		var n next
		select {
		case n = <-nexts:
		case <-quiet.C:
			n.err = nats.ErrTimeout
		case <-sealed:
			sealed, asked, n.err = nil, time.Time{}, nats.ErrTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
		quiet.Reset(followStall)
		m, err := n.m, n.err
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case timedOut(err):
			// Asked at most every followRecheck: at every quiet followPoll, the requests
			// were a tenth of a round leader's CPU.
			if time.Since(asked) < followRecheck {
				continue
			}
			asked = time.Now()
			// Both are asked of the stream's leader: the consumer's own count will not do,
			// as it counts nothing pending on a replica still catching up.
			actx, cancel := context.WithTimeout(ctx, followAsk)
			info, err := s.Info(actx)
			cancel()
			if err != nil && Temporary(err) && ctx.Err() == nil {
				continue
			}
			if err != nil {
				return fmt.Errorf("cluster: follow round %d: %w", round, err)
			}
			if !info.Config.Sealed {
				if stored := info.State.LastSeq; stored > read && time.Since(active) > followStall {
					if err := catchUp(stored); err != nil {
						return err
					}
				}
				continue
			}
			var last *jetstream.RawStreamMsg
			err = UntilAnswered(ctx, followAsk, followPoll, nil, func(ctx context.Context) (err error) {
				last, err = s.GetLastMsgForSubject(ctx, prefix+"*")
				return err
			})
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				return nil // a round without updates
			case err != nil:
				return fmt.Errorf("cluster: follow round %d: %w", round, err)
			case last.Sequence <= read:
				return nil
			}
			// The round is sealed, so what follows is fixed.
			return catchUp(last.Sequence)
		case err != nil:
			return fmt.Errorf("cluster: follow round %d: %w", round, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("cluster: follow round %d: %w", round, err)
		}
		if meta.Sequence.Stream <= read {
			continue // read from the leader already
		}
		device, err := untoken(strings.TrimPrefix(m.Subject(), prefix))
		if err != nil {
			return fmt.Errorf("cluster: follow round %d: subject %q: %w", round, m.Subject(), err)
		}
		read, active = meta.Sequence.Stream, time.Now()
		u := updateOf(device, read, meta.Timestamp, m.Data(), m.Headers())
		if !headersOnly {
			if u, err = t.withBlob(ctx, round, u, m.Headers()); err != nil {
				return err
			}
		}
		if err := fn(u); err != nil {
			return err
		}
	}
}

// timedOut reports whether err is a wait that ended without an answer.
func timedOut(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// readStored calls fn with each update stored at sequences from to last of the round's stream
// s, asking the stream's leader for each; without their Data if headersOnly.
func (t *Tier) readStored(ctx context.Context, s jetstream.Stream, round, from, last uint64, headersOnly bool, fn func(Update) error) error {
	return t.readMsgs(ctx, s, round, from, last, headersOnly, func(u Update, h nats.Header) (err error) {
		if !headersOnly {
			if u, err = t.withBlob(ctx, round, u, h); err != nil {
				return err
			}
		}
		return fn(u)
	})
}

// readMsgs is readStored giving fn each message's headers, and its Data as the stream holds it.
func (t *Tier) readMsgs(ctx context.Context, s jetstream.Stream, round, from, last uint64, headersOnly bool, fn func(Update, nats.Header) error) error {
	prefix := t.roundSubject(round) + ".update."
	for seq := from; seq <= last; seq++ {
		var m *jetstream.RawStreamMsg
		err := UntilAnswered(ctx, followAsk, followPoll, nil, func(ctx context.Context) (err error) {
			m, err = s.GetMsg(ctx, seq)
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cluster: read update %d: %w", seq, err)
		}
		if !strings.HasPrefix(m.Subject, prefix) {
			continue
		}
		device, err := untoken(strings.TrimPrefix(m.Subject, prefix))
		if err != nil {
			return fmt.Errorf("cluster: read update %d: subject %q: %w", seq, m.Subject, err)
		}
		u := updateOf(device, m.Sequence, m.Time, nil, m.Header)
		if !headersOnly {
			u.Data = m.Data
		}
		if err := fn(u, m.Header); err != nil {
			return err
		}
	}
	return nil
}

func untoken(s string) (string, error) {
	if !strings.HasPrefix(s, "~") {
		return s, nil
	}
	b, err := hex.DecodeString(s[1:])
	return string(b), err
}

// Forget deletes the round's stream, once it is released or given up, and then its updates in
// the object store.
func (t *Tier) Forget(ctx context.Context, round uint64) error {
	if err := t.js.DeleteStream(ctx, t.StreamName(round)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("cluster: forget round %d: %w", round, err)
	}
	if t.blobs != nil {
		return t.forgetBlobs(ctx, round)
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

// Device returns the device's record. Each request is bounded and tried again while the
// servers do not answer: one sent to a server that hung is never answered, and the connection
// moves to another only when its pings go unanswered.
func (t *Tier) Device(ctx context.Context, id string) ([]byte, error) {
	var e jetstream.KeyValueEntry
	err := UntilAnswered(ctx, followAsk, followPoll, nil, func(ctx context.Context) (err error) {
		e, err = t.devices.Get(ctx, t.deviceKey(id))
		return err
	})
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

// Temporary reports whether err is what a JetStream request gets while the servers elect a
// leader, while the one it went to cannot answer, or while too few of them are up for the
// replicas asked: the same request may succeed later.
func Temporary(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstreamUnavailable || apiErr.ErrorCode == jetstreamNoPeers)
}

// The servers' error codes for "JetStream system temporarily unavailable", as while they have
// no meta leader, and for "no suitable peers for placement", as while a server that came back
// is still counted offline.
const (
	jetstreamUnavailable jetstream.ErrorCode = 10008
	jetstreamNoPeers     jetstream.ErrorCode = 10005
)

// wrongLastSequence reports whether err is a compare-and-set conflict; replicated streams
// report it with a code of their own.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
