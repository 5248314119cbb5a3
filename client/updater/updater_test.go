package updater

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
)

// TestInstallShadowPromote walks the happy path: the first release is installed directly, a
// better one is staged, scored in shadow and promoted, and a restart keeps all of it.
func TestInstallShadowPromote(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, shifted(base, 0.5))
	d := newDevice(t, tr, st)
	u := d.open()
	if u.Current() != nil {
		t.Fatal("a new device has a model")
	}
	if _, err := u.Observe(make([]float64, 6)); !errors.Is(err, ErrNoModel) {
		t.Fatalf("observe without a model: %v", err)
	}
	mustPoll(t, u, Installed, 1)
	mustPoll(t, u, NoChange, 0)

	tr.publishModel(t, st, 2, base) // output biases back to the fitted ones: lower error
	mustPoll(t, u, Staged, 2)
	if u.Current().Version != 1 || u.Candidate().Version != 2 {
		t.Fatalf("after staging: current v%d, candidate v%d", u.Current().Version, u.Candidate().Version)
	}
	ws := windows(10)
	for i, w := range ws[:9] {
		if ev, err := u.Observe(w); err != nil || ev.Kind != NoChange {
			t.Fatalf("window %d: %v %v", i, ev.Kind, err)
		}
	}
	if got := u.Status().ShadowWindows; got != 9 {
		t.Fatalf("shadow windows %d, want 9", got)
	}
	ev, err := u.Observe(ws[9])
	if err != nil || ev.Kind != Promoted || ev.Version != 2 || ev.Replaced != 1 {
		t.Fatalf("tenth window: %+v, %v", ev, err)
	}
	if s := ev.Stats; s.Windows != 10 || !(s.CandidateMean < s.CurrentMean) {
		t.Fatalf("stats %+v", s)
	}
	want := Status{Model: testModel, Current: 2, Previous: 1, Verified: 2, RootVersion: 1, Rejected: []uint64{}}
	check := func(u *Updater) {
		t.Helper()
		s := u.Status()
		if s.Rejected == nil {
			s.Rejected = []uint64{}
		}
		if !reflect.DeepEqual(s, want) {
			t.Fatalf("status %+v, want %+v", s, want)
		}
		if !slices.Equal(u.Current().Params, base) {
			t.Fatal("running parameters are not v2's")
		}
	}
	check(u)
	u = d.open()
	check(u)
	mustPoll(t, u, NoChange, 0)
	entries, _ := os.ReadDir(filepath.Join(d.cfg.Dir, versionsDir))
	if len(entries) != 2 {
		t.Fatalf("versions directory holds %d entries, want 2 (current and previous)", len(entries))
	}
}

func TestShadowRejects(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, base)
	d := newDevice(t, tr, st)
	u := d.open()
	mustPoll(t, u, Installed, 1)

	tr.publishModel(t, st, 2, shifted(base, 2)) // much worse
	mustPoll(t, u, Staged, 2)
	ev := observeAll(t, u, windows(10))
	if ev.Kind != Rejected || ev.Version != 2 || !errors.Is(ev.Reason, ErrUnhealthy) || ev.Stats.Windows != 10 {
		t.Fatalf("worse candidate: %+v", ev)
	}
	if u.Current().Version != 1 || u.Candidate() != nil {
		t.Fatal("a rejected candidate changed the running model")
	}
	// The rejected version is not fetched again, also after a restart.
	mustPoll(t, d.open(), NoChange, 0)
	u = d.open()
	// The floor stays at the installed version: a refused release never raises it.
	if s := u.Status(); !reflect.DeepEqual(s.Rejected, []uint64{2}) || s.Verified != 1 {
		t.Fatalf("status %+v", s)
	}

	// A candidate with a non-finite score is rejected at the first window.
	huge := slices.Clone(base)
	for i := len(huge) - 6 - 6*4; i < len(huge)-6; i++ { // last layer's weights
		huge[i] = math.MaxFloat64
	}
	tr.publishModel(t, st, 3, huge)
	mustPoll(t, u, Staged, 3)
	ev, err := u.Observe(windows(1)[0])
	if err != nil || ev.Kind != Rejected || !errors.Is(ev.Reason, ErrUnhealthy) || ev.Stats.Windows != 1 {
		t.Fatalf("non-finite candidate: %+v, %v", ev, err)
	}

	// A newer good release still comes through, and replaces a candidate still in shadow.
	tr.publishModel(t, st, 4, shifted(base, 0.01))
	mustPoll(t, u, Staged, 4)
	tr.publishModel(t, st, 5, base)
	mustPoll(t, u, Staged, 5)
	if ev := observeAll(t, u, windows(10)); ev.Kind != Promoted || ev.Version != 5 || ev.Replaced != 1 {
		t.Fatalf("good candidate: %+v", ev)
	}
}

