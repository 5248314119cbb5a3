package coordinator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
)

// restarted returns a coordinator that loaded the state c's commits left in dir.
func restarted(t *testing.T, dir string) *Coordinator {
	t.Helper()
	r, err := reopened(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.registry.f.Close() })
	return r
}

// reopened loads the state and registry saved in dir as a restarting coordinator would.
func reopened(t *testing.T, dir string) (*Coordinator, error) {
	t.Helper()
	r := scaleCoordinator(t, "", 0, nil)
	r.state = &stateFile{path: filepath.Join(dir, "coordinator.state")}
	st, err := r.state.load()
	if err != nil {
		t.Fatal(err)
	}
	return r, r.openRegistry(dir, st)
}

func commitNow(t *testing.T, c *Coordinator) {
	t.Helper()
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
	if err := c.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sameRegistry fails unless r holds exactly c's devices, removals and last-seen times.
func sameRegistry(t *testing.T, r, c *Coordinator) {
	t.Helper()
	if len(r.devices) != len(c.devices) {
		t.Fatalf("restored %d devices, want %d", len(r.devices), len(c.devices))
	}
	for id, d := range c.devices {
		got, ok := r.devices[id]
		if !ok || got.region != d.region || !got.enrolled.Equal(d.enrolled) || string(got.record) != string(d.record) || !got.issued.Equal(d.issued) {
			t.Fatalf("device %s restored as %+v, want %+v", id, got, d)
		}
		if !r.lastSeen[id].Equal(c.lastSeen[id]) {
			t.Fatalf("device %s last seen %v, want %v", id, r.lastSeen[id], c.lastSeen[id])
		}
	}
	for id, rm := range c.removed {
		if got := r.removed[id]; got.reason != rm.reason || !got.at.Equal(rm.at) {
			t.Fatalf("removal of %s restored as %+v, want %+v", id, got, rm)
		}
	}
}

// TestRegistryLogSurvivesRestart: admissions, replaced records, removals and last-seen times
// written by commits come back after a restart, although the state file no longer holds the
// registry; a partial entry left by a crash mid-append is dropped, and later appends still
// read back.
func TestRegistryLogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	records := scaleRecords(t, 4)
	c := scaleCoordinator(t, dir, 3, records[:3])
	commitNow(t, c)
	if st, err := c.state.load(); err != nil || len(st.GetDevices()) != 0 {
		t.Fatalf("the state file holds %d devices (%v); the registry belongs in its log", len(st.GetDevices()), err)
	}
	sameRegistry(t, restarted(t, dir), c)

	now := time.Now().Add(time.Minute)
	c.mu.Lock()
	c.removeLocked(scaleID(1), now, "removed by the operator")
	d, err := restoreDevice(scaleDevice(3, records[3], now))
	if err != nil {
		t.Fatal(err)
	}
	c.devices[scaleID(3)] = d
	c.registryChangedLocked(scaleID(3))
	c.lastSeen[scaleID(3)] = now
	d = c.devices[scaleID(0)]
	d.region = "us"
	c.devices[scaleID(0)] = d
	c.registryChangedLocked(scaleID(0))
	c.mu.Unlock()
	c.seen(scaleID(2))
	c.registry.seenAt = time.Time{} // last-seen times due now
	commitNow(t, c)
	sameRegistry(t, restarted(t, dir), c)

	// A crash while appending leaves part of an entry, never acknowledged.
	log := filepath.Join(dir, registryLogName)
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{entryDevice, 200, 1, 'x'}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := restarted(t, dir)
	sameRegistry(t, r, c)
	r.mu.Lock()
	r.removeLocked(scaleID(3), now, "revoked")
	r.mu.Unlock()
	commitNow(t, r)
	sameRegistry(t, restarted(t, dir), r)
}

