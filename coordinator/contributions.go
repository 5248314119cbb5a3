package coordinator

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// contributionLog keeps the open round's contributions: for each accepted encrypted update,
// what the trustees need to verify it and add its c1 polynomials (trustee.NewContribution).
// The c0 polynomials stay only in the coordinator's running sum.
//
// With a state directory the log is one append-only file per round, contributions-ROUND.bin,
// of length-prefixed protobuf records in the order the updates entered the sum. It is fsynced
// by the group commit before the state file that counts the updates is written, so the first
// Count() records of the file are always exactly the updates in the saved sum; records after
// them (an update that arrived after the last state write, then a crash) are cut off at
// restart. Without a state directory the contributions are kept in memory.
//
// Its own mutex guards it; appends happen under the coordinator's mutex too, in the same order
// as the sum's additions.
type contributionLog struct {
	dir string // "": in memory

	mu     sync.Mutex
	round  uint64
	f      *os.File
	size   int64
	starts []int64 // where each record of the file starts
	mem    []*vigilv1.Contribution
}

// held is how many contributions the log holds. l.mu must be held.
func (l *contributionLog) held() int {
	if l.dir == "" {
		return len(l.mem)
	}
	return len(l.starts)
}

// maxContributionBytes bounds one record: the c1 polynomials of the largest update plus its
// digests, record and signature.
const maxContributionBytes = trustee.MaxMessageBytes

func newContributionLog(dir string) *contributionLog { return &contributionLog{dir: dir} }

func (l *contributionLog) path(round uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("contributions-%d.bin", round))
}

// begin starts round's log, dropping every other round's. l.mu must be held.
func (l *contributionLog) begin(round uint64) error {
	l.closeLocked()
	l.round, l.size, l.starts, l.mem = round, 0, nil, nil
	if l.dir == "" {
		return nil
	}
	if err := l.removeOthers(round); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path(round), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("coordinator: contribution log: %w", err)
	}
	l.f = f
	return nil
}

// close closes the open round's file.
func (l *contributionLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
}

func (l *contributionLog) closeLocked() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// removeOthers deletes the logs of rounds other than keep: once a round is over, its
// contributions are of no use.
func (l *contributionLog) removeOthers(keep uint64) error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("coordinator: contribution log: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "contributions-") && strings.HasSuffix(name, ".bin") && name != filepath.Base(l.path(keep)) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("coordinator: contribution log: %w", err)
			}
		}
	}
	return nil
}

// record is a contribution's log record in pieces: the length prefix and the encoding of
// everything but the c1 polynomials, then each polynomial behind its field header. The
// polynomials are the received update's own bytes, written without being copied: copying
// 1.7 MB per update into one buffer was 8% of the coordinator's CPU under load, and as much
// garbage. Read back, the pieces are one length-prefixed protobuf record.
type record struct {
	parts [][]byte
	size  int64
}

// encode returns c's log record, or nil for a log in memory. It needs no lock (callers encode
// before they take the coordinator's mutex), but it takes c.C1 out of c while it marshals the
// rest, so c must be the caller's alone, and unchanged until the record is written.
func (l *contributionLog) encode(c *vigilv1.Contribution) (*record, error) {
	if l.dir == "" {
		return nil, nil
	}
	c1 := c.C1
	c.C1 = nil
	head, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	c.C1 = c1
	if err != nil {
		return nil, fmt.Errorf("coordinator: contribution: %w", err)
	}
	size := len(head)
	for _, poly := range c1 {
		size += protowire.SizeTag(c1Field) + protowire.SizeBytes(len(poly))
	}
	if size > maxContributionBytes {
		return nil, fmt.Errorf("coordinator: contribution of %d bytes exceeds %d", size, maxContributionBytes)
	}
	prefix := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(head)), uint32(size))
	rec := &record{parts: make([][]byte, 0, 1+2*len(c1)), size: 4 + int64(size)}
	rec.parts = append(rec.parts, append(prefix, head...))
	for _, poly := range c1 {
		hdr := protowire.AppendTag(nil, c1Field, protowire.BytesType)
		rec.parts = append(rec.parts, protowire.AppendVarint(hdr, uint64(len(poly))), poly)
	}
	return rec, nil
}

// c1Field is vigilv1.Contribution's field number of the c1 polynomials.
const c1Field = 7

// appendFor adds c, encoded as rec (see encode), to round's log and returns a function that
// takes it out again, for when the update is then refused by the round.
func (l *contributionLog) appendFor(round uint64, c *vigilv1.Contribution, rec *record) (undo func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if round != l.round || (l.dir != "" && l.f == nil) {
		if err := l.begin(round); err != nil {
			return nil, err
		}
	}
	if l.dir == "" {
		l.mem = append(l.mem, c)
		return func() { l.mu.Lock(); l.mem = l.mem[:len(l.mem)-1]; l.mu.Unlock() }, nil
	}
	if rec == nil {
		if rec, err = l.encode(c); err != nil {
			return nil, err
		}
	}
	mark, at := l.size, l.size
	for _, part := range rec.parts {
		if _, err := l.f.WriteAt(part, at); err != nil {
			l.f.Truncate(mark)
			return nil, fmt.Errorf("coordinator: contribution log: %w", err)
		}
		at += int64(len(part))
	}
	l.starts = append(l.starts, mark)
	l.size += rec.size
	f := l.f
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.f == f && l.size == mark+rec.size {
			l.f.Truncate(mark)
			l.size, l.starts = mark, l.starts[:len(l.starts)-1]
		}
	}, nil
}

// sync makes every appended contribution durable. The group commit calls it before it writes
// the state file that counts them.
func (l *contributionLog) sync() error {
	l.mu.Lock()
	f := l.f
	l.mu.Unlock()
	if f == nil {
		return nil
	}
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("coordinator: contribution log: %w", err)
	}
	return nil
}