func TestHealthRule(t *testing.T) {
	rule := MeanErrorWithin(0.1)
	for _, tc := range []struct {
		cur, cand, max float64
		ok             bool
	}{
		{1, 1.1, 2, true},
		{1, 1.11, 2, false},
		{1, 0.5, 2, true},
		{0, 0, 0, true},
		{0, 1e-9, 1e-9, false},
		{1, math.NaN(), 1, false},
		{1, 1, math.Inf(1), false},
	} {
		err := rule(ShadowStats{Candidate: 2, Current: 1, Windows: 5, CurrentMean: tc.cur, CandidateMean: tc.cand, CandidateMax: tc.max})
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrUnhealthy) {
			t.Errorf("current %v candidate %v max %v: %v, want ok=%v", tc.cur, tc.cand, tc.max, err, tc.ok)
		}
	}
}

func TestRollback(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	v1 := shifted(base, 0.3)
	tr.publishModel(t, st, 1, v1)
	d := newDevice(t, tr, st)
	u := d.open()
	if _, err := u.Rollback(); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback without a model: %v", err)
	}
	mustPoll(t, u, Installed, 1)
	tr.publishModel(t, st, 2, base)
	mustPoll(t, u, Staged, 2)
	observeAll(t, u, windows(10))

	ev, err := u.Rollback()
	if err != nil || ev.Kind != RolledBack || ev.Version != 1 || ev.Replaced != 2 {
		t.Fatalf("rollback: %+v, %v", ev, err)
	}
	if _, err := u.Rollback(); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("second rollback: %v", err)
	}
	u = d.open()
	if u.Current().Version != 1 || !slices.Equal(u.Current().Params, v1) || u.Previous() != nil {
		t.Fatal("rollback did not survive a restart")
	}
	// v2, rolled back, is not installed again; v3 is staged against v1.
	mustPoll(t, u, NoChange, 0)
	tr.publishModel(t, st, 3, base)
	mustPoll(t, u, Staged, 3)
	if s := u.Status(); s.Current != 1 || s.Candidate != 3 || !slices.Equal(s.Rejected, []uint64{2}) {
		t.Fatalf("status %+v", s)
	}
}

