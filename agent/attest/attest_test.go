package attest_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent/attest"
)

func TestOrigin(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://bank.example", "https://bank.example", true},
		{"HTTPS://Bank.Example:443/", "https://bank.example", true},
		{"https://bank.example:8443", "https://bank.example:8443", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://localhost", "http://localhost", true},
		{"http://[::1]:9", "http://[::1]:9", true},
		// A host not in ASCII, as browsers send it: punycode. Before, it was kept as given and
		// never matched a browser's Origin.
		{"https://bücher.example", "https://xn--bcher-kva.example", true},
		{"https://BÜCHER.example:443", "https://xn--bcher-kva.example", true},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example", true},
		{"https://bü_cher.example", "", false},
		{"http://bank.example", "", false}, // plain http from elsewhere could be anyone's page
		{"https://bank.example/login", "", false},
		{"https://bank.example?x=1", "", false},
		{"https://user@bank.example", "", false},
		{"ftp://bank.example", "", false},
		{"bank.example", "", false},
		{"null", "", false}, // what a sandboxed frame sends
		{"", "", false},
	}
	for _, tc := range tests {
		got, err := attest.Origin(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("Origin(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, attest.ErrOrigin) {
			t.Errorf("Origin(%q): %v is not ErrOrigin", tc.in, err)
		}
	}
}

// TestAttackForgedOrReplayedDecision plays the attacker between the device and the site's
// server (a script in the page, or someone holding a stolen session cookie on another machine):
// each altered, replayed or borrowed decision is refused.
func TestAttackForgedOrReplayedDecision(t *testing.T) {
	deviceKey := bytes.Repeat([]byte{7}, 32)
	bank, err := attest.NewSigner(deviceKey, "https://bank.example")
	if err != nil {
		t.Fatal(err)
	}
	shop, _ := attest.NewSigner(deviceKey, "https://shop.example")
	otherDevice, _ := attest.NewSigner(bytes.Repeat([]byte{8}, 32), "https://bank.example")
	if bytes.Equal(bank.PublicKey(), shop.PublicKey()) {
		t.Fatal("two sites got the same key: they could link the device")
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	signedIn := now.Add(-10 * time.Minute)
	d := attest.Decision{Session: "s-1", User: "alice", SessionStart: signedIn.Add(300 * time.Millisecond), Resource: "transfer",
		Nonce: "n-0123456789abcdef", Allow: false, Outcome: "low_trust", Tier: "soft_challenge", Trust: 41, Required: 70, At: now}
	payload, sig, err := bank.Sign(d)
	if err != nil {
		t.Fatal(err)
	}
	want := attest.Expect{Origin: "https://bank.example", Session: "s-1", User: "alice", Resource: "transfer", Nonce: d.Nonce,
		SignedIn: signedIn, Now: now.Add(2 * time.Second)}
	got, err := attest.Verify(bank.PublicKey(), payload, sig, want)
	if err != nil || got.Allow || got.Trust != 41 || got.User != "alice" || got.Origin != "https://bank.example" {
		t.Fatalf("the genuine decision: %+v, %v", got, err)
	}
	allowed := bytes.Replace(payload, []byte(`"allow":false`), []byte(`"allow":true`), 1)
	otherPayload, otherSig, _ := otherDevice.Sign(d)
	shopPayload, shopSig, _ := shop.Sign(d)
	restarted := d
	restarted.SessionStart, restarted.Allow, restarted.Trust = now.Add(-time.Minute), true, 75
	restartedPayload, restartedSig, _ := bank.Sign(restarted)
	housemate := d
	housemate.User, housemate.Allow = "bob", true
	housematePayload, housemateSig, _ := bank.Sign(housemate)
	with := func(f func(*attest.Expect)) attest.Expect { e := want; f(&e); return e }
	tests := []struct {
		name         string
		key          []byte
		payload, sig []byte
		want         attest.Expect
		err          error
	}{
		{"a refusal turned into an allow", bank.PublicKey(), allowed, sig, want, attest.ErrSignature},
		{"signed by another device", bank.PublicKey(), otherPayload, otherSig, want, attest.ErrSignature},
		{"the device's decision for another site", bank.PublicKey(), shopPayload, shopSig, want, attest.ErrSignature},
		{"another site's key, with its decision", shop.PublicKey(), shopPayload, shopSig, want, attest.ErrMismatch},
		{"replayed for a later action", bank.PublicKey(), payload, sig, with(func(e *attest.Expect) { e.Nonce = "n-fedcba9876543210" }), attest.ErrMismatch},
		{"for another resource", bank.PublicKey(), payload, sig, with(func(e *attest.Expect) { e.Resource = "admin" }), attest.ErrMismatch},
		{"from another session", bank.PublicKey(), payload, sig, with(func(e *attest.Expect) { e.Session = "s-2" }), attest.ErrMismatch},
		{"kept for an hour", bank.PublicKey(), payload, sig, with(func(e *attest.Expect) { e.Now = now.Add(time.Hour) }), attest.ErrMismatch},
		{"from a session the page started again, shedding its low trust", bank.PublicKey(), restartedPayload, restartedSig, want, attest.ErrMismatch},
		{"another user of the same device", bank.PublicKey(), housematePayload, housemateSig, want, attest.ErrMismatch},
		{"a server that forgot its nonce", bank.PublicKey(), payload, sig, with(func(e *attest.Expect) { e.Nonce = "" }), attest.ErrMismatch},
		{"a server that forgot its user", bank.PublicKey(), payload, sig, with(func(e *attest.Expect) { e.User = "" }), attest.ErrMismatch},
		{"a server that forgot its sign-in", bank.PublicKey(), payload, sig, with(func(e *attest.Expect) { e.SignedIn = time.Time{} }), attest.ErrMismatch},
		{"no signature", bank.PublicKey(), payload, nil, want, attest.ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := attest.Verify(tc.key, tc.payload, tc.sig, tc.want); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := attest.Verify([]byte("short"), payload, sig, want); err == nil {
		t.Fatal("a malformed key verified")
	}
}

func TestKeyIsStable(t *testing.T) {
	deviceKey := bytes.Repeat([]byte{9}, 32)
	a, _ := attest.NewSigner(deviceKey, "https://bank.example")
	b, _ := attest.NewSigner(deviceKey, "https://bank.example")
	if !bytes.Equal(a.PublicKey(), b.PublicKey()) {
		t.Fatal("the same device and site derived two keys: the site's server would refuse the device after a restart")
	}
	if _, err := attest.NewSigner(deviceKey[:16], "https://bank.example"); err == nil {
		t.Fatal("a 16-byte device key was accepted")
	}
}

func BenchmarkSign(b *testing.B) {
	s, _ := attest.NewSigner(bytes.Repeat([]byte{7}, 32), "https://bank.example")
	d := attest.Decision{Session: "s-1", User: "alice", Resource: "transfer", Nonce: "n-0123456789abcdef", At: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Sign(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s, _ := attest.NewSigner(bytes.Repeat([]byte{7}, 32), "https://bank.example")
	now := time.Now()
	d := attest.Decision{Session: "s-1", User: "alice", SessionStart: now, Resource: "transfer", Nonce: "n-0123456789abcdef", At: now}
	payload, sig, _ := s.Sign(d)
	want := attest.Expect{Origin: "https://bank.example", Session: "s-1", User: "alice", Resource: "transfer", Nonce: d.Nonce, SignedIn: now, Now: now}
	pk := s.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := attest.Verify(pk, payload, sig, want); err != nil {
			b.Fatal(err)
		}
	}
}
