package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Revocations is the persisted revocation list, checked on every RPC. Lookups read an immutable
// in-memory snapshot through an atomic pointer and take no lock. Revoke* changes apply to this
// value at once; changes written by another process (`vigil pki revoke`) are picked up by the
// first check after RevocationRecheck has passed since the last look at the file. Revocations is
// safe for concurrent use.
type Revocations struct {
	path    string
	mu      sync.Mutex // serialises writers and reloads
	snap    atomic.Pointer[revocationSet]
	checked atomic.Int64  // UnixNano of the last look at the file
	gens    atomic.Uint64 // the last revocationSet.gen given
}

// revocationSet is one immutable snapshot of the file.
type revocationSet struct {
	file       revocationFile
	identities map[Identity]time.Time
	serials    map[string]time.Time
	stamp      fileStamp
	err        error  // non-nil: the file changed and cannot be read; refuse everything
	gen        uint64 // Revocations.Generation: a new one for every set stored
}

// fileStamp tells whether the file changed since it was read. Writers replace the file by
// rename, so a change gives a new inode, modification time or size.
type fileStamp struct {
	exists  bool
	info    fs.FileInfo
	modTime time.Time
	size    int64
}

func (a fileStamp) same(b fileStamp) bool {
	if a.exists != b.exists {
		return false
	}
	return !a.exists || os.SameFile(a.info, b.info) && a.modTime.Equal(b.modTime) && a.size == b.size
}

// OpenRevocations opens the revocation list at path; a missing file is an empty list, created on
// the first revocation. An existing file must parse.
func OpenRevocations(path string) (*Revocations, error) {
	r := &Revocations{path: path}
	set := r.load()
	if set.err != nil {
		return nil, set.err
	}
	set.gen = r.gens.Add(1)
	r.snap.Store(set)
	return r, nil
}

// Check returns an error wrapping ErrRevoked if cert, which names id, is revoked at now: its
// serial is listed, or its identity was revoked at or after the certificate's NotBefore. It
// returns ErrRevocationUnavailable if the list changed on disk and cannot be read.
func (r *Revocations) Check(id Identity, cert *x509.Certificate, now time.Time) error {
	r.maybeRefresh(now)
	s := r.snap.Load()
	if s.err != nil {
		return fmt.Errorf("%w: %w", ErrRevocationUnavailable, s.err)
	}
	if at, ok := s.identities[id]; ok && !cert.NotBefore.After(at) {
		return fmt.Errorf("%w: %s was revoked at %s", ErrRevoked, id, at.Format(time.RFC3339))
	}
	if at, ok := s.serials[serialKey(cert.SerialNumber)]; ok {
		return fmt.Errorf("%w: certificate %s of %s was revoked at %s", ErrRevoked, serialKey(cert.SerialNumber), id, at.Format(time.RFC3339))
	}
	return nil
}

// RevokedAt returns when id was last revoked, if it was.
func (r *Revocations) RevokedAt(id Identity, now time.Time) (time.Time, bool, error) {
	r.maybeRefresh(now)
	s := r.snap.Load()
	if s.err != nil {
		return time.Time{}, false, fmt.Errorf("%w: %w", ErrRevocationUnavailable, s.err)
	}
	at, ok := s.identities[id]
	return at, ok, nil
}

// RevokeIdentity revokes every certificate and enrolment token of id issued up to now. Revoking
// again moves the time forward. A token is not touched in the token file: the enrolment
// authority dates a device record by its token's issue time, and Enroller.Enroll refuses a
// record dated up to the revocation, so the token can still be redeemed but enrols nothing.
func (r *Revocations) RevokeIdentity(id Identity, now time.Time) error {
	if err := id.Validate(); err != nil {
		return err
	}
	return r.update(func(f *revocationFile) {
		f.Identities = slices.DeleteFunc(f.Identities, func(e RevokedIdentity) bool { return e.Identity == id })
		f.Identities = append(f.Identities, RevokedIdentity{Identity: id, Revoked: now.UTC()})
	})
}

