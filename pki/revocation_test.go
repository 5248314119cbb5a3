package pki

import (
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRevocationRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked.json")
	revs, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	before := &x509.Certificate{SerialNumber: big.NewInt(10), NotBefore: t0.Add(-time.Hour)}
	at := &x509.Certificate{SerialNumber: big.NewInt(11), NotBefore: t0}
	after := &x509.Certificate{SerialNumber: big.NewInt(12), NotBefore: t0.Add(time.Second)}
	a := Device("dev-a")
	for _, c := range []*x509.Certificate{before, at, after} {
		if err := revs.Check(a, c, t0); err != nil {
			t.Fatalf("nothing revoked yet: %v", err)
		}
	}
	if err := revs.RevokeIdentity(a, t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		id      Identity
		cert    *x509.Certificate
		revoked bool
	}{
		{"issued before", a, before, true},
		{"issued at the instant", a, at, true},
		{"issued after", a, after, false},
		{"other device", Device("dev-b"), before, false},
		{"same ID, other role", Trustee("dev-a"), before, false},
	} {
		err := revs.Check(tc.id, tc.cert, t0.Add(time.Minute))
		if tc.revoked != errors.Is(err, ErrRevoked) || !tc.revoked && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := revs.RevokeSerial(big.NewInt(12), t0); err != nil {
		t.Fatal(err)
	}
	if err := revs.Check(a, after, t0); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked serial: %v", err)
	}
	if err := revs.RevokeSerial(big.NewInt(0), t0); err == nil {
		t.Fatal("serial 0 accepted")
	}

	// The list survives a restart.
	again, err := OpenRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, serials, err := again.List()
	if err != nil || len(ids) != 1 || ids[0].Identity != a || len(serials) != 1 || serials[0].Serial.Int64() != 12 {
		t.Fatalf("after reload: %v %v %v", ids, serials, err)
	}
}

func TestRevocationFileTroubleFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked.json")
	revs, _ := OpenRevocations(path)
	now := time.Now()
	cert := &x509.Certificate{SerialNumber: big.NewInt(5), NotBefore: now.Add(-time.Hour)}
	if err := revs.RevokeSerial(big.NewInt(99), now); err != nil {
		t.Fatal(err)
	}
	// Damaged by hand: every check is refused until the file is repaired.
	os.WriteFile(path, []byte("{not json"), 0o644)
	now = now.Add(RevocationRecheck)
	if err := revs.Check(Device("d"), cert, now); !errors.Is(err, ErrRevocationUnavailable) {
		t.Fatalf("damaged list: %v", err)
	}
	// Removed: revocations might be lost, so still refused.
	os.Remove(path)
	now = now.Add(RevocationRecheck)
	if err := revs.Check(Device("d"), cert, now); !errors.Is(err, ErrRevocationUnavailable) {
		t.Fatalf("removed list: %v", err)
	}
	// Written again (by a revocation): checks pass again.
	other, _ := OpenRevocations(path)
	if err := other.RevokeSerial(big.NewInt(99), now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(RevocationRecheck)
	if err := revs.Check(Device("d"), cert, now); err != nil {
		t.Fatalf("repaired list: %v", err)
	}
}

func TestParseSerial(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"0a", 10}, {"01:00", 256}, {"FF", 255}} {
		n, err := ParseSerial(tc.in)
		if err != nil || n.Int64() != tc.want {
			t.Errorf("ParseSerial(%q) = %v, %v", tc.in, n, err)
		}
	}
	for _, bad := range []string{"", ":", "0", "-1", "xyz", "0x10", string(make([]byte, 41))} {
		if _, err := ParseSerial(bad); err == nil {
			t.Errorf("ParseSerial(%q) succeeded", bad)
		}
	}
}
