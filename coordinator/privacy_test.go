package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models/keystroke"
)

// TestPrivateRoundsStopAtBudget runs DP rounds until the model's budget stops them and checks
// the ledger against the accountant: each completed round charged exactly once with q, a
// device's chance of being in a kept draw, participation known.
func TestPrivateRoundsStopAtBudget(t *testing.T) {
	const devices = 4
	ledgerPath := filepath.Join(t.TempDir(), "model.ledger")
	privacy := coordinator.Privacy{ClipNorm: 1, NoiseMultiplier: 1.0, Budget: dp.Budget{Epsilon: 12, Delta: 1e-5}, LedgerPath: ledgerPath}
	f := start(t, coordinator.Config{DevicesPerRound: 2, MinUpdates: 1, MinEnrolled: devices, RoundTimeout: 20 * time.Second, Privacy: privacy})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range devices {
		a, err := client.New(client.Config{
			DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: f.api, Data: client.Rows(typistRows(t, uint64(i+1), 12)),
			Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	err := f.coord.Run(ctx)
	cancel()
	wg.Wait()
	if !errors.Is(err, dp.ErrBudgetExhausted) {
		t.Fatalf("Run = %v, want the privacy budget to stop it", err)
	}
	rounds := f.coord.Completed()
	if rounds < 2 {
		t.Fatalf("only %d rounds before the budget", rounds)
	}
	var last float64
	for e := range drain(f.events) {
		if e.Kind == coordinator.RoundCompleted {
			if !(e.Epsilon > last) || e.Delta != 1e-5 {
				t.Fatalf("round %d: epsilon %v after %v at delta %v; want a growing epsilon at 1e-5", e.Round, e.Epsilon, last, e.Delta)
			}
			last = e.Epsilon
		}
	}
	l, err := dp.ReadLedger(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != rounds {
		t.Fatalf("ledger has %d entries for %d rounds", len(l.Entries), rounds)
	}
	q, err := dp.InclusionRate(2, devices, 1) // 0.533: a draw of nobody is drawn again
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := dp.Epsilon([]dp.Event{{SamplingRate: q, NoiseMultiplier: 1, Steps: rounds, Mechanism: dp.KnownParticipation}}, 1e-5, dp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spent, _ := l.Spent()
	if d := spent - want; d > 1e-9 || d < -1e-9 || spent > 12 || last != spent {
		t.Fatalf("ledger says epsilon %v, the accountant %v for %d rounds at q=%v (events said %v)", spent, want, rounds, q, last)
	}
	next, _, _ := dp.Epsilon([]dp.Event{{SamplingRate: q, NoiseMultiplier: 1, Steps: rounds + 1, Mechanism: dp.KnownParticipation}}, 1e-5, dp.Options{})
	if next <= 12 {
		t.Fatalf("the coordinator stopped at epsilon %v although one more round (%v) fits the budget", spent, next)
	}
}

func drain(ch chan coordinator.Event) chan coordinator.Event {
	out := make(chan coordinator.Event, len(ch))
	for {
		select {
		case e := <-ch:
			out <- e
		default:
			close(out)
			return out
		}
	}
}

func TestPrivacyConfigErrors(t *testing.T) {
	for _, p := range []coordinator.Privacy{
		{NoiseMultiplier: 1, Budget: dp.Budget{Epsilon: 1, Delta: 1e-5}, LedgerPath: "x"}, // no clip norm
		{NoiseMultiplier: 1, ClipNorm: 1, LedgerPath: "x"},                                // no budget
		{NoiseMultiplier: 1, ClipNorm: 1, Budget: dp.Budget{Epsilon: 1, Delta: 1e-5}},     // no ledger
		{NoiseMultiplier: -1}, // negative
		{NoiseMultiplier: 1, ClipNorm: 1, Budget: dp.Budget{Epsilon: 1, Delta: 2}, LedgerPath: "x"}, // delta
	} {
		st := t.TempDir()
		fs, _ := newFS(st)
		if _, err := coordinator.New(context.Background(), coordinator.Config{Store: fs, Spec: spec, Privacy: p}, coordinator.Insecure{}); err == nil {
			t.Errorf("privacy %+v accepted", p)
		}
	}
}

// TestDeviceStopsAtItsBudget gives one device a budget for about two contributions: it takes
// part until then, refuses with a clear error, and its ledger records each contribution once.
func TestDeviceStopsAtItsBudget(t *testing.T) {
	privacy := coordinator.Privacy{ClipNorm: 1, NoiseMultiplier: 3, Budget: dp.Budget{Epsilon: 1000, Delta: 1e-5}, LedgerPath: filepath.Join(t.TempDir(), "model.ledger")}
	f := start(t, coordinator.Config{DevicesPerRound: 1, MinUpdates: 1, MinEnrolled: 1, RoundTimeout: 20 * time.Second, Privacy: privacy})
	one, _, _ := dp.Epsilon([]dp.Event{{SamplingRate: 1, NoiseMultiplier: 3, Steps: 2}}, 1e-5, dp.Options{})
	path := filepath.Join(t.TempDir(), "device.ledger")
	ledger, err := dp.OpenLedger(path, "dev", dp.Budget{Epsilon: one * 1.01, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	a, err := client.New(client.Config{
		DeviceID: "dev", Coordinator: f.api, Data: client.Rows(typistRows(t, 1, 12)), Ledger: ledger,
		Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.TimingFeatureSet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go f.coord.Run(ctx)
	err = a.Run(ctx)
	if !errors.Is(err, dp.ErrBudgetExhausted) || !strings.Contains(err.Error(), "privacy budget is spent") {
		t.Fatalf("device Run = %v, want it to stop at its budget", err)
	}
	l, _ := dp.ReadLedger(path)
	if len(l.Entries) != 2 {
		t.Fatalf("device ledger has %d entries, want 2", len(l.Entries))
	}
}
