package cluster

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// machine is one coordinator's directory, with the roots a Replica keeps of it.
type machine struct{ dir string }

func newMachine(t *testing.T) machine { return machine{t.TempDir()} }

func (m machine) roots() []Root {
	return []Root{
		{Name: "state", Dir: filepath.Join(m.dir, "state"), Local: func(rel string) bool { return rel == "lock" || strings.HasPrefix(rel, "local/") },
			Appended: func(rel string) bool { return rel == "registry.log" }},
		{Name: "store", Dir: filepath.Join(m.dir, "store")},
	}
}

func (m machine) replace(t testing.TB, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(m.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (m machine) append(t testing.TB, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(m.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// files returns the replicated files: every regular file but the local ones.
func (m machine) files(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(m.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(m.dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "state/lock" || strings.HasPrefix(rel, "state/local/") || atomicfile.IsTemp(d.Name()) {
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (m machine) replica(t *testing.T, tier *Tier) *Replica {
	t.Helper()
	r, err := OpenReplica(context.Background(), tier, m.roots())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sameFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		for k := range maps.Keys(want) {
			if got[k] != want[k] {
				t.Errorf("%s: %d bytes, want %d", k, len(got[k]), len(want[k]))
			}
		}
		for k := range maps.Keys(got) {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: not expected", k)
			}
		}
		t.FailNow()
	}
}

// TestReplicaCarriesStateToStandby: a standby on another machine, with a directory of its
// own holding stale files, takes over exactly the leader's replicated files: replaced,
// appended to, large, nested, removed; and the leader it replaced can no longer write.
func TestReplicaCarriesStateToStandby(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader, standby := newMachine(t), newMachine(t)

	leader.replace(t, "state/coordinator.state", []byte("round 1"))
	leader.append(t, "state/registry.log", []byte("device a\n"))
	leader.replace(t, "store/models/m/v0000000001/params.f64", bytes.Repeat([]byte{1}, 100))
	leader.replace(t, "state/lock", []byte("4242"))
	leader.replace(t, "state/local/own", []byte("this machine's"))
	leader.replace(t, "state/.coordinator.state.tmp-123", []byte("half written"))
	lr := leader.replica(t, tier)
	if restored, err := lr.TakeOver(ctx); err != nil || restored {
		t.Fatalf("first takeover: restored %v, %v; want the local files given to the tier", restored, err)
	}

	// A second batch: an append, a replacement, a removal, a file larger than a message.
	leader.append(t, "state/registry.log", []byte("device b\n"))
	leader.replace(t, "state/coordinator.state", []byte("round 2"))
	large := bytes.Repeat([]byte("0123456789abcdef"), 3*replicaChunk/16+100)
	leader.replace(t, "store/models/m/v0000000002/params.f64", large)
	if err := os.Remove(filepath.Join(leader.dir, "store/models/m/v0000000001/params.f64")); err != nil {
		t.Fatal(err)
	}
	if err := lr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	leader.append(t, "state/registry.log", []byte("device c\n"))
	if err := lr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lr.Sync(ctx); err != nil { // nothing changed: nothing stored
		t.Fatal(err)
	}

	// The standby's store is on another volume, behind a link.
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(standby.dir, "store")); err != nil {
		t.Fatal(err)
	}
	standby.replace(t, "state/coordinator.state", []byte("stale"))
	standby.replace(t, "store/models/m/v0000000009/params.f64", []byte("stale"))
	standby.replace(t, "state/lock", []byte("7"))
	sr := standby.replica(t, tier)
	var told []uint64
	sr.Progress, sr.ProgressEvery = func(seq, last uint64) { told = append(told, seq, last) }, time.Nanosecond
	if restored, err := sr.TakeOver(ctx); err != nil || !restored {
		t.Fatalf("standby's takeover: restored %v, %v", restored, err)
	}
	if len(told) < 2 || told[len(told)-1] != lr.last || told[len(told)-2] > lr.last {
		t.Fatalf("progress told %v; want sequences up to %d", told, lr.last)
	}
	standbyFiles := func() map[string]string {
		files := standby.files(t)
		for name, data := range (machine{elsewhere}).files(t) {
			files["store/"+name] = data
		}
		return files
	}
	want := leader.files(t)
	sameFiles(t, standbyFiles(), want)
	if got := want["state/registry.log"]; got != "device a\ndevice b\ndevice c\n" {
		t.Fatalf("registry log %q", got)
	}
	if lock, _ := os.ReadFile(filepath.Join(standby.dir, "state/lock")); string(lock) != "7" {
		t.Fatalf("the standby's lock was replaced: %q", lock)
	}

	// The deposed leader wakes and writes: refused, and the standby's files stay.
	leader.replace(t, "state/coordinator.state", []byte("round 2, from a deposed leader"))
	if err := lr.Sync(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("deposed leader's Sync: %v, want ErrFenced", err)
	}
	standby.append(t, "state/registry.log", []byte("device d\n"))
	if err := sr.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// The old leader comes back as the standby of the new one: it is given the new state.
	back := leader.replica(t, tier)
	if restored, err := back.TakeOver(ctx); err != nil || !restored {
		t.Fatalf("takeover back: restored %v, %v", restored, err)
	}
	sameFiles(t, leader.files(t), standbyFiles())
	standby.append(t, "state/registry.log", []byte("device e\n"))
	if err := sr.Sync(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("second leader's Sync after the third took over: %v, want ErrFenced", err)
	}
}

// TestReplicaSkipsInterruptedBatch: a leader fenced in the middle of a batch (its first
// messages stored, the takeover marker before the rest) leaves the files as its previous
// batch stored them.
func TestReplicaSkipsInterruptedBatch(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader, standby := newMachine(t), newMachine(t)
	leader.replace(t, "state/coordinator.state", []byte("round 1"))
	lr := leader.replica(t, tier)
	if _, err := lr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	before := leader.files(t)
	// The first of a batch of three messages; the leader freezes before the others.
	batch := nats.Header{hdrOp: {"replace"}}
	batch.Set(hdrBatch, formatBatch(lr.last+1, lr.last+3))
	if _, err := lr.publish(ctx, lr.fileSubject("state/coordinator.state"), batch, []byte("round 2, in part")); err != nil {
		t.Fatal(err)
	}
	sr := standby.replica(t, tier)
	if _, err := sr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, standby.files(t), before)
	if _, err := lr.publish(ctx, lr.fileSubject("state/coordinator.state"), batch, []byte("the rest")); !errors.Is(err, ErrFenced) {
		t.Fatalf("the rest of the batch: %v, want ErrFenced", err)
	}
}

// TestReplicaStreamStaysSmall: a file replaced at every commit leaves one copy in the stream.
func TestReplicaStreamStaysSmall(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	m := newMachine(t)
	r := m.replica(t, tier)
	if _, err := r.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		m.replace(t, "state/coordinator.state", bytes.Repeat([]byte{byte(i)}, 1000))
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m.replace(t, "store/old", []byte("x"))
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m.dir, "store/old")); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := r.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The state file's last copy, the takeover marker, and the removal (a restore that read
	// the file before the purge must still read that it is gone).
	if info.State.Msgs != 3 {
		t.Fatalf("the stream holds %d messages after 50 replacements and a removal, want 3", info.State.Msgs)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"state/coordinator.state": true, "store/models/m/v1/meta.json": true,
		"state/../../etc/passwd": false, "state//x": false, "state/": false, "/etc/passwd": false,
		"state": false, "state/./x": false, "store/..": false,
	} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// TestAttackReplicaWritesOutsideItsRoots is a writer to the tier (it holds a coordinator's
// certificate) storing a copy whose file names climb out of the state directory, in whole
// batches, hoping the next leader's restore writes them over its machine's files: the restore
// refuses the copy, and nothing is written outside the roots.
func TestAttackReplicaWritesOutsideItsRoots(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"state/../../escaped", "store/../../../escaped", "state//escaped", "escaped"} {
		t.Run(name, func(t *testing.T) {
			tier := embeddedTier(t, "keystroke-ae")
			attacker, victim := newMachine(t), newMachine(t)
			attacker.replace(t, "state/coordinator.state", []byte("round 1"))
			ar := attacker.replica(t, tier)
			if _, err := ar.TakeOver(ctx); err != nil {
				t.Fatal(err)
			}
			hdr := nats.Header{hdrOp: {"replace"}}
			hdr.Set(hdrBatch, formatBatch(ar.last+1, ar.last+1))
			if _, err := ar.publish(ctx, ar.fileSubject(name), hdr, []byte("the attacker's")); err != nil {
				t.Fatal(err)
			}
			_, err := victim.replica(t, tier).TakeOver(ctx)
			if err == nil || !strings.Contains(err.Error(), "is not ROOT/PATH") {
				t.Fatalf("restore of %q: %v, want it refused", name, err)
			}
			filepath.WalkDir(filepath.Dir(victim.dir), func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Name() == "escaped" {
					t.Errorf("written outside the roots: %s", p)
				}
				return nil
			})
		})
	}
}

// TestReplicaSyncsTheRootsNamed: a Sync of the state directory alone stores its changes and
// leaves the store's as they were, neither stored nor taken for removed.
func TestReplicaSyncsTheRootsNamed(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader := newMachine(t)
	leader.replace(t, "state/coordinator.state", []byte("round 1"))
	leader.replace(t, "store/v1", []byte("version 1"))
	lr := leader.replica(t, tier)
	if _, err := lr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	leader.replace(t, "state/coordinator.state", []byte("round 2"))
	leader.replace(t, "store/v2", []byte("version 2"))
	if err := lr.Sync(ctx, "state"); err != nil {
		t.Fatal(err)
	}
	restored := func() map[string]string {
		t.Helper()
		m := newMachine(t)
		if _, err := m.replica(t, tier).TakeOver(ctx); err != nil {
			t.Fatal(err)
		}
		return m.files(t)
	}
	sameFiles(t, restored(), map[string]string{"state/coordinator.state": "round 2", "store/v1": "version 1"})
}

// TestAttackReplicaReplacesLocalFiles is a writer to the tier storing, in whole batches, files
// that each machine keeps for itself (the state directory's lock) and a temporary file's name,
// hoping the next leader's restore replaces its lock, so that a second coordinator could lock
// the same directory: the restore leaves them as they were.
func TestAttackReplicaReplacesLocalFiles(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	attacker, victim := newMachine(t), newMachine(t)
	attacker.replace(t, "state/coordinator.state", []byte("round 1"))
	ar := attacker.replica(t, tier)
	if _, err := ar.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"state/lock", "state/local/own", "state/.coordinator.state.tmp-1"} {
		hdr := nats.Header{hdrOp: {"replace"}}
		hdr.Set(hdrBatch, formatBatch(ar.last+1, ar.last+1))
		if _, err := ar.publish(ctx, ar.fileSubject(name), hdr, []byte("the attacker's")); err != nil {
			t.Fatal(err)
		}
	}
	victim.replace(t, "state/lock", []byte("4242"))
	if _, err := victim.replica(t, tier).TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"state/lock": "4242", "state/local/own": "", "state/.coordinator.state.tmp-1": ""} {
		got, err := os.ReadFile(filepath.Join(victim.dir, name))
		if want == "" && !errors.Is(err, fs.ErrNotExist) || want != "" && string(got) != want {
			t.Errorf("%s after the restore: %q, %v; want %q", name, got, err, want)
		}
	}
	sameFiles(t, victim.files(t), map[string]string{"state/coordinator.state": "round 1"})
}
