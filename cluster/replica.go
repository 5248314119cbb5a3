package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// ErrFenced means another process took the replica over: this one must stop writing.
var ErrFenced = errors.New("cluster: another coordinator took over the replicated state")

// Root is a local directory a Replica keeps in the tier.
type Root struct {
	// Name prefixes its files' names in the tier ("state", "store"); no '/' in it.
	Name string
	Dir  string
	// Local reports whether the file at rel (slash-separated, relative to Dir) stays on this
	// machine: a lock, a server's own store, what is rebuilt from elsewhere. Temporary files
	// of an atomic write always do.
	Local func(rel string) bool
}

// Replica keeps the round leader's local state (its state directory and model store) in the
// tier, so that a standby on another machine takes over without shared storage.
//
// The files are kept in one stream, one subject per file. A file replaced whole (every write
// through internal/atomicfile) is stored whole; a file that only grew in place (the registry
// log) is stored by what was appended. Sync stores what changed since the last Sync as one
// batch, and a restore applies only whole batches, so a leader that dies in the middle of
// one leaves the files as its previous Sync stored them.
//
// Every message is stored with a compare-and-set on the stream's last sequence, so a batch's
// messages take consecutive sequences, known before they are sent. A standby that takes over
// first stores a takeover marker the same way: from then on every write of the leader it
// replaces is refused (ErrFenced), however late that leader wakes, and a batch that marker
// interrupted is not applied.
type Replica struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	name     string
	subject  string // the files' subjects are subject + ".f." + hex(name)
	takeover string // the markers' subject
	roots    []Root
	id       string // tells this process's messages from another's with the same sequences

	mu     sync.Mutex
	last   uint64          // the stream's last sequence, as this process stored or read it
	stored map[string]mark // what the stream holds of each file
	purge  map[string]uint64 // subject: the sequence below which it holds nothing of use
}

// mark is what a Replica knows of a file it stored: enough to tell an append from a rewrite.
type mark struct {
	ino        uint64
	size       int64
	mtime      time.Time
	head, tail []byte // up to markBytes of the content's first and last bytes
	// sum is the SHA-256 of a content stored whole, so that a file rewritten with the same
	// bytes (the state file, after a change that was undone) is not stored again.
	sum [sha256.Size]byte
}

const (
	// replicaChunk bounds one message: under the servers' default max_payload of 1 MiB.
	replicaChunk = 512 << 10
	markBytes    = 64
	// replicaAttempt bounds one request, tried again while the servers do not answer.
	replicaAttempt = 5 * time.Second
	replicaPause   = 250 * time.Millisecond
)

// Message headers.
const (
	hdrOp    = "Vigil-Op" // replace, append, remove, takeover
	hdrFile  = "Vigil-File"
	hdrBatch = "Vigil-Batch" // "FIRST-LAST": the sequences of the batch's messages
)

