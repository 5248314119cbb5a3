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
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// errStoredAfterAll means a message of a batch that failed was stored, its answer lost: the
// batch is cut short.
var errStoredAfterAll = errors.New("cluster: replica: a message of a batch that failed was stored after all")

// Root is a local directory a Replica keeps in the tier.
type Root struct {
	// Name prefixes its files' names in the tier ("state", "store"); no '/' in it.
	Name string
	Dir  string
	// Local reports whether the file at rel (slash-separated, relative to Dir) stays on this
	// machine: a lock, a server's own store, what is rebuilt from elsewhere. Temporary files
	// of an atomic write always do.
	Local func(rel string) bool
	// Appended reports whether the file at rel only grows, by appends, while the process
	// runs (a log), so that a change to it may be stored as what was appended; every other
	// file changed is stored whole. Such a file may be replaced whole, or cut short, but not
	// cut and grown again between two Syncs. Nil means none.
	Appended func(rel string) bool
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

	// Progress, if set, is told every ProgressEvery (default 2 s) how far a restore has read:
	// the sequence reached, of the last.
	Progress      func(seq, last uint64)
	ProgressEvery time.Duration

	mu     sync.Mutex
	sent   uint64            // messages this process published: each one's ID is its own
	last   uint64            // the stream's last sequence, as this process stored or read it
	stored map[string]mark   // what the stream holds of each file
	purge  map[string]uint64 // subject: the sequence below which it holds nothing of use
	broken error             // why a batch was cut short: no later one may follow it
}

// mark is what a Replica knows of a file it stored: enough to tell an append from a rewrite.
type mark struct {
	ino        uint64
	born       int64 // when the inode was made, 0 if unknown
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
	// consumerBatch is how many messages a restore asks its consumer for at a time, and
	// consumerQuiet how long it waits for them before asking the stream's leader instead.
	consumerBatch = 256
	consumerQuiet = 250 * time.Millisecond
)

// Message headers.
const (
	hdrOp    = "Vigil-Op"    // replace, append, remove, takeover
	hdrBatch = "Vigil-Batch" // "FIRST-LAST": the sequences of the batch's messages
)

