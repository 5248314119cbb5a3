package release

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/vigilauth/vigil/store"
)

// errBudget means a read would take more than what is left of one Fetch's MaxFetchBytes. It
// wraps store.ErrTooLarge: the object may be genuine, but it is too large for this fetch; the
// device tries again on its next poll.
var errBudget = fmt.Errorf("%w: over the fetch's read budget (MaxFetchBytes)", store.ErrTooLarge)

// errUnchecked marks a refusal by firstVerified that did not check every stored version: the
// genuine one may be among those not read, so the release must not be written off.
var errUnchecked = errors.New("not every stored version was checked")

// budget is what one Fetch may still read from the store, every read together. Each read
// reserves its worst case before it starts, limit+1 bytes for each stored version it may read
// (a store reads one byte past the limit to find an object that is too large) and, from a
// store that keeps versions, store.MaxListingBytes for the listing of them, and is then
// charged what it returned and what the listing took: the bound holds against a store that
// answers every read with as many bytes as it allows.
type budget struct {
	left, total int64
}

func newBudget(total int64) *budget { return &budget{left: total, total: total} }

// fits returns how many versions of at most limit bytes the budget can still pay for, at most
// want, beside reserve bytes.
func (b *budget) fits(limit int64, want int, reserve int64) int {
	left := b.left - reserve
	if left <= 0 {
		return 0
	}
	return int(min(left/(limit+1), int64(want)))
}

// listing is what a read of versions of an object in st reserves for listing them: a store
// that keeps versions lists them first (a review found a listing read without bound, outside
// the budget), one that does not reads the object alone.
func listing(st store.Store) int64 {
	if _, ok := st.(store.VersionReader); ok {
		return store.MaxListingBytes
	}
	return 0
}

// refuse is the error for a read of size bytes the budget cannot pay for.
func (b *budget) refuse(size int64) error {
	return fmt.Errorf("%w: %d bytes to read, %d of %d left", errBudget, size, max(b.left, 0), b.total)
}

// charge records a read that returned data, or, when it failed, the worst case: the store
// does not say how much it read before it gave up, except that a missing object cost nothing.
func (b *budget) charge(data [][]byte, err error, limit int64, n int) {
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			b.left -= int64(n) * (limit + 1)
		}
		return
	}
	for _, d := range data {
		b.left -= int64(len(d))
	}
}

// get reads the mutable object key (the pointer), of at most limit bytes.
func (b *budget) get(ctx context.Context, st store.Store, key string, limit int64) ([]byte, error) {
	if b.fits(limit, 1, 0) < 1 {
		return nil, b.refuse(limit)
	}
	data, err := store.GetLimit(ctx, st, key, limit)
	b.charge([][]byte{data}, err, limit, 1)
	return data, err
}

// versions reads up to n stored versions of key, oldest first, each of at most limit bytes.
func (b *budget) versions(ctx context.Context, st store.Store, key string, limit int64, n int) ([][]byte, error) {
	if b.fits(limit, n, listing(st)) < n {
		return nil, b.refuse(limit + listing(st))
	}
	var listed atomic.Int64
	vs, err := store.GetVersions(store.WithListingCounter(ctx, &listed), st, key, limit, n)
	b.charge(vs, err, limit, n)
	b.left -= listed.Load()
	return vs[:min(len(vs), n)], err // a store that returns more than asked is charged for it
}

// firstVerified returns the first stored version of the write-once object key, oldest first,
// that check accepts. The oldest version is the genuine one unless junk was written under the
// key before the publisher wrote it, so it is read and checked alone first: versions written
// after it (a plain PUT or a delete over the locked object) cost nothing. Only when it is
// refused are up to MaxObjectVersions read, as many as the budget pays for (the store reads
// them all before any is checked, so the first is read again). The error names the key and,
// if no version is accepted, wraps the first version's refusal.
func firstVerified(ctx context.Context, st store.Store, key string, limit int64, b *budget, check func([]byte) error) ([]byte, error) {
	vs, err := b.versions(ctx, st, key, limit, 1)
	if err == nil && len(vs) == 0 {
		err = fmt.Errorf("%w: %s: the store listed no version", store.ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("release: fetch %s: %w", key, err)
	}
	first := check(vs[0])
	if first == nil {
		return vs[0], nil
	}
	if _, ok := st.(store.VersionReader); !ok {
		return nil, fmt.Errorf("%s: %w", key, first) // no other version to try
	}
	n := b.fits(limit, MaxObjectVersions, listing(st))
	if n < 2 {
		return nil, fmt.Errorf("%s: %w; its other versions not read (%w): %w", key, first, errUnchecked, b.refuse(limit+listing(st)))
	}
	vs, err = b.versions(ctx, st, key, limit, n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; its other versions (%w): %w", key, first, errUnchecked, err)
	}
	for _, data := range vs {
		if check(data) == nil {
			return data, nil
		}
	}
	if len(vs) == n && n < MaxObjectVersions {
		// The budget cut the versions short; the genuine one may be among those not read.
		return nil, fmt.Errorf("%s: %w; versions after the oldest %d not read (%w): %w", key, first, n, errUnchecked, b.refuse(limit+listing(st)))
	}
	return nil, fmt.Errorf("%s: %w", key, first)
}
