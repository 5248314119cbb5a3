package coordinator

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigilauth/vigil/internal/atomicfile"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
)

// The registry is kept apart from the state file. A commit happens every few milliseconds while
// updates arrive, and with the registry inside the state file each one rewrote every device
// record (about 8.3 kB each: 8.3 GB at a million devices, see docs/scale.md). Instead each
// change to the registry (an admission, a replaced record, a removal) is appended to
// registry.log, synced by the commit that makes it durable before the state file is replaced,
// so a commit costs what changed. Last-seen times, which change on every call and only inform
// the operator, are written whole to registry.seen, less often the larger the registry
// (seenInterval).
const (
	registryLogName  = "registry.log"
	registrySeenName = "registry.seen"
	// seenSaveEvery is how often the last-seen times of a million devices are saved at most.
	// Writing them costs in proportion to the registry, so the interval is too: a restart
	// finds them up to 5 minutes stale at a million devices, 50 at ten million, and exactly
	// as at the last commit below seenSaveAlways devices.
	seenSaveEvery  = 5 * time.Minute
	seenSaveAlways = 1000
	// seenMagic starts registry.seen, followed for each device by its ID (uvarint length and
	// bytes) and its last-seen time (varint Unix nanoseconds).
	seenMagic = "vigil last-seen 1\n"
	// maxRegistryEntry bounds one entry: a device record is well under 64 kB.
	maxRegistryEntry = 1 << 20
)

// Kinds of registry.log entries: a kind byte, a uvarint length, then the protobuf message.
const (
	entryDevice  = 1 // statev1.Device without last_seen: admitted, or its record replaced
	entryRemoval = 2 // statev1.Removal: removed from the registry
)

// registryLog appends the registry's changes. Its fields are guarded by Coordinator.mu,
// except f, which only the commit (one at a time) uses.
type registryLog struct {
	dir      string
	f        *os.File
	changed  map[string]struct{} // devices admitted, replaced or removed since the last commit
	entries  int                 // whole entries in the file, with those of the next write
	seenAt   time.Time           // when last-seen times were last saved
	seenDirt bool                // a last-seen time changed since then
}

// registryChangedLocked notes that device id was admitted, given a new record or removed, for
// the next commit to append and the next round's sorted IDs. c.mu must be held.
func (c *Coordinator) registryChangedLocked(id string) {
	c.sortedIDs.note(id)
	c.noteDeviceLocked(id)
	if c.registry != nil {
		c.registry.changed[id] = struct{}{}
		c.registry.seenDirt = true // a removed device's time leaves the file
	}
}

// registryEntriesLocked encodes the registry's changes since the last commit and, when they
// are due, every last-seen time. c.mu must be held.
func (c *Coordinator) registryEntriesLocked(now time.Time) (log, seen []byte, err error) {
	l := c.registry
	if l == nil {
		return nil, nil, nil
	}
	ids := make([]string, 0, len(l.changed))
	for id := range l.changed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		var (
			kind byte
			m    proto.Message
		)
		if d, ok := c.devices[id]; ok {
			kind, m = entryDevice, &statev1.Device{Id: id, Region: d.region, Enrolled: timestamppb.New(d.enrolled), Record: d.record}
		} else {
			r := c.removed[id]
			kind, m = entryRemoval, &statev1.Removal{Id: id, At: timestamppb.New(r.at), Reason: r.reason}
		}
		if log, err = appendEntry(log, kind, m); err != nil {
			return nil, nil, err
		}
	}
	clear(l.changed)
	l.entries += len(ids)
	if l.seenDirt && now.Sub(l.seenAt) >= seenInterval(len(c.lastSeen)) {
		// Unsorted and without protobuf: at a million devices sorting and a message per device
		// took seconds, with c.mu held.
		seen = make([]byte, 0, len(seenMagic)+len(c.lastSeen)*24)
		seen = append(seen, seenMagic...)
		for id, t := range c.lastSeen {
			seen = binary.AppendUvarint(seen, uint64(len(id)))
			seen = append(seen, id...)
			seen = binary.AppendVarint(seen, t.UnixNano())
		}
		l.seenAt, l.seenDirt = now, false
	}
	return log, seen, nil
}

// seenInterval is how long after their last save the last-seen times of n devices may be
// saved again.
func seenInterval(n int) time.Duration {
	if n < seenSaveAlways {
		return 0
	}
	return time.Duration(n) * (seenSaveEvery / 1_000_000)
}