// TestPollRefusesAttacks runs the attacks of the threat model against a device running v1:
// each poll fails with the matching sentinel and leaves the device exactly as it was.
func TestPollRefusesAttacks(t *testing.T) {
	ctx := context.Background()
	base := baseParams(t)
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, tr *trust, st *storeFS, clk *clock)
		want   error
	}{
		{"tampered artifact", func(t *testing.T, tr *trust, st *storeFS, clk *clock) {
			tr.publishModel(t, st, 2, base)
			st.rewrite(t, release.ArtifactKey(testModel, 2, models.ArtifactParams), func(b []byte) []byte { b[0] ^= 1; return b })
		}, release.ErrHashMismatch},
		{"tampered manifest", func(t *testing.T, tr *trust, st *storeFS, clk *clock) {
			tr.publishModel(t, st, 2, base)
			st.editManifest(t, 2, func(m map[string]any) { m["parent"] = 0 })
		}, release.ErrBadSignature},
		{"unknown release key", func(t *testing.T, tr *trust, st *storeFS, clk *clock) {
			rogue := *tr
			rogue.release = newKey(t)
			rogue.publishModel(t, st, 2, base)
		}, release.ErrUnknownKey},
		{"expired pointer", func(t *testing.T, tr *trust, st *storeFS, clk *clock) {
			tr.publishModel(t, st, 2, base)
			clk.set(t0.Add(7 * time.Hour))
		}, release.ErrExpired},
		{"rollback of the pointer", func(t *testing.T, tr *trust, st *storeFS, clk *clock) {
			// A genuine pointer to v1, replayed to a device that runs v2.
			st.put(t, release.LatestKey(testModel), tr.bundle(t, 1, modelFiles(t, 1, testSpec, base, testFeatures)).LatestEnvelope)
		}, release.ErrRollback},
		{"mix and match", func(t *testing.T, tr *trust, st *storeFS, clk *clock) {
			// The manifest of v2 served where v3's belongs.
			tr.publishModel(t, st, 2, base)
			m2, _ := st.Get(ctx, release.ManifestKey(testModel, 2))
			b3 := tr.bundle(t, 3, modelFiles(t, 3, testSpec, base, testFeatures))
			st.put(t, release.ManifestKey(testModel, 3), m2)
			st.put(t, release.LatestKey(testModel), b3.LatestEnvelope)
		}, release.ErrMixAndMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrust(t)
			st := &storeFS{newFS(t)}
			tr.publishModel(t, st, 1, shifted(base, 0.5))
			d := newDevice(t, tr, st)
			u := d.open()
			mustPoll(t, u, Installed, 1)
			if tc.name == "rollback of the pointer" {
				tr.publishModel(t, st, 2, base)
				mustPoll(t, u, Staged, 2)
				observeAll(t, u, windows(10))
			}
			before := u.Status()
			tc.attack(t, tr, st, d.clk)
			_, err := u.Poll(ctx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("poll: %v, want %v", err, tc.want)
			}
			after := u.Status()
			// Damaged files are listed until they are read again; nothing else changes.
			if damaged := errors.Is(tc.want, release.ErrHashMismatch); damaged != (len(after.Refused) == 1) {
				t.Fatalf("refused files listed: %+v", after.Refused)
			}
			after.Refused = nil
			if !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused release changed the device: %+v -> %+v", before, after)
			}
			u = d.open()
			if after := u.Status(); !reflect.DeepEqual(after, before) {
				t.Fatalf("after restart: %+v -> %+v", before, after)
			}
		})
	}
}

// TestIncompatibleReleaseRejected: a genuine release for other features is rejected for good.
func TestIncompatibleReleaseRejected(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, base)
	d := newDevice(t, tr, st)
	u := d.open()
	mustPoll(t, u, Installed, 1)
	publish(t, st, tr.bundle(t, 2, modelFiles(t, 2, testSpec, base, "mouse-v1")))
	ev := mustPoll(t, u, Rejected, 2)
	if !errors.Is(ev.Reason, ErrIncompatible) || !strings.Contains(ev.Reason.Error(), "mouse-v1") {
		t.Fatalf("reason %v", ev.Reason)
	}
	mustPoll(t, u, NoChange, 0)
	wide := []int{8, 4, 8}
	p, _ := specOf(wide).InitParams(1)
	publish(t, st, tr.bundle(t, 3, modelFiles(t, 3, specOf(wide), p, testFeatures)))
	if ev := mustPoll(t, u, Rejected, 3); !errors.Is(ev.Reason, ErrIncompatible) {
		t.Fatalf("reason %v", ev.Reason)
	}
	if u.Current().Version != 1 {
		t.Fatal("running model changed")
	}
}

