package enrolment_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// Example runs one registration without the network: the operator creates the authority and
// issues a token, the device registers with its own key, and anyone holding the root of trust
// (the coordinator, the trustees) verifies the record and the device's proof.
func Example() {
	tmp, _ := os.MkdirTemp("", "vigil-enrolment-example")
	defer os.RemoveAll(tmp)

	// Operator: `vigil enrol init` and `vigil enrol token`.
	dir, err := enrolment.InitDir(filepath.Join(tmp, "enrol"), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	token, _ := dir.Tokens.Issue("laptop-7", time.Hour, time.Now())
	authority, _ := enrolment.New(enrolment.Config{Key: dir.Key, Tokens: dir.Tokens})

	// The root of trust lists the authority's key in its enrolment role.
	other, _ := sig.GenerateKey(nil)
	one := func(k *sig.PublicKey) release.RoleSpec {
		return release.RoleSpec{Keys: []*sig.PublicKey{k}, Threshold: 1}
	}
	root, _ := release.NewRoot(1, time.Now().Add(time.Hour), release.RootRoles{
		Root: one(other.Public()), Release: one(other.Public()), Timestamp: one(other.Public()),
		Trustees: one(other.Public()), Enrolment: one(authority.PublicKey()), Privacy: one(other.Public()),
	})

	// Device: its own signing key, then Register.
	key, _ := sig.GenerateKey(nil)
	req := &vigilv1.RegisterRequest{DeviceId: "laptop-7", Token: token, Region: "eu"}
	enrolment.SignRegistration(req, key)
	resp, err := authority.Register(context.Background(), req)
	if err != nil {
		log.Fatal(err)
	}
	_, err = authority.Register(context.Background(), req)
	fmt.Println("the same token again:", vigilv1.Reason(err))

	// Coordinator: the record verifies under the root, and the device proves it holds its key.
	rec, err := root.VerifyDeviceRecord(resp.GetDeviceRecord(), time.Now())
	if err != nil {
		log.Fatal(err)
	}
	csr := []byte("the device's certificate request")
	proof, _ := enrolment.ProveRecord(key, "laptop-7", csr)
	fmt.Println("record for", rec.DeviceID, "in", rec.Region, "valid for", rec.Expires.Sub(rec.Issued))
	fmt.Println("proof:", enrolment.VerifyRecordProof(rec.Key(), "laptop-7", csr, proof))
	// Output:
	// the same token again: TOKEN_USED
	// record for laptop-7 in eu valid for 8760h0m0s
	// proof: <nil>
}
