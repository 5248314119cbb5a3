package coordinator_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// releaseKeys is a root of trust with one key per role.
type releaseKeys struct{ *release.KeySet }

func newReleaseKeys(t *testing.T) releaseKeys {
	t.Helper()
	ks, err := release.NewKeySet(rand.Reader, time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return releaseKeys{ks}
}

func (k releaseKeys) outbox(t *testing.T, dir string, regions ...release.Region) *release.Outbox {
	t.Helper()
	o, err := release.NewOutbox(release.OutboxConfig{
		Dir: dir, Model: "keystroke-ae", Regions: regions, ReleaseKey: k.Release, TimestampKey: k.Timestamp,
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// recorder passes releases on and records what the coordinator handed over and the result.
type recorder struct {
	next coordinator.Publisher
	mu   sync.Mutex
	got  []string // "v<version>: <error or ok>"
}

func (r *recorder) Publish(ctx context.Context, rel coordinator.Release) error {
	err := r.next.Publish(ctx, rel)
	r.mu.Lock()
	defer r.mu.Unlock()
	res := "ok"
	if err != nil {
		res = err.Error()
	}
	r.got = append(r.got, fmt.Sprintf("v%d: %s", rel.Version, res))
	return err
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// handOver passes releases on to next and closes done once the first Publish has returned.
type handOver struct {
	next coordinator.Publisher
	once sync.Once
	done chan struct{}
}

func (h *handOver) Publish(ctx context.Context, rel coordinator.Release) error {
	defer h.once.Do(func() { close(h.done) })
	return h.next.Publish(ctx, rel)
}

// coordinatorRound starts a coordinator on storeDir with pub, runs rounds rounds with three
// devices over gRPC on loopback (none when rounds is 0: the coordinator only starts), and
// stops it.
func coordinatorRound(t *testing.T, storeDir string, pub coordinator.Publisher, rounds int) *coordinator.Coordinator {
	t.Helper()
	st, err := store.NewFS(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	const devices = 3
	handed := &handOver{next: pub, done: make(chan struct{})}
	c, err := coordinator.New(context.Background(), coordinator.Config{
		Store: st, Spec: spec, FeatureSet: keystroke.TimingFeatureSet, InitSeed: 1, Publisher: handed,
		DevicesPerRound: devices, MinUpdates: devices, MinEnrolled: devices, RoundTimeout: 30 * time.Second,
		Rounds: rounds, TickInterval: 10 * time.Millisecond, Privacy: coordinator.Privacy{InsecureNoDP: true},
	}, coordinator.Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	c.Register(srv)
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if rounds == 0 {
		// Run hands the current version to the publisher before anything else; stop it once
		// the publisher has answered (not after a fixed time, which a loaded machine can
		// spend before Run gets that far, or in the middle of the publication).
		rctx, rcancel := context.WithCancel(ctx)
		defer rcancel()
		ran := make(chan error, 1)
		go func() { ran <- c.Run(rctx) }()
		select {
		case <-handed.done:
		case err := <-ran:
			t.Fatalf("Run = %v before handing anything to the publisher", err)
		case <-ctx.Done():
			t.Fatal("Run handed nothing to the publisher within a minute")
		}
		rcancel()
		if err := <-ran; !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		return c
	}
	var wg sync.WaitGroup
	agentCtx, stopAgents := context.WithCancel(ctx)
	for i := range devices {
		a, err := client.New(client.Config{
			DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: vigilv1.NewCoordinatorClient(conn),
			Data: client.Rows(typistRows(t, uint64(i+1), 30)), Sealer: client.InsecurePlaintext{},
			FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(agentCtx) }()
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	stopAgents()
	wg.Wait()
	return c
}

// TestReleasePublisherAcrossRestart runs a round with the release publisher, restarts the
// coordinator (which hands its current version over again, now reloaded from the store) and
// checks that the outbox takes the repeat without complaint and publishes the release once,
// and that a device updater installs it.
func TestReleasePublisherAcrossRestart(t *testing.T) {
	keys := newReleaseKeys(t)
	storeDir, outboxDir := t.TempDir(), t.TempDir()
	region, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	regions := []release.Region{{Name: "eu", Store: region}}

	o := keys.outbox(t, outboxDir, regions...)
	pub, err := coordinator.NewReleasePublisher(o, coordinator.ReleasePublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: pub}
	c := coordinatorRound(t, storeDir, rec, 1)
	if got := c.Global().Meta.Version; got != 2 {
		t.Fatalf("coordinator at v%d after one round", got)
	}
	if got := rec.calls(); !reflect.DeepEqual(got, []string{"v1: ok", "v2: ok"}) {
		t.Fatalf("publisher calls %v", got)
	}
	if got := o.Queued(); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("outbox holds %v", got)
	}

	// Restart: a new outbox on the same directory, a new coordinator on the same store.
	o = keys.outbox(t, outboxDir, regions...)
	pub, _ = coordinator.NewReleasePublisher(o, coordinator.ReleasePublisherConfig{})
	rec = &recorder{next: pub}
	coordinatorRound(t, storeDir, rec, 0)
	if got := rec.calls(); len(got) == 0 || got[0] != "v2: ok" {
		t.Fatalf("publisher calls after restart %v, want v2 accepted", got)
	}
	if err := o.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := o.Queued(); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("outbox holds %v after publishing", got)
	}

	u, err := updater.New(updater.Config{
		Store: region, Model: "keystroke-ae", FeatureSet: keystroke.TimingFeatureSet, Dir: t.TempDir(), PinnedRoot: keys.RootEnvelope,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := u.Poll(context.Background())
	if err != nil || ev.Kind != updater.Installed || ev.Version != 2 {
		t.Fatalf("device: %+v, %v", ev, err)
	}
	// The published metadata is the coordinator's, with its derived fields filled in.
	g := c.Global()
	m := u.Current()
	if m.Meta.Name != g.Meta.Name || m.Meta.Version != 2 || m.Meta.NumParams != spec.NumParams() ||
		!reflect.DeepEqual(m.Meta.Layers, g.Meta.Layers) || !reflect.DeepEqual(m.Params, g.Params) {
		t.Fatalf("device model %+v", m.Meta)
	}
}

// TestReleaseMetaFormat checks the meta.json a release carries: it decodes strictly, as devices
// read it, to the coordinator's metadata with the parameter count and digest filled in.
func TestReleaseMetaFormat(t *testing.T) {
	meta := models.Meta{
		Name: "keystroke-ae", Version: 3, Parent: 2, Round: 7, Created: time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC),
		FeatureSet: keystroke.TimingFeatureSet, Layers: spec.Layers, Activation: string(spec.Activation),
		Privacy: &models.PrivacyMeta{DifferentialPrivacy: true, Mechanism: "known-participation", NoiseMultiplier: 2, ClipNorm: 0.5,
			MinParticipants: 25, ToleratedDevices: 3, SamplingRate: 0.25, Epsilon: 1.5, Delta: 1e-5},
	}
	params, _ := spec.InitParams(3)
	s, err := coordinator.ReleaseSpec(release3(t, meta, params))
	if err != nil {
		t.Fatal(err)
	}
	got, err := models.DecodeMeta(s.Files[models.ArtifactMeta])
	if err != nil {
		t.Fatal(err)
	}
	var back models.Meta
	raw, _ := json.Marshal(got)
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	meta.NumParams, meta.ParamsSHA256 = len(params), got.ParamsSHA256
	if !reflect.DeepEqual(back, meta) || len(got.ParamsSHA256) != 64 {
		t.Fatalf("device reads %+v, coordinator wrote %+v", back, meta)
	}
}

func release3(t *testing.T, meta models.Meta, params []float64) coordinator.Release {
	t.Helper()
	raw, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return coordinator.Release{
		Model: meta.Name, Version: meta.Version, Parent: meta.Parent, Created: meta.Created, Round: meta.Round,
		Devices: 4, Epsilon: 1.5, Delta: 1e-5, Eval: map[string]float64{"eer": 0.1},
		Files: map[string][]byte{models.ArtifactParams: models.EncodeParams(params), models.ArtifactMeta: raw},
	}
}

func TestReleaseSpec(t *testing.T) {
	params, _ := spec.InitParams(3)
	meta := models.Meta{
		Name: "keystroke-ae", Version: 3, Parent: 2, Round: 7, Created: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		FeatureSet: keystroke.TimingFeatureSet, Layers: spec.Layers, Activation: string(spec.Activation),
	}
	good := release3(t, meta, params)
	s, err := coordinator.ReleaseSpec(good)
	if err != nil {
		t.Fatal(err)
	}
	want := release.Training{Rounds: 7, Devices: 4, Epsilon: 1.5, Delta: 1e-5, Eval: map[string]float64{"eer": 0.1}}
	if s.Model != "keystroke-ae" || s.Version != 3 || s.Parent != 2 || !s.Created.Equal(meta.Created) || !reflect.DeepEqual(s.Training, want) ||
		string(s.Files[models.ArtifactParams]) != string(good.Files[models.ArtifactParams]) {
		t.Fatalf("spec %+v", s)
	}

	nan := append([]float64(nil), params...)
	nan[5] = math.NaN()
	for _, tc := range []struct {
		name string
		edit func(r *coordinator.Release)
		want string
	}{
		{"no params", func(r *coordinator.Release) { delete(r.Files, models.ArtifactParams) }, "no params.f64"},
		{"no meta", func(r *coordinator.Release) { delete(r.Files, models.ArtifactMeta) }, "no meta.json"},
		{"meta of another version", func(r *coordinator.Release) { r.Version = 4 }, "describes keystroke-ae v3"},
		{"unknown meta field", func(r *coordinator.Release) {
			r.Files[models.ArtifactMeta] = []byte(`{"name":"keystroke-ae","bogus":1}`)
		}, "bogus"},
		{"NaN parameter", func(r *coordinator.Release) { r.Files[models.ArtifactParams] = models.EncodeParams(nan) }, "parameter 5"},
		{"too few parameters", func(r *coordinator.Release) {
			r.Files[models.ArtifactParams] = models.EncodeParams(params[1:])
		}, "parameters"},
		{"ragged parameters", func(r *coordinator.Release) { r.Files[models.ArtifactParams] = []byte{1, 2, 3} }, "whole number"},
		{"recorded hash differs", func(r *coordinator.Release) {
			m := meta
			m.ParamsSHA256 = strings.Repeat("0", 64)
			r.Files[models.ArtifactMeta], _ = json.Marshal(m)
		}, "sha256"},
		{"negative devices", func(r *coordinator.Release) { r.Devices = -1 }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := release3(t, meta, params)
			tc.edit(&r)
			if _, err := coordinator.ReleaseSpec(r); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestReleasePublisherEvery(t *testing.T) {
	keys := newReleaseKeys(t)
	region, _ := store.NewFS(t.TempDir())
	o := keys.outbox(t, t.TempDir(), release.Region{Name: "eu", Store: region})
	pub, err := coordinator.NewReleasePublisher(o, coordinator.ReleasePublisherConfig{Every: 2})
	if err != nil {
		t.Fatal(err)
	}
	params, _ := spec.InitParams(1)
	for v := uint64(1); v <= 5; v++ {
		meta := models.Meta{
			Name: "keystroke-ae", Version: v, Round: v - 1, Created: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
			FeatureSet: keystroke.TimingFeatureSet, Layers: spec.Layers, Activation: string(spec.Activation),
		}
		if v > 1 {
			meta.Parent = v - 1
		}
		if err := pub.Publish(context.Background(), release3(t, meta, params)); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
	}
	// Rounds 0 (the initial version), 2 and 4 make versions 1, 3 and 5.
	if got := o.Queued(); !reflect.DeepEqual(got, []uint64{1, 3, 5}) {
		t.Fatalf("queued %v, want [1 3 5]", got)
	}
	if _, err := coordinator.NewReleasePublisher(nil, coordinator.ReleasePublisherConfig{}); err == nil {
		t.Fatal("nil queue accepted")
	}
}
