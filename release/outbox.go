package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
)

// OutboxConfig configures an Outbox. Zero durations take the documented defaults.
type OutboxConfig struct {
	// Dir holds the queued releases and each region's progress; it is created if missing. One
	// Outbox, in one process, owns a directory.
	Dir string
	// Model is the one model the outbox releases; Submit refuses any other.
	Model string
	// Regions are the stores to publish to, one per region, with unique names.
	Regions []Region
	// Publisher writes to the stores. The default makes one attempt per call: the outbox does
	// the retrying, forever, with its own backoff.
	Publisher *Publisher
	// ReleaseKey signs manifests and TimestampKey signs the pointers. Both are required.
	ReleaseKey, TimestampKey Signer
	// Root is the encoded envelope of the current root of trust. What the regions already hold
	// is verified against it (see PublisherConfig.Root), so that a forged pointer cannot freeze
	// a region while the outbox reports success. Without it, the outbox trusts only what its own
	// release and timestamp keys signed, if they can say their public keys (*sig.PrivateKey
	// can).
	Root []byte
	// Expiry is how long a manifest is valid (default 365 days). A device refuses to install an
	// expired manifest and reports one it runs (ErrStale), so a model left unchanged for longer
	// needs a new version.
	Expiry time.Duration
	// LatestExpiry is how long a pointer is valid (default 6h, at most MaxPointerLifetime, which
	// devices enforce); every RefreshEvery (default a third of it) each region gets a freshly
	// signed pointer, so that devices never see the pointer expire while the coordinator is up
	// and the region reachable.
	LatestExpiry, RefreshEvery time.Duration
	// InitialBackoff is the wait after a region's first failure (default 1s); it doubles after
	// each further failure up to MaxBackoff (default 5m).
	InitialBackoff, MaxBackoff time.Duration
	// Keep is how many of the newest releases each region keeps after a new one is published;
	// older ones are deleted (PruneReleases), except the one the pointer names and those object
	// lock keeps, which are tried again a day later. 0 keeps every release.
	Keep int
	// Events, if set, is called after every attempt to write a release or a refreshed pointer
	// to a region, from the goroutine that made it; the binary logs them.
	Events func(OutboxEvent)
	// Now and Sleep replace the clock and the backoff wait in tests.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *OutboxConfig) validate() error {
	if c.Dir == "" {
		return errors.New("release: outbox: no directory given")
	}
	if err := validName("outbox model", c.Model); err != nil {
		return err
	}
	if len(c.Regions) == 0 {
		return errors.New("release: outbox: no region given")
	}
	seen := map[string]bool{}
	for _, r := range c.Regions {
		if err := validName("outbox region", r.Name); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("release: outbox: region %q given twice", r.Name)
		}
		seen[r.Name] = true
		if r.Store == nil {
			return fmt.Errorf("release: outbox: region %q has no store", r.Name)
		}
	}
	if c.ReleaseKey == nil || c.TimestampKey == nil {
		return errors.New("release: outbox: release and timestamp keys are required")
	}
	if c.Publisher == nil {
		p, err := NewPublisher(PublisherConfig{Attempts: 1})
		if err != nil {
			return err
		}
		c.Publisher = p
	}
	root, err := outboxRoot(c.Root, c.ReleaseKey, c.TimestampKey)
	if err != nil {
		return err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Expiry, 365*24*time.Hour)
	def(&c.LatestExpiry, 6*time.Hour)
	def(&c.RefreshEvery, c.LatestExpiry/3)
	def(&c.InitialBackoff, time.Second)
	def(&c.MaxBackoff, 5*time.Minute)
	if c.Expiry < time.Hour || c.LatestExpiry < time.Minute || c.LatestExpiry > MaxPointerLifetime || c.RefreshEvery <= 0 || c.RefreshEvery >= c.LatestExpiry {
		return fmt.Errorf("release: outbox: expiry %v (at least 1h), pointer expiry %v (1m to %v) and refresh %v (below the pointer expiry) out of range",
			c.Expiry, c.LatestExpiry, MaxPointerLifetime, c.RefreshEvery)
	}
	if c.Keep < 0 {
		return fmt.Errorf("release: outbox: keep %d releases: want 0 (all) or more", c.Keep)
	}
	if c.InitialBackoff <= 0 || c.MaxBackoff < c.InitialBackoff {
		return fmt.Errorf("release: outbox: backoff %v..%v out of range", c.InitialBackoff, c.MaxBackoff)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	if root != nil {
		c.Publisher = c.Publisher.WithRoot(root, c.Now)
	}
	return nil
}

