package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// embeddedTier starts an embedded server in a temporary directory and opens a tier on it.
func embeddedTier(t testing.TB, model string) *Tier {
	t.Helper()
	tier, err := Open(context.Background(), embeddedConn(t), Config{Model: model, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tier
}

// embeddedConn starts an embedded server in a temporary directory and connects to it.
func embeddedConn(t testing.TB) *nats.Conn {
	t.Helper()
	srv, err := StartEmbedded(context.Background(), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// followed returns the devices the round holds, in stream order, once it is closed.
func followed(t *testing.T, tier *Tier, round uint64) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	if err := tier.Follow(ctx, round, func(u Update) error {
		if want := "update of " + u.Device; string(u.Data) != want {
			return fmt.Errorf("device %q: data %q, want %q", u.Device, u.Data, want)
		}
		got = append(got, u.Device)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestAcceptOncePerDevice has eight frontends race to store the same devices' updates: each
// device lands exactly once and every other attempt is told it is a duplicate.
func TestAcceptOncePerDevice(t *testing.T) {
	tier := embeddedTier(t, "typing")
	ctx := context.Background()
	const frontends, devices = 8, 40
	if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		accepted = map[string]int{}
		wg       sync.WaitGroup
	)
	for f := range frontends {
		wg.Go(func() {
			for d := range devices {
				id := fmt.Sprintf("dev-%d.eu", (d+f)%devices) // the '.' must survive the subjects
				_, err := tier.Accept(ctx, 1, id, []byte("update of "+id), Stamp{})
				switch {
				case err == nil:
					mu.Lock()
					accepted[id]++
					mu.Unlock()
				case errors.Is(err, ErrDuplicate):
				default:
					t.Errorf("frontend %d, %s: %v", f, id, err)
				}
			}
		})
	}
	wg.Wait()
	if len(accepted) != devices {
		t.Fatalf("%d devices accepted, want %d", len(accepted), devices)
	}
	for id, n := range accepted {
		if n != 1 {
			t.Errorf("%s accepted %d times", id, n)
		}
	}
	if _, err := tier.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := followed(t, tier, 1)
	if len(got) != devices {
		t.Fatalf("the round holds %d updates, want %d", len(got), devices)
	}
	for _, id := range got {
		if accepted[id] != 1 {
			t.Errorf("the round holds %s, which no frontend was told was accepted", id)
		}
	}
}

// TestCloseRacesAccepts closes a round while frontends are storing updates: every update a
// frontend acknowledged is in the round, and nothing else is.
func TestCloseRacesAccepts(t *testing.T) {
	tier := embeddedTier(t, "typing")
	ctx := context.Background()
	const frontends, perFrontend = 4, 5000
	if err := tier.PublishPlan(ctx, 7, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		closed int
		wg     sync.WaitGroup
	)
	for f := range frontends {
		wg.Go(func() {
			// Each frontend sends until the round has refused it a few times.
			for d, refused := 0, 0; d < perFrontend && refused < 3; d++ {
				id := fmt.Sprintf("f%d-d%d", f, d)
				_, err := tier.Accept(ctx, 7, id, []byte("update of "+id), Stamp{})
				mu.Lock()
				switch {
				case err == nil:
					acked[id] = true
				case errors.Is(err, ErrClosed):
					closed++
					refused++
				default:
					t.Errorf("%s: %v", id, err)
				}
				mu.Unlock()
			}
		})
	}
	// Close once some updates are in, while the frontends keep sending.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 60 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := tier.Close(ctx, 7); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := followed(t, tier, 7)
	if closed == 0 {
		t.Fatal("no update arrived after the close: the race was not exercised")
	}
	var want []string
	for id := range acked {
		want = append(want, id)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the round holds %d updates, %d were acknowledged:\nheld  %v\nacked %v", len(got), len(want), got, want)
	}
	// Closing again returns the same marker.
	a, err := tier.Close(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tier.Close(ctx, 7)
	if err != nil || a != b {
		t.Fatalf("closing again: marker %d then %d (%v)", a, b, err)
	}
	t.Logf("%d acknowledged before the close, %d refused after it", len(want), closed)
}

func TestPlanIsPublishedOnce(t *testing.T) {
	tier := embeddedTier(t, "typing")
	ctx := context.Background()
	if _, err := tier.Plan(ctx, 3); !errors.Is(err, ErrNoPlan) {
		t.Fatalf("plan of an unplanned round: %v, want ErrNoPlan", err)
	}
	if err := tier.PublishPlan(ctx, 3, []byte("plan A")); err != nil {
		t.Fatal(err)
	}
	if err := tier.PublishPlan(ctx, 3, []byte("plan A")); err != nil {
		t.Fatalf("a restarted leader publishing the same plan: %v", err)
	}
	if err := tier.PublishPlan(ctx, 3, []byte("plan B")); err == nil {
		t.Fatal("a second, different plan for the same round was taken")
	}
	got, err := tier.Plan(ctx, 3)
	if err != nil || string(got) != "plan A" {
		t.Fatalf("plan %q, %v", got, err)
	}
}

// TestModelsAreSeparate shows two coordinators sharing a cluster without seeing each other's
// rounds or devices.
func TestModelsAreSeparate(t *testing.T) {
	typing := embeddedTier(t, "typing")
	ctx := context.Background()
	mouse, err := Open(ctx, typing.js.Conn(), Config{Model: "mouse.v2", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tier := range []*Tier{typing, mouse} {
		if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
			t.Fatal(err)
		}
		if _, err := tier.Accept(ctx, 1, "dev-1", []byte("update of dev-1"), Stamp{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := typing.PutDevice(ctx, "dev.1", []byte("typing record")); err != nil {
		t.Fatal(err)
	}
	if _, err := mouse.Device(ctx, "dev.1"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("mouse sees typing's device: %v", err)
	}
	rec, err := typing.Device(ctx, "dev.1")
	if err != nil || string(rec) != "typing record" {
		t.Fatalf("record %q, %v", rec, err)
	}
	if err := typing.DeleteDevice(ctx, "dev.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := typing.Device(ctx, "dev.1"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("deleted device: %v", err)
	}
	if _, err := typing.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := followed(t, typing, 1); !slices.Equal(got, []string{"dev-1"}) {
		t.Fatalf("typing's round holds %v", got)
	}
	if err := typing.Forget(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := typing.Accept(ctx, 1, "dev-1", []byte("update of dev-1"), Stamp{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("an update for a forgotten round: %v, want ErrClosed", err)
	}
	if _, err := mouse.Accept(ctx, 1, "dev-1", []byte("x"), Stamp{}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("typing's Forget touched mouse's round: %v", err)
	}
}

func TestToken(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dev-1", "dev-1"},
		{"dev.1", "~6465762e31"},
		{"~x", "~7e78"},
	} {
		if got := token(tc.in); got != tc.want {
			t.Errorf("token(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := untoken(token(tc.in)); err != nil || back != tc.in {
			t.Errorf("untoken(token(%q)) = %q, %v", tc.in, back, err)
		}
	}
}

// TestSendingAgainAfterClose is a device that did not hear its answer and sends again once
// the round is closed: it hears that its update is in, and one that never was hears the
// round is closed.
func TestSendingAgainAfterClose(t *testing.T) {
	tier := embeddedTier(t, "typing")
	ctx := context.Background()
	if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, 1, "in", []byte("update of in"), Stamp{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, 1, "in", []byte("update of in"), Stamp{}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("the update that is in, again: %v, want ErrDuplicate", err)
	}
	if _, err := tier.Accept(ctx, 1, "late", []byte("update of late"), Stamp{}); !errors.Is(err, ErrClosed) {
		t.Errorf("an update after the close: %v, want ErrClosed", err)
	}
}
