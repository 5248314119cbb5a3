package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// journal wraps a store and records every successful write, in order.
type journal struct {
	store.Store
	mu     sync.Mutex
	writes []string // "create key" / "put key"
}

func (j *journal) Put(ctx context.Context, key string, data []byte) error {
	err := j.Store.Put(ctx, key, data)
	if err == nil {
		j.mu.Lock()
		j.writes = append(j.writes, "put "+key)
		j.mu.Unlock()
	}
	return err
}

func (j *journal) Create(ctx context.Context, key string, data []byte) error {
	err := j.Store.Create(ctx, key, data)
	if err == nil {
		j.mu.Lock()
		j.writes = append(j.writes, "create "+key)
		j.mu.Unlock()
	}
	return err
}

func (j *journal) log() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.writes)
}

// creates counts the write-once objects created per key.
func (j *journal) creates() map[string]int {
	n := map[string]int{}
	for _, w := range j.log() {
		if k, ok := strings.CutPrefix(w, "create "); ok {
			n[k]++
		}
	}
	return n
}

func (tr *trust) outbox(t testing.TB, dir string, clk *clock, regions ...Region) *Outbox {
	t.Helper()
	o, err := NewOutbox(OutboxConfig{
		Dir: dir, Model: "vigil-ae", Regions: regions, ReleaseKey: tr.release, TimestampKey: tr.timestamp,
		Now: clk.now, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func files(v uint64) map[string][]byte {
	return map[string][]byte{
		"model.bin":  []byte(fmt.Sprintf("weights of version %d", v)),
		"scaler.bin": []byte("feature scaler"),
	}
}

func (tr *trust) submit(t testing.TB, o *Outbox, v uint64) {
	t.Helper()
	s := tr.spec(v, files(v))
	s.Expires, s.LatestExpires = time.Time{}, time.Time{} // the outbox's lifetimes
	if err := o.Submit(context.Background(), s); err != nil {
		t.Fatalf("submit v%d: %v", v, err)
	}
}

func TestOutboxSubmitIsIdempotent(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	dir := t.TempDir()
	o := tr.outbox(t, dir, &clock{t: t0}, Region{"eu", newFS(t)})
	tr.submit(t, o, 2)
	before, err := os.ReadFile(filepath.Join(dir, queuedName(2)))
	if err != nil {
		t.Fatal(err)
	}

	// The coordinator repeats itself (after a restart): same files, other training facts.
	again := tr.spec(2, files(2))
	again.Training.Epsilon, again.Created = 9, t0.Add(time.Hour)
	if err := o.Submit(ctx, again); err != nil {
		t.Fatalf("identical resubmit: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, queuedName(2)))
	if !bytes.Equal(before, after) {
		t.Fatal("an identical resubmit signed the release again")
	}

	for _, tc := range []struct {
		name string
		spec Spec
		want error
	}{
		{"same version, other files", tr.spec(2, files(7)), ErrConflict},
		{"older version", tr.spec(1, files(1)), ErrRollback},
		{"other model", func() Spec { s := tr.spec(3, files(3)); s.Model = "other"; return s }(), ErrMixAndMatch},
		{"bad artifact name", tr.spec(3, map[string][]byte{"../x": nil}), ErrMalformed},
		{"no artifacts", tr.spec(3, nil), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := o.Submit(ctx, tc.spec); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got := o.Queued(); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("queue %v after refused submits, want [2]", got)
	}

	// A release built elsewhere is accepted too, and is idempotent the same way.
	b := tr.bundle(t, 3)
	for range 2 {
		if err := o.SubmitBundle(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.SubmitBundle(ctx, &Bundle{ManifestEnvelope: b.ManifestEnvelope, LatestEnvelope: b.LatestEnvelope, Files: files(9)}); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("bundle with other files: %v", err)
	}
}

// TestOutboxRegionDownThenUp publishes two releases while one region is down: the other region
// gets both at once, and the down region gets them when it comes back, in order, each object
// exactly once, and the queue shrinks to the newest release.
func TestOutboxRegionDownThenUp(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	clk := &clock{t: t0}
	us := &journal{Store: newFS(t)}
	euFS := newFS(t)
	euDown := &faultyStore{Store: euFS, okWrites: 0}
	eu := &journal{Store: euDown}
	dir := t.TempDir()
	o := tr.outbox(t, dir, clk, Region{"us", us}, Region{"eu", eu})
	tr.submit(t, o, 1)
	tr.submit(t, o, 2)

	err := o.Flush(ctx)
	var re *RegionError
	if !errors.As(err, &re) || re.Region != "eu" || !errors.Is(err, errDown) {
		t.Fatalf("flush with eu down: %v", err)
	}
	st := o.Status()
	if st[0].Region != "us" || st[0].Published != 2 || st[0].Pending != 0 || st[0].Failures != 0 {
		t.Fatalf("us status %+v", st[0])
	}
	if st[1].Region != "eu" || st[1].Published != 0 || st[1].Pending != 2 || st[1].Failures != 1 || !errors.Is(st[1].LastError, errDown) {
		t.Fatalf("eu status %+v", st[1])
	}
	if got := o.Queued(); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("queue %v while eu lacks both, want [1 2]", got)
	}
	if b, err := tr.verifier(t, 0).Fetch(ctx, us, clk.now()); err != nil || b.Manifest.Version != 2 {
		t.Fatalf("us device: %v", err)
	}

	euDown.mu.Lock()
	euDown.down, euDown.okWrites = false, -1
	euDown.mu.Unlock()
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := tr.verifier(t, 0).Fetch(ctx, euFS, clk.now()); err != nil || b.Manifest.Version != 2 {
		t.Fatalf("eu device after recovery: %v", err)
	}
	want := []string{
		"create " + ArtifactKey("vigil-ae", 1, "model.bin"),
		"create " + ArtifactKey("vigil-ae", 1, "scaler.bin"),
		"create " + ManifestKey("vigil-ae", 1),
		"put " + LatestKey("vigil-ae"),
		"create " + ArtifactKey("vigil-ae", 2, "model.bin"),
		"create " + ArtifactKey("vigil-ae", 2, "scaler.bin"),
		"create " + ManifestKey("vigil-ae", 2),
		"put " + LatestKey("vigil-ae"),
	}
	for name, j := range map[string]*journal{"us": us, "eu": eu} {
		if got := j.log(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s writes:\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if got := o.Queued(); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("queue %v once every region holds v2, want [2]", got)
	}
	if _, err := os.Stat(filepath.Join(dir, queuedName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("v1 still on disk: %v", err)
	}
}

// TestOutboxRestartContinues queues releases while every region is down, "crashes", and checks
// that a new outbox on the same directory publishes them, and that a crash in the middle of a
// publication (after the artifacts, before the pointer) ends with the release complete once.
func TestOutboxRestartContinues(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	clk := &clock{t: t0}
	fs := newFS(t)
	dir := t.TempDir()

	// First life: v1 published, then v2 cut off after its two artifacts.
	first := tr.outbox(t, dir, clk, Region{"eu", fs})
	tr.submit(t, first, 1)
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	crashing := &faultyStore{Store: fs, okWrites: 2}
	second := tr.outbox(t, dir, clk, Region{"eu", crashing})
	tr.submit(t, second, 2)
	if err := second.Flush(ctx); !errors.Is(err, errDown) {
		t.Fatalf("flush into a crashing store: %v", err)
	}
	// Devices still see v1, whole.
	if _, err := tr.verifier(t, 1).Fetch(ctx, fs, clk.now()); !errors.Is(err, ErrUpToDate) {
		t.Fatalf("device during the outage: %v", err)
	}

	// Third life: the coordinator hands v2 over again, as it does after a restart.
	j := &journal{Store: fs}
	third := tr.outbox(t, dir, clk, Region{"eu", j})
	if got := third.Queued(); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("restarted outbox holds %v, want [2]", got)
	}
	tr.submit(t, third, 2)
	if err := third.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := tr.verifier(t, 1).Fetch(ctx, fs, clk.now()); err != nil || b.Manifest.Version != 2 {
		t.Fatalf("device after restart: %v", err)
	}
	// The artifacts written before the crash were not written again, only the rest.
	want := []string{"create " + ManifestKey("vigil-ae", 2), "put " + LatestKey("vigil-ae")}
	if got := j.log(); !reflect.DeepEqual(got, want) {
		t.Fatalf("writes after restart %v, want %v", got, want)
	}
	keys, _ := fs.List(ctx, ReleasePrefix("vigil-ae")+"2/")
	if len(keys) != 3 {
		t.Fatalf("v2 objects %v", keys)
	}
}

// TestOutboxRefreshesPointer checks that an unchanged release keeps a valid pointer: without
// the refresh a device would see it expire.
func TestOutboxRefreshesPointer(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	clk := &clock{t: t0}
	fs := newFS(t)
	dir := t.TempDir()
	o := tr.outbox(t, dir, clk, Region{"eu", fs})
	tr.submit(t, o, 1)
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	exp0 := o.Status()[0].PointerExpires
	if !exp0.Equal(t0.Add(6 * time.Hour)) {
		t.Fatalf("first pointer expires %v", exp0)
	}
	j := &journal{Store: fs}
	o = tr.outbox(t, dir, clk, Region{"eu", j}) // a restart: refresh at once
	clk.add(90 * time.Minute)
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := j.log(); !reflect.DeepEqual(got, []string{"put " + LatestKey("vigil-ae")}) {
		t.Fatalf("writes on restart refresh %v", got)
	}
	// The pointer was 90 min old, less than RefreshEvery (2h): written again, not re-signed.
	if st := o.Status()[0]; !st.PointerExpires.Equal(exp0) {
		t.Fatalf("pointer re-signed too early: %v", st.PointerExpires)
	}
	clk.add(time.Hour)
	if err := o.Flush(ctx); err != nil || len(j.log()) != 1 {
		t.Fatalf("refresh before it is due: %v, %d writes", err, len(j.log()))
	}
	clk.add(time.Hour) // 3.5h after the first pointer, 2h after the last write
	if err := o.Flush(ctx); err != nil || len(j.log()) != 2 {
		t.Fatalf("due refresh: %v, %d writes", err, len(j.log()))
	}
	exp1 := o.Status()[0].PointerExpires
	if !exp1.Equal(clk.now().Add(6 * time.Hour)) {
		t.Fatalf("refreshed pointer expires %v, want %v", exp1, clk.now().Add(6*time.Hour))
	}
	late := exp0.Add(time.Hour)
	if _, err := tr.verifier(t, 0).Fetch(ctx, fs, late); err != nil {
		t.Fatalf("device after the first pointer's expiry: %v", err)
	}
	if _, err := tr.verifier(t, 0).Fetch(ctx, fs, exp1); !errors.Is(err, ErrExpired) {
		t.Fatalf("device after the refreshed pointer's expiry: %v", err)
	}
}

// TestOutboxRunBacksOffPerRegion runs the outbox with one healthy region and one that fails
// three times: the healthy one is published at once, the other after backoffs of 100, 200 and
// 400 ms, and each exactly once.
func TestOutboxRunBacksOffPerRegion(t *testing.T) {
	tr := newTrust(t, 1, 1)
	us := &journal{Store: newFS(t)}
	eu := &journal{Store: &faultyStore{Store: newFS(t), okWrites: -1, failFor: 3}}
	var mu sync.Mutex
	var delays []time.Duration
	usDone := make(chan struct{})
	var once, doneOnce sync.Once
	done := make(chan struct{})
	o, err := NewOutbox(OutboxConfig{
		Dir: t.TempDir(), Model: "vigil-ae", Regions: []Region{{"us", us}, {"eu", eu}},
		ReleaseKey: tr.release, TimestampKey: tr.timestamp, Now: func() time.Time { return t0 },
		InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			<-usDone // eu's retries wait until us is done: us never waits for eu
			mu.Lock()
			delays = append(delays, d)
			mu.Unlock()
			return ctx.Err()
		},
		Events: func(e OutboxEvent) {
			if e.Err == nil && e.Region == "us" {
				once.Do(func() { close(usDone) })
			}
			if e.Err == nil && e.Region == "eu" {
				doneOnce.Do(func() { close(done) })
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.submit(t, o, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- o.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("eu never published")
	}
	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	ms := time.Millisecond
	if !reflect.DeepEqual(delays, []time.Duration{100 * ms, 200 * ms, 400 * ms}) {
		t.Fatalf("eu backoffs %v", delays)
	}
	for name, j := range map[string]*journal{"us": us, "eu": eu} {
		for k, n := range j.creates() {
			if n != 1 {
				t.Errorf("%s: %s created %d times", name, k, n)
			}
		}
		if len(j.creates()) != 3 {
			t.Errorf("%s: %d objects created, want 3", name, len(j.creates()))
		}
	}
}

func TestOutboxRefusesCorruptQueue(t *testing.T) {
	tr := newTrust(t, 1, 1)
	dir := t.TempDir()
	clk := &clock{t: t0}
	o := tr.outbox(t, dir, clk, Region{"eu", newFS(t)})
	tr.submit(t, o, 1)
	path := filepath.Join(dir, queuedName(1))
	data, _ := os.ReadFile(path)
	for name, mutate := range map[string]func() error{
		"flipped artifact byte": func() error {
			// "weights of version 1" base64-encoded starts with d2VpZ2h0cy: change one digit.
			return os.WriteFile(path, bytes.Replace(data, []byte("d2VpZ2h0cy"), []byte("d2VpZ2h0cz"), 1), 0o600)
		},
		"wrong version in name": func() error {
			os.Remove(path)
			return os.WriteFile(filepath.Join(dir, queuedName(5)), data, 0o600)
		},
		"truncated": func() error { return os.WriteFile(path, data[:len(data)/2], 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, queuedName(5)))
			if err := mutate(); err != nil {
				t.Fatal(err)
			}
			_, err := NewOutbox(OutboxConfig{Dir: dir, Model: "vigil-ae", Regions: []Region{{"eu", newFS(t)}}, ReleaseKey: tr.release, TimestampKey: tr.timestamp})
			if err == nil || !strings.Contains(err.Error(), dir) {
				t.Fatalf("got %v, want an error naming the file", err)
			}
		})
	}
	// A temporary file left by a crash is removed, not loaded.
	os.Remove(filepath.Join(dir, queuedName(5)))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, tempPrefix+queuedName(2)+"-123")
	if err := os.WriteFile(tmp, data[:10], 0o600); err != nil {
		t.Fatal(err)
	}
	o = tr.outbox(t, dir, clk, Region{"eu", newFS(t)})
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) || !reflect.DeepEqual(o.Queued(), []uint64{1}) {
		t.Fatalf("temporary file %v, queue %v", err, o.Queued())
	}
}

func TestOutboxConfigValidation(t *testing.T) {
	tr := newTrust(t, 1, 1)
	fs := newFS(t)
	good := func() OutboxConfig {
		return OutboxConfig{Dir: t.TempDir(), Model: "m", Regions: []Region{{"eu", fs}}, ReleaseKey: tr.release, TimestampKey: tr.timestamp}
	}
	for _, tc := range []struct {
		name string
		edit func(*OutboxConfig)
		want string
	}{
		{"no dir", func(c *OutboxConfig) { c.Dir = "" }, "no directory"},
		{"bad model", func(c *OutboxConfig) { c.Model = "a/b" }, "outbox model"},
		{"no region", func(c *OutboxConfig) { c.Regions = nil }, "no region"},
		{"duplicate region", func(c *OutboxConfig) { c.Regions = append(c.Regions, Region{"eu", fs}) }, "given twice"},
		{"nil store", func(c *OutboxConfig) { c.Regions = []Region{{"eu", nil}} }, "no store"},
		{"no keys", func(c *OutboxConfig) { c.TimestampKey = nil }, "keys are required"},
		{"refresh after expiry", func(c *OutboxConfig) { c.LatestExpiry, c.RefreshEvery = time.Hour, 2*time.Hour }, "out of range"},
		{"short expiry", func(c *OutboxConfig) { c.Expiry = time.Minute }, "out of range"},
		{"pointer expiry beyond what devices accept", func(c *OutboxConfig) { c.LatestExpiry = MaxPointerLifetime + time.Hour }, "out of range"},
		{"backoff", func(c *OutboxConfig) { c.InitialBackoff, c.MaxBackoff = time.Minute, time.Second }, "backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			if _, err := NewOutbox(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := NewOutbox(good()); err != nil {
		t.Fatal(err)
	}
}
