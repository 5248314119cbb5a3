package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/store"
)

// blobTiers starts an embedded server and opens two tiers of one model on it: one keeping the
// updates it accepts in blobs, and one without an object store.
func blobTiers(t *testing.T, blobs Blobs) (withBlobs, without *Tier) {
	t.Helper()
	ctx := context.Background()
	nc := embeddedConn(t)
	withBlobs, err := Open(ctx, nc, Config{Model: "typing", Replicas: 1, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	if without, err = Open(ctx, nc, Config{Model: "typing", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	return withBlobs, without
}

// dirTier is a tier keeping the updates' bytes in a directory of the test's own, with round 1
// open.
func dirTier(t *testing.T) (*Tier, *store.FS) {
	t.Helper()
	blobs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tier, _ := blobTiers(t, blobs)
	if err := tier.PublishPlan(context.Background(), 1, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	return tier, blobs
}

// updateBytes is a device's update of n bytes, different for every device.
func updateBytes(device string, n int) []byte {
	return bytes.Repeat([]byte("update of "+device+";"), n/(len(device)+11)+1)[:n]
}

// TestBlobsKeepUpdatesOutOfTheStream: with an object store the round's stream holds a few
// hundred bytes per update however large it is, readers get the update whole, a resend is a
// duplicate that leaves the stored update readable, an update the round refused leaves no
// object, and forgetting the round deletes its objects. On a directory and on MinIO.
func TestBlobsKeepUpdatesOutOfTheStream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		blobs func(t *testing.T) Blobs
	}{
		{"directory", func(t *testing.T) Blobs {
			st, err := store.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"minio", func(t *testing.T) Blobs { return miniotest.Shared(t, "vigil-tier") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobs := tc.blobs(t)
			tier, plain := blobTiers(t, blobs)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
				t.Fatal(err)
			}
			const size = 1 << 20
			devices := []string{"a", "b", "c.3"}
			var seqs []uint64
			for _, d := range devices {
				seq, err := tier.Accept(ctx, 1, d, updateBytes(d, size), Stamp{Record: []byte("record of " + d)})
				if err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, seq)
			}
			if _, err := tier.Accept(ctx, 1, "a", updateBytes("a", size), Stamp{}); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("a's update again: %v, want ErrDuplicate", err)
			}
			if _, err := tier.Accept(ctx, 1, "a", updateBytes("b", size), Stamp{}); !errors.Is(err, ErrDuplicate) {
				t.Fatalf("another update of a: %v, want ErrDuplicate", err)
			}
			s, err := tier.js.Stream(ctx, tier.StreamName(1))
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Bytes > 4096 {
				t.Errorf("the stream holds %d bytes for 3 updates of %d bytes", info.State.Bytes, size)
			}
			for i, d := range devices {
				u, err := tier.Fetch(ctx, 1, seqs[i])
				if err != nil {
					t.Fatal(err)
				}
				if u.Device != d || !bytes.Equal(u.Data, updateBytes(d, size)) || string(u.Record) != "record of "+d {
					t.Errorf("Fetch(%d) = device %q, %d bytes, record %q", seqs[i], u.Device, len(u.Data), u.Record)
				}
			}
			if _, err := tier.Close(ctx, 1); err != nil {
				t.Fatal(err)
			}
			var got []string
			err = tier.Follow(ctx, 1, func(u Update) error {
				if !bytes.Equal(u.Data, updateBytes(u.Device, size)) {
					return fmt.Errorf("device %q: %d bytes, not its update", u.Device, len(u.Data))
				}
				got = append(got, u.Device)
				return nil
			})
			if err != nil || !slices.Equal(got, devices) {
				t.Fatalf("Follow: %v, %v; want %v", got, err, devices)
			}
			if _, err := plain.Fetch(ctx, 1, seqs[0]); err == nil || !bytes.Contains([]byte(err.Error()), []byte("--tier-blobs")) {
				t.Errorf("a reader without the object store: %v, want an error naming --tier-blobs", err)
			}
			if _, err := tier.Accept(ctx, 1, "late", updateBytes("late", size), Stamp{}); !errors.Is(err, ErrClosed) {
				t.Fatalf("an update after the close: %v, want ErrClosed", err)
			}
			keys, err := blobs.List(ctx, tier.blobPrefix(1))
			if err != nil || len(keys) != len(devices) {
				t.Fatalf("after the close the store holds %q (%v), want the %d stored updates", keys, err, len(devices))
			}
			if err := tier.Forget(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if keys, err := blobs.List(ctx, ""); err != nil || len(keys) != 0 {
				t.Errorf("after Forget the store holds %q (%v)", keys, err)
			}
		})
	}
}

// TestAttackBlobSwapped is whoever can write to the object store (its operator, or a stolen
// credential) replacing a stored update with other bytes, one of another device's updates or
// garbage, or deleting it: every reader refuses it, so the round can lose the update but never
// count other bytes as it.
func TestAttackBlobSwapped(t *testing.T) {
	tier, blobs := dirTier(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	victim, err := tier.Accept(ctx, 1, "victim", updateBytes("victim", 4096), Stamp{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, 1, "other", updateBytes("other", 4096), Stamp{}); err != nil {
		t.Fatal(err)
	}
	keys, err := blobs.List(ctx, tier.blobPrefix(1))
	if err != nil || len(keys) != 2 {
		t.Fatalf("stored %q, %v", keys, err)
	}
	u, err := tier.Fetch(ctx, 1, victim)
	if err != nil {
		t.Fatal(err)
	}
	key := ""
	for _, k := range keys {
		if got, _ := blobs.Get(ctx, k); bytes.Equal(got, u.Data) {
			key = k
		}
	}
	for _, tc := range []struct {
		name    string
		replace func() error
		want    error
	}{
		{"another device's update", func() error { return blobs.Put(ctx, key, updateBytes("other", 4096)) }, ErrBlobLost},
		{"one byte changed", func() error {
			b := bytes.Clone(u.Data)
			b[100] ^= 1
			return blobs.Put(ctx, key, b)
		}, ErrBlobLost},
		{"empty", func() error { return blobs.Put(ctx, key, nil) }, ErrBlobLost},
		{"deleted", func() error { return blobs.Delete(ctx, key) }, ErrBlobLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.replace(); err != nil {
				t.Fatal(err)
			}
			if got, err := tier.Fetch(ctx, 1, victim); !errors.Is(err, tc.want) {
				t.Errorf("Fetch = %d bytes, %v; want %v", len(got.Data), err, tc.want)
			}
			if err := blobs.Put(ctx, key, u.Data); err != nil {
				t.Fatal(err)
			}
			if _, err := tier.Fetch(ctx, 1, victim); err != nil {
				t.Errorf("once restored: %v", err)
			}
		})
	}
}

// TestBlobStoreDown: while the object store is down an update is not stored, and the stream
// does not hold it (its device hears an error and sends it again), and a stored update cannot
// be read; once the store is back both work.
func TestBlobStoreDown(t *testing.T) {
	srv := miniotest.Start(t)
	tier, _ := blobTiers(t, srv.Store(t, "vigil-tier"))
	ctx := context.Background()
	if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	seq, err := tier.Accept(ctx, 1, "a", updateBytes("a", 4096), Stamp{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	down, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = tier.Accept(down, 1, "b", updateBytes("b", 4096), Stamp{})
	if err == nil || errors.Is(err, ErrDuplicate) || errors.Is(err, ErrClosed) {
		t.Fatalf("an update while the store is down: %v, want an error to send it again on", err)
	}
	if _, ok, err := tier.Stored(ctx, 1, "b"); ok || err != nil {
		t.Fatalf("the stream holds b's update (%v, %v) though its bytes were not stored", ok, err)
	}
	if _, err := tier.Fetch(down, 1, seq); err == nil {
		t.Fatal("read a's update with the store down")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, 1, "b", updateBytes("b", 4096), Stamp{}); err != nil {
		t.Fatalf("b sending again once the store is back: %v", err)
	}
	if u, err := tier.Fetch(ctx, 1, seq); err != nil || !bytes.Equal(u.Data, updateBytes("a", 4096)) {
		t.Fatalf("a's update once the store is back: %d bytes, %v", len(u.Data), err)
	}
}

// unansweredInfo is the tier's JetStream whose stream-info requests go unanswered, as while
// the servers elect the stream's leader (one of them just died).
type unansweredInfo struct{ jetstream.JetStream }

func (unansweredInfo) Stream(context.Context, string) (jetstream.Stream, error) {
	return nil, nats.ErrTimeout
}

// TestBlobResendAfterCloseWhileTierSlow: a device's update is stored (the round holds it, by
// its hash), the round is sealed, and the device sends the same update again (it did not hear
// the answer) to a frontend that has not seen the close. The stream refuses it as sealed and
// Stored does not answer: Accept says it does not know, not ErrClosed, and leaves the object
// the stored record names.
func TestBlobResendAfterCloseWhileTierSlow(t *testing.T) {
	tier, _ := dirTier(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	update := updateBytes("a", 4096)
	seq, err := tier.Accept(ctx, 1, "a", update, Stamp{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	js := tier.js
	tier.js = unansweredInfo{js}
	_, err = tier.Accept(ctx, 1, "a", update, Stamp{})
	tier.js = js
	if errors.Is(err, ErrClosed) {
		t.Errorf("the resend of a stored update was told ErrClosed (ROUND_CLOSED) though the round holds it: %v", err)
	}
	if u, err := tier.Fetch(ctx, 1, seq); err != nil || !bytes.Equal(u.Data, update) {
		t.Fatalf("the stored, acknowledged update after the resend: %d bytes, %v", len(u.Data), err)
	}
}

// TestAttackBlobDuplicatesFillTheStore is a device sending other updates for its one task (its
// update encrypted again, with fresh randomness), to fill the object store with 3.4 MB a time:
// each is refused as a duplicate and its object deleted; the stored update, and another
// device's with the same bytes, stay.
func TestAttackBlobDuplicatesFillTheStore(t *testing.T) {
	tier, blobs := dirTier(t)
	ctx := context.Background()
	if _, err := tier.Accept(ctx, 1, "a", updateBytes("a", 4096), Stamp{}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		other := updateBytes("a", 4096)
		other[0] = byte(i)
		if _, err := tier.Accept(ctx, 1, "a", other, Stamp{}); !errors.Is(err, ErrDuplicate) {
			t.Fatal(err)
		}
	}
	if _, err := tier.Accept(ctx, 1, "b", updateBytes("a", 4096), Stamp{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, 1, "b", updateBytes("b", 4096), Stamp{}); !errors.Is(err, ErrDuplicate) {
		t.Fatal(err)
	}
	if keys, _ := blobs.List(ctx, tier.blobPrefix(1)); len(keys) != 2 {
		t.Errorf("the round holds 2 updates and the object store %d objects: %q", len(keys), keys)
	}
	if _, err := tier.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := tier.Follow(ctx, 1, func(u Update) error {
		if !bytes.Equal(u.Data, updateBytes("a", 4096)) {
			return fmt.Errorf("device %q: not its update", u.Device)
		}
		got = append(got, u.Device)
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Follow: %v, %v", got, err)
	}
}

// slowBlobs is an object store that takes longer than followAsk to give an object back, as a
// busy MinIO does with several 3.4 MB reads in flight on a shared link.
type slowBlobs struct{ Blobs }

func (s slowBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	select {
	case <-time.After(followAsk + 100*time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Blobs.Get(ctx, key)
}

// TestBlobFetchSlowStore: Fetch does not bound the object store's read by followAsk, the bound
// of one request to the stream's leader: a store slower than that still gives the update back.
func TestBlobFetchSlowStore(t *testing.T) {
	fs, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tier, _ := blobTiers(t, slowBlobs{fs})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	seq, err := tier.Accept(ctx, 1, "a", updateBytes("a", 4096), Stamp{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Fetch(ctx, 1, seq); err != nil {
		t.Errorf("Fetch with a store that answers in %v: %v", followAsk+100*time.Millisecond, err)
	}
}

// TestBlobForgetEarlierRounds: objects of an earlier round whose Forget failed after its
// stream was deleted (the store was down, or the leader died in between), which nothing names
// any more, are deleted when a later round is forgotten; a later round's are not.
func TestBlobForgetEarlierRounds(t *testing.T) {
	tier, blobs := dirTier(t)
	ctx := context.Background()
	for round := uint64(1); round <= 3; round++ {
		if err := tier.PublishPlan(ctx, round, []byte("plan")); err != nil {
			t.Fatal(err)
		}
		if _, err := tier.Accept(ctx, round, "a", updateBytes("a", 4096), Stamp{}); err != nil {
			t.Fatal(err)
		}
	}
	// Round 1's Forget: the stream went, then the leader died.
	if err := tier.js.DeleteStream(ctx, tier.StreamName(1)); err != nil {
		t.Fatal(err)
	}
	if err := tier.Forget(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if keys, _ := blobs.List(ctx, ""); len(keys) != 1 || !strings.HasPrefix(keys[0], tier.blobPrefix(3)) {
		t.Errorf("after rounds 1 and 2 were forgotten the store holds %q, want round 3's update", keys)
	}
}

// TestBlobsMarkedInTheTier: the round leader records its object store in the tier, and a
// frontend given another store (another directory, or the right one after the leader turned
// the store off) is refused at start, while one given the same store, or none, is not.
func TestBlobsMarkedInTheTier(t *testing.T) {
	ctx := context.Background()
	nc := embeddedConn(t)
	dir := func() Blobs {
		st, err := store.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	open := func(blobs Blobs) *Tier {
		tier, err := Open(ctx, nc, Config{Model: "typing", Replicas: 1, Blobs: blobs})
		if err != nil {
			t.Fatal(err)
		}
		return tier
	}
	leaders, other := dir(), dir()
	if err := open(other).CheckBlobs(ctx); err != nil {
		t.Fatalf("before any leader recorded its store: %v", err)
	}
	if err := open(leaders).MarkBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	if err := open(leaders).MarkBlobs(ctx); err != nil { // a leader that starts again
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		blobs Blobs
		want  error
	}{
		{"the leader's store", leaders, nil},
		{"another store", other, ErrOtherBlobs},
		{"an empty store", dir(), ErrOtherBlobs},
		{"none", nil, nil},
	} {
		if err := open(tc.blobs).CheckBlobs(ctx); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := open(nil).MarkBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	if err := open(leaders).CheckBlobs(ctx); !errors.Is(err, ErrOtherBlobs) {
		t.Errorf("a store when the leader keeps none: %v, want ErrOtherBlobs", err)
	}
}