// recover reopens round's log after a restart and cuts it to its first count records, the
// ones in the saved sum; round 0 means no round is collecting, and every log is dropped.
func (l *contributionLog) recover(round uint64, count int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
	l.round, l.size, l.starts, l.mem = round, 0, nil, nil
	if l.dir == "" {
		return nil
	}
	if err := l.removeOthers(round); err != nil || round == 0 {
		return err
	}
	f, err := os.OpenFile(l.path(round), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("coordinator: contribution log: %w", err)
	}
	r := bufio.NewReader(io.NewSectionReader(f, 0, 1<<62))
	var size int64
	starts := make([]int64, 0, count)
	for i := range count {
		n, err := skipRecord(r)
		if err != nil {
			f.Close()
			return fmt.Errorf("coordinator: round %d's contribution log holds %d of its %d updates: %w", round, i, count, err)
		}
		starts = append(starts, size)
		size += n
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("coordinator: contribution log: %w", err)
	}
	l.f, l.size, l.starts = f, size, starts
	return nil
}

func skipRecord(r *bufio.Reader) (int64, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > maxContributionBytes {
		return 0, fmt.Errorf("record of %d bytes", n)
	}
	if _, err := r.Discard(int(n)); err != nil {
		return 0, err
	}
	return 4 + int64(n), nil
}

// of returns round's first count contributions, for the trustees: the closed round's, or a
// frontend's so far.
func (l *contributionLog) of(round uint64, count int) (trustee.PartContributions, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if count == 0 {
		// Every update of a round of the tier may be in frontends' parts: nothing logged.
		return trustee.SliceContributions(nil), nil
	}
	if l.round != round || l.held() < count {
		return nil, fmt.Errorf("coordinator: the contribution log holds %d updates of round %d, not %d of round %d", l.held(), l.round, count, round)
	}
	if l.dir == "" {
		return trustee.SliceContributions(l.mem[:count]), nil
	}
	return fileContributions{path: l.path(round), starts: l.starts[:count:count]}, nil
}

// fileContributions reads records of a round's log, one at a time.
type fileContributions struct {
	path   string
	starts []int64 // where each starts in the file
}

var _ trustee.EncodedContributions = fileContributions{}

// Len implements trustee.Contributions.
func (f fileContributions) Len() int { return len(f.starts) }

// From implements trustee.PartContributions.
func (f fileContributions) From(n int) trustee.Contributions {
	return fileContributions{path: f.path, starts: f.starts[n:]}
}

// All implements trustee.Contributions.
func (f fileContributions) All() iter.Seq2[*vigilv1.Contribution, error] {
	return func(yield func(*vigilv1.Contribution, error) bool) {
		for raw, err := range f.Encoded() {
			var c vigilv1.Contribution
			if err == nil {
				if err = proto.Unmarshal(raw, &c); err != nil {
					err = fmt.Errorf("%s: %w", f.path, err)
				}
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(&c, nil) {
				return
			}
		}
	}
}

// Encoded implements trustee.EncodedContributions: each record as the log holds it, the
// contribution's protobuf encoding.
func (f fileContributions) Encoded() iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		file, err := os.Open(f.path)
		if err != nil {
			yield(nil, err)
			return
		}
		defer file.Close()
		if len(f.starts) == 0 {
			return
		}
		r := bufio.NewReaderSize(io.NewSectionReader(file, f.starts[0], 1<<62), 1<<20)
		for range f.starts {
			var hdr [4]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				yield(nil, err)
				return
			}
			n := binary.LittleEndian.Uint32(hdr[:])
			if n > maxContributionBytes {
				yield(nil, fmt.Errorf("record of %d bytes in %s", n, f.path))
				return
			}
			raw := make([]byte, n)
			if _, err := io.ReadFull(r, raw); err != nil {
				yield(nil, err)
				return
			}
			if err := wellFormed(raw); err != nil {
				yield(nil, fmt.Errorf("%s: %w", f.path, err))
				return
			}
			if !yield(raw, nil) {
				return
			}
		}
	}
}

// wellFormed checks that raw is a sequence of protobuf fields, each whole, without decoding
// them: a damaged record is refused here, naming the log, rather than sent to every trustee.
func wellFormed(raw []byte) error {
	for len(raw) > 0 {
		_, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return fmt.Errorf("a damaged record: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(0, typ, raw[n:])
		if m < 0 {
			return fmt.Errorf("a damaged record: %w", protowire.ParseError(m))
		}
		raw = raw[n+m:]
	}
	return nil
}

// contribution checks the update's signature, if the coordinator has a root of trust, and
// returns what the trustees need of it; nil for a sealing whose sums trustees do not open.
// Without a root (unit tests of the coordinator alone) the signature is not checked here;
// trustees always have one and refuse a round with an unsigned update.
func (c *Coordinator) contribution(req *vigilv1.SubmitUpdateRequest, d device, signatureChecked bool) (*vigilv1.Contribution, error) {
	th, ok := c.sealing.(*ThresholdHE)
	if !ok || req.GetUpdate().GetEncoding() != vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD {
		return nil, nil // the sum refuses what is not a threshold CKKS update
	}
	return th.contribution(req, d, c.cfg.Root != nil && !signatureChecked, c.taskPrivacy(req.GetRound()).GetMinParticipants())
}

// RebuiltFromTier reports whether name, a file in the state directory, is rebuilt from the
// tier by a leader that starts, which follows the open round's stream from its first update
// (the round's contribution log): a copy of the state directory need not hold it.
func RebuiltFromTier(name string) bool {
	return strings.HasPrefix(name, "contributions-") && strings.HasSuffix(name, ".bin")
}