// OpenReplica creates or opens the stream that keeps the roots' files for t's model.
func OpenReplica(ctx context.Context, t *Tier, roots []Root) (*Replica, error) {
	roots = slices.Clone(roots)
	for i, r := range roots {
		if r.Name == "" || strings.Contains(r.Name, "/") || r.Dir == "" {
			return nil, fmt.Errorf("cluster: replica root %q at %q: want a name without '/' and a directory", r.Name, r.Dir)
		}
		// A directory walk does not follow a link: a root that is one (a store on another
		// volume) is followed here, once.
		if dir, err := filepath.EvalSymlinks(r.Dir); err == nil {
			roots[i].Dir = dir
		}
	}
	id := make([]byte, 8)
	rand.Read(id)
	subject := "vigil.state." + token(t.model)
	r := &Replica{
		js: t.js, name: replicaStream(t), subject: subject, takeover: subject + ".takeover",
		roots: roots, id: hex.EncodeToString(id), stored: map[string]mark{}, purge: map[string]uint64{},
	}
	err := UntilAnswered(ctx, replicaAttempt, replicaPause, nil, func(ctx context.Context) (err error) {
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

func replicaStream(t *Tier) string { return "VIGIL_STATE_" + t.model }

// ReplicaStream returns the name of the stream holding the state of t's model, and whether it
// holds any: a coordinator of the model that does not replicate its state must not run while
// it does, or a later one that does would restore what that stream holds, older than its own.
func ReplicaStream(ctx context.Context, t *Tier) (name string, held bool, err error) {
	name = replicaStream(t)
	var s jetstream.Stream
	err = UntilAnswered(ctx, replicaAttempt, replicaPause, nil, func(ctx context.Context) (err error) {
		s, err = t.js.Stream(ctx, name)
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return name, false, nil
	}
	if err != nil {
		return name, false, fmt.Errorf("cluster: replica stream %s: %w", name, err)
	}
	return name, s.CachedInfo().State.Msgs > 0, nil
}

// Sync stores what changed since the last Sync or TakeOver in the roots named (every root if
// none is), as one batch. It returns ErrFenced once another process took over.
func (r *Replica) Sync(ctx context.Context, roots ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.syncLocked(ctx, roots)
}

// change is one file's part of a batch: n bytes of f from off, or its removal (f nil).
type change struct {
	name   string
	op     string // replace, append, remove
	f      *os.File
	off, n int64
	mark   mark
}

func (r *Replica) syncLocked(ctx context.Context, roots []string) error {
	if r.broken != nil {
		return fmt.Errorf("cluster: replica: an earlier batch was cut short: %w", r.broken)
	}
	changes, err := r.changes(roots)
	defer func() {
		for _, c := range changes {
			if c.f != nil {
				c.f.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	var msgs, largest int64
	for _, c := range changes {
		msgs += max(1, (c.n+replicaChunk-1)/replicaChunk)
		largest = max(largest, c.n)
	}
	if msgs == 0 {
		return r.purgeLocked(ctx)
	}
	batch, before := formatBatch(r.last+1, r.last+uint64(msgs)), r.last
	// A batch cut short stays so, and a restore skips it: a later batch, built on what this
	// one stored, would not apply either. A publish whose context ended may have been stored.
	cut := func(err error) error {
		if r.last != before || errors.Is(err, errStoredAfterAll) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			r.broken = err
		}
		return err
	}
	// What this batch supersedes is purged once the whole batch is stored, never before: a
	// restore skips a batch cut short and needs what came before it.
	purge := map[string]uint64{}
	buf := make([]byte, min(largest, replicaChunk))
	for _, c := range changes {
		subj := r.fileSubject(c.name)
		op, first := c.op, uint64(0)
		for off, end := c.off, c.off+c.n; ; {
			chunk := buf[:min(end-off, replicaChunk)]
			if c.f != nil {
				if _, err := c.f.ReadAt(chunk, off); err != nil {
					return cut(fmt.Errorf("cluster: replica: read %s: %w", c.name, err))
				}
			}
			seq, err := r.publish(ctx, subj, nats.Header{hdrOp: {op}, hdrBatch: {batch}}, chunk)
			if err != nil {
				return cut(err)
			}
			if first == 0 {
				first = seq
			}
			off, op = off+int64(len(chunk)), "append"
			if off >= end {
				break
			}
		}
		switch c.op {
		case "replace":
			purge[subj] = first
			r.stored[c.name] = c.mark
		case "append":
			r.stored[c.name] = c.mark
		case "remove":
			// The removal itself stays: a restore that read the file's content before this
			// purge must still read that the file is gone.
			purge[subj] = first
			delete(r.stored, c.name)
		}
	}
	maps.Copy(r.purge, purge)
	return r.purgeLocked(ctx)
}

// purgeLocked drops what whole batches replaced. A purge that fails is tried at the next
// Sync: until then the stream only holds more than it needs. It purges nothing once another
// process took over (ErrFenced): that process is restoring from what the stream holds.
func (r *Replica) purgeLocked(ctx context.Context) error {
	if len(r.purge) == 0 {
		return nil
	}
	ictx, cancel := context.WithTimeout(ctx, replicaAttempt)
	info, err := r.stream.Info(ictx)
	cancel()
	if err != nil {
		return nil
	}
	if info.State.LastSeq != r.last {
		return fmt.Errorf("%w: the stream holds up to %d, this process stored up to %d", ErrFenced, info.State.LastSeq, r.last)
	}
	for subj, below := range r.purge {
		pctx, cancel := context.WithTimeout(ctx, replicaAttempt)
		err := r.stream.Purge(pctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(below))
		cancel()
		if err != nil {
			return nil
		}
		delete(r.purge, subj)
	}
	return nil
}

// publish stores one message behind r.last, and returns its sequence.
func (r *Replica) publish(ctx context.Context, subj string, hdr nats.Header, data []byte) (uint64, error) {
	want := r.last + 1
	// Retries of this message share its ID, and no other message has it: a message stored
	// whose answer was lost is never taken for a later one with other content.
	r.sent++
	msgID := r.id + "-" + strconv.FormatUint(r.sent, 10)
	msg := &nats.Msg{Subject: subj, Header: hdr, Data: data}
	var seq uint64
	err := UntilAnswered(ctx, replicaAttempt, replicaPause, nil, func(ctx context.Context) error {
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
		if gerr == nil && strings.HasPrefix(m.Header.Get(jetstream.MsgIDHeader), r.id+"-") {
			return errStoredAfterAll
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
		return 0, fmt.Errorf("cluster: replica: store %s: %w", subj, err)
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

// fileName is the name of the file a message of subject holds.
func (r *Replica) fileName(subject string) (string, error) {
	h, ok := strings.CutPrefix(subject, r.subject+".f.")
	name, err := hex.DecodeString(h)
	if !ok || err != nil {
		return "", fmt.Errorf("subject %q names no file", subject)
	}
	return string(name), nil
}

// maxName bounds a file's name: its subject, twice as long, must fit a NATS protocol line.
const maxName = 1024

// changes compares the roots named in only (every root if none is) with what the stream holds,
// in a stable order. The files of the changes returned are open: the caller closes them.
func (r *Replica) changes(only []string) (out []change, err error) {
	present, walked := map[string]bool{}, map[string]bool{}
	for _, root := range r.roots {
		if len(only) > 0 && !slices.Contains(only, root.Name) {
			continue
		}
		walked[root.Name] = true
		err := walkRoot(root, func(rel, p string) error {
			name := root.Name + "/" + rel
			if len(name) > maxName {
				return fmt.Errorf("%s: a name of %d bytes, longer than the tier's %d", p, len(name), maxName)
			}
			c, err := r.fileChange(name, p, root.Appended != nil && root.Appended(rel))
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
			return out, fmt.Errorf("cluster: replica: %w", err)
		}
	}
	for name := range r.stored {
		root, _, _ := strings.Cut(name, "/")
		if walked[root] && !present[name] {
			out = append(out, change{name: name, op: "remove"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// walkRoot calls fn with each regular file of root that leaves the machine.
func walkRoot(root Root, fn func(rel, path string) error) error {
	return filepath.WalkDir(root.Dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() || atomicfile.IsTemp(d.Name()) {
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
		return fn(rel, p)
	})
}

// fileChange returns the change that brings the stream's copy of name up to the file at p, or
// nil if there is none; a file appended to (Root.Appended) may change by an append. Files are
// read as they are needed, never whole into memory: a registry log of a million devices is
// gigabytes.
func (r *Replica) fileChange(name, p string, appended bool) (_ *change, err error) {
	old, ok := r.stored[name]
	if fi, err := os.Stat(p); err != nil {
		return nil, err
	} else if ok && old.same(fi) {
		return nil, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if ok && old.same(fi) {
		return nil, nil
	}
	if size := fi.Size(); ok && appended && inode(fi) == old.ino && born(f) == old.born && size > old.size && old.startsOf(f) {
		m, err := markOf(f, fi, false)
		if err != nil {
			return nil, err
		}
		keep = true
		return &change{name: name, op: "append", f: f, off: old.size, n: size - old.size, mark: m}, nil
	}
	m, err := markOf(f, fi, true)
	if err != nil {
		return nil, err
	}
	if ok && m.sum == old.sum && m.size == old.size && old.sum != ([sha256.Size]byte{}) {
		r.stored[name] = m // the same bytes: nothing to store
		return nil, nil
	}
	keep = true
	return &change{name: name, op: "replace", f: f, n: m.size, mark: m}, nil
}

// same reports whether fi is the file m describes, unchanged.
func (m mark) same(fi fs.FileInfo) bool {
	return inode(fi) == m.ino && fi.Size() == m.size && fi.ModTime().Equal(m.mtime)
}

// startsOf reports whether f still begins with the content m describes.
func (m mark) startsOf(f *os.File) bool {
	head := make([]byte, len(m.head))
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, m.head) {
		return false
	}
	tail := make([]byte, len(m.tail))
	_, err := f.ReadAt(tail, m.size-int64(len(tail)))
	return err == nil && bytes.Equal(tail, m.tail)
}

// markOf describes f's first fi.Size() bytes, hashed if whole.
func markOf(f *os.File, fi fs.FileInfo, whole bool) (mark, error) {
	size := fi.Size()
	m := mark{ino: inode(fi), born: born(f), size: size, mtime: fi.ModTime(), head: make([]byte, min(size, markBytes)), tail: make([]byte, min(size, markBytes))}
	if _, err := f.ReadAt(m.head, 0); err != nil {
		return mark{}, err
	}
	if _, err := f.ReadAt(m.tail, size-int64(len(m.tail))); err != nil {
		return mark{}, err
	}
	if whole {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
			return mark{}, err
		}
		h.Sum(m.sum[:0])
	}
	return m, nil
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