func appendEntry(b []byte, kind byte, m proto.Message) ([]byte, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("coordinator: registry entry: %w", err)
	}
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(raw)))
	return append(b, raw...), nil
}

// write makes the entries and the last-seen times durable. Only the commit calls it.
func (l *registryLog) write(log, seen []byte) error {
	if len(log) > 0 {
		if _, err := l.f.Write(log); err != nil {
			return fmt.Errorf("coordinator: registry log: %w", err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("coordinator: registry log: %w", err)
		}
	}
	if seen != nil {
		if err := atomicfile.Write(filepath.Join(l.dir, registrySeenName), seen, 0o600); err != nil {
			return fmt.Errorf("coordinator: last-seen times: %w", err)
		}
	}
	return nil
}

// savedRegistry is the registry saved in dir: the devices of a state file written before the
// registry had its own log (st may be nil), then the log's entries in order, then the saved
// last-seen times. entries counts the log's entries and valid is the length of its whole
// entries: a crash while appending leaves a partial last entry, never acknowledged, after it
// (torn).
type savedRegistry struct {
	devices map[string]*statev1.Device
	removed map[string]*statev1.Removal
	entries int
	valid   int64
	torn    bool
}

func readRegistry(dir string, st *statev1.CoordinatorState) (savedRegistry, error) {
	s := savedRegistry{devices: map[string]*statev1.Device{}, removed: map[string]*statev1.Removal{}}
	for _, d := range st.GetDevices() {
		s.devices[d.GetId()] = d
	}
	for _, r := range st.GetRemoved() {
		s.removed[r.GetId()] = r
	}
	f, err := os.Open(filepath.Join(dir, registryLogName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("coordinator: registry log: %w", err)
	}
	if err == nil {
		defer f.Close()
		if err := s.replay(bufio.NewReaderSize(f, 1<<20)); err != nil {
			return s, fmt.Errorf("coordinator: registry log: %w", err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, registrySeenName))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("coordinator: last-seen times: %w", err)
	}
	if err := s.readSeen(raw); err != nil {
		return s, fmt.Errorf("coordinator: last-seen times: %w", err)
	}
	return s, nil
}

func (s *savedRegistry) readSeen(raw []byte) error {
	if !bytes.HasPrefix(raw, []byte(seenMagic)) {
		return errors.New("not a last-seen file")
	}
	raw = raw[len(seenMagic):]
	for len(raw) > 0 {
		n, k := binary.Uvarint(raw)
		if k <= 0 || n > uint64(len(raw)-k) {
			return errors.New("truncated")
		}
		id := raw[k : k+int(n)]
		raw = raw[k+int(n):]
		t, k := binary.Varint(raw)
		if k <= 0 {
			return errors.New("truncated")
		}
		raw = raw[k:]
		if d, ok := s.devices[string(id)]; ok {
			d.LastSeen = timestamppb.New(time.Unix(0, t))
		}
	}
	return nil
}

func (s *savedRegistry) replay(r *bufio.Reader) error {
	for {
		kind, err := r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			s.torn = true // a partial last entry
			return nil
		}
		if err != nil || n > maxRegistryEntry {
			return fmt.Errorf("entry %d at byte %d: bad length", s.entries, s.valid)
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(r, raw); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			s.torn = true
			return nil
		} else if err != nil {
			return err
		}
		switch kind {
		case entryDevice:
			var d statev1.Device
			if err := proto.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("entry %d at byte %d: %w", s.entries, s.valid, err)
			}
			s.devices[d.GetId()] = &d
			delete(s.removed, d.GetId())
		case entryRemoval:
			var rm statev1.Removal
			if err := proto.Unmarshal(raw, &rm); err != nil {
				return fmt.Errorf("entry %d at byte %d: %w", s.entries, s.valid, err)
			}
			delete(s.devices, rm.GetId())
			s.removed[rm.GetId()] = &rm
		default:
			return fmt.Errorf("entry %d at byte %d: unknown kind %d", s.entries, s.valid, kind)
		}
		s.entries++
		s.valid += int64(1 + uvarintLen(n) + int(n))
	}
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// sorted returns the saved devices sorted by ID.
func (s savedRegistry) sorted() []*statev1.Device {
	out := make([]*statev1.Device, 0, len(s.devices))
	for _, id := range sortedKeys(s.devices) {
		out = append(out, s.devices[id])
	}
	return out
}

// openRegistry loads the registry saved in dir into c (st is the state file, nil if none) and
// opens its log for appending. A log holding more than twice as many entries as the registry
// has devices, or a registry still inside an old state file, is first rewritten as one entry
// per device and removal.
func (c *Coordinator) openRegistry(dir string, st *statev1.CoordinatorState) error {
	s, err := readRegistry(dir, st)
	if err != nil {
		return err
	}
	// The log always holds at least the entries a state file counts: a commit syncs its
	// entries before the state that counts them, and a compaction saves the state with its
	// smaller count before the shorter log replaces the longer. Fewer is damage (a length
	// altered, which reads as a partial last entry, or the file cut or removed), and cutting
	// the log back to it would drop every device after it.
	if committed := st.GetRegistryEntries(); uint64(s.entries) < committed {
		what := "ends"
		if s.torn {
			what = "runs past its end"
		}
		return fmt.Errorf("coordinator: %s: entry %d at byte %d %s, but the state file counts %d entries: the log is damaged; restore the state directory from a backup",
			filepath.Join(dir, registryLogName), s.entries, s.valid, what, committed)
	}
	if len(c.devices) == 0 {
		// Sized at once: growing maps of a million entries was a third of a restart.
		c.devices, c.lastSeen = make(map[string]device, len(s.devices)), make(map[string]time.Time, len(s.devices))
	}
	for id, d := range s.devices {
		dev, err := restoreDevice(d)
		if err != nil {
			return err
		}
		c.devices[id] = dev
		if d.GetLastSeen() != nil {
			c.lastSeen[id] = d.GetLastSeen().AsTime()
		}
	}
	for id, r := range s.removed {
		c.removed[id] = removal{at: r.GetAt().AsTime(), reason: r.GetReason()}
	}
	path := filepath.Join(dir, registryLogName)
	entries := s.entries
	if len(st.GetDevices()) > 0 || s.entries > 2*(len(s.devices)+maxSavedRemovals) {
		removals := savedRemovals(c.removed)
		entries = len(s.devices) + len(removals)
		if st != nil && c.state != nil && st.GetRegistryEntries() > uint64(entries) {
			st.RegistryEntries = uint64(entries)
			if err := c.state.save(st); err != nil {
				return err
			}
		}
		if err := rewriteRegistry(path, s.sorted(), removals); err != nil {
			return err
		}
	} else if err := os.Truncate(path, s.valid); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("coordinator: registry log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("coordinator: registry log: %w", err)
	}
	// The first commit saves the last-seen times: the rewrite above drops those a state file
	// from before the registry log held.
	c.registry = &registryLog{dir: dir, f: f, changed: map[string]struct{}{}, entries: entries, seenDirt: len(c.lastSeen) > 0}
	return nil
}

// rewriteRegistry replaces the log with one entry per device and removal, streamed to a
// temporary file that is renamed into place only when complete.
func rewriteRegistry(path string, devices []*statev1.Device, removed []*statev1.Removal) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("coordinator: registry log: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	var buf []byte
	for _, d := range devices {
		d = &statev1.Device{Id: d.GetId(), Region: d.GetRegion(), Enrolled: d.GetEnrolled(), Record: d.GetRecord()}
		if buf, err = appendEntry(buf[:0], entryDevice, d); err != nil {
			return err
		}
		if _, err = w.Write(buf); err != nil {
			return fmt.Errorf("coordinator: registry log: %w", err)
		}
	}
	for _, r := range removed {
		if buf, err = appendEntry(buf[:0], entryRemoval, r); err != nil {
			return err
		}
		if _, err = w.Write(buf); err != nil {
			return fmt.Errorf("coordinator: registry log: %w", err)
		}
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("coordinator: registry log: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("coordinator: registry log: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("coordinator: registry log: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("coordinator: registry log: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// savedDevices returns the devices of the registry saved in stateDir, sorted by ID, for the
// tools that read a state directory.
func savedDevices(stateDir string, st *statev1.CoordinatorState) ([]*statev1.Device, error) {
	s, err := readRegistry(stateDir, st)
	if err != nil {
		return nil, err
	}
	return s.sorted(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// AppendedInPlace reports whether name, a file in the state directory, only grows by appends
// while a coordinator runs (the registry log: it is compacted or its torn tail cut only when
// a coordinator opens it), so that a copy of the directory may take what was appended.
func AppendedInPlace(name string) bool { return name == registryLogName }
