package sim

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// demoRegions are the regions whose stores the demo publishes to; devices are spread over them
// and each reads only its own region's store.
var demoRegions = []string{"eu", "us"}

// DemoRootFile is the organisation's root of trust in the demo's directory: with a region's
// store (DemoRegionDir), what a device agent following the demo's releases is given.
const DemoRootFile = "root.json"

// DemoRegionDir returns the directory of the demo's store for region (eu or us) under dir.
func DemoRegionDir(dir, region string) string { return filepath.Join(dir, "regions", region) }

// releases is the demo's publishing side: one filesystem store per region holding the root of
// trust and the signed releases, and the coordinator's outbox filling them.
type releases struct {
	regions []release.Region
	outbox  *release.Outbox
	// populations publish the population models, one outbox each: an outbox releases one model.
	populations map[string]*release.Outbox
	pickup      *pickupTracker
}

// newReleases opens the demo's regions and an outbox for the global model and for each of
// populations, the population models its rounds learn.
func newReleases(ctx context.Context, dir string, emb *embedded, populations []string) (*releases, error) {
	r := &releases{pickup: newPickupTracker(), populations: make(map[string]*release.Outbox)}
	for _, name := range demoRegions {
		st, err := store.NewFS(DemoRegionDir(dir, name))
		if err != nil {
			return nil, err
		}
		r.regions = append(r.regions, release.Region{Name: name, Store: st})
	}
	pub, err := release.NewPublisher(release.PublisherConfig{})
	if err != nil {
		return nil, err
	}
	// The root a device pins, as vigil setup writes ORG/root.json: a device agent started on
	// the demo's regions (vigil demo --agent) verifies the releases against it.
	if err := atomicfile.Write(filepath.Join(dir, DemoRootFile), emb.keys.RootEnvelope, 0o644); err != nil {
		return nil, err
	}
	if err := pub.PublishRoot(ctx, r.regions, emb.keys.RootEnvelope); err != nil {
		return nil, err
	}
	r.outbox, err = release.NewOutbox(release.OutboxConfig{
		Dir: filepath.Join(dir, "state", "outbox"), Model: AutoencoderModel, Regions: r.regions,
		ReleaseKey: emb.keys.Release, TimestampKey: emb.keys.Timestamp, InitialBackoff: 100 * time.Millisecond,
		Events: func(e release.OutboxEvent) {
			if e.Err == nil && !e.Refresh {
				r.pickup.published(e.Version, e.Region, e.At)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	for _, model := range populations {
		ob, err := release.NewOutbox(release.OutboxConfig{
			Dir: filepath.Join(dir, "state", "outbox-"+model), Model: model, Regions: r.regions,
			ReleaseKey: emb.keys.Release, TimestampKey: emb.keys.Timestamp, InitialBackoff: 100 * time.Millisecond,
		})
		if err != nil {
			return nil, err
		}
		r.populations[model] = ob
	}
	return r, nil
}

// run publishes what the outboxes hold until ctx ends.
func (r *releases) run(ctx context.Context) {
	for _, ob := range r.populations {
		go ob.Run(ctx)
	}
	r.outbox.Run(ctx)
}

// publisher hands each model's releases to its outbox, every version of each.
func (r *releases) publisher() (coordinator.Publisher, error) {
	pubs := coordinator.PublishersByModel{}
	for model, ob := range r.populations {
		p, err := coordinator.NewReleasePublisher(ob, coordinator.ReleasePublisherConfig{Every: 1})
		if err != nil {
			return nil, err
		}
		pubs[model] = p
	}
	global, err := coordinator.NewReleasePublisher(r.outbox, coordinator.ReleasePublisherConfig{Every: 1})
	if err != nil {
		return nil, err
	}
	pubs[AutoencoderModel] = global
	return pubs, nil
}

// runUpdater keeps device d's installed global model up to date from its region's store,
// scoring candidates in shadow on the device's own windows.
func (r *releases) runUpdater(ctx context.Context, dir, device string, region int, pinnedRoot []byte, windows [][]float64) error {
	reg := r.regions[region%len(r.regions)]
	u, err := updater.New(updater.Config{
		Store: reg.Store, Model: AutoencoderModel, FeatureSet: FeatureSet,
		Dir: filepath.Join(dir, "devices", device), PinnedRoot: pinnedRoot,
		Interval: demoPollInterval, ShadowWindows: 5,
	})
	if err != nil {
		return err
	}
	live := make(chan []float64)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			select {
			case live <- windows[i%len(windows)]:
			case <-ctx.Done():
				return
			}
		}
	}()
	return u.Run(ctx, live, func(ev updater.Event, err error) {
		if err == nil {
			r.pickup.deviceEvent(device, reg.Name, ev, time.Now())
		}
	})
}

// demoPollInterval is how often each demo device polls its region's store.
const demoPollInterval = 250 * time.Millisecond

// pickupTracker measures how long after publication the devices took a release.
type pickupTracker struct {
	mu        sync.Mutex
	publishAt map[string]time.Time // "region/version" -> when the region held it completely
	delays    []time.Duration
	running   map[string]uint64 // device -> version it runs
	rejected  int
}

func newPickupTracker() *pickupTracker {
	return &pickupTracker{publishAt: map[string]time.Time{}, running: map[string]uint64{}}
}

func (p *pickupTracker) published(v uint64, region string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publishAt[fmt.Sprintf("%s/%d", region, v)] = at
}

func (p *pickupTracker) deviceEvent(device, region string, ev updater.Event, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Kind {
	case updater.Installed, updater.Staged:
		if t, ok := p.publishAt[fmt.Sprintf("%s/%d", region, ev.Version)]; ok {
			p.delays = append(p.delays, at.Sub(t))
		}
		if ev.Kind == updater.Installed {
			p.running[device] = ev.Version
		}
	case updater.Promoted:
		p.running[device] = ev.Version
	case updater.Rejected:
		p.rejected++
	}
}

func (p *pickupTracker) report(w io.Writer, newest uint64, devices int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.delays) == 0 {
		if devices > 0 {
			fmt.Fprintln(w, "no device picked up a release")
		}
		return
	}
	d := slices.Clone(p.delays)
	slices.Sort(d)
	onNewest := 0
	for _, v := range p.running {
		if v == newest {
			onNewest++
		}
	}
	fmt.Fprintf(w, "releases: every version signed with ML-DSA-65 and published to %d regions; devices verified and staged %d releases\n",
		len(demoRegions), len(d))
	fmt.Fprintf(w, "  pick-up after publication: median %.0f ms, p99 %.0f ms, max %.0f ms (each device polls its region every %.0f ms)\n",
		ms(d[len(d)/2]), ms(d[(len(d)*99)/100]), ms(d[len(d)-1]), ms(demoPollInterval))
	fmt.Fprintf(w, "  %d of the %d updating devices run v%d after shadow-scoring it on 5 of their own windows; %s failed shadow scoring\n",
		onNewest, devices, newest, plural(p.rejected, "candidate"))
}

// plural returns n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
