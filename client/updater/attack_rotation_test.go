package updater

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// rotate publishes root v2 of tr's root keys with new release and timestamp keys, as the
// release team does after the online keys were stolen, and returns the new trust.
func rotate(t *testing.T, tr *trust, st store.Store) *trust {
	t.Helper()
	next := &trust{root: tr.root, release: newKey(t), timestamp: newKey(t)}
	next.rootDoc, next.rootEnv = makeRoot(t, 2, next.root, next.release, next.timestamp, tr.root)
	p, err := release.NewPublisher(release.PublisherConfig{Attempts: 1, Root: next.rootDoc})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PublishRoot(context.Background(), []release.Region{{Name: "r", Store: st}}, next.rootEnv); err != nil {
		t.Fatal(err)
	}
	return next
}

// TestAttackStolenCandidateSurvivesRotation: a thief signs v2 with the stolen release and
// timestamp keys. The device stages it (it fits the user, so it would pass shadow) or rejects
// it (junk). The release team rotates both keys (root v2) and publishes its own v2. Before the
// fix the device skipped every pointer to v2, whatever manifest it named, and never re-checked
// the staged release under the new root: it promoted the thief's v2 (staged) or never installed
// the genuine one (rejected: frozen). Now it skips only the same manifest, drops a candidate the
// new root does not vouch for, and installs the genuine v2, also across a restart.
func TestAttackStolenCandidateSurvivesRotation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reject  bool // the thief's v2 is junk the device rejects
		restart bool // the device restarts between the rotation and its next poll
		// late: the device takes the new root and scores windows before the genuine v2 is out.
		late bool
	}{
		{name: "staged"},
		{name: "staged, restart", restart: true},
		{name: "staged, genuine v2 later", late: true},
		{name: "rejected", reject: true},
		{name: "rejected, restart", reject: true, restart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrust(t)
			st := newFS(t)
			base := baseParams(t)
			tr.publishModel(t, st, 1, shifted(base, 0.5))
			d := newDevice(t, tr, st)
			d.cfg.ShadowWindows = 3
			u := d.open()
			mustPoll(t, u, Installed, 1)

			thief := shifted(base, -0.01) // fits the user's windows: passes shadow
			files := modelFiles(t, 2, testSpec, thief, testFeatures)
			want := Staged
			if tc.reject {
				files, want = map[string][]byte{"junk.bin": []byte("x")}, Rejected
			}
			publish(t, st, tr.bundle(t, 2, files)) // signed with the stolen keys
			mustPoll(t, u, want, 2)

			next := rotate(t, tr, st)
			if tc.late {
				// The pointer still names the thief's v2: refused, but the root is taken.
				if _, err := u.Poll(context.Background()); !errors.Is(err, release.ErrUnknownKey) {
					t.Fatalf("poll after the rotation: %v", err)
				}
				if ev := observeAll(t, u, windows(3)); ev.Kind != NoChange {
					t.Fatalf("the thief's v2, retired by the rotation, still in shadow: %+v", ev)
				}
			}
			genuine := shifted(base, 0.2)
			publishWithRoot(t, st, next.rootDoc, next.bundle(t, 2, modelFiles(t, 2, testSpec, genuine, testFeatures)))
			if tc.restart {
				u = d.open()
			}
			// v1 was signed by the retired release key too: the genuine v2 is installed at once.
			mustPoll(t, u, Installed, 2)
			if ev := observeAll(t, u, windows(3)); ev.Kind != NoChange {
				t.Fatalf("after the genuine v2: %+v", ev)
			}
			for i := 0; i < 2; i++ {
				mustPoll(t, u, NoChange, 0)
				s := u.Status()
				if s.Current != 2 || s.Candidate != 0 || s.Verified != 2 || s.RootVersion != 2 {
					t.Fatalf("status %+v", s)
				}
				if !slices.Equal(u.Current().Params, genuine) {
					t.Fatalf("running v2 is not the release team's (thief's: %v)", slices.Equal(u.Current().Params, thief))
				}
				u = d.open()
			}
		})
	}
}

// TestAttackSameVersionReinstallCrash: the device promoted the thief's v2 before the rotation
// (the stolen keys were still trusted then). The rotation resets its floor and the release team
// publishes its own v2, which the device installs in place of the running v2. Before the fix it
// was written over the running v2's directory (RemoveAll, then rename), and a power cut there
// left an updater that would not start ("running model v2: state directory is corrupt"). Now
// every install has a directory of its own: a crash at any step leaves the thief's v2 running
// until the genuine one is installed, or the genuine one.
func TestAttackSameVersionReinstallCrash(t *testing.T) {
	base := baseParams(t)
	genuine := shifted(base, 0.2)
	crashEveryStep(t, crashScenario{
		name: "reinstall of the running version",
		setup: func(t *testing.T, tr *trust, st *storeFS, u *Updater) {
			tr.publishModel(t, st, 1, shifted(base, 0.5))
			mustPoll(t, u, Installed, 1)
			tr.publishModel(t, st, 2, shifted(base, -0.01)) // the thief's, with the stolen keys
			mustPoll(t, u, Staged, 2)
			if ev := observeAll(t, u, windows(10)); ev.Kind != Promoted {
				t.Fatalf("thief's v2: %+v", ev)
			}
			next := rotate(t, tr, st)
			// The pointer still names the thief's v2: refused, but the root is taken.
			if _, err := u.Poll(context.Background()); !errors.Is(err, release.ErrUnknownKey) {
				t.Fatalf("poll after the rotation: %v", err)
			}
			publishWithRoot(t, st, next.rootDoc, next.bundle(t, 2, modelFiles(t, 2, testSpec, genuine, testFeatures)))
		},
		op: func(u *Updater) error {
			ev, err := u.Poll(context.Background())
			if err != nil {
				return err
			}
			if ev.Kind != Installed || ev.Version != 2 || ev.Replaced != 2 || !slices.Equal(u.Current().Params, genuine) {
				return fmt.Errorf("reinstall: %+v", ev)
			}
			return nil
		},
	})
}

