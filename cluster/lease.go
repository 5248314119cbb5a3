package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLeaseLost means another holder took the lease, or this one could not renew it in time:
// the holder must stop acting as leader at once.
var ErrLeaseLost = errors.New("cluster: the round leader's lease is lost")

const leasesBucket = "vigil_leases"

// Lease is the round leader's lease on a model's rounds: at most one coordinator leads them at
// a time. The servers expire it (a per-message TTL, so no clock but theirs decides), and its
// holder renews it with a compare-and-set on the revision it last wrote, so a holder that was
// replaced cannot renew it back.
type Lease struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	key    string
	holder string
	ttl    time.Duration

	mu  sync.Mutex
	rev uint64
	// renewed is when the last successful write was sent: the servers expire the lease no
	// earlier than ttl after it.
	renewed time.Time
}

// Valid returns nil while the lease is surely held: renewed less than half its TTL ago. A
// holder checks it before each write a successor must not see, so that one frozen past its
// lease (a pause, a partition) does not write when it wakes.
func (l *Lease) Valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		return fmt.Errorf("%w: not taken", ErrLeaseLost)
	}
	if since := time.Since(l.renewed); since > l.ttl/2 {
		return fmt.Errorf("%w: not renewed for %v", ErrLeaseLost, since.Round(time.Millisecond))
	}
	return nil
}

// Lease returns the lease of the tier's model for holder (a name for operators, such as
// host and PID), which the servers expire ttl after its last renewal.
func (t *Tier) Lease(ctx context.Context, holder string, ttl time.Duration) (*Lease, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("cluster: lease TTL %v is under a second", ttl)
	}
	var kv jetstream.KeyValue
	err := UntilAnswered(ctx, bucketAttempt, closeRetry, nil, func(ctx context.Context) (err error) {
		kv, err = t.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         leasesBucket,
			Description:    "Vigil's round leaders: which coordinator leads each model's rounds",
			Storage:        jetstream.FileStorage,
			Replicas:       t.replicas,
			LimitMarkerTTL: time.Minute,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", leasesBucket, err)
	}
	return &Lease{kv: kv, js: t.js, key: t.model, holder: holder, ttl: ttl}, nil
}

// Holder returns who holds the lease now, or "" if no one does.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	e, err := l.kv.Get(ctx, l.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: read the lease: %w", err)
	}
	return string(e.Value()), nil
}

// Acquire takes the lease, waiting, polling every poll, while someone else holds it or the
// servers do not answer (as while they elect leaders).
func (l *Lease) Acquire(ctx context.Context, poll time.Duration) error {
	for {
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, acquireAttempt)
		rev, err := l.kv.Create(actx, l.key, []byte(l.holder), jetstream.KeyTTL(l.ttl))
		cancel()
		if err == nil {
			l.mu.Lock()
			l.rev, l.renewed = rev, sent
			l.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !Temporary(err) {
			return fmt.Errorf("cluster: take the lease: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// acquireAttempt bounds one attempt to take the lease.
const acquireAttempt = 5 * time.Second

// Renew extends the lease by its TTL. It returns ErrLeaseLost if someone else holds it, or if
// half the TTL passed since the last renewal without one succeeding: past that point the
// servers may expire it at any moment.
func (l *Lease) Renew(ctx context.Context) error {
	if err := l.Valid(); err != nil {
		return err
	}
	l.mu.Lock()
	rev, renewed := l.rev, l.renewed
	l.mu.Unlock()
	sent := time.Now()
	ctx, cancel := context.WithDeadline(ctx, renewed.Add(l.ttl/2))
	defer cancel()
	// KeyValue.Update takes no TTL: this is its write, with one.
	ack, err := l.js.Publish(ctx, "$KV."+leasesBucket+"."+l.key, []byte(l.holder),
		jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(l.ttl))
	switch {
	case err == nil:
		l.mu.Lock()
		l.rev, l.renewed = ack.Sequence, sent
		l.mu.Unlock()
		return nil
	case wrongLastSequence(err):
		return fmt.Errorf("%w: another coordinator holds it", ErrLeaseLost)
	case time.Since(renewed) > l.ttl/2:
		return fmt.Errorf("%w: %v", ErrLeaseLost, err)
	}
	return fmt.Errorf("cluster: renew the lease: %w", err)
}

// Hold renews the lease every quarter of its TTL until ctx ends, and returns ErrLeaseLost
// when it is lost.
func (l *Lease) Hold(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := l.Renew(ctx); errors.Is(err, ErrLeaseLost) {
			return err
		}
	}
}

// Release gives the lease up, if this holder still holds it, so a standby takes over at once.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil && !wrongLastSequence(err) && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("cluster: release the lease: %w", err)
	}
	return nil
}
