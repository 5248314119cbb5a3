package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestLease(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	const ttl = 2 * time.Second
	a, err := tier.Lease(ctx, "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tier.Lease(ctx, "b", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Acquire(ctx, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if h, err := b.Holder(ctx); err != nil || h != "a" {
		t.Fatalf("holder %q, %v", h, err)
	}
	// b waits while a renews.
	acquired := make(chan error, 1)
	go func() { acquired <- b.Acquire(ctx, 50*time.Millisecond) }()
	for range 6 {
		time.Sleep(ttl / 4)
		if err := a.Renew(ctx); err != nil {
			t.Fatalf("renewing a held lease: %v", err)
		}
	}
	select {
	case err := <-acquired:
		t.Fatalf("b took a lease a renewed: %v", err)
	default:
	}
	// a stops renewing (its servers are out of reach, say): the servers let b in once the
	// TTL has passed, and a, which counts itself out after half of it, cannot renew.
	stopped := time.Now()
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * ttl):
		t.Fatal("b did not take the lease a stopped renewing")
	}
	if took := time.Since(stopped); took < ttl/2 {
		t.Fatalf("b took the lease %v after a's last renewal, before the TTL of %v", took, ttl)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a renewing after %v without: %v, want ErrLeaseLost", time.Since(stopped), err)
	}
	if h, _ := b.Holder(ctx); h != "b" {
		t.Fatalf("holder %q, want b", h)
	}
	// a cannot renew its way back: the revision it holds is not the lease's.
	a.mu.Lock()
	a.renewed = time.Now()
	a.mu.Unlock()
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("the old holder renewing: %v, want ErrLeaseLost", err)
	}
	// b releases: a takes over at once.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	quick, cancel2 := context.WithTimeout(ctx, ttl/2)
	defer cancel2()
	if err := a.Acquire(quick, 20*time.Millisecond); err != nil {
		t.Fatalf("taking a released lease: %v", err)
	}
}

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("bucket: %w", context.DeadlineExceeded), true},
		{nats.ErrTimeout, true},
		{nats.ErrNoResponders, true},
		{jetstream.ErrNoStreamResponse, true},
		{fmt.Errorf("cluster: %w", &jetstream.APIError{Code: 503, ErrorCode: jetstreamUnavailable}), true},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstreamNoPeers, Description: "no suitable peers for placement, peer offline"}, true},
		{context.Canceled, false},
		{jetstream.ErrKeyExists, false},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{jetstream.ErrJetStreamNotEnabled, false},
		{errors.New("nats: authorization violation"), false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
