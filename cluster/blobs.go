package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilauth/vigil/store"
)

// Blobs is an object store for the updates' bytes (Config.Blobs): package store's directory and
// MinIO stores are ones.
//
// A round's stream then holds each update's SHA-256 and headers (about 11 kB with the device
// record the writer stamps it with) where it held the 3.4 MB update, which every server of the
// stream stored and replicated: the bound on a tier's size that frontends did not divide. The
// hash in the stream, which the compare-and-set made the round's one update of the device,
// decides which bytes are the update: a reader refuses any others (ErrBlobLost), so whoever
// can write to the object store can make an update unreadable, dropping it from its round,
// but never change it.
type Blobs interface {
	Put(ctx context.Context, key string, data []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, key string) error
}

// ErrBlobLost means the object store does not hold the update the round's stream names by its
// hash: no object, or one of other bytes. Reading it again will not help.
var ErrBlobLost = errors.New("cluster: the object store does not hold the update the round holds")

// blobDeleteWait bounds a delete Accept makes after it failed, on the device's call.
const blobDeleteWait = 10 * time.Second

// dropBlob deletes device's object named name, whatever ctx's state: its caller is done.
func (t *Tier) dropBlob(ctx context.Context, round uint64, device, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), blobDeleteWait)
	defer cancel()
	_ = t.blobs.Delete(ctx, t.blobKey(round, device, name))
}

// hdrBlob is the header of an update whose bytes are in the object store: their SHA-256, hex.
const hdrBlob = "Vigil-Blob"

// blobPrefix is where the round's updates are in the object store.
func (t *Tier) blobPrefix(round uint64) string {
	return "tier/" + t.model + "/" + strconv.FormatUint(round, 10) + "/"
}

// blobKey is where device's update named name (its SHA-256, hex) is: under the device, so that
// the same bytes stored for two devices are two objects, and deleting one's leaves the other's.
func (t *Tier) blobKey(round uint64, device, name string) string {
	d := sha256.Sum256([]byte(device))
	return t.blobPrefix(round) + hex.EncodeToString(d[:16]) + "-" + name
}

// putBlob stores update in the object store, named by its hash, which it returns hex-encoded.
// The same bytes are the same object, so a device's update sent again is stored over itself.
func (t *Tier) putBlob(ctx context.Context, round uint64, device string, update []byte) (string, error) {
	sum := sha256.Sum256(update)
	name := hex.EncodeToString(sum[:])
	if err := t.blobs.Put(ctx, t.blobKey(round, device, name), update); err != nil {
		return "", fmt.Errorf("in the object store: %w", err)
	}
	return name, nil
}

// withBlob returns u with its bytes read from the object store when its message named them by
// their hash (h), and checked against it.
func (t *Tier) withBlob(ctx context.Context, round uint64, u Update, h nats.Header) (Update, error) {
	name := h.Get(hdrBlob)
	if name == "" {
		return u, nil
	}
	want, err := hex.DecodeString(name)
	if err != nil || len(want) != sha256.Size {
		return Update{}, fmt.Errorf("%w: round %d, update %d names %q", ErrBlobLost, round, u.Seq, name)
	}
	if t.blobs == nil {
		return Update{}, fmt.Errorf("cluster: round %d's update %d is in the object store, and this process was given none (the tier's coordinators and frontends need the same --tier-blobs)", round, u.Seq)
	}
	data, err := t.blobs.Get(ctx, t.blobKey(round, u.Device, name))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Update{}, fmt.Errorf("%w: round %d, update %d of device %q: %w", ErrBlobLost, round, u.Seq, u.Device, err)
	case err != nil:
		return Update{}, fmt.Errorf("cluster: read round %d's update %d from the object store: %w", round, u.Seq, err)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != name {
		return Update{}, fmt.Errorf("%w: round %d, update %d of device %q: other bytes", ErrBlobLost, round, u.Seq, u.Device)
	}
	u.Data = data
	return u, nil
}

