package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
)

// Blobs is an object store for the updates' bytes (Config.Blobs): package store's directory and
// MinIO stores are ones.
//
// A round's stream then holds each update's SHA-256 and headers (about 11 kB with the device
// record the writer stamps it with) where it held the 3.4 MB update, which every server of the
// stream stored and replicated: the bound on a tier's size that frontends did not divide. The
// hash in the stream, which the compare-and-set made the round's one update of the device,
// decides which bytes are the update: a reader refuses any others (ErrBlobMismatch), so
// whoever can write to the object store can make an update unreadable but never change it.
type Blobs interface {
	Put(ctx context.Context, key string, data []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	List(ctx context.Context, prefix string) ([]string, error)
	Delete(ctx context.Context, key string) error
}

// ErrBlobMismatch means the object store holds other bytes than the update the round's stream
// names by their hash.
var ErrBlobMismatch = errors.New("cluster: the object store's copy of an update is not the update the round holds")

// hdrBlob is the header of an update whose bytes are in the object store: their SHA-256, hex.
const hdrBlob = "Vigil-Blob"

// blobPrefix is where the round's updates are in the object store.
func (t *Tier) blobPrefix(round uint64) string {
	return "tier/" + t.model + "/" + strconv.FormatUint(round, 10) + "/"
}

// putBlob stores update in the object store, named by its hash, which it returns hex-encoded.
// The same bytes are the same object, so a device's update sent again is stored over itself.
func (t *Tier) putBlob(ctx context.Context, round uint64, update []byte) (string, error) {
	sum := sha256.Sum256(update)
	name := hex.EncodeToString(sum[:])
	if err := t.blobs.Put(ctx, t.blobPrefix(round)+name, update); err != nil {
		return "", fmt.Errorf("cluster: store an update of round %d in the object store: %w", round, err)
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
		return Update{}, fmt.Errorf("%w: round %d, update %d names %q", ErrBlobMismatch, round, u.Seq, name)
	}
	if t.blobs == nil {
		return Update{}, fmt.Errorf("cluster: round %d's update %d is in the object store, and this process was given none (the tier's coordinators and frontends need the same --tier-blobs)", round, u.Seq)
	}
	data, err := t.blobs.Get(ctx, t.blobPrefix(round)+name)
	if err != nil {
		return Update{}, fmt.Errorf("cluster: read round %d's update %d from the object store: %w", round, u.Seq, err)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != name {
		return Update{}, fmt.Errorf("%w: round %d, update %d of device %q", ErrBlobMismatch, round, u.Seq, u.Device)
	}
	u.Data = data
	return u, nil
}

// forgetBlobs deletes the round's updates from the object store, several at a time: a round of
// 10,000 updates is 10,000 objects.
func (t *Tier) forgetBlobs(ctx context.Context, round uint64) error {
	keys, err := t.blobs.List(ctx, t.blobPrefix(round))
	if err != nil {
		return fmt.Errorf("cluster: forget round %d's updates in the object store: %w", round, err)
	}
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
