package release

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// RefusedRelease is a release whose files matched no stored copy when Fetch last read them
// (tampered files, or a copy truncated by a sync or a short write), and when Fetch reads them
// again.
type RefusedRelease struct {
	ReleaseRef
	At       time.Time // the last refusal
	Retry    time.Time // when a Fetch reads the files again
	Refusals int       // how many Fetches refused it in a row
	Err      error     // the last refusal, wrapping ErrHashMismatch
}

// refuseFiles records that the files of r matched no stored copy at now, and returns err with
// when they are read again. The first retry comes RefusedRetryMin later, each next one twice as
// late, up to RefusedRetryMax: a store repaired is picked up without a restart, and a store
// that goes on serving bad files (or a thief of the release key signing files no one stored)
// costs a device one release's download per back-off, not one per poll.
func (v *Verifier) refuseFiles(r ReleaseRef, now time.Time, err error) error {
	if v.refused == nil {
		v.refused = map[ReleaseRef]*RefusedRelease{}
	}
	// Releases at or below the floor are refused as rollbacks before they are read.
	maps.DeleteFunc(v.refused, func(ref ReleaseRef, _ *RefusedRelease) bool { return ref.Version <= v.version })
	x := v.refused[r]
	if x == nil {
		x = &RefusedRelease{ReleaseRef: r}
		if len(v.refused) >= maxRefused {
			// Forget the oldest version's: the pointer has moved past it.
			oldest := slices.MinFunc(slices.Collect(maps.Keys(v.refused)), func(a, b ReleaseRef) int {
				return cmp.Compare(a.Version, b.Version)
			})
			delete(v.refused, oldest)
		}
		v.refused[r] = x
	}
	delay := RefusedRetryMin
	for i := 0; i < x.Refusals && delay < RefusedRetryMax; i++ {
		delay *= 2
	}
	x.Refusals++
	x.At, x.Retry, x.Err = now, now.Add(min(delay, RefusedRetryMax)), err
	return fmt.Errorf("%w; %s v%d not read again before %s", err, v.model, r.Version, x.Retry.Format(time.RFC3339))
}

// refusedNow returns the error for a pointer naming r while its files are refused, or nil once
// they are to be read again. A clock set back before the refusal reads them again too.
func (v *Verifier) refusedNow(r ReleaseRef, now time.Time) error {
	x := v.refused[r]
	if x == nil || !now.Before(x.Retry) || now.Before(x.At) {
		return nil
	}
	return fmt.Errorf("release: %s v%d: files refused at %s (%d time(s) in a row), not read again before %s: %w",
		v.model, r.Version, x.At.Format(time.RFC3339), x.Refusals, x.Retry.Format(time.RFC3339), x.Err)
}

// Refused lists the releases whose files matched no stored copy, and when Fetch reads them
// again, by version. A release drops out once its files verify or the floor passes it.
func (v *Verifier) Refused() []RefusedRelease {
	var out []RefusedRelease
	for _, x := range v.refused {
		if x.Version > v.version {
			out = append(out, *x)
		}
	}
	slices.SortFunc(out, func(a, b RefusedRelease) int { return cmp.Compare(a.Version, b.Version) })
	return out
}
