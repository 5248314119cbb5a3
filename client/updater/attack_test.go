package updater

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// publishWithRoot publishes b as the release team would: verifying what the store holds
// against root.
func publishWithRoot(t testing.TB, st store.Store, root *release.Root, b *release.Bundle) {
	t.Helper()
	p, err := release.NewPublisher(release.PublisherConfig{Attempts: 1, Root: root, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), []release.Region{{Name: "test", Store: st}}, b); err != nil {
		t.Fatal(err)
	}
}

// TestAttackFastForward is issue 15, item 1: an attacker holding the online release and
// timestamp keys publishes a release at version 2^64-1. Before the fix the device refused the
// junk but raised its floor to 2^64-1, and after root v2 rotated both keys it refused every
// genuine release as a rollback, forever. Now a refused release never raises the floor, and a
// rotation that drops the keys which signed the floor resets it, as TUF does.
func TestAttackFastForward(t *testing.T) {
	for _, tc := range []struct {
		name string
		// installable: the forged release is a well-formed model the device installs (the
		// attacker has the keys, so it can be); otherwise junk the device rejects.
		installable bool
	}{
		{"junk files", false},
		{"installable model", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrust(t)
			st := newFS(t)
			base := baseParams(t)
			tr.publishModel(t, st, 1, base)
			d := newDevice(t, tr, st)
			d.cfg.ShadowWindows = 3
			u := d.open()
			mustPoll(t, u, Installed, 1)

			const top = math.MaxUint64
			files := map[string][]byte{"junk.bin": []byte("not a model")}
			if tc.installable {
				files = modelFiles(t, top, testSpec, base, testFeatures)
			}
			publishWithRoot(t, st, tr.rootDoc, tr.bundle(t, top, files))
			ev, err := u.Poll(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.installable {
				if ev.Kind != Staged {
					t.Fatalf("forged installable release: %+v", ev)
				}
				if ev := observeAll(t, u, windows(3)); ev.Kind != Promoted || ev.Version != top {
					t.Fatalf("forged release not promoted: %+v", ev)
				}
			} else if ev.Kind != Rejected || !errors.Is(ev.Reason, ErrIncompatible) {
				t.Fatalf("junk release: %+v", ev)
			}
			wantFloor := uint64(1)
			if tc.installable {
				wantFloor = top
			}
			if s := u.Status(); s.Verified != wantFloor {
				t.Fatalf("floor %d after the forged release, want %d", s.Verified, wantFloor)
			}

			// The release team rotates the release and timestamp keys in root v2 and publishes
			// a genuine v2.
			next := &trust{root: tr.root, release: newKey(t), timestamp: newKey(t)}
			next.rootDoc, next.rootEnv = makeRoot(t, 2, next.root, next.release, next.timestamp, tr.root)
			p, _ := release.NewPublisher(release.PublisherConfig{Attempts: 1, Root: next.rootDoc})
			if err := p.PublishRoot(context.Background(), []release.Region{{Name: "r", Store: st}}, next.rootEnv); err != nil {
				t.Fatal(err)
			}
			publishWithRoot(t, st, next.rootDoc, next.bundle(t, 2, modelFiles(t, 2, testSpec, base, testFeatures)))

			// Also across a restart between the rotation and the poll.
			u = d.open()
			mustPoll(t, u, Installed, 2)
			if s := u.Status(); s.Current != 2 || s.Verified != 2 || s.RootVersion != 2 {
				t.Fatalf("after rotation: %+v", s)
			}
			mustPoll(t, u, NoChange, 0)
			u = d.open()
			if s := u.Status(); s.Current != 2 || s.Verified != 2 {
				t.Fatalf("after restart: %+v", s)
			}
		})
	}
}

// TestFloorResetSurvivesLatePromotion: a candidate staged under the old keys, which a rotation
// then retired. Its manifest cannot be the floor any more, so the floor stays reset and the first
// release under the new keys still comes through.
//
// This test used to let the candidate be promoted after the poll that took the new root. That
// promotion is the attack of TestAttackStolenCandidateSurvivesRotation (the candidate may be a
// thief's release, signed with the stolen keys the rotation retired), so the poll that takes the
// new root now drops the candidate and nothing is left to promote ("dropped"). A promotion can
// still come between the verifier's root update and that drop (Observe does not wait for Poll):
// "promoted in the race" makes it happen there, and the floor must stay reset all the same.
func TestFloorResetSurvivesLatePromotion(t *testing.T) {
	for _, race := range []bool{false, true} {
		name := "dropped"
		if race {
			name = "promoted in the race"
		}
		t.Run(name, func(t *testing.T) {
			tr := newTrust(t)
			st := newFS(t)
			base := baseParams(t)
			tr.publishModel(t, st, 1, base)
			d := newDevice(t, tr, st)
			d.cfg.ShadowWindows = 3
			u := d.open()
			mustPoll(t, u, Installed, 1)
			tr.publishModel(t, st, 5, base)
			mustPoll(t, u, Staged, 5)

			next := &trust{root: tr.root, release: newKey(t), timestamp: newKey(t)}
			next.rootDoc, next.rootEnv = makeRoot(t, 2, next.root, next.release, next.timestamp, tr.root)
			p, _ := release.NewPublisher(release.PublisherConfig{Attempts: 1, Root: next.rootDoc})
			if err := p.PublishRoot(context.Background(), []release.Region{{Name: "r", Store: st}}, next.rootEnv); err != nil {
				t.Fatal(err)
			}
			if race {
				// The verifier takes the new root; the candidate is promoted before the poll
				// goes on to drop it.
				u.pollMu.Lock()
				err := u.verifier.UpdateRoot(next.rootEnv)
				u.pollMu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
				if ev := observeAll(t, u, windows(3)); ev.Kind != Promoted || ev.Version != 5 {
					t.Fatalf("promotion in the race: %+v", ev)
				}
			}
			// The pointer still names v5 under the retired timestamp key: refused, but the root
			// is taken.
			if _, err := u.Poll(context.Background()); !errors.Is(err, release.ErrUnknownKey) {
				t.Fatalf("poll after the rotation: %v", err)
			}
			if !race {
				if s := u.Status(); s.Candidate != 0 || s.Current != 1 || s.RootVersion != 2 {
					t.Fatalf("after the poll that took the new root: %+v", s)
				}
				if ev := observeAll(t, u, windows(3)); ev.Kind != NoChange {
					t.Fatalf("the retired candidate was scored: %+v", ev)
				}
			}
			if s := u.Status(); s.Verified != 0 {
				t.Fatalf("floor after the rotation: %+v", s)
			}
			publishWithRoot(t, st, next.rootDoc, next.bundle(t, 2, modelFiles(t, 2, testSpec, base, testFeatures)))
			mustPoll(t, u, Installed, 2)
			if s := u.Status(); s.Current != 2 || s.Verified != 2 {
				t.Fatalf("after the first release under the new keys: %+v", s)
			}
		})
	}
}
