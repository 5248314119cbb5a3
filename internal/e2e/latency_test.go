package e2e_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/release"
)

// BenchmarkReleaseToStagedMinIO measures the release latency the fleet sees, against real
// MinIO: from the moment the coordinator's release publisher returns (the release is signed
// and durable in the outbox) until a device polling its region every 100 ms has verified and
// staged it. That is the outbox publishing to the bucket, the wait for the device's next poll,
// and the device's fetch, verification and synced staging. Releases are handed over at random
// phases of the polling. It reports the mean and the largest delay per release, and the mean
// time until the outbox has written the release (pointer last) to the bucket.
func BenchmarkReleaseToStagedMinIO(b *testing.B) {
	const interval = 100 * time.Millisecond
	us := miniotest.Shared(b, "vigil-bench-us")
	inStore := make(chan time.Time, 1) // when the outbox finished writing a release to the bucket
	k := newKeys(b)
	outbox, err := release.NewOutbox(release.OutboxConfig{
		Dir: b.TempDir(), Model: modelName, Regions: []release.Region{{Name: "us", Store: us}},
		ReleaseKey: k.Release, TimestampKey: k.Timestamp, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Events: func(e release.OutboxEvent) {
			if e.Err == nil && !e.Refresh {
				inStore <- time.Now()
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	pub, err := coordinator.NewReleasePublisher(outbox, coordinator.ReleasePublisherConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go outbox.Run(ctx)
	dev, err := updater.New(updater.Config{
		Store: us, Model: modelName, FeatureSet: keystroke.TimingFeatureSet, Dir: b.TempDir(), PinnedRoot: k.RootEnvelope, Interval: interval,
	})
	if err != nil {
		b.Fatal(err)
	}
	staged := make(chan uint64, 1)
	go dev.Run(ctx, nil, func(ev updater.Event, err error) {
		if err == nil && (ev.Kind == updater.Staged || ev.Kind == updater.Installed) {
			staged <- ev.Version
		}
	})
	params, err := spec.InitParams(1)
	if err != nil {
		b.Fatal(err)
	}
	hand := func(v uint64) time.Time {
		meta, _ := json.Marshal(models.Meta{
			Name: modelName, Version: v, Parent: v - 1, Round: v - 1, Created: time.Now().UTC(),
			FeatureSet: keystroke.TimingFeatureSet, Layers: spec.Layers, Activation: string(spec.Activation),
		})
		if err := pub.Publish(ctx, coordinator.Release{
			Model: modelName, Version: v, Parent: v - 1, Created: time.Now().UTC(), Round: v - 1, Devices: 3,
			Files: map[string][]byte{models.ArtifactParams: models.EncodeParams(params), models.ArtifactMeta: meta},
		}); err != nil {
			b.Fatal(err)
		}
		return time.Now()
	}
	hand(1)
	<-inStore
	if v := <-staged; v != 1 {
		b.Fatalf("installed v%d", v)
	}
	var delays, publishing []time.Duration
	for i := 0; i < b.N; i++ {
		v := uint64(i + 2)
		time.Sleep(rand.N(interval))
		at := hand(v)
		written := <-inStore
		if got := <-staged; got != v {
			b.Fatalf("staged v%d, want v%d", got, v)
		}
		delays = append(delays, time.Since(at))
		publishing = append(publishing, written.Sub(at))
	}
	mean := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return float64(sum.Microseconds()) / 1000 / float64(len(ds))
	}
	b.ReportMetric(mean(delays), "ms-mean-release-to-staged")
	b.ReportMetric(float64(slices.Max(delays).Microseconds())/1000, "ms-max-release-to-staged")
	b.ReportMetric(mean(publishing), "ms-mean-release-to-bucket")
	b.ReportMetric(float64(interval.Milliseconds()), "ms-poll-interval")
}