// publicKeyer is a Signer that can say its public key, as *sig.PrivateKey can.
type publicKeyer interface {
	Public() *sig.PublicKey
}

// outboxRoot returns the root an outbox verifies regions against: the configured one, or
// failing that a root made in memory of its own release and timestamp keys (never signed,
// never published), or nil if neither is available.
func outboxRoot(env []byte, rel, ts Signer) (*Root, error) {
	if len(env) > 0 {
		r, err := ParseTrustedRoot(env)
		if err != nil {
			return nil, fmt.Errorf("release: outbox: root: %w", err)
		}
		return r, nil
	}
	rp, ok1 := rel.(publicKeyer)
	tp, ok2 := ts.(publicKeyer)
	if !ok1 || !ok2 {
		return nil, nil
	}
	one := func(pk *sig.PublicKey) RoleSpec { return RoleSpec{Keys: []*sig.PublicKey{pk}, Threshold: 1} }
	r := one(rp.Public())
	return NewRoot(1, time.Now().Add(100*365*24*time.Hour), RootRoles{
		Root: r, Release: r, Timestamp: one(tp.Public()), Trustees: r, Enrolment: r, Privacy: r,
	})
}

// Outbox is a durable queue of signed releases on their way to the stores of every region.
// Submit returns once a release is signed and on disk; Run then publishes it to every region,
// in version order, each region on its own with retries, and drops it from the queue once every
// region has it (the newest release is always kept, to refresh its pointer and to give a region
// added later something to serve). A new Outbox on the same directory carries on where the last
// one stopped, and because every store write is idempotent a release that was interrupted
// anywhere appears in each region exactly once and complete.
type Outbox struct {
	cfg     OutboxConfig
	mu      sync.Mutex
	queue   map[uint64]*queued // kept releases by version
	regions []*regionState
}

// queued is a release in the outbox with the pointer last signed for it.
type queued struct {
	b             *Bundle
	latest        []byte
	latestExpires time.Time
}

// NewOutbox opens (or creates) the outbox in cfg.Dir and loads what it holds.
func NewOutbox(cfg OutboxConfig) (*Outbox, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("release: outbox: %w", err)
	}
	queue, err := loadQueue(cfg.Dir, cfg.Model)
	if err != nil {
		return nil, err
	}
	published, err := loadProgress(cfg.Dir)
	if err != nil {
		return nil, err
	}
	o := &Outbox{cfg: cfg, queue: queue}
	for _, r := range cfg.Regions {
		o.regions = append(o.regions, &regionState{Region: r, published: published[r.Name], wake: make(chan struct{}, 1)})
	}
	o.pruneLocked()
	return o, nil
}

