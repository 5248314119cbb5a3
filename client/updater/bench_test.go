package updater

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigilauth/vigil/models"
)

// BenchmarkPollUpToDate is what a device spends on a poll when nothing is new: read the next
// root (absent) and the pointer from the store, verify the pointer's ML-DSA-65 signature.
func BenchmarkPollUpToDate(b *testing.B) {
	tr := newTrust(b)
	st := newFS(b)
	tr.publishModel(b, st, 1, baseParams(b))
	u := newDevice(b, tr, st).open()
	mustPoll(b, u, Installed, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ev, err := u.Poll(ctx); err != nil || ev.Kind != NoChange {
			b.Fatal(ev, err)
		}
	}
}

// bigSpec has 100,650 parameters (805 kB of params.f64).
var bigSpec = models.Spec{Layers: []int{200, 200, 50, 200, 200}, Activation: models.Tanh}

// BenchmarkVerifyAndStage measures staging one release of a 100,650-parameter model from a
// filesystem store: pointer and manifest signatures, SHA-256 of the artifacts, model checks,
// and the synced writes of the version directory and the state file. Publishing the release
// is not timed.
func BenchmarkVerifyAndStage(b *testing.B) {
	tr := newTrust(b)
	st := newFS(b)
	params, err := bigSpec.InitParams(1)
	if err != nil {
		b.Fatal(err)
	}
	d := newDevice(b, tr, st)
	publish(b, st, tr.bundle(b, 1, modelFiles(b, 1, bigSpec, params, testFeatures)))
	u := d.open()
	mustPoll(b, u, Installed, 1)
	ctx := context.Background()
	b.SetBytes(int64(8 * len(params)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := uint64(i + 2)
		b.StopTimer()
		publish(b, st, tr.bundle(b, v, modelFiles(b, v, bigSpec, params, testFeatures)))
		b.StartTimer()
		if ev, err := u.Poll(ctx); err != nil || ev.Kind != Staged || ev.Version != v {
			b.Fatal(ev, err)
		}
	}
}

// BenchmarkPublishToStaged measures how long after a release is published a device running
// Run picks it up (stages it), polling every 50 ms, with each release published at a random
// phase of the polling: the figure behind "devices pick up a new release within one polling
// interval" (the bound is one interval plus one poll's verify-and-stage time). It reports the
// mean and the largest delay.
func BenchmarkPublishToStaged(b *testing.B) {
	const interval = 50 * time.Millisecond
	tr := newTrust(b)
	st := newFS(b)
	base := baseParams(b)
	tr.publishModel(b, st, 1, base)
	d := newDevice(b, tr, st)
	d.cfg.Interval = interval
	u := d.open()
	staged := make(chan Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go u.Run(ctx, nil, func(ev Event, err error) {
		if err == nil && (ev.Kind == Staged || ev.Kind == Installed) {
			staged <- ev
		}
	})
	<-staged // v1
	var delays []time.Duration
	for i := 0; i < b.N; i++ {
		v := uint64(i + 2)
		bu := tr.bundle(b, v, modelFiles(b, v, testSpec, base, testFeatures))
		// Releases appear at any phase of the device's polling.
		time.Sleep(rand.N(interval))
		publish(b, st, bu)
		published := time.Now()
		if ev := <-staged; ev.Version != v {
			b.Fatalf("staged v%d, want v%d", ev.Version, v)
		}
		delays = append(delays, time.Since(published))
	}
	var sum time.Duration
	for _, dl := range delays {
		sum += dl
	}
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(delays)), "ms-mean-pickup")
	b.ReportMetric(float64(slices.Max(delays).Microseconds())/1000, "ms-max-pickup")
	b.ReportMetric(float64(interval.Milliseconds()), "ms-interval")
}