// OpenReplica creates or opens the stream that keeps the roots' files for t's model.
func OpenReplica(ctx context.Context, t *Tier, roots []Root) (*Replica, error) {
	for _, r := range roots {
		if r.Name == "" || strings.Contains(r.Name, "/") || r.Dir == "" {
			return nil, fmt.Errorf("cluster: replica root %q at %q: want a name without '/' and a directory", r.Name, r.Dir)
		}
	}
	id := make([]byte, 8)
	rand.Read(id)
	subject := "vigil.state." + token(t.model)
	r := &Replica{
		js: t.js, name: "VIGIL_STATE_" + t.model, subject: subject, takeover: subject + ".takeover",
		roots: roots, id: hex.EncodeToString(id), stored: map[string]mark{}, purge: map[string]uint64{},
	}
	err := UntilAnswered(ctx, replicaAttempt, replicaPause, func(error) {}, func(ctx context.Context) (err error) {
		r.stream, err = t.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        r.name,
			Description: "Vigil's round leader's state directory and model store, for a standby to take over",
			Subjects:    []string{subject + ".>"},
			Storage:     jetstream.FileStorage,
			Replicas:    t.replicas,
			MaxMsgSize:  replicaChunk + 4096,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: replica stream %s: %w", r.name, err)
	}
	return r, nil
}

// TakeOver fences off every earlier writer, then makes the roots' files what the stream
// holds. A stream that holds no files yet (the first leader to replicate its state) is given
// the local files instead. restored says which happened.
func (r *Replica) TakeOver(ctx context.Context) (restored bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var upTo uint64
	for {
		var info *jetstream.StreamInfo
		err := UntilAnswered(ctx, replicaAttempt, replicaPause, func(error) {}, func(ctx context.Context) (err error) {
			info, err = r.stream.Info(ctx)
			return err
		})
		if err != nil {
			return false, fmt.Errorf("cluster: replica: %w", err)
		}
		upTo = info.State.LastSeq
		r.last = upTo
		_, err = r.publish(ctx, r.takeover, nats.Header{hdrOp: {"takeover"}}, nil)
		if errors.Is(err, ErrFenced) {
			continue // stored meanwhile: read again
		}
		if err != nil {
			return false, err
		}
		break
	}
	markers, err := r.markers(ctx, upTo)
	if err != nil {
		return false, err
	}
	files, err := r.read(ctx, upTo, markers)
	if err != nil {
		return false, err
	}
	if len(files) == 0 {
		clear(r.stored)
		return false, r.syncLocked(ctx)
	}
	if err := r.restore(files); err != nil {
		return false, err
	}
	return true, nil
}

// Sync stores what changed in the roots since the last Sync or TakeOver, as one batch. It
// returns ErrFenced once another process took over.
func (r *Replica) Sync(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.syncLocked(ctx)
}

// change is one file's part of a batch.
type change struct {
	name string
	op   string // replace, append, remove
	data []byte
	mark mark
}

func (r *Replica) syncLocked(ctx context.Context) error {
	changes, err := r.changes()
	if err != nil {
		return err
	}
	var msgs int
	for _, c := range changes {
		msgs += max(1, (len(c.data)+replicaChunk-1)/replicaChunk)
	}
	if msgs == 0 {
		return r.purgeLocked(ctx)
	}
	batch := formatBatch(r.last+1, r.last+uint64(msgs))
	for _, c := range changes {
		subj := r.fileSubject(c.name)
		op, data := c.op, c.data
		first := uint64(0)
		for {
			n := min(len(data), replicaChunk)
			seq, err := r.publish(ctx, subj, nats.Header{hdrOp: {op}, hdrFile: {c.name}, hdrBatch: {batch}}, data[:n])
			if err != nil {
				return err
			}
			if first == 0 {
				first = seq
			}
			data, op = data[n:], "append"
			if len(data) == 0 {
				break
			}
		}
		switch c.op {
		case "replace":
			r.purge[subj] = first
		case "remove":
			// Up to the removal itself, not the whole subject: a purge tried late must not
			// take a file written again after it.
			r.purge[subj] = first + 1
		}
		if c.op == "remove" {
			delete(r.stored, c.name)
		} else {
			r.stored[c.name] = c.mark
		}
	}
	return r.purgeLocked(ctx)
}

// purgeLocked drops what later batches replaced. A purge that fails is tried at the next
// Sync: until then the stream only holds more than it needs.
func (r *Replica) purgeLocked(ctx context.Context) error {
	for subj, below := range r.purge {
		pctx, cancel := context.WithTimeout(ctx, replicaAttempt)
		err := r.stream.Purge(pctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(below))
		cancel()
		if err != nil {
			break
		}
		delete(r.purge, subj)
	}
	return nil
}

// publish stores one message behind r.last, and returns its sequence.
func (r *Replica) publish(ctx context.Context, subj string, hdr nats.Header, data []byte) (uint64, error) {
	want := r.last + 1
	msgID := r.id + "-" + strconv.FormatUint(want, 10)
	msg := &nats.Msg{Subject: subj, Header: hdr, Data: data}
	var seq uint64
	err := UntilAnswered(ctx, replicaAttempt, replicaPause, func(error) {}, func(ctx context.Context) error {
		ack, err := r.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequence(r.last), jetstream.WithMsgID(msgID))
		if err == nil {
			seq = ack.Sequence
			return nil
		}
		if !wrongLastSequence(err) {
			return err
		}
		// An attempt that timed out may have been stored: then the message at want is ours.
		m, gerr := r.stream.GetMsg(ctx, want)
		if gerr == nil && m.Header.Get(jetstream.MsgIDHeader) == msgID {
			seq = want
			return nil
		}
		if gerr != nil && Temporary(gerr) {
			return gerr
		}
		return ErrFenced
	})
	if err != nil {
		if errors.Is(err, ErrFenced) {
			return 0, err
		}
		return 0, fmt.Errorf("cluster: replica: store %s: %w", hdr.Get(hdrFile), err)
	}
	if seq != want {
		return 0, fmt.Errorf("%w: stored at %d, not %d", ErrFenced, seq, want)
	}
	r.last = seq
	return seq, nil
}