// forgetBlobs deletes the round's updates from the object store, several at a time: a round of
// 10,000 updates is 10,000 objects.
func (t *Tier) forgetBlobs(ctx context.Context, round uint64) error {
	// Every round up to this one: an earlier Forget that failed, or a leader that died between
	// deleting a round's stream and its objects, left objects no stream names any more.
	model := "tier/" + t.model + "/"
	keys, err := t.blobs.List(ctx, model)
	if err != nil {
		return fmt.Errorf("cluster: forget round %d's updates in the object store: %w", round, err)
	}
	keys = slices.DeleteFunc(keys, func(key string) bool {
		r, _, _ := strings.Cut(strings.TrimPrefix(key, model), "/")
		n, err := strconv.ParseUint(r, 10, 64)
		return err != nil || n > round
	})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan string)
	)
	for range min(len(keys), forgetWorkers) {
		wg.Go(func() {
			for key := range next {
				if err := t.blobs.Delete(ctx, key); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, key := range keys {
		next <- key
	}
	close(next)
	wg.Wait()
	if first != nil {
		return fmt.Errorf("cluster: forget round %d's updates in the object store: %w", round, first)
	}
	return nil
}

// forgetWorkers is how many deletes forgetBlobs has in flight.
const forgetWorkers = 16

// The leader names its object store in the tier, so that a frontend given another one is
// refused at start rather than acknowledging updates the leader cannot read: the store holds a
// random identity under blobsMarker, and the devices bucket holds it, or blobsOff, under the
// model's blobsKey.
const (
	blobsMarker = "store-id"
	blobsOff    = "off"
)

// ErrOtherBlobs means a frontend's object store is not its round leader's.
var ErrOtherBlobs = errors.New("cluster: the object store is not the round leader's")

// blobsKey is the devices bucket's key for the leader's object store: device keys are the
// model and a hex-encoded ID, which "blobs" is not.
func (t *Tier) blobsKey() string { return t.model + ".blobs" }

// MarkBlobs records this Tier's object store as the round leader's, or that it keeps none. Only
// the leader calls it, once it holds the lease.
func (t *Tier) MarkBlobs(ctx context.Context) error {
	id := blobsOff
	if t.blobs != nil {
		var err error
		if id, err = t.blobsID(ctx, true); err != nil {
			return err
		}
	}
	if _, err := t.devices.PutString(ctx, t.blobsKey(), id); err != nil {
		return fmt.Errorf("cluster: record the object store in the tier: %w", err)
	}
	return nil
}

// CheckBlobs refuses this Tier's object store if it is not the one the round leader recorded
// (MarkBlobs). A Tier without one always passes: its updates carry their bytes. So does any
// before a leader recorded its store, which is why a frontend checks again as rounds go.
func (t *Tier) CheckBlobs(ctx context.Context) error {
	if t.blobs == nil {
		return nil
	}
	e, err := t.devices.Get(ctx, t.blobsKey())
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("cluster: read the leader's object store from the tier: %w", err)
	case string(e.Value()) == blobsOff:
		return fmt.Errorf("%w: the leader keeps the updates' bytes in the tier's streams (--tier-blobs off)", ErrOtherBlobs)
	}
	id, err := t.blobsID(ctx, false)
	if err != nil {
		return err
	}
	if id != string(e.Value()) {
		return fmt.Errorf("%w: it is store %s, the leader's is %s", ErrOtherBlobs, id, e.Value())
	}
	return nil
}

// blobsID returns the object store's identity, making one if create and it has none.
func (t *Tier) blobsID(ctx context.Context, create bool) (string, error) {
	key := "tier/" + t.model + "/" + blobsMarker
	id, err := t.blobs.Get(ctx, key)
	switch {
	case err == nil && len(id) > 0:
		return string(id), nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("cluster: the object store's identity: %w", err)
	case !create:
		return "", fmt.Errorf("%w: it has no identity; the leader gives its own one at start", ErrOtherBlobs)
	}
	fresh := rand.Text()
	if err := t.blobs.Put(ctx, key, []byte(fresh)); err != nil {
		return "", fmt.Errorf("cluster: the object store's identity: %w", err)
	}
	return fresh, nil
}