func TestRootRotationPersists(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, base)
	d := newDevice(t, tr, st)
	u := d.open()
	mustPoll(t, u, Installed, 1)

	// Root v2 replaces the release and timestamp keys.
	next := &trust{root: tr.root, release: newKey(t), timestamp: newKey(t)}
	next.rootDoc, next.rootEnv = makeRoot(t, 2, next.root, next.release, next.timestamp, tr.root)
	p, _ := release.NewPublisher(release.PublisherConfig{Attempts: 1})
	if err := p.PublishRoot(context.Background(), []release.Region{{Name: "r", Store: st}}, next.rootEnv); err != nil {
		t.Fatal(err)
	}
	next.publishModel(t, st, 2, base)
	// The rotation dropped the key that signed v1, so the floor was reset and v1 is no longer
	// vouched for: the first release under the new key replaces it directly, without a shadow
	// comparison against a model the root no longer trusts.
	mustPoll(t, u, Installed, 2)
	u = d.open()
	if s := u.Status(); s.RootVersion != 2 || s.Current != 2 || s.Previous != 0 || s.Verified != 2 {
		t.Fatalf("after restart: %+v", s)
	}
	// The old release key is no longer trusted.
	tr.publishModel(t, st, 3, base)
	if _, err := u.Poll(context.Background()); !errors.Is(err, release.ErrUnknownKey) {
		t.Fatalf("release by the retired key: %v", err)
	}
}

func TestBadWindows(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	tr.publishModel(t, st, 1, baseParams(t))
	u := newDevice(t, tr, st).open()
	mustPoll(t, u, Installed, 1)
	for _, w := range [][]float64{nil, make([]float64, 5), {0, 0, math.NaN(), 0, 0, 0}, {0, math.Inf(-1), 0, 0, 0, 0}} {
		if _, err := u.Observe(w); !errors.Is(err, ErrBadWindow) {
			t.Errorf("window %v: %v", w, err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	good := func() Config {
		return Config{Store: st, Model: testModel, FeatureSet: testFeatures, Dir: t.TempDir(), PinnedRoot: tr.rootEnv}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no store", func(c *Config) { c.Store = nil }, "no store"},
		{"bad model", func(c *Config) { c.Model = "../x" }, "model name"},
		{"no features", func(c *Config) { c.FeatureSet = "" }, "feature set"},
		{"no dir", func(c *Config) { c.Dir = "" }, "state directory"},
		{"no root", func(c *Config) { c.PinnedRoot = nil }, "pinned root"},
		{"garbage root", func(c *Config) { c.PinnedRoot = []byte("{}") }, "pinned root"},
		{"negative interval", func(c *Config) { c.Interval = -time.Second }, "interval"},
		{"negative windows", func(c *Config) { c.ShadowWindows = -1 }, "shadow windows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestDamagedStateDirectory: a corrupt state file stops the updater with a clear error; a
// damaged candidate is dropped and fetched again; a damaged running model is an error.
func TestDamagedStateDirectory(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, base)
	d := newDevice(t, tr, st)
	u := d.open()
	mustPoll(t, u, Installed, 1)
	tr.publishModel(t, st, 2, base)
	mustPoll(t, u, Staged, 2)

	cand := filepath.Join(u.disk.versionDir(u.st.Candidate), models.ArtifactParams)
	if err := os.WriteFile(cand, []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	u = d.open()
	if s := u.Status(); s.Candidate != 0 || s.Verified != 1 {
		t.Fatalf("damaged candidate kept: %+v", s)
	}
	mustPoll(t, u, Staged, 2)

	cur := filepath.Join(u.disk.versionDir(u.st.Current), models.ArtifactMeta)
	if err := os.WriteFile(cur, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(d.cfg); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), cur) {
		t.Fatalf("damaged running model: %v", err)
	}
	if err := os.WriteFile(filepath.Join(d.cfg.Dir, stateFile), []byte(`{"format":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(d.cfg); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), stateFile) {
		t.Fatalf("corrupt state: %v", err)
	}
}