// RevokeSerial revokes the one certificate with this serial number.
func (r *Revocations) RevokeSerial(serial *big.Int, now time.Time) error {
	if serial == nil || serial.Sign() <= 0 || serial.BitLen() > 160 {
		return errors.New("pki: a serial number is positive and at most 20 bytes long")
	}
	k := serialKey(serial)
	return r.update(func(f *revocationFile) {
		if !slices.ContainsFunc(f.Serials, func(e RevokedSerial) bool { return serialKey(e.Serial) == k }) {
			f.Serials = append(f.Serials, RevokedSerial{Serial: new(big.Int).Set(serial), Revoked: now.UTC()})
		}
	})
}

// Generation returns a number that changes whenever the list in force changes, rereading the
// file as RevokedAt does: whoever acts on revocations needs to look again only then.
func (r *Revocations) Generation(now time.Time) uint64 {
	r.maybeRefresh(now)
	return r.snap.Load().gen
}

// Identities returns the revoked identities, rereading the file as RevokedAt does.
func (r *Revocations) Identities(now time.Time) ([]RevokedIdentity, error) {
	r.maybeRefresh(now)
	s := r.snap.Load()
	if s.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRevocationUnavailable, s.err)
	}
	return slices.Clone(s.file.Identities), nil
}

// List returns the revoked identities and serials as last read.
func (r *Revocations) List() ([]RevokedIdentity, []RevokedSerial, error) {
	s := r.snap.Load()
	return slices.Clone(s.file.Identities), slices.Clone(s.file.Serials), s.err
}

// Refresh rereads the file if it changed since it was last read.
func (r *Revocations) Refresh() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.snap.Load()
	if st, err := stampOf(r.path); err == nil && cur.stamp.same(st) {
		return cur.err
	}
	set := r.load()
	if set.err == nil && cur.err == nil && cur.stamp.exists && !set.stamp.exists {
		// The list existed and is gone: revocations may have been lost, so refuse until restored.
		set.err = fmt.Errorf("%s was removed", r.path)
	}
	set.gen = r.gens.Add(1)
	r.snap.Store(set)
	return set.err
}

func (r *Revocations) maybeRefresh(now time.Time) {
	last := r.checked.Load()
	if d := now.UnixNano() - last; d >= 0 && d < int64(RevocationRecheck) {
		return
	}
	if r.checked.CompareAndSwap(last, now.UnixNano()) {
		r.Refresh() // the outcome is in the snapshot
	}
}

func (r *Revocations) update(change func(*revocationFile)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	unlock, err := lockFile(r.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	cur := r.load() // the file as it is now, with other processes' changes
	if cur.err != nil {
		return cur.err
	}
	f := cur.file
	f.Identities, f.Serials = slices.Clone(f.Identities), slices.Clone(f.Serials)
	change(&f)
	if n := len(f.Identities) + len(f.Serials); n > MaxRevocations {
		return fmt.Errorf("pki: the revocation list would hold %d entries, the limit is %d", n, MaxRevocations)
	}
	data, err := encodeRevocationFile(f)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(r.path, data, 0o644, false); err != nil {
		return err
	}
	set := r.load()
	set.gen = r.gens.Add(1)
	r.snap.Store(set)
	return set.err
}

// load reads the file into a snapshot; failures are recorded in the snapshot.
func (r *Revocations) load() *revocationSet {
	st, err := stampOf(r.path)
	if err != nil {
		return &revocationSet{err: err}
	}
	set := &revocationSet{stamp: st, identities: map[Identity]time.Time{}, serials: map[string]time.Time{}}
	if !st.exists {
		return set
	}
	data, _, err := readFileLimited(r.path, MaxRevocationFileBytes)
	if err != nil {
		return &revocationSet{err: err}
	}
	f, err := decodeRevocationFile(data)
	if err != nil {
		return &revocationSet{err: fmt.Errorf("pki: %s: %w", r.path, err)}
	}
	set.file = f
	for _, e := range f.Identities {
		set.identities[e.Identity] = e.Revoked
	}
	for _, e := range f.Serials {
		set.serials[serialKey(e.Serial)] = e.Revoked
	}
	return set
}

func stampOf(path string) (fileStamp, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, fmt.Errorf("pki: %w", err)
	}
	return fileStamp{exists: true, info: info, modTime: info.ModTime(), size: info.Size()}, nil
}
