package pki

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Tokens is the store of one-time enrolment tokens, a file of hashed records. Every token is bound
// to the one device ID it may enrol: a token that could enrol any ID would let whoever holds it
// take the name of a device already enrolled.
//
// Each change is a locked read-modify-write of the file, written atomically, so several
// processes (an enrolment authority and `vigil enrol token`) may share it, and a token redeemed
// stays redeemed across restarts. Tokens is safe for concurrent use.
type Tokens struct {
	path string
	mu   sync.Mutex
	// cache is the file as last read, for Check: a flood of enrolment attempts with made-up
	// tokens must not parse the whole file each time. Redeem always rereads the file.
	cache struct {
		stamp fileStamp
		recs  []tokenRecord
	}
}

// OpenTokens opens the token file at path; a missing file is an empty store, created on the first
// Issue. An existing file must parse.
func OpenTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if _, err := t.read(); err != nil {
		return nil, err
	}
	return t, nil
}

// Issue creates a token that may enrol deviceID once, dated TokenDate(now) and valid for ttl
// from then. Only its hash is stored; the token itself is returned once, here. Hand it out no
// earlier than its date (`vigil enrol token` waits for it): a revocation covers the tokens
// dated up to it, so a token handed out before its date would outlive a revocation made in
// between.
func (t *Tokens) Issue(deviceID string, ttl time.Duration, now time.Time) (string, error) {
	if err := vigilv1.ValidID("device ID", deviceID); err != nil {
		return "", fmt.Errorf("pki: %w", err)
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", fmt.Errorf("pki: token lifetime %v is outside (0, %v]", ttl, MaxTokenTTL)
	}
	var raw [TokenBytes]byte
	rand.Read(raw[:]) // never fails (crypto/rand since Go 1.24)
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	hash, err := tokenHash(token)
	if err != nil {
		return "", err
	}
	issued := TokenDate(now)
	err = t.update(now.UTC(), func(recs []tokenRecord) ([]tokenRecord, error) {
		if len(recs) >= MaxTokens {
			return nil, fmt.Errorf("%w: %d", ErrTooManyTokens, len(recs))
		}
		return append(recs, tokenRecord{Hash: hash, DeviceID: deviceID, Issued: issued, Expires: issued.Add(ttl)}), nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// TokenDate is the date Issue gives a token issued at now: the first whole second (UTC) not
// before now. A token's date becomes the issue time of the device record it buys, the moment
// the enrolment was authorised, which the coordinator compares with the device's last
// revocation (Enroller.Enroll). Records carry whole seconds: a token dated now, with its
// fraction of a second, would buy a record dated before a revocation made earlier in the same
// second, and be refused after it was used up.
func TokenDate(now time.Time) time.Time {
	now = now.UTC()
	if d := now.Truncate(time.Second); !d.Before(now) {
		return d
	}
	return now.Truncate(time.Second).Add(time.Second)
}

// Check reports whether Redeem would accept token for deviceID at now, without redeeming it,
// and returns when the token was issued.
func (t *Tokens) Check(token, deviceID string, now time.Time) (issued time.Time, err error) {
	hash, err := tokenHash(token)
	if err != nil {
		return time.Time{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	recs, err := t.readCached()
	if err != nil {
		return time.Time{}, err
	}
	i, err := find(recs, hash, deviceID, now)
	if err != nil {
		return time.Time{}, err
	}
	return recs[i].Issued, nil
}

// Redeem uses token up for deviceID at now. It succeeds exactly once per token, across
// processes and restarts; the errors say why it did not: ErrTokenUnknown, ErrTokenUsed,
// ErrTokenExpired or ErrTokenWrongDevice.
//
// A token is filed as redeemed at now, or at its issue time if now is earlier: a clock
// stepped back since the token was issued (or another host's, a little behind) must not
// write a redemption before the issue.
func (t *Tokens) Redeem(token, deviceID string, now time.Time) error {
	hash, err := tokenHash(token)
	if err != nil {
		return err
	}
	now = now.UTC()
	return t.update(now, func(recs []tokenRecord) ([]tokenRecord, error) {
		i, err := find(recs, hash, deviceID, now)
		if err != nil {
			return nil, err
		}
		at := now
		if at.Before(recs[i].Issued) {
			at = recs[i].Issued
		}
		recs[i].Redeemed = &at
		return recs, nil
	})
}

func find(recs []tokenRecord, hash, deviceID string, now time.Time) (int, error) {
	i := slices.IndexFunc(recs, func(r tokenRecord) bool { return r.Hash == hash })
	if i < 0 {
		return 0, ErrTokenUnknown
	}
	r := recs[i]
	switch {
	case r.Redeemed != nil:
		return 0, fmt.Errorf("%w: at %s", ErrTokenUsed, r.Redeemed.Format(time.RFC3339))
	case !now.Before(r.Expires):
		return 0, fmt.Errorf("%w: at %s", ErrTokenExpired, r.Expires.Format(time.RFC3339))
	case r.DeviceID != deviceID:
		return 0, fmt.Errorf("%w: it may enrol %q, not %q", ErrTokenWrongDevice, r.DeviceID, deviceID)
	}
	return i, nil
}

// TokenStats counts the records of the token file.
type TokenStats struct {
	Outstanding, Redeemed, Expired int
}

// Stats counts the tokens at now.
func (t *Tokens) Stats(now time.Time) (TokenStats, error) {
	t.mu.Lock()
	recs, err := t.read()
	t.mu.Unlock()
	var s TokenStats
	for _, r := range recs {
		switch {
		case r.Redeemed != nil:
			s.Redeemed++
		case !now.Before(r.Expires):
			s.Expired++
		default:
			s.Outstanding++
		}
	}
	return s, err
}

// update applies change to the records under the process and file locks, drops records expired
// longer than TokenRetention, and writes the result atomically. Nothing is written if change
// fails.
func (t *Tokens) update(now time.Time, change func([]tokenRecord) ([]tokenRecord, error)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	unlock, err := lockFile(t.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := t.read()
	if err != nil {
		return err
	}
	recs = slices.DeleteFunc(recs, func(r tokenRecord) bool { return now.Sub(r.Expires) > TokenRetention })
	recs, err = change(recs)
	if err != nil {
		return err
	}
	// Checked as a reader will check it: a file this writes is never one its reader refuses.
	if err := checkTokenRecords(recs); err != nil {
		return fmt.Errorf("pki: %s: refusing to write %w", t.path, err)
	}
	data, err := encodeTokenFile(recs)
	if err != nil {
		return err
	}
	return writeFileAtomic(t.path, data, 0o600, false)
}

// readCached returns the records, rereading the file only if its stamp changed. A stale answer
// is harmless here: only Check uses it, and Redeem decides on a fresh read under the file lock.
func (t *Tokens) readCached() ([]tokenRecord, error) {
	st, err := stampOf(t.path)
	if err != nil {
		return nil, err
	}
	if st.exists && t.cache.stamp.same(st) {
		return t.cache.recs, nil
	}
	recs, err := t.read()
	if err != nil {
		return nil, err
	}
	t.cache.stamp, t.cache.recs = st, recs
	return recs, nil
}

func (t *Tokens) read() ([]tokenRecord, error) {
	data, _, err := readFileLimited(t.path, MaxTokenFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	recs, err := decodeTokenFile(data)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", t.path, err)
	}
	return recs, nil
}
