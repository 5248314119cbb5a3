package client

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// policyFixture is an organisation's root of trust and a policy signed by its privacy office.
type policyFixture struct {
	keys  *release.KeySet
	root  *release.Root
	now   time.Time
	valid *release.PrivacyPolicy
}

func newPolicyFixture(t *testing.T) *policyFixture {
	t.Helper()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	keys, err := release.NewKeySet(rand.Reader, now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	root, err := release.ParseTrustedRoot(keys.RootEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	return &policyFixture{keys: keys, root: root, now: now, valid: &release.PrivacyPolicy{
		Version: 1, Created: now, Expires: now.AddDate(0, 6, 0),
		MinNoiseMultiplier: 0.8, MinParticipants: 10, MaxParticipants: 1000, MaxClipNorm: 1, MinToleratedDevices: 2,
	}}
}

func (f *policyFixture) sign(t *testing.T, p *release.PrivacyPolicy, by release.Signer) []byte {
	t.Helper()
	doc, err := release.Sign(p, by)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func (f *policyFixture) guard(t *testing.T) *PolicyGuard {
	t.Helper()
	g, err := NewPolicyGuard(f.root, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// persistentGuard is a guard that keeps its floor in path, as a device starting up makes it.
func (f *policyFixture) persistentGuard(t *testing.T, path string) *PolicyGuard {
	t.Helper()
	g := f.guard(t)
	if err := g.PersistTo(path); err != nil {
		t.Fatal(err)
	}
	return g
}

// rotatePrivacy returns root v2, signed by v1's root key, with newPrivacy in place of the
// privacy office's key, and checks that it verifies from v1 as the device's updaters would.
func (f *policyFixture) rotatePrivacy(t *testing.T, newPrivacy *sig.PrivateKey) []byte {
	t.Helper()
	return f.rotate(t, func(r *release.RootRoles) { r.Privacy = oneKey(newPrivacy) })
}

// rotateTrustees is rotatePrivacy for the trustees' key.
func (f *policyFixture) rotateTrustees(t *testing.T, newTrustees *sig.PrivateKey) []byte {
	t.Helper()
	return f.rotate(t, func(r *release.RootRoles) { r.Trustees = oneKey(newTrustees) })
}

func oneKey(k *sig.PrivateKey) release.RoleSpec {
	return release.RoleSpec{Keys: []*sig.PublicKey{k.Public()}, Threshold: 1}
}

// rotate returns root v2, signed by v1's root key, with v1's keys as change leaves them.
func (f *policyFixture) rotate(t *testing.T, change func(*release.RootRoles)) []byte {
	t.Helper()
	roles := release.RootRoles{
		Root: oneKey(f.keys.Root), Release: oneKey(f.keys.Release), Timestamp: oneKey(f.keys.Timestamp),
		Trustees: oneKey(f.keys.Trustees[0]), Enrolment: oneKey(f.keys.Enrolment), Privacy: oneKey(f.keys.Privacy),
	}
	change(&roles)
	v2, err := release.NewRoot(2, f.now.AddDate(1, 0, 0), roles)
	if err != nil {
		t.Fatal(err)
	}
	env, err := release.Sign(v2, f.keys.Root)
	if err != nil {
		t.Fatal(err)
	}
	v, err := release.NewVerifier(release.VerifierConfig{Root: f.keys.RootEnvelope, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.UpdateRoot(env); err != nil {
		t.Fatal(err)
	}
	return env
}

// laxerAndStricter returns the signed valid policy, v1, and a stricter v2 (z at least 1.2).
func (f *policyFixture) laxerAndStricter(t *testing.T) (v1, v2 []byte) {
	t.Helper()
	stricter := *f.valid
	stricter.Version, stricter.MinNoiseMultiplier = 2, 1.2
	return f.sign(t, f.valid, f.keys.Privacy), f.sign(t, &stricter, f.keys.Privacy)
}

func task(policy []byte, z, c float64, mMin, tDev uint32) *vigilv1.Task {
	return &vigilv1.Task{Round: 7, Policy: policy, Privacy: &vigilv1.PrivacyConfig{
		NoiseMultiplier: z, ClipNorm: c, MinParticipants: mMin, ToleratedDevices: tDev, ExpectedParticipants: 25,
	}}
}

// TestAttackNoiseInflation is the attack of a coordinator that lies to devices about the
// round's privacy settings: a huge m_min makes each device add almost no noise (zC/sqrt(m_min))
// while its ledger charges z; z = 0 turns the noise off; a huge C lets one update dominate.
// Devices hold every task to the privacy office's signed policy, which the coordinator cannot
// sign, and refuse.
func TestAttackNoiseInflation(t *testing.T) {
	f := newPolicyFixture(t)
	doc := f.sign(t, f.valid, f.keys.Privacy)
	forged := *f.valid
	forged.MinNoiseMultiplier, forged.MaxParticipants = 1e-9, 1<<32-1
	for _, tc := range []struct {
		name string
		task *vigilv1.Task
		want string
	}{
		{"huge m_min shrinks the device's noise", task(doc, 1, 1, 1<<32-1, 2), "m_min 4294967295 is outside"},
		{"noise turned off", task(doc, 0, 1, 25, 2), "noise multiplier 0 is below"},
		{"noise below the floor", task(doc, 0.5, 1, 25, 2), "noise multiplier 0.5 is below"},
		{"clip norm above the ceiling", task(doc, 1, 1e9, 25, 2), "clip norm 1e+09"},
		{"no margin for colluding devices", task(doc, 1, 1, 25, 0), "tolerated devices 0"},
		{"m_min below the floor", task(doc, 1, 1, 2, 1), "m_min 2 is outside"},
		{"no policy at all", task(nil, 1, 1, 25, 2), "no signed privacy policy"},
		{"a laxer policy signed with the coordinator's release key", task(f.sign(t, &forged, f.keys.Release), 1e-6, 1, 1<<32-1, 2), "does not verify"},
		{"a laxer policy signed with the coordinator's timestamp key", task(f.sign(t, &forged, f.keys.Timestamp), 1e-6, 1, 1<<32-1, 2), "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.guard(t).Check(tc.task)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want a refusal containing %q", err, tc.want)
			}
		})
	}
	if err := f.guard(t).Check(task(doc, 1, 1, 25, 2)); err != nil {
		t.Fatalf("a task inside the policy was refused: %v", err)
	}
}

// TestAttackPolicyRollback: a coordinator that once sent policy v2 cannot go back to the laxer
// v1, though v1 is genuinely signed and unexpired.
func TestAttackPolicyRollback(t *testing.T) {
	f := newPolicyFixture(t)
	v1, v2 := f.laxerAndStricter(t)
	g := f.guard(t)
	if err := g.Check(task(v2, 1.2, 1, 25, 2)); err != nil {
		t.Fatal(err)
	}
	err := g.Check(task(v1, 0.9, 1, 25, 2))
	if !errors.Is(err, release.ErrPolicy) || !strings.Contains(err.Error(), "has seen v2") {
		t.Fatalf("rollback to policy v1: %v", err)
	}
	if got := g.Policy().Version; got != 2 {
		t.Fatalf("guard holds policy v%d, want v2", got)
	}
}

// TestAttackPolicyRollbackAfterRestart: the rollback of TestAttackPolicyRollback, tried once
// the device has restarted. The floor is recorded in the device's directory, so the restarted
// guard still refuses v1; a corrupt record refuses to start rather than forget the floor.
func TestAttackPolicyRollbackAfterRestart(t *testing.T) {
	f := newPolicyFixture(t)
	v1, v2 := f.laxerAndStricter(t)
	path := filepath.Join(t.TempDir(), PolicyFloorFile)
	started := func() *PolicyGuard { return f.persistentGuard(t, path) }
	if err := started().Check(task(v2, 1.2, 1, 25, 2)); err != nil {
		t.Fatal(err)
	}
	err := started().Check(task(v1, 0.9, 1, 25, 2))
	if !errors.Is(err, release.ErrPolicy) || !strings.Contains(err.Error(), "has seen v2") {
		t.Fatalf("rollback to policy v1 after a restart: %v", err)
	}
	if err := started().Check(task(v2, 1.2, 1, 25, 2)); err != nil {
		t.Fatalf("the same policy after a restart: %v", err)
	}
	for _, bad := range []string{"", "two\n", "-1", "18446744073709551616", "1 8790b9aaa41", "1 zz90b9aaa41e2f00112233445566778899"} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := f.guard(t).PersistTo(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("floor file %q: PersistTo = %v, want an error naming the file", bad, err)
		}
	}
}

func TestPolicyExpired(t *testing.T) {
	f := newPolicyFixture(t)
	doc := f.sign(t, f.valid, f.keys.Privacy)
	f.now = f.valid.Expires.Add(time.Second)
	if err := f.guard(t).Check(task(doc, 1, 1, 25, 2)); !errors.Is(err, release.ErrExpired) {
		t.Fatalf("expired policy: %v", err)
	}
}

// TestAttackRetiredPrivacyKey: the privacy office's key is stolen, and the organisation rotates
// the root (v2) to a new privacy key; the device's updaters verify v2 from the pinned v1. A
// guard that verified policies under the pinned root went on accepting the thief's policy,
// and refused the office's new one; and once the floor was saved, the thief's policy numbered
// 2^40 kept the office's new ones out for good (both found by review). Following the updaters'
// root, it refuses the retired key's policy, and a floor set under retired privacy keys resets.
func TestAttackRetiredPrivacyKey(t *testing.T) {
	f := newPolicyFixture(t)
	newPrivacy, err := sig.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rootV2 := f.rotatePrivacy(t, newPrivacy)
	// Before the rotation the thief's policy, numbered far ahead, reached the device, which
	// recorded it as its floor.
	lax := *f.valid
	lax.Version, lax.MinNoiseMultiplier = 1<<40, 0.8
	stolen := f.sign(t, &lax, f.keys.Privacy)
	path := filepath.Join(t.TempDir(), PolicyFloorFile)
	started := func() *PolicyGuard { return f.persistentGuard(t, path) }
	if err := started().Check(task(stolen, 1, 1, 25, 2)); err != nil {
		t.Fatal(err)
	}
	fresh := *f.valid
	fresh.Version = 2
	current := f.sign(t, &fresh, newPrivacy)

	g := started() // after a restart, following the updaters' root
	g.Follow(func() []byte { return rootV2 })
	if err := g.Check(task(stolen, 1, 1, 25, 2)); err == nil {
		t.Fatal("a policy signed by the retired privacy key was accepted")
	}
	if err := g.Check(task(current, 1, 1, 25, 2)); err != nil {
		t.Fatalf("the privacy office's policy under the new root, after the thief's v2^40: %v", err)
	}
	g = started()
	g.Follow(func() []byte { return rootV2 })
	if err := g.Check(task(current, 1, 1, 25, 2)); err != nil {
		t.Fatalf("the same after another restart: %v", err)
	}
}
