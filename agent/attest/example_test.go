package attest_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/agent/attest"
)

// A site's server checking the decision its page relayed before a transfer. The device's side
// (the agent) is played here by a Signer.
func ExampleVerify() {
	device, _ := attest.NewSigner(bytes.Repeat([]byte{1}, 32), "https://bank.example")
	keptAtRegistration := device.PublicKey()

	signedIn := time.Now()      // alice signed in to session s-1; the page started it with the agent
	nonce := "3PFWX7OKHV6D2QYB" // issued by the server for this transfer, spent on first use
	payload, signature, _ := device.Sign(attest.Decision{Session: "s-1", User: "alice", SessionStart: signedIn,
		Resource: "transfer", Nonce: nonce, Allow: true, Outcome: "allowed", Trust: 82, Required: 70, At: time.Now()})

	want := attest.Expect{Origin: "https://bank.example", Session: "s-1", User: "alice", Resource: "transfer",
		Nonce: nonce, SignedIn: signedIn}
	d, err := attest.Verify(keptAtRegistration, payload, signature, want)
	fmt.Println(d.Allow, d.Outcome, err)

	want.Nonce = "a-later-nonce-000"
	_, err = attest.Verify(keptAtRegistration, payload, signature, want)
	fmt.Println(err)
	// Output:
	// true allowed <nil>
	// attest: decision is not for this request: nonce "3PFWX7OKHV6D2QYB", want "a-later-nonce-000"
}