func (r *Replica) fileSubject(name string) string {
	return r.subject + ".f." + hex.EncodeToString([]byte(name))
}

// changes compares the roots with what the stream holds, in a stable order.
func (r *Replica) changes() ([]change, error) {
	var out []change
	present := map[string]bool{}
	for _, root := range r.roots {
		err := filepath.WalkDir(root.Dir, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root.Dir, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if atomicfile.IsTemp(d.Name()) || root.Local != nil && root.Local(rel) {
				return nil
			}
			name := root.Name + "/" + rel
			c, err := r.fileChange(name, p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we looked: the next Sync sees it gone
			}
			if err != nil {
				return err
			}
			present[name] = true
			if c != nil {
				out = append(out, *c)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: replica: %w", err)
		}
	}
	for name := range r.stored {
		if !present[name] {
			out = append(out, change{name: name, op: "remove"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// fileChange returns the change that brings the stream's copy of name up to the file at p,
// or nil if there is none.
func (r *Replica) fileChange(name, p string) (*change, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	old, ok := r.stored[name]
	ino := inode(fi)
	if ok && ino == old.ino && fi.Size() == old.size && fi.ModTime().Equal(old.mtime) {
		return nil, nil
	}
	if ok && ino == old.ino && fi.Size() > old.size && r.grew(f, old) {
		more, err := io.ReadAll(io.NewSectionReader(f, old.size, fi.Size()-old.size))
		if err != nil {
			return nil, err
		}
		m := old.extend(more)
		m.mtime = fi.ModTime()
		return &change{name: name, op: "append", data: more, mark: m}, nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	m := mark{ino: ino, mtime: fi.ModTime()}.extend(data)
	m.sum = sha256.Sum256(data)
	if ok && m.sum == old.sum && m.size == old.size {
		r.stored[name] = m // the same bytes: nothing to store
		return nil, nil
	}
	return &change{name: name, op: "replace", data: data, mark: m}, nil
}

// grew reports whether f still begins with what the stream holds of it.
func (r *Replica) grew(f *os.File, old mark) bool {
	head := make([]byte, len(old.head))
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, old.head) {
		return false
	}
	tail := make([]byte, len(old.tail))
	_, err := f.ReadAt(tail, old.size-int64(len(tail)))
	return err == nil && bytes.Equal(tail, old.tail)
}

// extend returns m for the content it describes followed by more.
func (m mark) extend(more []byte) mark {
	out := mark{ino: m.ino, size: m.size + int64(len(more)), mtime: m.mtime}
	out.head = append([]byte(nil), m.head...)
	if need := markBytes - len(out.head); need > 0 {
		out.head = append(out.head, more[:min(need, len(more))]...)
	}
	tail := append(append([]byte(nil), m.tail...), more...)
	out.tail = tail[max(0, len(tail)-markBytes):]
	return out
}

// markers returns the sequences of the takeover markers up to upTo.
func (r *Replica) markers(ctx context.Context, upTo uint64) ([]uint64, error) {
	var seqs []uint64
	err := r.each(ctx, upTo, r.takeover, func(m *jetstream.RawStreamMsg) error {
		seqs = append(seqs, m.Sequence)
		return nil
	})
	return seqs, err
}

// restoredFile is a file's content as the stream's whole batches build it.
type restoredFile struct {
	data    []byte
	removed bool
}

// read returns the files the stream's whole batches up to upTo build. A batch is whole when
// all its messages were stored: no takeover marker took a sequence inside it.
func (r *Replica) read(ctx context.Context, upTo uint64, markers []uint64) (map[string]*restoredFile, error) {
	files := map[string]*restoredFile{}
	err := r.each(ctx, upTo, r.subject+".f.>", func(m *jetstream.RawStreamMsg) error {
		seq := m.Sequence
		first, last, err := parseBatch(m.Header.Get(hdrBatch))
		if err != nil {
			return fmt.Errorf("cluster: replica: message %d: %w", seq, err)
		}
		if last > upTo || interrupted(markers, first, last) {
			return nil
		}
		name := m.Header.Get(hdrFile)
		if err := checkName(name); err != nil {
			return fmt.Errorf("cluster: replica: message %d: %w", seq, err)
		}
		f := files[name]
		switch op := m.Header.Get(hdrOp); {
		case op == "replace":
			files[name] = &restoredFile{data: m.Data}
		case op == "append" && f != nil && !f.removed:
			f.data = append(f.data, m.Data...)
		case op == "remove":
			files[name] = &restoredFile{removed: true}
		default:
			return fmt.Errorf("cluster: replica: message %d: %s of %s with no content before it", seq, op, name)
		}
		return nil
	})
	for name, f := range files {
		if f.removed {
			delete(files, name)
		}
	}
	return files, err
}

func interrupted(markers []uint64, first, last uint64) bool {
	i := sort.Search(len(markers), func(i int) bool { return markers[i] >= first })
	return i < len(markers) && markers[i] <= last
}

func formatBatch(first, last uint64) string {
	return strconv.FormatUint(first, 10) + "-" + strconv.FormatUint(last, 10)
}

func parseBatch(s string) (first, last uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		if first, err = strconv.ParseUint(a, 10, 64); err == nil {
			last, err = strconv.ParseUint(b, 10, 64)
		}
	}
	if !ok || err != nil || first == 0 || last < first {
		return 0, 0, fmt.Errorf("batch %q is not FIRST-LAST", s)
	}
	return first, last, nil
}

// checkName refuses a file name that would land outside its root.
func checkName(name string) error {
	root, rel, ok := strings.Cut(name, "/")
	if !ok || root == "" || rel == "" || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || rel == ".." || path.IsAbs(rel) {
		return fmt.Errorf("file name %q is not ROOT/PATH", name)
	}
	return nil
}

// each calls fn with the stream's messages on subject (a wildcard may be in it) up to upTo,
// in order. Each is asked of the stream's leader: a consumer may live on a replica that lags it.
func (r *Replica) each(ctx context.Context, upTo uint64, subject string, fn func(*jetstream.RawStreamMsg) error) error {
	for seq := uint64(1); seq <= upTo; {
		var m *jetstream.RawStreamMsg
		err := UntilAnswered(ctx, replicaAttempt, replicaPause, func(error) {}, func(ctx context.Context) (err error) {
			m, err = r.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cluster: replica: read from %d: %w", seq, err)
		}
		if m.Sequence > upTo {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
	return nil
}

// restore makes the roots' files exactly files, and remembers them as stored.
func (r *Replica) restore(files map[string]*restoredFile) error {
	byRoot := map[string]Root{}
	for _, root := range r.roots {
		byRoot[root.Name] = root
	}
	// Local files the stream does not hold go first: a restore that stops half-way is
	// repeated at the next start, from the stream.
	for _, root := range r.roots {
		err := filepath.WalkDir(root.Dir, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(root.Dir, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if root.Local != nil && root.Local(rel) {
				return nil
			}
			if _, ok := files[root.Name+"/"+rel]; !ok || atomicfile.IsTemp(d.Name()) {
				return os.Remove(p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cluster: replica: restore %s: %w", root.Dir, err)
		}
	}
	clear(r.stored)
	for name, f := range files {
		rootName, rel, _ := strings.Cut(name, "/")
		root, ok := byRoot[rootName]
		if !ok {
			continue // a root this process does not keep
		}
		p := filepath.Join(root.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("cluster: replica: restore: %w", err)
		}
		if err := atomicfile.Write(p, f.data, 0o600); err != nil {
			return fmt.Errorf("cluster: replica: restore: %w", err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("cluster: replica: restore: %w", err)
		}
		m := mark{ino: inode(fi), mtime: fi.ModTime()}.extend(f.data)
		m.sum = sha256.Sum256(f.data)
		r.stored[name] = m
	}
	return nil
}
