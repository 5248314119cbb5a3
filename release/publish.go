package release

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigilauth/vigil/store"
)

// Region is one store to publish to, named for error messages (e.g. "eu-west").
type Region struct {
	Name  string
	Store store.Store
}

// PublisherConfig sets how hard a Publisher retries a region that fails.
type PublisherConfig struct {
	// Attempts is how many times one call tries each region before giving up (default 8).
	Attempts int
	// InitialBackoff is the wait after the first failure (default 500ms); it doubles after each
	// further failure up to MaxBackoff (default 30s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Sleep waits d or until ctx is done. Tests inject it; the default uses a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Root is the current root of trust; set it. Every document already in a store is checked
	// against it: a pointer that names a newer version holds the publisher back only if it
	// verifies under Root's timestamp role and has not expired, so a forged high-version pointer
	// cannot pin a region; a write-once document that does not verify is junk, and the genuine
	// one is added beside it (readers take the first version that verifies). Without Root
	// nothing can be verified: a newer pointer is then an error (ErrUnverified), never a silent
	// success, and a different document under a write-once key is a conflict.
	Root *Root
	// Now is the clock pointer expiry is judged by (default time.Now).
	Now func() time.Time
}

func (c *PublisherConfig) validate() error {
	if c.Attempts == 0 {
		c.Attempts = 8
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Attempts < 1 || c.InitialBackoff < 0 || c.MaxBackoff < c.InitialBackoff {
		return fmt.Errorf("release: publisher: attempts %d, backoff %v..%v out of range", c.Attempts, c.InitialBackoff, c.MaxBackoff)
	}
	return nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Publisher writes releases, roots and key epochs to the stores of several regions. Each region
// is written and retried independently, so a region that is down delays only itself.
type Publisher struct {
	cfg PublisherConfig
}

// NewPublisher returns a Publisher with cfg's defaults filled in.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg}, nil
}

// RegionError reports a region that could not be brought up to date.
type RegionError struct {
	Region   string
	Attempts int
	Err      error
}

func (e *RegionError) Error() string {
	return fmt.Sprintf("release: region %s: gave up after %d attempt(s): %v", e.Region, e.Attempts, e.Err)
}

func (e *RegionError) Unwrap() error { return e.Err }

// WithRoot returns a Publisher like p that verifies what stores hold against root, judging
// expiry by now (nil: p's clock).
func (p *Publisher) WithRoot(root *Root, now func() time.Time) *Publisher {
	cfg := p.cfg
	cfg.Root = root
	if now != nil {
		cfg.Now = now
	}
	return &Publisher{cfg: cfg}
}

// Root returns the root the publisher verifies against, or nil.
func (p *Publisher) Root() *Root { return p.cfg.Root }

// object is one write of a publication, in order.
type object struct {
	key  string
	data []byte
	kind objectKind
	// version of a pointer, which must not replace a newer one
	version uint64
	// payloadType and role of an envelope, to verify what a store already holds
	payloadType string
	role        Role
}

type objectKind int

const (
	exactOnce    objectKind = iota // write once; an identical object there counts as written
	envelopeOnce                   // write once; an envelope of the same payload counts as written
	pointer                        // replace, unless the store holds a verified newer pointer
	checkOnly                      // write nothing; refuse if the key holds a different genuine envelope
)

// Publish writes b to every region: artifacts, then the manifest, then the pointer. Each write
// is idempotent, so calling Publish again after a failure or a crash completes the release
// exactly once. The returned error joins one *RegionError per region that failed; the regions
// not named are complete. It refuses a bundle whose parts do not match, and one whose pointer
// expires more than MaxPointerLifetime after the publisher's clock (devices would refuse it).
func (p *Publisher) Publish(ctx context.Context, regions []Region, b *Bundle) error {
	objs, err := bundleObjects(b)
	if err != nil {
		return err
	}
	if err := p.checkPointer(b.LatestEnvelope); err != nil {
		return err
	}
	return p.publish(ctx, regions, objs)
}

// checkPointer refuses to publish a pointer that every device would refuse for its lifetime.
func (p *Publisher) checkPointer(latest []byte) error {
	_, doc, err := DecodeUnverified(latest)
	if err != nil {
		return fmt.Errorf("release: publish: latest pointer: %w", err)
	}
	l, ok := doc.(*Latest)
	if !ok {
		return fmt.Errorf("release: publish: %w: pointer envelope holds a %T", ErrWrongType, doc)
	}
	if err := l.checkLifetime(p.cfg.Now()); err != nil {
		return fmt.Errorf("release: publish: %w", err)
	}
	return nil
}

// PublishFiles writes a release's artifacts and manifest but not its pointer: a version older
// than the one the pointer names, published so that every region holds every release
// (`vigil release publish -all`). Devices fetch only what the pointer names.
func (p *Publisher) PublishFiles(ctx context.Context, regions []Region, manifest []byte, files map[string][]byte) error {
	_, mdoc, err := DecodeUnverified(manifest)
	if err != nil {
		return fmt.Errorf("release: publish: manifest: %w", err)
	}
	m, ok := mdoc.(*Manifest)
	if !ok {
		return fmt.Errorf("release: publish: %w: manifest envelope holds a %T", ErrWrongType, mdoc)
	}
	objs, err := releaseObjects(m, manifest, files)
	if err != nil {
		return err
	}
	return p.publish(ctx, regions, objs)
}

func bundleObjects(b *Bundle) ([]object, error) {
	_, mdoc, err := DecodeUnverified(b.ManifestEnvelope)
	if err != nil {
		return nil, fmt.Errorf("release: publish: manifest: %w", err)
	}
	m, ok := mdoc.(*Manifest)
	if !ok {
		return nil, fmt.Errorf("release: publish: %w: manifest envelope holds a %T", ErrWrongType, mdoc)
	}
	_, ldoc, err := DecodeUnverified(b.LatestEnvelope)
	if err != nil {
		return nil, fmt.Errorf("release: publish: latest pointer: %w", err)
	}
	l, ok := ldoc.(*Latest)
	if !ok {
		return nil, fmt.Errorf("release: publish: %w: pointer envelope holds a %T", ErrWrongType, ldoc)
	}
	menv, err := ParseEnvelope(b.ManifestEnvelope)
	if err != nil {
		return nil, err
	}
	if l.Model != m.Model || l.Version != m.Version || l.ManifestSHA256 != sha256Hex(menv.Payload) {
		return nil, fmt.Errorf("release: publish: %w: pointer does not name this manifest", ErrMixAndMatch)
	}
	objs, err := releaseObjects(m, b.ManifestEnvelope, b.Files)
	if err != nil {
		return nil, err
	}
	return append(objs,
		object{key: LatestKey(m.Model), data: b.LatestEnvelope, kind: pointer, version: l.Version, payloadType: TypeLatest, role: RoleTimestamp}), nil
}

// releaseObjects are the writes of a release's artifacts and manifest, in order.
func releaseObjects(m *Manifest, manifest []byte, files map[string][]byte) ([]object, error) {
	if len(files) != len(m.Artifacts) {
		return nil, fmt.Errorf("release: publish: %w: %d files for %d artifacts", ErrMixAndMatch, len(files), len(m.Artifacts))
	}
	// The manifest key is checked first, so that no artifact is written beside a different
	// genuine release of the same version.
	mobj := object{key: ManifestKey(m.Model, m.Version), data: manifest, kind: envelopeOnce, payloadType: TypeManifest, role: RoleRelease}
	check := mobj
	check.kind = checkOnly
	objs := []object{check}
	for _, a := range m.Artifacts {
		data, ok := files[a.Name]
		if !ok {
			return nil, fmt.Errorf("release: publish: %w: artifact %s missing", ErrMixAndMatch, a.Name)
		}
		if err := VerifyArtifact(m, a.Name, data); err != nil {
			return nil, fmt.Errorf("release: publish: %w", err)
		}
		objs = append(objs, object{key: ArtifactKey(m.Model, m.Version, a.Name), data: data, kind: exactOnce})
	}
	return append(objs, mobj), nil
}

// PublishLatest replaces the pointer of its model in every region, unless a region holds a
// pointer to a newer version. The coordinator calls it to refresh the pointer before it expires.
// Like Publish it refuses a pointer valid for more than MaxPointerLifetime.
func (p *Publisher) PublishLatest(ctx context.Context, regions []Region, latest []byte) error {
	_, doc, err := DecodeUnverified(latest)
	if err != nil {
		return fmt.Errorf("release: publish latest: %w", err)
	}
	l, ok := doc.(*Latest)
	if !ok {
		return fmt.Errorf("release: publish latest: %w: envelope holds a %T", ErrWrongType, doc)
	}
	if err := p.checkPointer(latest); err != nil {
		return err
	}
	return p.publish(ctx, regions, []object{{key: LatestKey(l.Model), data: latest, kind: pointer, version: l.Version, payloadType: TypeLatest, role: RoleTimestamp}})
}

// PublishRoot writes a root envelope under its version. Publish roots before anything they sign.
// With the publisher's Root the predecessor of this one, a different root already under the key
// is a conflict only if it follows Root as devices check it; one that does not (junk, or a root
// someone signed with keys of their own) gets the genuine one added beside it.
func (p *Publisher) PublishRoot(ctx context.Context, regions []Region, root []byte) error {
	_, doc, err := DecodeUnverified(root)
	if err != nil {
		return fmt.Errorf("release: publish root: %w", err)
	}
	r, ok := doc.(*Root)
	if !ok {
		return fmt.Errorf("release: publish root: %w: envelope holds a %T", ErrWrongType, doc)
	}
	return p.publish(ctx, regions, []object{{key: RootKey(r.Version), data: root, kind: envelopeOnce, version: r.Version, payloadType: TypeRoot, role: RoleRoot}})
}

// PublishKeyEpoch writes the collective public key of an epoch and then its signed document.
func (p *Publisher) PublishKeyEpoch(ctx context.Context, regions []Region, doc, publicKey []byte) error {
	_, d, err := DecodeUnverified(doc)
	if err != nil {
		return fmt.Errorf("release: publish key epoch: %w", err)
	}
	k, ok := d.(*KeyEpoch)
	if !ok {
		return fmt.Errorf("release: publish key epoch: %w: envelope holds a %T", ErrWrongType, d)
	}
	if int64(len(publicKey)) != k.PublicKeySize || sha256Hex(publicKey) != k.PublicKeySHA256 {
		return fmt.Errorf("release: publish key epoch %d: %w: public key does not match the document", k.Epoch, ErrHashMismatch)
	}
	return p.publish(ctx, regions, []object{
		{key: CollectiveKeyKey(k.Epoch), data: publicKey, kind: exactOnce},
		{key: KeyEpochKey(k.Epoch), data: doc, kind: envelopeOnce, payloadType: TypeKeyEpoch, role: RoleTrustees},
	})
}

func (p *Publisher) publish(ctx context.Context, regions []Region, objs []object) error {
	if len(regions) == 0 {
		return errors.New("release: publish: no region given")
	}
	errs := make([]error, len(regions))
	var wg sync.WaitGroup
	for i, r := range regions {
		if r.Store == nil {
			errs[i] = &RegionError{Region: r.Name, Err: errors.New("no store")}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.publishRegion(ctx, r, objs)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// publishRegion writes objs in order, resuming after the last object written when it retries.
func (p *Publisher) publishRegion(ctx context.Context, r Region, objs []object) error {
	next, delay := 0, p.cfg.InitialBackoff
	for attempt := 1; ; attempt++ {
		var err error
		for next < len(objs) {
			if err = writeObject(ctx, r.Store, objs[next], storeTrust{root: p.cfg.Root, now: p.cfg.Now}); err != nil {
				break
			}
			next++
		}
		if next == len(objs) {
			return nil
		}
		if permanent(err) || attempt >= p.cfg.Attempts || ctx.Err() != nil {
			return &RegionError{Region: r.Name, Attempts: attempt, Err: err}
		}
		if serr := p.cfg.Sleep(ctx, delay); serr != nil {
			return &RegionError{Region: r.Name, Attempts: attempt, Err: errors.Join(err, serr)}
		}
		delay = min(2*delay, p.cfg.MaxBackoff)
	}
}
