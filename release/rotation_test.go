package release

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
)

// rotate makes the root after tr.root with fresh root, release and timestamp keys, signed by
// the given signers.
func rotate(t *testing.T, prev *Root, version uint64, rootKey, release, timestamp *sig.PrivateKey, by ...*sig.PrivateKey) []byte {
	t.Helper()
	r, err := NewRoot(version, t0.Add(365*24*time.Hour), RootRoles{
		Root:      RoleSpec{Keys: pubs(rootKey), Threshold: 1},
		Release:   RoleSpec{Keys: pubs(release), Threshold: 1},
		Timestamp: RoleSpec{Keys: pubs(timestamp), Threshold: 1},
		// The roles these tests do not exercise share the release key.
		Trustees: RoleSpec{Keys: pubs(release), Threshold: 1}, Enrolment: RoleSpec{Keys: pubs(release), Threshold: 1}, Privacy: RoleSpec{Keys: pubs(release), Threshold: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Sign(r, signers(by...)...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestRootRotation(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st, tr.bundle(t, 1))

	// Root v2 replaces every key: signed by the old root key and the new one.
	root2, release2, ts2 := newKey(t), newKey(t), newKey(t)
	env2 := rotate(t, tr.root, 2, root2, release2, ts2, tr.rootKeys[0], root2)
	p, _ := publisher(t, 1)
	if err := p.PublishRoot(ctx, []Region{{"r", st}}, env2); err != nil {
		t.Fatal(err)
	}

	// A device that already runs v1 learns root v2 on its next poll, and from then on refuses
	// the pointer still signed by the old timestamp key.
	v := tr.verifier(t, 1)
	if _, err := v.Fetch(ctx, st, now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old pointer after rotation: got %v, want ErrUnknownKey", err)
	}
	if v.Root().Version != 2 {
		t.Fatalf("device trusts root version %d, want 2", v.Root().Version)
	}

	// Old keys are refused afterwards: a release signed by the old release key (and a pointer
	// by the old timestamp key) is no longer accepted.
	old := tr.bundle(t, 2)
	if err := p.Publish(ctx, []Region{{"r", st}}, old); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Fetch(ctx, st, now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("release by rotated-out keys: got %v, want ErrUnknownKey", err)
	}
	// Pointer by the new timestamp key, manifest by the old release key: still refused.
	mixed := &trust{release: tr.release, timestamp: ts2}
	mb := mixed.bundle(t, 3)
	if err := p.Publish(ctx, []Region{{"r", st}}, mb); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Fetch(ctx, st, now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("manifest by the rotated-out release key: got %v, want ErrUnknownKey", err)
	}
	// The new keys work.
	nb := (&trust{release: release2, timestamp: ts2}).bundle(t, 4)
	if err := p.Publish(ctx, []Region{{"r", st}}, nb); err != nil {
		t.Fatal(err)
	}
	b, err := v.Fetch(ctx, st, now)
	if err != nil || b.Manifest.Version != 4 {
		t.Fatalf("release by the new keys: %v", err)
	}

	// A fresh device pinned to root v1 walks to v2 and gets the same answer.
	fresh := tr.verifier(t, 0)
	if b, err := fresh.Fetch(ctx, st, now); err != nil || b.Manifest.Version != 4 || fresh.Root().Version != 2 {
		t.Fatalf("fresh device: %v", err)
	}
	// The persisted root restarts the device at v2.
	restarted, err := NewVerifier(VerifierConfig{Root: fresh.RootEnvelope(), Model: "vigil-ae"})
	if err != nil || restarted.Root().Version != 2 {
		t.Fatalf("restart from persisted root: %v", err)
	}
}

func TestRootUpdateRefuses(t *testing.T) {
	tr := newTrust(t, 1, 1)
	old := tr.rootKeys[0]
	nk, rel, ts := newKey(t), newKey(t), newKey(t)
	attacker := newKey(t)
	for _, tc := range []struct {
		name string
		env  []byte
		want error
	}{
		{"signed only by the new root key", rotate(t, tr.root, 2, nk, rel, ts, nk), ErrUnknownKey},
		{"signed only by the old root key", rotate(t, tr.root, 2, nk, rel, ts, old), ErrThreshold},
		{"signed by an attacker's key", rotate(t, tr.root, 2, attacker, rel, ts, attacker), ErrUnknownKey},
		{"skips a version", rotate(t, tr.root, 3, nk, rel, ts, old, nk), ErrRootVersion},
		{"replays version 1", rotate(t, tr.root, 1, nk, rel, ts, old, nk), ErrRollback},
		{"signed by the release key", rotate(t, tr.root, 2, nk, rel, ts, tr.release, nk), ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tr.verifier(t, 0)
			err := v.UpdateRoot(tc.env)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if v.Root().Version != 1 {
				t.Fatal("trusted root changed after a refused update")
			}
		})
	}
}
