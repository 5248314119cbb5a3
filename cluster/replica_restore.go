package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// TakeOver fences off every earlier writer, then makes the roots' files what the stream
// holds. A stream that holds no files yet (the first leader to replicate its state) is given
// the local files instead. restored says which happened.
func (r *Replica) TakeOver(ctx context.Context) (restored bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var upTo uint64
	for {
		var info *jetstream.StreamInfo
		err := UntilAnswered(ctx, replicaAttempt, replicaPause, nil, func(ctx context.Context) (err error) {
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
	r.broken = nil // what follows the marker starts from what the stream holds
	if err := r.removeLeftovers(); err != nil {
		return false, err
	}
	markers, err := r.markers(ctx, upTo)
	if err != nil {
		return false, err
	}
	rs, err := r.read(ctx, upTo, markers)
	if err != nil {
		return false, err
	}
	if len(rs.files) == 0 {
		clear(r.stored)
		return false, r.syncLocked(ctx, nil)
	}
	if err := r.restore(rs); err != nil {
		return false, err
	}
	return true, nil
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

// restoring is a restore in progress: each file the stream's whole batches hold, built in a
// temporary file beside its place.
type restoring struct {
	roots map[string]Root
	// files holds each file's temporary file, "" when removed. Paths, not open files: a store
	// that keeps every version holds more files than a process may have open.
	files map[string]string
}

// path returns where name is restored; ok is false for a file this process does not take
// from the tier: one of a root it does not keep, one its root keeps on this machine (a copy
// never holds those, unless someone who can write to the tier put them there to replace this
// machine's lock), or a temporary file.
func (rs *restoring) path(name string) (p string, ok bool) {
	rootName, rel, _ := strings.Cut(name, "/")
	root, ok := rs.roots[rootName]
	if !ok || root.Local != nil && root.Local(rel) || atomicfile.IsTemp(path.Base(rel)) {
		return "", false
	}
	return filepath.Join(root.Dir, filepath.FromSlash(rel)), true
}

// apply applies one message of a whole batch.
func (rs *restoring) apply(op, name string, data []byte) error {
	p, ok := rs.path(name)
	if !ok {
		return nil
	}
	tmp := rs.files[name]
	flag := os.O_WRONLY | os.O_APPEND
	switch {
	case op == "replace" && tmp == "":
		if err := rs.makeDir(name, filepath.Dir(p)); err != nil {
			return err
		}
		f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+restoreTemp+"*")
		if err != nil {
			return err
		}
		tmp = f.Name()
		rs.files[name] = tmp
		f.Close()
	case op == "replace":
		flag |= os.O_TRUNC
	case op == "append" && tmp != "":
	case op == "remove":
		if tmp != "" {
			os.Remove(tmp)
		}
		rs.files[name] = ""
		return nil
	default:
		return fmt.Errorf("%s of %s with no content before it", op, name)
	}
	f, err := os.OpenFile(tmp, flag, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// makeDir makes dir, where the file name is restored. A file of this machine in its way (the
// copy holds store/x/y where store/x is a file here) is one the copy does not hold, which the
// restore would remove anyway.
func (rs *restoring) makeDir(name, dir string) error {
	rootName, _, _ := strings.Cut(name, "/")
	root := rs.roots[rootName].Dir
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	at := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." {
			continue
		}
		at = filepath.Join(at, part)
		if fi, err := os.Lstat(at); err == nil && !fi.IsDir() {
			if err := os.Remove(at); err != nil {
				return err
			}
		}
	}
	return os.MkdirAll(dir, 0o700)
}

// restoreTemp is in the names of a restore's temporary files.
const restoreTemp = ".tmp-restore-"

// removeLeftovers removes what a restore that did not finish left behind: files as large as
// the state.
func (r *Replica) removeLeftovers() error {
	for _, root := range r.roots {
		err := filepath.WalkDir(root.Dir, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err == nil && d.Type().IsRegular() && strings.Contains(d.Name(), restoreTemp) {
				err = os.Remove(p)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("cluster: replica: %w", err)
		}
	}
	return nil
}

// discard removes the temporary files of a restore that did not finish.
func (rs *restoring) discard() {
	for _, tmp := range rs.files {
		if tmp != "" {
			os.Remove(tmp)
		}
	}
}

// read builds, in temporary files, the files of the stream's whole batches up to upTo. A
// batch is whole when all its messages were stored: no takeover marker took a sequence inside
// it.
func (r *Replica) read(ctx context.Context, upTo uint64, markers []uint64) (*restoring, error) {
	rs := &restoring{roots: map[string]Root{}, files: map[string]string{}}
	for _, root := range r.roots {
		rs.roots[root.Name] = root
	}
	said, every := time.Now(), r.ProgressEvery
	if every == 0 {
		every = 2 * time.Second
	}
	err := r.each(ctx, upTo, r.subject+".f.>", func(m *jetstream.RawStreamMsg) error {
		if r.Progress != nil && time.Since(said) >= every {
			r.Progress(m.Sequence, upTo)
			said = time.Now()
		}
		first, last, err := parseBatch(m.Header.Get(hdrBatch))
		if err != nil {
			return fmt.Errorf("cluster: replica: message %d: %w", m.Sequence, err)
		}
		if last > upTo || interrupted(markers, first, last) {
			return nil
		}
		name, err := r.fileName(m.Subject)
		if err == nil {
			err = checkName(name)
		}
		if err != nil {
			return fmt.Errorf("cluster: replica: message %d: %w", m.Sequence, err)
		}
		if err := rs.apply(m.Header.Get(hdrOp), name, m.Data); err != nil {
			return fmt.Errorf("cluster: replica: message %d: %w", m.Sequence, err)
		}
		return nil
	})
	if err != nil {
		rs.discard()
		return nil, err
	}
	for name, tmp := range rs.files {
		if tmp == "" {
			delete(rs.files, name)
		}
	}
	return rs, nil
}

func interrupted(markers []uint64, first, last uint64) bool {
	i := sort.Search(len(markers), func(i int) bool { return markers[i] >= first })
	return i < len(markers) && markers[i] <= last
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
// in order. They come in bulk from a consumer, and what it does not deliver from the stream's
// leader, a message at a time: a consumer may live on a replica that lags the leader, and
// say nothing for as long.
func (r *Replica) each(ctx context.Context, upTo uint64, subject string, fn func(*jetstream.RawStreamMsg) error) error {
	next := uint64(1) // the first sequence not delivered yet
	for asked := 0; next <= upTo; asked++ {
		if asked == 1 {
			// The leader had a first message: the bulk of the rest from a consumer.
			done, err := r.eachFromConsumer(ctx, &next, upTo, subject, fn)
			if done || err != nil {
				return err
			}
		}
		var m *jetstream.RawStreamMsg
		err := UntilAnswered(ctx, replicaAttempt, replicaPause, nil, func(ctx context.Context) (err error) {
			m, err = r.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subject))
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cluster: replica: read from %d: %w", next, err)
		}
		if m.Sequence > upTo {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		next = m.Sequence + 1
	}
	return nil
}

// eachFromConsumer delivers what a consumer of the stream gives without waiting, from *next
// on; done says it delivered up to upTo. A consumer that cannot be made, fails or goes quiet
// leaves the rest to the stream's leader.
func (r *Replica) eachFromConsumer(ctx context.Context, next *uint64, upTo uint64, subject string, fn func(*jetstream.RawStreamMsg) error) (done bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, replicaAttempt)
	c, err := r.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: *next,
	})
	cancel()
	if err != nil {
		return false, nil
	}
	for {
		batch, err := c.Fetch(consumerBatch, jetstream.FetchMaxWait(consumerQuiet))
		if err != nil {
			return false, nil
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return false, nil
			}
			seq := meta.Sequence.Stream
			if seq < *next {
				continue
			}
			if seq > upTo {
				return true, nil
			}
			if err := fn(&jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: seq, Header: m.Headers(), Data: m.Data()}); err != nil {
				return false, err
			}
			*next = seq + 1
			if seq == upTo {
				return true, nil
			}
			if meta.NumPending == 0 {
				return false, nil // the end, as its replica sees it: the leader says
			}
		}
		if batch.Error() != nil || got == 0 {
			return false, nil
		}
	}
}