// TestAttackTimestampKeyFreeze: a thief of the timestamp key alone keeps devices on v1 while the
// release team's v2 is published. A pointer it signs once for ten years used to be accepted
// until the root expired; now one valid for more than release.MaxPointerLifetime is refused.
// Re-signing a short pointer to the installed release (or to one the device rejected) before
// every poll used to read as "no change" for as long as the root lived; now once the installed
// manifest has expired every poll reports it (release.ErrStale, also release.ErrExpired), and
// the device keeps running v1.
func TestAttackTimestampKeyFreeze(t *testing.T) {
	for _, target := range []string{"installed", "rejected"} {
		t.Run(target, func(t *testing.T) {
			ctx := context.Background()
			tr := newTrust(t)
			st := newFS(t)
			b1 := tr.bundle(t, 1, modelFiles(t, 1, testSpec, baseParams(t), testFeatures))
			publish(t, st, b1)
			d := newDevice(t, tr, st)
			u := d.open()
			mustPoll(t, u, Installed, 1)
			named := b1.Manifest
			if target == "rejected" {
				b2 := tr.bundle(t, 2, modelFiles(t, 2, testSpec, baseParams(t), "other-features"))
				publish(t, st, b2)
				mustPoll(t, u, Rejected, 2)
				named = b2.Manifest
			}
			tr.publishModel(t, st, 3, baseParams(t)) // the release team's, which the thief hides
			point := func(expires time.Time) {
				t.Helper()
				ptr, err := release.SignLatestFor(named, expires, tr.timestamp)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Put(ctx, release.LatestKey(testModel), ptr); err != nil {
					t.Fatal(err)
				}
			}

			d.clk.set(t0.Add(7 * time.Hour))
			point(t0.AddDate(10, 0, 0))
			if _, err := u.Poll(ctx); !errors.Is(err, release.ErrLifetime) {
				t.Fatalf("pointer valid for ten years: %v, want ErrLifetime", err)
			}
			for _, at := range []time.Time{t0.Add(7 * time.Hour), b1.Manifest.Expires.Add(-time.Minute), b1.Manifest.Expires, t0.AddDate(1, 0, -1)} {
				d.clk.set(at)
				point(at.Add(6 * time.Hour))
				ev, err := u.Poll(ctx)
				if at.Before(b1.Manifest.Expires) {
					if err != nil || ev.Kind != NoChange {
						t.Fatalf("at %s, v1's manifest valid: %+v %v", at, ev, err)
					}
					continue
				}
				if !errors.Is(err, release.ErrStale) || !errors.Is(err, release.ErrExpired) {
					t.Fatalf("at %s, v1's manifest expired: %+v %v, want ErrStale", at, ev, err)
				}
				if s := u.Status(); s.Current != 1 || u.Current() == nil {
					t.Fatalf("the device stopped running v1: %+v", s)
				}
			}
			// The release team's pointer ends it.
			d.clk.set(t0.Add(time.Hour))
			b3 := tr.bundle(t, 3, modelFiles(t, 3, testSpec, baseParams(t), testFeatures))
			publish(t, st, b3)
			mustPoll(t, u, Staged, 3)
		})
	}
}

// TestStateV1Rejections: a state directory written before rejections recorded manifest hashes
// (format v1, versions/<v>) opens; its rejected version is still skipped, and dropped when a new
// root comes, so that the release team's release of that version is installed after a rotation.
func TestStateV1Rejections(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, base)
	d := newDevice(t, tr, st)
	u := d.open()
	mustPoll(t, u, Installed, 1)
	publish(t, st, tr.bundle(t, 2, map[string][]byte{"junk.bin": []byte("x")})) // the thief's
	mustPoll(t, u, Rejected, 2)

	// Write the state as a v1 updater did.
	cur := u.st.Current
	if err := os.Rename(u.disk.versionDir(cur), filepath.Join(d.cfg.Dir, versionsDir, "1")); err != nil {
		t.Fatal(err)
	}
	v1, err := json.Marshal(stateV1{Format: stateFormatV1, Model: testModel, Verified: 1,
		Current: &slot{Version: 1, Files: cur.Files}, Rejected: []uint64{2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.cfg.Dir, stateFile), v1, 0o600); err != nil {
		t.Fatal(err)
	}
	u = d.open()
	if s := u.Status(); s.Current != 1 || !slices.Equal(s.Rejected, []uint64{2}) {
		t.Fatalf("v1 state: %+v", s)
	}
	mustPoll(t, u, NoChange, 0)

	next := rotate(t, tr, st)
	publishWithRoot(t, st, next.rootDoc, next.bundle(t, 2, modelFiles(t, 2, testSpec, base, testFeatures)))
	if _, err := u.Poll(context.Background()); err != nil { // takes the root, drops the rejection
		t.Fatal(err)
	}
	if s := u.Status(); len(s.Rejected) != 0 {
		t.Fatalf("after the rotation: %+v", s)
	}
	mustPoll(t, u, Installed, 2)
	u = d.open()
	if s := u.Status(); s.Current != 2 || s.Verified != 2 {
		t.Fatalf("after a restart: %+v", s)
	}
}