// Submit signs the release s describes and queues it durably: when Submit returns nil the
// release will reach every region, even across restarts. Submitting the same model version
// again with the same files does nothing (the release already signed is kept; the coordinator
// may repeat itself after a restart); with other files it is ErrConflict, and a version older
// than one already queued is ErrRollback. Zero Created, Expires and LatestExpires are filled in
// from the clock and the configured lifetimes.
func (o *Outbox) Submit(ctx context.Context, s Spec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.Model != o.cfg.Model {
		return fmt.Errorf("%w: outbox: release is for model %q, the outbox releases %q", ErrMixAndMatch, s.Model, o.cfg.Model)
	}
	arts := make([]Artifact, 0, len(s.Files))
	for name, data := range s.Files {
		arts = append(arts, Artifact{Name: name, SHA256: sha256Hex(data), Size: int64(len(data))})
	}
	sort.Slice(arts, func(i, j int) bool { return arts[i].Name < arts[j].Name })

	o.mu.Lock()
	defer o.mu.Unlock()
	if done, err := o.knownLocked(s.Version, arts); done || err != nil {
		return err
	}
	now := o.cfg.Now()
	if s.Created.IsZero() {
		s.Created = now
	}
	if s.Expires.IsZero() {
		s.Expires = now.Add(o.cfg.Expiry)
	}
	if s.LatestExpires.IsZero() {
		s.LatestExpires = now.Add(o.cfg.LatestExpiry)
	}
	b, err := Build(s, o.cfg.ReleaseKey, o.cfg.TimestampKey)
	if err != nil {
		return err
	}
	return o.enqueueLocked(b)
}

// SubmitBundle queues a release that is already signed, with the same guarantees as Submit.
func (o *Outbox) SubmitBundle(ctx context.Context, b *Bundle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := bundleObjects(b); err != nil {
		return err
	}
	_, doc, err := DecodeUnverified(b.ManifestEnvelope)
	if err != nil {
		return err
	}
	m := doc.(*Manifest) // bundleObjects checked the type
	if m.Model != o.cfg.Model {
		return fmt.Errorf("%w: outbox: release is for model %q, the outbox releases %q", ErrMixAndMatch, m.Model, o.cfg.Model)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if done, err := o.knownLocked(m.Version, m.Artifacts); done || err != nil {
		return err
	}
	return o.enqueueLocked(&Bundle{Manifest: m, ManifestEnvelope: b.ManifestEnvelope, LatestEnvelope: b.LatestEnvelope, Files: b.Files})
}

// knownLocked reports whether version is already queued with the same artifacts (done), and
// refuses it if it conflicts with what the outbox holds.
func (o *Outbox) knownLocked(version uint64, arts []Artifact) (done bool, err error) {
	if q, ok := o.queue[version]; ok {
		if slices.Equal(q.b.Manifest.Artifacts, arts) {
			return true, nil
		}
		return false, fmt.Errorf("%w: outbox: %s version %d is already queued with other files", ErrConflict, o.cfg.Model, version)
	}
	if newest := o.newestLocked(); version <= newest {
		return false, fmt.Errorf("%w: outbox: %s version %d is not newer than version %d already released", ErrRollback, o.cfg.Model, version, newest)
	}
	return false, nil
}

func (o *Outbox) enqueueLocked(b *Bundle) error {
	q, err := newQueued(b)
	if err != nil {
		return err
	}
	if err := writeQueued(o.cfg.Dir, b); err != nil {
		return err
	}
	o.queue[b.Manifest.Version] = q
	o.pruneLocked()
	for _, r := range o.regions {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func newQueued(b *Bundle) (*queued, error) {
	_, doc, err := DecodeUnverified(b.LatestEnvelope)
	if err != nil {
		return nil, fmt.Errorf("release: outbox: pointer: %w", err)
	}
	l, ok := doc.(*Latest)
	if !ok {
		return nil, fmt.Errorf("%w: outbox: pointer envelope holds a %T", ErrWrongType, doc)
	}
	return &queued{b: b, latest: b.LatestEnvelope, latestExpires: l.Expires}, nil
}

func (o *Outbox) newestLocked() uint64 {
	var n uint64
	for v := range o.queue {
		n = max(n, v)
	}
	return n
}

// Newest returns the newest version the outbox holds (0 if none).
func (o *Outbox) Newest() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.newestLocked()
}

// Queued returns the versions the outbox holds, oldest first.
func (o *Outbox) Queued() []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.versionsLocked()
}

func (o *Outbox) versionsLocked() []uint64 {
	vs := make([]uint64, 0, len(o.queue))
	for v := range o.queue {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}