// TestRegistryFromOldStateFile: a state file written before the registry log, with the
// devices inside it, is moved to the log at startup, so that the next commit, which writes a
// state file without them, loses none.
func TestRegistryFromOldStateFile(t *testing.T) {
	dir := t.TempDir()
	records := scaleRecords(t, 2)
	enrolled := time.Now().UTC()
	old := &statev1.CoordinatorState{Format: stateFormat, ModelName: "scale"}
	for i, rec := range records {
		d := scaleDevice(i, rec, enrolled)
		d.LastSeen = timestamppb.New(enrolled.Add(time.Duration(i) * time.Second))
		old.Devices = append(old.Devices, d)
	}
	old.Removed = []*statev1.Removal{{Id: "gone", At: timestamppb.New(enrolled), Reason: "revoked"}}
	sf, err := newStateFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.save(old); err != nil {
		t.Fatal(err)
	}
	c := restarted(t, dir)
	if len(c.devices) != 2 || len(c.lastSeen) != 2 || c.removed["gone"].reason != "revoked" {
		t.Fatalf("restored %d devices, %d last-seen times, removals %v", len(c.devices), len(c.lastSeen), c.removed)
	}
	commitNow(t, c)
	sameRegistry(t, restarted(t, dir), c)
	if ids, err := EnrolledDevices(dir); err != nil || len(ids) != 2 || ids[0] != scaleID(0) {
		t.Fatalf("EnrolledDevices: %v, %v", ids, err)
	}
}

// TestRegistryLogCompacted: a log holding far more entries than the registry has devices is
// rewritten at startup as one entry per device, with the same registry.
func TestRegistryLogCompacted(t *testing.T) {
	dir, c, r := compacted(t)
	sameRegistry(t, r, c)
	sameRegistry(t, restarted(t, dir), c)
}

// compacted writes a registry of 2·maxSavedRemovals devices, each changed three times since,
// and restarts on it, which compacts its log; it returns the directory, the coordinator that
// wrote it and the restarted one.
func compacted(t *testing.T) (dir string, c, r *Coordinator) {
	t.Helper()
	dir = t.TempDir()
	c = scaleCoordinator(t, dir, 2*maxSavedRemovals, nil)
	commitNow(t, c)
	for range 3 {
		c.mu.Lock()
		for id := range c.devices {
			c.registryChangedLocked(id)
		}
		c.mu.Unlock()
		commitNow(t, c)
	}
	log := filepath.Join(dir, registryLogName)
	before, _ := os.Stat(log)
	r = restarted(t, dir)
	if after, _ := os.Stat(log); after.Size()*3 > before.Size() {
		t.Fatalf("registry log of %d bytes rewritten as %d", before.Size(), after.Size())
	}
	return dir, c, r
}

// reopenRegistry is reopened's error, the registry closed if it opened.
func reopenRegistry(t *testing.T, dir string) error {
	t.Helper()
	r, err := reopened(t, dir)
	if err == nil {
		r.registry.f.Close()
	}
	return err
}

// TestDamagedRegistryLogIsRefused: a length altered in the registry log's first entry makes
// it run past the end of the file, as the partial entry a crash leaves does. A crash leaves
// one only after the entries the state file counts, so this log is refused, naming it,
// rather than cut back to nothing with every device in it.
func TestDamagedRegistryLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	c := scaleCoordinator(t, dir, 3, scaleRecords(t, 3))
	commitNow(t, c)
	log := filepath.Join(dir, registryLogName)
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), raw...)
	damaged[1], damaged[2] = 0xc0, 0xc0 // the first entry's length, now beyond the file
	if err := os.WriteFile(log, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	err = reopenRegistry(t, dir)
	if err == nil || !strings.Contains(err.Error(), log) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("opening the damaged log: %v, want a refusal naming it", err)
	}
	if after, _ := os.ReadFile(log); len(after) != len(raw) {
		t.Fatalf("the damaged log was cut from %d to %d bytes", len(raw), len(after))
	}
}

// TestRegistryLogCompactionThenCrash: a coordinator that compacts its log at start and
// crashes in its first commit's append leaves a shorter log with a torn entry; the next start
// takes it, since the compaction saved the shorter log's count in the state. (That the count
// is saved before the log is replaced, not after, a test cannot show without a crash between
// the two.) A log removed below what the state counts is refused as damage.
func TestRegistryLogCompactionThenCrash(t *testing.T) {
	dir, _, r := compacted(t)
	log := filepath.Join(dir, registryLogName)
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{entryDevice, 200, 1, 'x'}); err != nil { // the torn first append
		t.Fatal(err)
	}
	f.Close()
	sameRegistry(t, restarted(t, dir), r)

	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	if err := reopenRegistry(t, dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a removed registry log: %v, want it refused as damage", err)
	}
}
