package release

import (
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
)

// orgRoles is a root whose new roles have keys of their own: two of three trustees, one
// enrolment authority, one privacy office.
type orgRoles struct {
	root                                   *Root
	rootKey, release, timestamp, enrol, pr *sig.PrivateKey
	trustees                               []*sig.PrivateKey
}

func newOrgRoles(t *testing.T) *orgRoles {
	t.Helper()
	o := &orgRoles{rootKey: newKey(t), release: newKey(t), timestamp: newKey(t), enrol: newKey(t), pr: newKey(t)}
	o.trustees = []*sig.PrivateKey{newKey(t), newKey(t), newKey(t)}
	r, err := NewRoot(1, t0.AddDate(1, 0, 0), RootRoles{
		Root: RoleSpec{Keys: pubs(o.rootKey), Threshold: 1}, Release: RoleSpec{Keys: pubs(o.release), Threshold: 1},
		Timestamp: RoleSpec{Keys: pubs(o.timestamp), Threshold: 1}, Trustees: RoleSpec{Keys: pubs(o.trustees...), Threshold: 2},
		Enrolment: RoleSpec{Keys: pubs(o.enrol), Threshold: 1}, Privacy: RoleSpec{Keys: pubs(o.pr), Threshold: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	o.root = r
	return o
}

func TestDeviceRecordVerifiesOnlyUnderTheEnrolmentRole(t *testing.T) {
	o := newOrgRoles(t)
	dev := newKey(t)
	rec := NewDeviceRecord("d1", "eu", dev.Public(), t0, t0.AddDate(1, 0, 0))
	for _, tc := range []struct {
		name string
		by   *sig.PrivateKey
		ok   bool
	}{
		{"enrolment authority", o.enrol, true},
		{"release key (held online by the coordinator)", o.release, false},
		{"timestamp key", o.timestamp, false},
		{"the device itself", dev, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := Sign(rec, tc.by)
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.root.VerifyDeviceRecord(doc, t0.Add(time.Hour))
			if tc.ok != (err == nil) {
				t.Fatalf("VerifyDeviceRecord: %v", err)
			}
			if tc.ok && (got.DeviceID != "d1" || got.Key().ID() != dev.ID()) {
				t.Fatalf("record %+v", got)
			}
		})
	}
	doc, _ := Sign(rec, o.enrol)
	if _, err := o.root.VerifyDeviceRecord(doc, t0.AddDate(1, 0, 1)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired record: %v", err)
	}
}

// TestKeyEpochNeedsTheTrusteesThreshold: the key-epoch document is approved by the trustees,
// t of n, each signing on its own machine (Cosign); the release key does not count.
func TestKeyEpochNeedsTheTrusteesThreshold(t *testing.T) {
	o := newOrgRoles(t)
	pk := []byte("collective public key")
	ke := NewKeyEpoch(1, "ckks-test", pk, t0, t0.AddDate(0, 1, 0))
	one, err := Sign(ke, o.trustees[0])
	if err != nil {
		t.Fatal(err)
	}
	v := func() *Verifier {
		env, err := Sign(o.root, o.rootKey)
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(VerifierConfig{Root: env, Model: "keystroke-ae"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var serr *SignatureError
	if _, err := v().VerifyKeyEpoch(one, pk, t0); !errors.As(err, &serr) {
		t.Fatalf("one trustee of two: %v", err)
	}
	withRelease, err := Cosign(one, o.release)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v().VerifyKeyEpoch(withRelease, pk, t0); !errors.As(err, &serr) {
		t.Fatalf("one trustee and the release key: %v", err)
	}
	if _, err := Cosign(one, o.trustees[0]); err == nil {
		t.Fatal("the same trustee signed twice")
	}
	two, err := Cosign(one, o.trustees[2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v().VerifyKeyEpoch(two, pk, t0); err != nil {
		t.Fatalf("two trustees of three: %v", err)
	}
}

func TestPrivacyPolicyValidation(t *testing.T) {
	valid := PrivacyPolicy{Version: 1, Created: t0, Expires: t0.AddDate(0, 1, 0), MinNoiseMultiplier: 1,
		MinParticipants: 10, MaxParticipants: 100, MaxClipNorm: 1, MinToleratedDevices: 1}
	for _, tc := range []struct {
		name string
		edit func(*PrivacyPolicy)
	}{
		{"zero noise floor", func(p *PrivacyPolicy) { p.MinNoiseMultiplier = 0 }},
		{"no clip ceiling", func(p *PrivacyPolicy) { p.MaxClipNorm = 0 }},
		{"participants inverted", func(p *PrivacyPolicy) { p.MaxParticipants = 5 }},
		{"one participant", func(p *PrivacyPolicy) { p.MinParticipants, p.MaxParticipants = 1, 1 }},
		{"tolerates everyone", func(p *PrivacyPolicy) { p.MinToleratedDevices = 10 }},
		{"version zero", func(p *PrivacyPolicy) { p.Version = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := valid
			tc.edit(&p)
			if _, err := Sign(&p, newKey(t)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Sign = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := Sign(&valid, newKey(t)); err != nil {
		t.Fatal(err)
	}
}