// settle syncs the restored file tmp, moves it to p and describes it.
func settle(tmp, p string) (mark, error) {
	f, err := os.Open(tmp)
	if err != nil {
		return mark{}, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return mark{}, err
	}
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		// A directory of this machine where the copy holds a file: the files in it the copy
		// does not hold are gone by now, so it is empty unless it holds a local one.
		if err := os.Remove(p); err != nil {
			return mark{}, err
		}
	}
	if err := os.Rename(tmp, p); err != nil {
		return mark{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return mark{}, err
	}
	return markOf(f, fi, true)
}

// restore makes the roots' files exactly those rs built, and remembers them as stored.
func (r *Replica) restore(rs *restoring) error {
	defer rs.discard()
	// Local files the stream does not hold go first: a restore that stops half-way is
	// repeated at the next start, from the stream.
	for _, root := range r.roots {
		err := walkRoot(root, func(rel, p string) error {
			if _, ok := rs.files[root.Name+"/"+rel]; !ok {
				return os.Remove(p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cluster: replica: restore %s: %w", root.Dir, err)
		}
	}
	clear(r.stored)
	dirs := map[string]bool{}
	for name, tmp := range rs.files {
		p, _ := rs.path(name)
		m, err := settle(tmp, p)
		if err != nil {
			return fmt.Errorf("cluster: replica: restore %s: %w", p, err)
		}
		r.stored[name] = m
		delete(rs.files, name)
		dirs[filepath.Dir(p)] = true
	}
	for dir := range dirs {
		if err := atomicfile.SyncDir(dir); err != nil {
			return fmt.Errorf("cluster: replica: restore: %w", err)
		}
	}
	return nil
}
